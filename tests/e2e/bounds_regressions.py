#!/usr/bin/python3
"""Regressions of the bounds that a review of the back-pressure change found
broken, each against baton-interop-server over raw h2c (frames written by
hand, so the client can refuse to read exactly as an attacker would).

  idle_after_status   a unary call whose response waits behind a window the
                      client never opens (the handler finished, the status is
                      queued): reset by the stream idle timeout (RST_STREAM
                      CANCEL), not kept until the client leaves.
  process_fair_share  3 connections x 35 such calls of 100 KB each, every
                      connection under its own budget (4 MiB) but the process
                      over its own (8 MiB): the attacker's connections shed
                      after buffer_timeout, and a well-behaved client is then
                      served (it got RESOURCE_EXHAUSTED for as long as the
                      attack lasted).
  writable_relief     with the process between half and all of its budget
                      (another client holds 10 MB of partial messages), a
                      server-streaming call that hit its high-water mark is
                      told it may send again once the client reads: all
                      40 x 64 KiB responses and the status arrive.

  bounds_regressions.py --server=PATH [--case=NAME,...] [--timeout=SECONDS]
"""

import argparse
import select
import socket
import struct
import sys
import time

import harness

SVC = "/grpc.testing.TestService/"
DATA, HEADERS, RST_STREAM, SETTINGS, WINDOW_UPDATE = 0, 1, 3, 4, 8
END_STREAM, END_HEADERS, ACK = 1, 4, 1
CANCEL = 8


def frame(t, flags, sid, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([t, flags]) + struct.pack(">I", sid) + payload


def literal(name, value):
    # A header field without indexing, its name and value as plain literals.
    n, v = name.encode(), value.encode()
    return b"\x00" + bytes([len(n)]) + n + bytes([len(v)]) + v


def request_headers(path):
    return b"".join(literal(k, v) for k, v in [
        (":method", "POST"), (":scheme", "http"), (":path", path), (":authority", "localhost"),
        ("content-type", "application/grpc"), ("te", "trailers")])


def varint(n):
    out = b""
    while True:
        b, n = n & 0x7F, n >> 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def grpc_message(body):
    return b"\x00" + struct.pack(">I", len(body)) + body


def simple_request(response_size):
    return grpc_message(b"\x10" + varint(response_size))  # SimpleRequest.response_size


class Conn:
    """A raw h2c client connection that reads only when told to."""

    def __init__(self, port, initial_window=None):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=5)
        settings = struct.pack(">HI", 4, initial_window) if initial_window is not None else b""
        self.s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(SETTINGS, 0, 0, settings))
        self.buf = b""
        self.frames = []

    def send(self, b):
        self.s.sendall(b)

    def read_for(self, seconds):
        """Reads frames for seconds (acknowledging SETTINGS); returns the new ones."""
        end, new = time.monotonic() + seconds, []
        while time.monotonic() < end:
            r, _, _ = select.select([self.s], [], [], max(0, end - time.monotonic()))
            if not r:
                break
            d = self.s.recv(1 << 16)
            if not d:
                new.append(("EOF",))
                break
            self.buf += d
            while len(self.buf) >= 9:
                n = int.from_bytes(self.buf[:3], "big")
                if len(self.buf) < 9 + n:
                    break
                t, fl = self.buf[3], self.buf[4]
                sid = int.from_bytes(self.buf[5:9], "big") & 0x7FFFFFFF
                new.append((t, fl, sid, self.buf[9:9 + n]))
                self.buf = self.buf[9 + n:]
                if t == SETTINGS and not fl & ACK:
                    self.send(frame(SETTINGS, ACK, 0))
        self.frames += new
        return new

    def close(self):
        self.s.close()


def on(frames, sid, t):
    return [f for f in frames if f[0] == t and f[2] == sid]


def start(server, flags):
    return harness.start_server("baton-interop-server", lambda p: [server, f"--port={p}", *flags])


def case_idle_after_status(server, check):
    proc, port = start(server, ["--stream_idle_timeout_ms=1000"])
    try:
        c = Conn(port, initial_window=0)
        c.read_for(0.3)
        t0 = time.monotonic()
        c.send(frame(HEADERS, END_HEADERS, 1, request_headers(SVC + "UnaryCall"))
               + frame(DATA, END_STREAM, 1, simple_request(100000)))
        got = []
        while time.monotonic() - t0 < 5 and not on(got, 1, RST_STREAM):
            got += c.read_for(0.2)
        rst = on(got, 1, RST_STREAM)
        took = time.monotonic() - t0
        check(bool(on(got, 1, HEADERS)), "the response headers came (the handler answered)")
        check(bool(rst) and int.from_bytes(rst[0][3], "big") == CANCEL,
              f"the stream was reset CANCEL by the idle timeout: {[f[:3] for f in got]}")
        check(1.0 <= took < 3.0, f"after about the 1 s idle timeout: {took:.2f} s")
        c.close()
    finally:
        return proc.stop()


