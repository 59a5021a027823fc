#!/usr/bin/python3
"""Malformed gRPC and HTTP/2 input against baton-interop-server over raw h2c.

Each case opens its own connection with python3-h2 (validation of what we send
switched off), sends one kind of bad input, and asserts the answer the gRPC and
HTTP/2 specs ask for. After every case a fresh well-formed EmptyCall on a new
connection must succeed and the server process must still be running. At the
end the server is stopped with SIGTERM; it must exit cleanly with no sanitizer
report. Every wait is bounded and a watchdog kills everything after --timeout.

  bad_input.py --server=PATH [--case=NAME,...] [--timeout=SECONDS]
"""

import argparse
import socket
import struct
import sys
import time

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions

import harness

SVC = "/grpc.testing.TestService/"
EMPTY_CALL = SVC + "EmptyCall"
UNARY_CALL = SVC + "UnaryCall"
MAX_MESSAGE = 4 * 1024 * 1024  # Baton's default maximum receive message size
WAIT = 5.0  # seconds any single answer may take

OK, CANCELLED, RESOURCE_EXHAUSTED, UNIMPLEMENTED, INTERNAL = 0, 1, 8, 12, 13
PROTOCOL_ERROR = h2.errors.ErrorCodes.PROTOCOL_ERROR
ENHANCE_YOUR_CALM = h2.errors.ErrorCodes.ENHANCE_YOUR_CALM


def grpc_frame(msg, compressed=False, length=None):
    """gRPC length-prefixed message; length overrides the real length to lie about it."""
    return struct.pack(">BI", 1 if compressed else 0, len(msg) if length is None else length) + msg


# SimpleRequest{response_size: 1} (field 2, varint 1), written out so this
# script needs no generated code.
SIMPLE_REQUEST = b"\x10\x01"


def h2_error_name(code):
    try:
        return h2.errors.ErrorCodes(code).name
    except ValueError:
        return f"0x{code:x}"


class Stream:
    def __init__(self):
        self.headers = None
        self.trailers = None
        self.data = bytearray()
        self.ended = False
        self.reset = None  # RST_STREAM error code from the server

    def _get(self, block, name):
        for k, v in block or ():
            if k == name:
                return v.decode("utf-8", "replace")
        return None

    @property
    def http_status(self):
        v = self._get(self.headers, b":status")
        return int(v) if v else None

    @property
    def grpc_status(self):
        # Trailers, or the response headers of a Trailers-Only response.
        v = self._get(self.trailers, b"grpc-status")
        if v is None and self.ended and self.trailers is None:
            v = self._get(self.headers, b"grpc-status")
        return int(v) if v is not None and v.isdigit() else None

    @property
    def grpc_message(self):
        return self._get(self.trailers, b"grpc-message") or self._get(self.headers, b"grpc-message")


class H2Client:
    """A minimal blocking HTTP/2 client over one plaintext connection."""

    def __init__(self, port):
        self.port = port
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
        cfg = h2.config.H2Configuration(client_side=True, header_encoding=None,
                                        validate_outbound_headers=False,
                                        normalize_outbound_headers=False,
                                        validate_inbound_headers=False)
        self.conn = h2.connection.H2Connection(config=cfg)
        self.streams = {}
        self.goaway = None  # GOAWAY error code
        self.goaway_last_stream = None
        self.closed = None  # why the connection is gone, or None
        self.conn.initiate_connection()
        self.flush()

    def flush(self):
        data = self.conn.data_to_send()
        if data and not self.closed:
            try:
                self.sock.sendall(data)
            except OSError as err:
                self.closed = f"send failed: {err}"

    def headers(self, path=EMPTY_CALL, content_type="application/grpc", extra=(), omit=()):
        hs = [(":method", "POST"), (":scheme", "http"), (":path", path),
              (":authority", f"127.0.0.1:{self.port}"), ("content-type", content_type),
              ("te", "trailers")] + list(extra)
        return [(k.encode(), v.encode()) for k, v in hs if k not in omit]

    def request(self, headers, body=b"", end_stream=True):
        sid = self.conn.get_next_available_stream_id()
        self.streams[sid] = Stream()
        self.conn.send_headers(sid, headers, end_stream=not body and end_stream)
        if body:
            self.conn.send_data(sid, body, end_stream=end_stream)
        self.flush()
        return sid

    def feed(self, data):
        try:
            events = self.conn.receive_data(data)
        except h2.exceptions.ProtocolError as err:
            self.closed = f"h2 rejected the server's bytes: {err!r}"
            return
        for ev in events:
            st = self.streams.get(getattr(ev, "stream_id", None))
            if isinstance(ev, h2.events.ResponseReceived) and st:
                st.headers = ev.headers
            elif isinstance(ev, h2.events.TrailersReceived) and st:
                st.trailers = ev.headers
            elif isinstance(ev, h2.events.DataReceived):
                if st:
                    st.data += ev.data
                if ev.flow_controlled_length:
                    self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, h2.events.StreamEnded) and st:
                st.ended = True
            elif isinstance(ev, h2.events.StreamReset) and st:
                st.reset = ev.error_code
            elif isinstance(ev, h2.events.ConnectionTerminated):
                self.goaway = ev.error_code
                self.goaway_last_stream = ev.last_stream_id
        self.flush()

    def pump(self, done, timeout=WAIT):
        """Read until done() or the connection is gone or timeout; returns done()."""
        deadline = time.monotonic() + timeout
        while not done():
            left = deadline - time.monotonic()
            if self.closed or left <= 0:
                return done()
            self.sock.settimeout(min(left, 0.5))
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError as err:
                self.closed = f"recv failed: {err}"
                continue
            if not data:
                self.closed = "closed by server"
                continue
            self.feed(data)
        return True

    def wait(self, sid, timeout=WAIT):
        st = self.streams[sid]

        def done():
            refused = self.goaway is not None and sid > (self.goaway_last_stream or 0)
            return st.ended or st.reset is not None or refused

        self.pump(done, timeout)
        return st

    def describe(self, sid):
        st = self.streams[sid]
        parts = [f":status={st.http_status}", f"grpc-status={st.grpc_status}"]
        if st.grpc_status is not None:
            parts[-1] += f" ({harness.STATUS_NAMES.get(st.grpc_status, '?')})"
        if st.grpc_message:
            parts.append(f"grpc-message={st.grpc_message!r}")
        if st.reset is not None:
            parts.append(f"RST_STREAM={h2_error_name(st.reset)}")
        if self.goaway is not None:
            parts.append(f"GOAWAY={h2_error_name(self.goaway)}")
        if self.closed:
            parts.append(f"connection: {self.closed}")
        if not (st.ended or st.reset is not None or self.goaway is not None or self.closed):
            parts.append(f"no answer within {WAIT}s")
        return ", ".join(parts)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class CaseFailure(AssertionError):
    pass


def expect_grpc_status(c, sid, code):
    st = c.wait(sid)
    got = c.describe(sid)
    if st.grpc_status != code:
        raise CaseFailure(f"want grpc-status {code} ({harness.STATUS_NAMES[code]}), got {got}")
    if st.http_status != 200:
        raise CaseFailure(f"want :status 200 with the gRPC status, got {got}")
    return got


# ---- the cases: each returns a one-line description of what the server did ----


def case_truncated_prefix(port):
    """END_STREAM after 3 of the 5 prefix bytes."""
    c = H2Client(port)
    sid = c.request(c.headers(UNARY_CALL), body=b"\x00\x00\x00")
    return expect_grpc_status(c, sid, INTERNAL)


def case_truncated_message(port):
    """END_STREAM after 10 bytes of a message whose prefix says 100."""
    c = H2Client(port)
    sid = c.request(c.headers(UNARY_CALL), body=grpc_frame(b"", length=100) + b"\x00" * 10)
    return expect_grpc_status(c, sid, INTERNAL)


def case_message_too_large(port):
    """A prefix announcing 4 MiB + 1 and only 1 KiB of it; the stream stays open, so
    the server has to decide from the prefix alone."""
    c = H2Client(port)
    body = grpc_frame(b"", length=MAX_MESSAGE + 1) + b"\x00" * 1024
    sid = c.request(c.headers(UNARY_CALL), body=body, end_stream=False)
    return expect_grpc_status(c, sid, RESOURCE_EXHAUSTED)


def case_compressed_without_encoding(port):
    """Compressed-flag 1 but no grpc-encoding header."""
    c = H2Client(port)
    sid = c.request(c.headers(UNARY_CALL), body=grpc_frame(SIMPLE_REQUEST, compressed=True))
    return expect_grpc_status(c, sid, INTERNAL)


def case_unknown_encoding(port):
    """grpc-encoding the server does not support, on a compressed message."""
    c = H2Client(port)
    hs = c.headers(UNARY_CALL, extra=[("grpc-encoding", "x-baton-nonexistent")])
    sid = c.request(hs, body=grpc_frame(b"\x01\x02\x03", compressed=True))
    return expect_grpc_status(c, sid, UNIMPLEMENTED)