def good_call(port):
    """A well-behaved unary call on a fresh connection: (got a DATA frame, status)."""
    g = Conn(port)
    g.read_for(0.2)
    g.send(frame(HEADERS, END_HEADERS, 1, request_headers(SVC + "UnaryCall"))
           + frame(DATA, END_STREAM, 1, simple_request(10)))
    got = []
    t0 = time.monotonic()
    while time.monotonic() - t0 < 2 and not [f for f in on(got, 1, HEADERS) if f[1] & END_STREAM]:
        got += g.read_for(0.1)
    g.close()
    return bool(on(got, 1, DATA))


def case_process_fair_share(server, check):
    proc, port = start(server, ["--connection_buffer=4194304", "--process_buffer=8388608",
                                "--buffer_timeout_ms=500"])
    try:
        attackers = []
        for _ in range(3):
            c = Conn(port, initial_window=0)
            c.read_for(0.1)
            c.send(b"".join(frame(HEADERS, END_HEADERS, 1 + 2 * k, request_headers(SVC + "UnaryCall"))
                            + frame(DATA, END_STREAM, 1 + 2 * k, simple_request(100000))
                            for k in range(35)))
            attackers.append(c)
        time.sleep(0.5)
        served = []
        deadline = time.monotonic() + 6
        while time.monotonic() < deadline and not (served and served[-1]):
            for c in attackers:
                c.read_for(0.05)
            served.append(good_call(port))
            time.sleep(0.25)
        check(served and served[-1],
              f"a well-behaved client is served once the attackers shed ({len(served)} tries: {served})")
        for c in attackers:
            c.read_for(0.3)
        resets = sum(len([f for f in c.frames if f[0] == RST_STREAM]) for c in attackers)
        check(resets > 0, f"the attackers' calls were reset ({resets} RST_STREAM)")
        for c in attackers:
            c.close()
    finally:
        return proc.stop()


def case_writable_relief(server, check):
    proc, port = start(server, ["--process_buffer=16777216", "--stream_buffer=262144"])
    try:
        holder = Conn(port)
        holder.read_for(0.2)
        out = b""
        for k in range(10):  # 10 x ~1 MB of messages that announce 4 MB and stop
            sid = 1 + 2 * k
            body = b"\x00" + struct.pack(">I", 4000000) + b"x" * 999995
            out += frame(HEADERS, END_HEADERS, sid, request_headers(SVC + "FullDuplexCall"))
            out += b"".join(frame(DATA, 0, sid, body[o:o + 16384]) for o in range(0, len(body), 16384))
        holder.send(out)
        holder.read_for(1.0)
        c = Conn(port)
        c.read_for(0.2)
        params = b"".join(b"\x12" + bytes([4]) + b"\x08" + varint(65536) for _ in range(40))
        c.send(frame(HEADERS, END_HEADERS, 1, request_headers(SVC + "StreamingOutputCall"))
               + frame(DATA, END_STREAM, 1, grpc_message(params)))
        c.read_for(1.0)
        c.send(frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", 16 << 20))
               + frame(WINDOW_UPDATE, 0, 1, struct.pack(">I", 16 << 20)))
        got = []
        t0 = time.monotonic()
        while time.monotonic() - t0 < 5 and not [f for f in on(got, 1, HEADERS) if f[1] & END_STREAM]:
            got += c.read_for(0.2)
        data = sum(len(f[3]) for f in on(c.frames, 1, DATA))
        want = 40 * (65536 + 4 + 5 + 3)  # each response: prefix + Payload{body} framing
        check(data >= 40 * 65536, f"all 40 responses arrived: {data} DATA bytes (about {want})")
        check(bool([f for f in on(got, 1, HEADERS) if f[1] & END_STREAM]), "and the status")
        c.close()
        holder.close()
    finally:
        return proc.stop()


CASES = {
    "idle_after_status": case_idle_after_status,
    "process_fair_share": case_process_fair_share,
    "writable_relief": case_writable_relief,
}


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--server", required=True)
    ap.add_argument("--case", default=",".join(CASES))
    ap.add_argument("--timeout", type=float, default=100)
    args = ap.parse_args(argv)
    harness.hard_timeout(args.timeout)
    failed = []
    for name in args.case.split(","):
        problems = []

        def check(cond, what):
            harness.log(f"  {'ok' if cond else 'FAIL'}: {what}")
            if not cond:
                problems.append(what)

        harness.log(f"--- {name}")
        problems += CASES[name](args.server, check) or []
        harness.log(f"{'FAIL' if problems else 'PASS'} {name}")
        if problems:
            failed.append(name)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