def case_wrong_content_type(port):
    c = H2Client(port)
    sid = c.request(c.headers(UNARY_CALL, content_type="text/plain"), body=grpc_frame(SIMPLE_REQUEST))
    st = c.wait(sid)
    if st.http_status != 415:
        raise CaseFailure(f"want :status 415, got {c.describe(sid)}")
    return c.describe(sid)


def case_missing_path(port):
    c = H2Client(port)
    sid = c.request(c.headers(omit=(":path",)), body=grpc_frame(b""))
    st = c.wait(sid)
    if st.reset == PROTOCOL_ERROR or c.goaway is not None:
        return c.describe(sid)
    raise CaseFailure(f"want RST_STREAM PROTOCOL_ERROR or GOAWAY, got {c.describe(sid)}")


def case_oversized_headers(port):
    """32 KiB of custom metadata (> 16 KiB), spread over HEADERS + CONTINUATION frames.
    Rejected by RST_STREAM, 431 or RESOURCE_EXHAUSTED; if there was no GOAWAY the same
    connection must still serve a call."""
    c = H2Client(port)
    pad = [(f"x-pad-{i:02d}", "a" * 1024) for i in range(32)]
    sid = c.request(c.headers(extra=pad), body=grpc_frame(b""))
    st = c.wait(sid)
    got = c.describe(sid)
    rejected = (st.reset is not None or st.http_status == 431
                or st.grpc_status == RESOURCE_EXHAUSTED or c.goaway is not None)
    if not rejected:
        raise CaseFailure(f"want RST_STREAM, 431, RESOURCE_EXHAUSTED or GOAWAY, got {got}")
    if c.goaway is None and not c.closed:
        sid2 = c.request(c.headers(), body=grpc_frame(b""))
        st2 = c.wait(sid2)
        if st2.grpc_status != OK:
            raise CaseFailure(f"rejected ({got}) but the connection then failed a good call: "
                              f"{c.describe(sid2)}")
        got += "; the same connection then served a call"
    elif c.goaway is None:
        raise CaseFailure(f"connection dropped without GOAWAY: {got}")
    return got


def case_garbage_preface(port):
    """Bytes that are not the HTTP/2 client preface: GOAWAY and/or close, promptly."""
    s = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
    try:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + b"\xde\xad\xbe\xef" * 16)
        received = bytearray()
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            s.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            except OSError:  # reset by peer counts as closed
                chunk = b""
            if not chunk:
                return f"closed after {len(received)} bytes" + (
                    " (GOAWAY seen)" if _has_goaway(received) else "")
            received += chunk
        raise CaseFailure(f"connection still open {WAIT}s after a bad preface "
                          f"({len(received)} bytes received)")
    finally:
        s.close()


def _has_goaway(buf):
    i = 0
    while i + 9 <= len(buf):
        length = int.from_bytes(buf[i:i + 3], "big")
        if buf[i + 3] == 0x7:
            return True
        i += 9 + length
    return False


def case_rapid_reset(port):
    """HEADERS immediately followed by RST_STREAM(CANCEL), in a loop (CVE-2023-44487):
    the server must eventually answer GOAWAY ENHANCE_YOUR_CALM."""
    c = H2Client(port)
    sent = 0
    start = time.monotonic()
    hs = c.headers()
    while c.goaway is None and not c.closed and sent < 50000 and time.monotonic() - start < 20:
        try:
            for _ in range(100):
                sid = c.conn.get_next_available_stream_id()
                c.conn.send_headers(sid, hs, end_stream=False)
                c.conn.reset_stream(sid, h2.errors.ErrorCodes.CANCEL)
                sent += 1
        except h2.exceptions.ProtocolError as err:
            c.closed = f"h2 refused to send more: {err!r}"
        c.flush()
        # Take whatever has arrived without waiting, so neither side's buffers fill up.
        c.sock.settimeout(0.001)
        try:
            data = c.sock.recv(65536)
            if data:
                c.feed(data)
            else:
                c.closed = "closed by server"
        except socket.timeout:
            pass
        except OSError as err:
            c.closed = f"recv failed: {err}"
    # After GOAWAY the server may still be flushing; give it a moment to finish.
    c.pump(lambda: c.goaway is not None, 2)
    took = time.monotonic() - start
    if c.goaway is None:
        raise CaseFailure(f"no GOAWAY after {sent} HEADERS+RST_STREAM pairs in {took:.1f}s"
                          + (f"; connection: {c.closed}" if c.closed else ""))
    name = h2_error_name(c.goaway)
    if c.goaway != ENHANCE_YOUR_CALM:
        raise CaseFailure(f"GOAWAY {name} after {sent} pairs, want ENHANCE_YOUR_CALM")
    return f"GOAWAY {name} after {sent} pairs in {took:.1f}s"


def case_malformed_timeout(port):
    """grpc-timeout must be 1-8 digits and one of HMSmun; anything else is INTERNAL."""
    c = H2Client(port)
    seen = []
    for value in ("1x", "S", "-1S", "1.5S", "123456789S"):
        sid = c.request(c.headers(extra=[("grpc-timeout", value)]), body=grpc_frame(b""))
        try:
            expect_grpc_status(c, sid, INTERNAL)
        except CaseFailure as err:
            raise CaseFailure(f"grpc-timeout {value!r}: {err}") from None
        seen.append(value)
    return f"INTERNAL for grpc-timeout {', '.join(repr(v) for v in seen)}"


def case_two_messages_unary(port):
    """Two request messages on a unary method: an error status, not a crash, not OK."""
    c = H2Client(port)
    sid = c.request(c.headers(UNARY_CALL), body=grpc_frame(SIMPLE_REQUEST) * 2)
    st = c.wait(sid)
    if st.grpc_status is None or st.grpc_status == OK:
        raise CaseFailure(f"want a non-OK grpc-status, got {c.describe(sid)}")
    return c.describe(sid)


def case_unknown_method(port):
    c = H2Client(port)
    got = []
    for path in (SVC + "NoSuchMethod", "/no.such.Service/Method"):
        sid = c.request(c.headers(path), body=grpc_frame(b""))
        try:
            got.append(expect_grpc_status(c, sid, UNIMPLEMENTED))
        except CaseFailure as err:
            raise CaseFailure(f"{path}: {err}") from None
    return "; ".join(got)


CASES = [
    case_truncated_prefix, case_truncated_message, case_message_too_large,
    case_compressed_without_encoding, case_unknown_encoding, case_wrong_content_type,
    case_missing_path, case_oversized_headers, case_garbage_preface, case_rapid_reset,
    case_malformed_timeout, case_two_messages_unary, case_unknown_method,
]


def probe(port):
    """A well-formed EmptyCall on a new connection; returns None if it succeeded."""
    try:
        c = H2Client(port)
    except OSError as err:
        return f"cannot connect: {err}"
    try:
        sid = c.request(c.headers(), body=grpc_frame(b""))
        st = c.wait(sid)
        if st.http_status == 200 and st.grpc_status == OK and bytes(st.data) == grpc_frame(b""):
            return None
        return f"EmptyCall got {c.describe(sid)}, data={bytes(st.data)!r}"
    finally:
        c.close()


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--server", required=True, help="path of baton-interop-server ('py' for the grpcio one)")
    ap.add_argument("--case", default="all", help="comma-separated names without the case_ prefix")
    ap.add_argument("--timeout", type=float, default=100, help="hard limit for the whole run, seconds")
    args = ap.parse_args(argv)
    harness.hard_timeout(args.timeout)

    cases = CASES
    if args.case != "all":
        wanted = args.case.split(",")
        cases = [f for f in CASES if f.__name__[5:] in wanted]
        if len(cases) != len(wanted):
            harness.log(f"unknown case in {args.case}; have: {', '.join(f.__name__[5:] for f in CASES)}")
            return 2

    if args.server == "py":
        base = [sys.executable, harness.HERE / "interop_python_server.py"]
    else:
        base = [args.server]
    server, port = harness.start_server("server", lambda p: base + [f"--port={p}"])

    failed = []
    serving = True
    for case in cases:
        if not serving:
            harness.log(f"SKIP {case.__name__[5:]}: the server no longer serves")
            failed.append(case.__name__[5:])
            continue
        name = case.__name__[5:]
        try:
            what = case(port)
            verdict = None
        except CaseFailure as err:
            verdict = str(err)
        except Exception as err:  # a crash of the case itself is a failure of that case only
            verdict = f"{type(err).__name__}: {err}"
        if not server.alive():
            verdict = (verdict + "; " if verdict else "") + "server process died"
        else:
            bad = probe(port)
            if bad:
                verdict = (verdict + "; " if verdict else "") + f"server stopped serving: {bad}"
                serving = False
        if verdict:
            failed.append(name)
            harness.log(f"FAIL {name}: {verdict}")
        else:
            harness.log(f"PASS {name}: {what}")
        if not server.alive():
            serving = False

    problems = server.stop()
    for p in problems:
        harness.log(f"FAIL: {p}")
    harness.log(f"{len(cases) - len(failed)}/{len(cases)} cases passed"
                + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed or problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
