#!/usr/bin/python3
"""Attack tests: no peer can make Baton use unbounded memory or hold resources forever.

Each case starts its own target (baton-interop-server, or baton-gateway with
a passthrough route in front of a backend), attacks it over raw sockets
(asyncio, many connections, frames built by hand and parsed with hyperframe,
headers with hpack) and asserts, sampling the target's VmRSS every 100 ms:

  1. the target stays up;
  2. its peak RSS during the attack stays under the case's bound (baseline +
     the configured budgets + slack; each bound says how it was derived);
  3. a well-behaved client (python3-grpcio, its own process, a new connection
     per call, EmptyCall every 250 ms) is served within 2 s during the attack;
  4. the attacker gets the documented reaction within the documented time;
  5. 2 s after the attacker left (the targets malloc_trim when idle), RSS is
     back within 8 MiB of the baseline (no leak).

A target that passes 4 GiB is SIGKILLed at once and the case records
"> 4 GiB after N s". Options a binary does not know yet (a server flag it
rejects, a gateway key --check calls unknown) fail the case, or with
--allow-unknown-limits are dropped and reported, so the same script measures
the "before" figures of an unfixed build. The last
lines of the output are the figures, one per line ("FIGURE case.target
name: value").

  case                 targets                    attack
  partial_messages     server, gateway            4 conns x 100 streams of a 4 MiB - 64 message, all
                                                  but 16 bytes sent, then silence
  slow_reader_stream   server                     200 StreamingOutputCall (64 x 1 MiB) over 4 conns
                                                  whose windows are 0 and never opened
  slow_reader_route    gateway (python backend)   the same through a route, twice (no climb)
  stalled_headers      server, gateway            20 conns x 100 streams of complete HEADERS and
                                                  nothing more; 20 conns stopped inside a header block
  slowloris            server, gateway            1,000 conns: preface then a byte every 2 s, preface
                                                  then half a frame header, half a preface
  server_resets        server, gateway            20,000 each: compressed-without-encoding messages,
                                                  oversized length prefixes, empty DATA, PRIORITY,
                                                  zero-increment WINDOW_UPDATE
  hpack_bomb_backend   route, flow, many_messages a backend (attack_backend.py) answering with a
                                                  40 MB HPACK bomb (route, flow step) or with 1,000
                                                  messages to a unary flow step

  the reaction each case wants
  partial_messages     the streams holding the most reset: trailers-only grpc-status 8 RESOURCE_EXHAUSTED
                       (or RST_STREAM ENHANCE_YOUR_CALM) within buffer_timeout (1 s) + 1 s
  slow_reader_*        none on the wire: each call's send queue stops at its high-water mark, the
                       gateway stops reading the backend; after the disconnect the target is idle
                       (CPU <= 10% of a core over 2 s) and its memory comes back
  stalled_headers      complete headers, no message: grpc-status 4 DEADLINE_EXCEEDED or RST_STREAM
                       CANCEL within request_header_timeout (1 s) + 1 s; inside a header block: GOAWAY
                       and the connection closed within 1 s + 1 s
  slowloris            over max_connections (500) closed at once, one log line about the cap; the rest
                       closed by handshake_timeout (1 s) / idle_timeout (3 s) + 1 s. The good client
                       retries refused connects (grpcio wait_for_ready) and must still be served in 2 s:
                       while the cap is full it gets in when the first half-prefaces time out (1 s)
  server_resets        GOAWAY ENHANCE_YOUR_CALM after about glitch_burst (1000) glitches + 33/s (for
                       zero-increment WINDOW_UPDATE, GOAWAY PROTOCOL_ERROR at once is accepted too)
                       and the connection closed within 1 s
  hpack_bomb_backend   every call fails within 2 s: INTERNAL or RESOURCE_EXHAUSTED naming the backend
                       or route (route), naming the step (flow); INTERNAL naming the step (many_messages)

ASan builds (scripts/test.sh) run with a 16 MiB quarantine released every 100 ms
(ASAN_OPTIONS added for the target); their bounds are doubled + 32 MiB and the
"after" slack is 8 + 16 MiB. --gdb-trim (a diagnostic, not for CTest) makes the
target call malloc_trim(0) through gdb before the baseline and after the attack,
to tell memory glibc kept from memory still held.

  attacks.py --case=NAME --target=T --server=PATH [--gateway=PATH]
             [--descriptors=interop_proto.pb] [--timeout=S] [--gdb-trim]
"""

import argparse
import asyncio
import collections
import os
import re
import signal
import socket
import statistics
import string
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import harness

KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30
SVC = "/grpc.testing.TestService/"
EMPTY_CALL = SVC + "EmptyCall"
UNARY_CALL = SVC + "UnaryCall"
CACHEABLE_CALL = SVC + "CacheableUnaryCall"
STREAMING_OUTPUT = SVC + "StreamingOutputCall"
STREAMING_INPUT = SVC + "StreamingInputCall"
PY_SERVER = harness.HERE / "interop_python_server.py"
ATTACK_BACKEND = harness.HERE / "attack_backend.py"
GW_DIR = harness.HERE / "gateway"
INTEROP_PROTOS = ["grpc/testing/empty.proto", "grpc/testing/messages.proto", "grpc/testing/test.proto"]

SAMPLE_S = 0.1  # RSS sampling period
KILL_RSS = 4 * GiB  # a "before" target above this is SIGKILLed: the machine has 24 GiB and 2 cores
LEAK_SLACK = 8 * MiB  # "after" must be within this of the baseline (glibc may keep a little)
QUIET_S = 2.0  # the targets malloc_trim when idle; "after" is read after this much quiet
PROBE_BOUND_S = 2.0  # the well-behaved client must be served within this
PROBE_EVERY_S = 0.25
PROBE_CALL_TIMEOUT_S = 3.0  # a probe slower than this fails (DEADLINE_EXCEEDED after 3 s)
SLACK = 32 * MiB  # runtime overhead on top of a budget: nghttp2 sessions, read buffers, allocator

# HTTP/2 (RFC 9113)
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = range(10)
END_STREAM = ACK = 0x1
END_HEADERS = 0x4
S_HEADER_TABLE_SIZE, S_ENABLE_PUSH, S_MAX_CONCURRENT_STREAMS, S_INITIAL_WINDOW_SIZE, S_MAX_FRAME_SIZE = 1, 2, 3, 4, 5
H2_ERRORS = ["NO_ERROR", "PROTOCOL_ERROR", "INTERNAL_ERROR", "FLOW_CONTROL_ERROR", "SETTINGS_TIMEOUT",
             "STREAM_CLOSED", "FRAME_SIZE_ERROR", "REFUSED_STREAM", "CANCEL", "COMPRESSION_ERROR",
             "CONNECT_ERROR", "ENHANCE_YOUR_CALM", "INADEQUATE_SECURITY", "HTTP_1_1_REQUIRED"]
H2_CANCEL, H2_ENHANCE_YOUR_CALM = 8, 11
G_DEADLINE_EXCEEDED, G_RESOURCE_EXHAUSTED, G_INTERNAL = 4, 8, 13

# What each case configures. Server flags are bytes / milliseconds; the gateway
# takes the same limits from gateway/attacks_<case>.yaml.
CONNECTION_BUFFER = 8 * MiB
PROCESS_BUFFER = 64 * MiB
BUFFER_TIMEOUT_S = 1.0
REQUEST_HEADER_TIMEOUT_S = 1.0
MAX_CONNECTIONS = 500
# 1 s, not more: while the 500 kept connections fill max_connections, a new
# connection (the good client's) gets in only when the handshake timeout closes
# the first half-prefaces, and it must be served within 2 s.
HANDSHAKE_TIMEOUT_S = 1.0
IDLE_TIMEOUT_S = 3.0
GLITCH_BURST, GLITCH_RATE = 1000, 33
SERVER_FLAGS = {
    "partial_messages": [f"--connection_buffer={CONNECTION_BUFFER}", f"--process_buffer={PROCESS_BUFFER}",
                         f"--buffer_timeout_ms={int(BUFFER_TIMEOUT_S * 1000)}"],
    "slow_reader_stream": [f"--connection_buffer={CONNECTION_BUFFER}", f"--process_buffer={PROCESS_BUFFER}"],
    "stalled_headers": [f"--request_header_timeout_ms={int(REQUEST_HEADER_TIMEOUT_S * 1000)}"],
    "slowloris": [f"--max_connections={MAX_CONNECTIONS}", f"--handshake_timeout_ms={int(HANDSHAKE_TIMEOUT_S * 1000)}",
                  f"--idle_timeout_ms={int(IDLE_TIMEOUT_S * 1000)}"],
    "server_resets": [],  # the glitch limiter's defaults (burst 1000, 33/s) are what is tested
}
TARGETS = {
    "partial_messages": ("server", "gateway"),
    "slow_reader_stream": ("server",),
    "slow_reader_route": ("gateway",),
    "stalled_headers": ("server", "gateway"),
    "slowloris": ("server", "gateway"),
    "server_resets": ("server", "gateway"),
    "hpack_bomb_backend": ("route", "flow", "many_messages"),
}


def now():
    return time.monotonic()


def mib(n):
    return "n/a" if n is None else f"{n / MiB:.1f} MiB"


def h2_error(code):
    return H2_ERRORS[code] if code is not None and 0 <= code < len(H2_ERRORS) else f"0x{code:x}"


def status_name(code):
    return harness.STATUS_NAMES.get(code, "?")


def grpc_frame(msg, compressed=False, length=None):
    return struct.pack(">BI", 1 if compressed else 0, len(msg) if length is None else length) + msg


def varint(n):
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


# SimpleRequest{response_size: 1}, written out.
SIMPLE_REQUEST = b"\x10\x01"


def streaming_output_request(count, size):
    """StreamingOutputCallRequest{response_parameters: count x {size}}, written out."""
    param = b"\x08" + varint(size)  # ResponseParameters.size (field 1)
    return (b"\x12" + varint(len(param)) + param) * count  # response_parameters (field 2)


# ---- the target and its numbers --------------------------------------------


class Watched:
    """A process whose VmRSS and CPU time are read from /proc."""

    def __init__(self, name, proc):
        self.name = name
        self.proc = proc
        self.pid = proc.proc.pid  # setpriv execs the binary: same pid
        self.samples = []  # (monotonic, rss bytes)
        self.killed_after = None  # seconds after attack start when KILL_RSS was passed
        self.killed_rss = None
        self.attack_t0 = None
        self.baseline = None
        self.leak_slack = LEAK_SLACK
        self.asan = False

    def rss(self):
        try:
            with open(f"/proc/{self.pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1]) * 1024
        except OSError:
            pass
        return None

    def cpu_s(self):
        try:
            with open(f"/proc/{self.pid}/stat") as f:
                stat = f.read()
        except OSError:
            return None
        fields = stat[stat.rindex(")") + 2:].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def alive(self):
        return self.proc.alive()

    def fds(self):
        try:
            return len(os.listdir(f"/proc/{self.pid}/fd"))
        except OSError:
            return None

    def peak(self, t0, t1=None):
        vals = [r for t, r in self.samples if t >= t0 and (t1 is None or t <= t1)]
        if self.killed_rss:
            vals.append(self.killed_rss)
        return max(vals) if vals else None

    def sample(self):
        r = self.rss()
        if r is not None:
            self.samples.append((now(), r))
            if r > KILL_RSS and self.killed_after is None:
                t0 = self.attack_t0 or self.samples[0][0]
                self.killed_after = now() - t0
                self.killed_rss = r
                harness.log(f"!! {self.name} passed {KILL_RSS // GiB} GiB ({mib(r)}) "
                            f"{self.killed_after:.1f} s into the attack: SIGKILL")
                self.proc.kill()
        return r


class Monitor:
    """Samples every watched process every SAMPLE_S (faster near the kill line)."""

    def __init__(self):
        import threading

        self.watched = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def add(self, w):
        self.watched.append(w)
        return w

    def _run(self):
        while not self._stop.is_set():
            top = 0
            for w in list(self.watched):
                if w.killed_after is None:
                    top = max(top, w.sample() or 0)
            self._stop.wait(SAMPLE_S if top < KILL_RSS // 2 else 0.02)

    def stop(self):
        self._stop.set()
        self._thread.join(2)


def binary_has_asan(path):
    try:
        return b"__asan_init" in Path(path).read_bytes()
    except OSError:
        return False


def target_env(binary):
    """ASan builds (scripts/test.sh) keep freed memory in a 256 MiB quarantine and
    release it lazily: shrink both, so RSS means what it means in a release build."""
    env = dict(os.environ)
    if binary_has_asan(binary):
        extra = "quarantine_size_mb=16:thread_local_quarantine_size_kb=256:allocator_release_to_os_interval_ms=100"
        env["ASAN_OPTIONS"] = (env.get("ASAN_OPTIONS", "") + ":" + extra).lstrip(":")
    return env


def start_adaptive_server(name, binary, flags, ready=r"listening", extra=()):
    """Starts binary --port=P *flags on a free port. A flag it rejects ("bad flag
    --x=...": the binary predates it) is dropped and reported; returns (Process, port, dropped)."""
    flags, dropped = list(flags), []
    for _ in range(3 + len(flags)):
        port = harness.free_port()
        p = harness.Process(name, [binary, f"--port={port}", *extra, *flags], env=target_env(binary))
        if p.wait_for_line(ready, 20):
            return p, port, dropped
        if p.alive():
            p.kill()
            p.wait_exit(5)
            raise RuntimeError(f"{name} printed no {ready!r} line within 20 s")
        p.wait_exit(5)
        bad = re.search(r"bad flag (--[a-z_]+)", p.output())
        if bad and any(f.startswith(bad.group(1) + "=") for f in flags):
            flags = [f for f in flags if not f.startswith(bad.group(1) + "=")]
            dropped.append(bad.group(1))
            harness.log(f"NOTE: {binary} does not know {bad.group(1)}: measured without it")
    raise RuntimeError(f"{name} did not start: {p.output()[-2000:]}")


def render(template, out_dir, drop_lines=(), **values):
    text = string.Template((GW_DIR / template).read_text()).substitute(**{k: str(v) for k, v in values.items()})
    lines = text.split("\n")
    for n in drop_lines:  # commented out, so line numbers stay the template's
        lines[n - 1] = "# (not known to this gateway) " + lines[n - 1].strip()
    out = Path(out_dir) / template
    out.write_text("\n".join(lines))
    return out


def start_adaptive_gateway(gateway, template, work, **values):
    """baton-gateway with gateway/<template>; keys --check calls unknown are commented
    out and reported. Returns (Process, port, dropped keys)."""
    cfg = render(template, work, port=1, **values)
    res = subprocess.run([gateway, "--check", str(cfg)], capture_output=True, text=True, timeout=60)
    drop, dropped = [], []
    for m in re.finditer(r":(\d+): unknown key '([a-z_]+)'", res.stdout + res.stderr):
        drop.append(int(m.group(1)))
        dropped.append(m.group(2))
    if dropped:
        harness.log(f"NOTE: {gateway} does not know {', '.join(dropped)}: measured without them")
    env = target_env(gateway)
    for _ in range(3):
        port = harness.free_port()
        cfg = render(template, work, drop_lines=drop, port=port, **values)
        p = harness.Process("gateway", [gateway, "--config", cfg], env=env)
        if p.wait_for_line(r"baton-gateway: ready", 30):
            p.must_exit_0 = True
            return p, port, dropped
        if p.alive():
            p.kill()
            p.wait_exit(5)
            raise RuntimeError("the gateway printed no ready line within 30 s")
        p.wait_exit(5)
    raise RuntimeError(f"the gateway did not start: {p.output()[-2000:]}")


def gdb_malloc_trim(pid):
    """Diagnostic only (--gdb-trim): makes the target call malloc_trim(0), to tell
    memory glibc kept from memory still in use."""
    try:
        subprocess.run(["gdb", "-p", str(pid), "-batch", "-ex", "call (int)malloc_trim(0)"],
                       capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        pass


# ---- the well-behaved client -----------------------------------------------


def probe_main(args):
    """The well-behaved client, in its own process so the attacker's CPU use does not
    slow it: a new grpcio channel (so a new connection) per call, wait_for_ready so a
    refused or closed connect is retried (backoff 100-200 ms), every --probe-every s.
    One line per call: 'probe t=<monotonic start> ms=<latency> ok=<0|1> <status>'."""
    import grpc

    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    options = [("grpc.enable_http_proxy", 0), ("grpc.enable_retries", 0), ("grpc.use_local_subchannel_pool", 1),
               ("grpc.initial_reconnect_backoff_ms", 100), ("grpc.min_reconnect_backoff_ms", 100),
               ("grpc.max_reconnect_backoff_ms", 200)]
    n = 0
    print("probe ready", flush=True)
    while not stop and (args.probe_count == 0 or n < args.probe_count):
        n += 1
        ch = grpc.insecure_channel(f"127.0.0.1:{args.probe}", options=options)
        call = ch.unary_unary(args.probe_path, request_serializer=lambda b: b, response_deserializer=lambda b: b)
        t0 = now()
        try:
            call(b"", timeout=PROBE_CALL_TIMEOUT_S, wait_for_ready=True)
            ok, what = 1, "OK"
        except grpc.RpcError as err:
            ok, what = 0, f"{err.code().name}: {err.details()}"
        ms = (now() - t0) * 1000
        ch.close()
        print(f"probe t={t0:.3f} ms={ms:.1f} ok={ok} {what}", flush=True)
        time.sleep(max(0.0, args.probe_every - ms / 1000))
    return 0


class Probe:
    def __init__(self, port, path=EMPTY_CALL, count=0):
        argv = [sys.executable, Path(__file__).resolve(), f"--probe={port}", f"--probe-path={path}",
                f"--probe-count={count}", f"--probe-every={PROBE_EVERY_S}"]
        self.p = harness.Process("client", argv)
        if not self.p.wait_for_line(r"probe ready", 30):
            raise RuntimeError("the well-behaved client did not start")

    def wait(self, timeout):
        return self.p.wait_exit(timeout)

    def stop(self):
        self.p._signal_group(signal.SIGTERM)
        if self.p.wait_exit(PROBE_CALL_TIMEOUT_S + 3) is None:
            harness.log("the well-behaved client needed SIGKILL")
        calls = []
        for line in self.p.output().split("\n"):
            m = re.match(r"probe t=([\d.]+) ms=([\d.]+) ok=(\d) (.*)", line)
            if m:
                calls.append((float(m.group(1)), float(m.group(2)) / 1000, m.group(3) == "1", m.group(4)))
        return calls


# ---- a raw HTTP/2 client (asyncio) -----------------------------------------


def frame(ftype, flags, sid, payload=b""):
    n = len(payload)
    return struct.pack(">BHBBI", n >> 16, n & 0xFFFF, ftype, flags, sid) + bytes(payload)


def frame_header(ftype, flags, sid, n):
    return struct.pack(">BHBBI", n >> 16, n & 0xFFFF, ftype, flags, sid)


def settings_frame(values):
    return frame(SETTINGS, 0, 0, b"".join(struct.pack(">HI", k, v) for k, v in values.items()))


def window_update(sid, inc):
    return frame(WINDOW_UPDATE, 0, sid, struct.pack(">I", inc))


class RStream:
    __slots__ = ("sid", "t_sent", "headers", "trailers", "rst", "t_rst", "t_end", "data", "window", "done")

    def __init__(self, sid, window):
        self.sid = sid
        self.t_sent = None
        self.headers = self.trailers = None
        self.rst = self.t_rst = self.t_end = None
        self.data = 0
        self.window = window
        self.done = False

    def _get(self, block, name):
        for k, v in block or ():
            if k == name:
                return v
        return None

    @property
    def grpc_status(self):
        v = self._get(self.trailers, b"grpc-status")
        if v is None and self.t_end is not None and self.trailers is None:
            v = self._get(self.headers, b"grpc-status")  # trailers-only
        return int(v) if v is not None and v.isdigit() else None

    def reaction(self):
        """(kind, time) of what the server did first to this stream, or None."""
        if self.t_end is not None and (self.t_rst is None or self.t_end <= self.t_rst):
            code = self.grpc_status
            return (f"grpc-status {code} ({status_name(code)})" if code is not None else "END_STREAM, no grpc-status",
                    self.t_end)
        if self.t_rst is not None:
            return f"RST_STREAM {h2_error(self.rst)}", self.t_rst
        return None


class RawConn:
    """One HTTP/2 client connection whose every byte is the attacker's choice.

    A reader task parses what the peer sends (hyperframe, hpack): SETTINGS and PING
    are acknowledged, WINDOW_UPDATE credited, response headers / trailers / RST_STREAM
    / GOAWAY / the close recorded with their times. DATA is counted and, unless
    ack_data, never acknowledged (the windows stay as the attacker set them)."""

    def __init__(self, port, settings=None, ack_data=False, label=""):
        import hpack

        self.host, self.port, self.label = "127.0.0.1", port, label
        self.settings = {S_ENABLE_PUSH: 0, S_INITIAL_WINDOW_SIZE: 1 << 20}
        self.settings.update(settings or {})
        self.ack_data = ack_data
        self.enc = hpack.Encoder()
        self.dec = hpack.Decoder()
        self.dec.max_header_list_size = 1 << 26
        self.peer_window = 65535
        self.peer_max_frame = 16384
        self.conn_window = 65535
        self.streams = {}
        self.next_sid = 1
        self.goaway = self.goaway_last = self.t_goaway = None
        self.t_open = self.t_closed = None
        self.close_reason = None
        self.events = 0  # the attack's own counter; its value when GOAWAY arrived:
        self.events_at_goaway = None
        self.rst_in = collections.Counter()
        self.data_in = 0
        self.streams_done = 0
        self.t_last_data = None
        self._block = None
        self.writer = None
        self.task = None
        self.preface_sent = self.ack_owed = False
        self.pings_sent = self.pings_acked = 0
        self.got_settings = asyncio.Event()
        self.wakeup = asyncio.Event()

    async def connect(self, timeout=5.0):
        self.reader, self.writer = await asyncio.wait_for(asyncio.open_connection(self.host, self.port), timeout)
        self.writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.t_open = now()
        self.task = asyncio.ensure_future(self._read())

    def preface(self, conn_window_increment=0, extra=b""):
        """The client preface and SETTINGS (+ a connection WINDOW_UPDATE, + extra bytes).
        The server's SETTINGS may have arrived first: its ACK must follow our preface."""
        self.write(PREFACE + settings_frame(self.settings)
                   + (window_update(0, conn_window_increment) if conn_window_increment else b"")
                   + (frame(SETTINGS, ACK, 0) if self.ack_owed else b"") + extra)
        self.preface_sent = True
        self.ack_owed = False

    @property
    def closed(self):
        return self.t_closed is not None

    def write(self, data):
        if self.writer is not None and not self.closed:
            try:
                self.writer.write(data)
            except (ConnectionError, OSError, RuntimeError) as err:
                self._closed(f"write failed: {err!r}")

    async def drain(self):
        if self.writer is None or self.closed:
            return
        try:
            await self.writer.drain()
        except (ConnectionError, OSError, RuntimeError) as err:
            self._closed(f"write failed: {err!r}")

    def close(self):
        if self.writer is not None:
            try:
                self.writer.transport.abort()
            except Exception:
                pass
        if self.task is not None:
            self.task.cancel()
        if not self.closed:
            self._closed("closed by us")
            self.close_reason = "closed by us"

    async def wait_settings(self, timeout=5.0):
        try:
            await asyncio.wait_for(self.got_settings.wait(), timeout)
        except asyncio.TimeoutError:
            pass
        return self.got_settings.is_set()

    async def ping(self, timeout=2.0):
        """PING and wait for its ACK: everything sent before it has been processed."""
        self.pings_sent += 1
        self.write(frame(PING, 0, 0, struct.pack(">Q", self.pings_sent)))
        end = now() + timeout
        while self.pings_acked < self.pings_sent and not self.closed and self.goaway is None and now() < end:
            self.wakeup.clear()
            try:
                await asyncio.wait_for(self.wakeup.wait(), max(0.001, end - now()))
            except asyncio.TimeoutError:
                break
        return self.pings_acked >= self.pings_sent

    def new_stream(self):
        st = RStream(self.next_sid, self.peer_window)
        self.next_sid += 2
        self.streams[st.sid] = st
        return st

    def header_block(self, path, extra=()):
        hs = [(":method", "POST"), (":scheme", "http"), (":path", path), (":authority", f"{self.host}:{self.port}"),
              ("content-type", "application/grpc"), ("te", "trailers"), *extra]
        return self.enc.encode(hs)

    def headers_frame(self, st, path, end_stream=False, extra=()):
        st.t_sent = now()
        return frame(HEADERS, END_HEADERS | (END_STREAM if end_stream else 0), st.sid, self.header_block(path, extra))

    def _closed(self, why):
        if self.t_closed is None:
            self.t_closed = now()
            self.close_reason = why
        self.wakeup.set()
        self.got_settings.set()

    def _stream_done(self, st):
        if not st.done:
            st.done = True
            self.streams_done += 1

    async def _read(self):
        from hyperframe.frame import Frame

        try:
            while True:
                hdr = await self.reader.readexactly(9)
                f, length = Frame.parse_frame_header(memoryview(hdr))
                body = await self.reader.readexactly(length) if length else b""
                f.parse_body(memoryview(body))
                self._frame(f)
        except asyncio.IncompleteReadError:
            self._closed("closed by the peer")
        except (ConnectionError, OSError) as err:
            self._closed(f"{type(err).__name__}")
        except asyncio.CancelledError:
            self._closed("closed by us")
        except Exception as err:  # a frame hyperframe or hpack refused: the peer is broken
            self._closed(f"unparsable input: {err!r}")

    def _frame(self, f):
        t = now()
        kind = f.type
        st = self.streams.get(f.stream_id)
        if kind == DATA:
            self.data_in += len(f.data)
            if st:
                st.data += len(f.data)
                if "END_STREAM" in f.flags:
                    st.t_end = t
                    self._stream_done(st)
            if self.ack_data and f.flow_controlled_length:
                self.write(window_update(0, f.flow_controlled_length)
                           + (window_update(f.stream_id, f.flow_controlled_length) if st and not st.done else b""))
        elif kind in (HEADERS, CONTINUATION):
            if kind == HEADERS:
                self._block = [f.stream_id, "END_STREAM" in f.flags, bytearray(f.data)]
            elif self._block:
                self._block[2] += f.data
            if "END_HEADERS" in f.flags and self._block:
                sid, end, block = self._block
                self._block = None
                hs = self.dec.decode(bytes(block), raw=True)
                st = self.streams.get(sid)
                if st:
                    if st.headers is None:
                        st.headers = hs
                    else:
                        st.trailers = hs
                    if end:
                        st.t_end = t
                        self._stream_done(st)
        elif kind == RST_STREAM:
            self.rst_in[f.error_code] += 1
            if st and st.t_rst is None:
                st.rst, st.t_rst = f.error_code, t
                self._stream_done(st)
        elif kind == SETTINGS:
            if "ACK" not in f.flags:
                for k, v in f.settings.items():
                    if k == S_INITIAL_WINDOW_SIZE:
                        delta = v - self.peer_window
                        self.peer_window = v
                        for s in self.streams.values():
                            s.window += delta
                    elif k == S_MAX_FRAME_SIZE:
                        self.peer_max_frame = v
                if self.preface_sent:
                    self.write(frame(SETTINGS, ACK, 0))
                else:
                    self.ack_owed = True
                self.got_settings.set()
                self.wakeup.set()
        elif kind == PING:
            if "ACK" in f.flags:
                self.pings_acked += 1
                self.wakeup.set()
            elif self.preface_sent:
                self.write(frame(PING, ACK, 0, f.opaque_data))
        elif kind == GOAWAY:
            if self.t_goaway is None:
                self.t_goaway = t
                self.events_at_goaway = self.events
            self.goaway, self.goaway_last = f.error_code, f.last_stream_id
            self.goaway_data = bytes(f.additional_data)
            self.wakeup.set()
        elif kind == WINDOW_UPDATE:
            if f.stream_id == 0:
                self.conn_window += f.window_increment
            elif st:
                st.window += f.window_increment
            self.wakeup.set()


async def open_conns(n, port, batch=100, **kw):
    conns = [RawConn(port, label=f"c{i}", **kw) for i in range(n)]

    async def one(c):
        try:
            await c.connect()
        except (OSError, asyncio.TimeoutError) as err:
            c.t_open = c.t_closed = now()
            c.close_reason = f"connect failed: {err!r}"

    for i in range(0, n, batch):
        await asyncio.gather(*(one(c) for c in conns[i:i + batch]))
    return conns


ZEROS = bytes(16384)


async def send_bodies(c, jobs, env, stall_s=0.5):
    """Sends each job's body (jobs: [stream, prefix, zero bytes after it]) round-robin,
    one frame per stream per turn, inside the peer's windows. Returns when all is sent,
    when no window opened for stall_s (the peer stopped reading), or the connection is
    gone. Sets c.t_last_data."""
    active = list(jobs)
    while active and not c.closed and not env.aborted():
        progressed = False
        for job in list(active):
            st, prefix, left = job
            if st.done:  # reset or answered: nothing more goes on it
                active.remove(job)
                continue
            room = min(st.window, c.conn_window, c.peer_max_frame, len(prefix) + left)
            if room <= 0:
                continue
            if prefix:
                c.write(frame(DATA, 0, st.sid, prefix + ZEROS[:room - len(prefix)]))
                left -= room - len(prefix)
                job[1] = b""
            else:
                c.write(frame_header(DATA, 0, st.sid, room) + ZEROS[:room])
                left -= room
            job[2] = left
            st.window -= room
            c.conn_window -= room
            c.t_last_data = now()
            progressed = True
            if not job[1] and left == 0:
                active.remove(job)
        await c.drain()
        if not progressed:
            c.wakeup.clear()
            try:
                await asyncio.wait_for(c.wakeup.wait(), stall_s)
            except asyncio.TimeoutError:
                return "stalled on flow control"
    if c.closed:
        return f"connection gone ({c.close_reason})"
    return "aborted" if active else "sent"


async def hold(env, seconds, until=lambda: False):
    end = now() + seconds
    while now() < end and not until() and not env.aborted():
        await asyncio.sleep(0.05)


def close_all(conns):
    for c in conns:
        c.close()


def spread(values, unit="s"):
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.2f} {unit}"
    return f"{min(values):.2f}-{max(values):.2f} {unit} (median {statistics.median(values):.2f})"


# ---- the outcome of one attack ---------------------------------------------


class Outcome:
    def __init__(self):
        self.reactions = []  # figure lines
        self.checks = []  # (cond, what)

    def react(self, text):
        self.reactions.append(text)
        harness.log(f"  reaction: {text}")

    def expect(self, cond, what):
        self.checks.append((bool(cond), what))


# ---- the cases --------------------------------------------------------------


def case_partial_messages(env, out):
    """4 x 100 streams, each announcing a 4 MiB - 64 message and sending all of it but
    16 bytes, then silence. Want: the streams holding the most are reset (trailers-only
    RESOURCE_EXHAUSTED, or RST_STREAM ENHANCE_YOUR_CALM) within buffer_timeout + 1 s of
    the moment the attacker stopped (or was stopped by flow control)."""
    n_conns, n_streams, length, held_back = 4, 100, 4 * MiB - 64, 16
    react_bound = BUFFER_TIMEOUT_S + 1.0
    ok_kinds = {"RST_STREAM ENHANCE_YOUR_CALM", f"grpc-status {G_RESOURCE_EXHAUSTED} (RESOURCE_EXHAUSTED)"}

    async def attack():
        conns = await open_conns(n_conns, env.port)
        for c in conns:
            c.preface()
        await asyncio.gather(*(c.wait_settings() for c in conns))
        jobs = {}
        for c in conns:
            jobs[c] = []
            for _ in range(n_streams):
                st = c.new_stream()
                c.write(c.headers_frame(st, UNARY_CALL))
                jobs[c].append([st, grpc_frame(b"", length=length), length - held_back])
        t_start = now()
        ends = await asyncio.gather(*(send_bodies(c, jobs[c], env) for c in conns))
        per_stream = 5 + length - held_back
        sent_bytes = sum(per_stream - len(j[1]) - j[2] for c in conns for j in jobs[c])
        harness.log(f"  attacker: {mib(sent_bytes)} sent in {now() - t_start:.1f} s; per connection: "
                    + "; ".join(sorted(set(ends))))

        def all_reacted():
            return all(c.closed or any(st.reaction() for st in c.streams.values()) for c in conns)

        last = max(c.t_last_data or t_start for c in conns)
        await hold(env, max(0.0, last + react_bound + 1.0 - now()), all_reacted)
        await hold(env, 0.3)  # let the rest of the resets arrive
        t_end = now()
        close_all(conns)
        return conns, sent_bytes, t_end

    conns, sent_bytes, t_end = asyncio.run(attack())
    kinds = collections.Counter()
    firsts = []
    for c in conns:
        t_stall = c.t_last_data or c.t_open
        reactions = [r for r in (st.reaction() for st in c.streams.values()) if r]
        for kind, _t in reactions:
            kinds[kind] += 1
        good = [t for kind, t in reactions if kind in ok_kinds]
        if c.goaway is not None:
            kinds[f"GOAWAY {h2_error(c.goaway)}"] += 1
        first = max(0.0, min(good) - t_stall) if good else None  # 0: while the attacker was still sending
        firsts.append(first)
        out.expect(first is not None and first <= react_bound,
                   f"{c.label}: a stream reset (RST_STREAM ENHANCE_YOUR_CALM or grpc-status 8) within "
                   f"{react_bound:.1f} s of the attacker stopping; got "
                   + (f"{first:.2f} s" if first is not None else "none"))
    n_reset = sum(1 for c in conns for st in c.streams.values() if st.reaction())
    seen = ", ".join(f"{n} x {k}" for k, n in kinds.most_common()) or "nothing"
    lat = [f for f in firsts if f is not None]
    out.react(f"{mib(sent_bytes)} sent; {n_reset}/{n_conns * n_streams} streams answered: {seen}; "
              f"first expected reset per connection {spread(lat)} after the attacker stopped (0 = while sending) "
              f"({len(lat)}/{n_conns} connections; bound {react_bound:.1f} s)")
    return t_end


def slow_reader(env, out, n_conns=4, calls_per_conn=50, hold_s=4.0):
    """Server-streaming calls asking 64 x 1 MiB, from connections whose stream windows
    are 0 (SETTINGS_INITIAL_WINDOW_SIZE) and whose connection window is never opened;
    held for hold_s, then the attacker disconnects."""
    req = grpc_frame(streaming_output_request(64, MiB))

    async def attack():
        conns = await open_conns(n_conns, env.port, settings={S_INITIAL_WINDOW_SIZE: 0})
        for c in conns:
            c.preface()
        await asyncio.gather(*(c.wait_settings() for c in conns))
        for c in conns:
            for _ in range(calls_per_conn):
                st = c.new_stream()
                c.write(c.headers_frame(st, STREAMING_OUTPUT) + frame(DATA, END_STREAM, st.sid, req))
            await c.drain()
        await hold(env, hold_s)
        t_end = now()
        close_all(conns)
        return conns, t_end

    conns, t_end = asyncio.run(attack())
    n = n_conns * calls_per_conn
    started = sum(1 for c in conns for st in c.streams.values() if st.headers is not None)
    ended = collections.Counter(st.reaction()[0] for c in conns for st in c.streams.values() if st.reaction())
    goaways = collections.Counter(h2_error(c.goaway) for c in conns if c.goaway is not None)
    out.react(f"{started}/{n} calls got response headers, {sum(c.data_in for c in conns)} DATA bytes "
              f"(windows 0); ended: {dict(ended) or 'none'}; GOAWAY: {dict(goaways) or 'none'}")
    return t_end


def case_slow_reader_stream(env, out):
    return slow_reader(env, out)


def case_stalled_headers(env, out):
    """20 conns x 100 streams with complete request HEADERS and nothing after (want:
    each answered grpc-status DEADLINE_EXCEEDED or reset CANCEL within
    request_header_timeout + 1 s), and 20 conns that stop inside a header block
    (HEADERS without END_HEADERS and two of three CONTINUATIONs; want: GOAWAY and the
    connection closed within request_header_timeout + 1 s)."""
    n_conns, n_streams = 20, 100
    bound = REQUEST_HEADER_TIMEOUT_S + 1.0
    ok_kinds = {f"grpc-status {G_DEADLINE_EXCEEDED} (DEADLINE_EXCEEDED)", "RST_STREAM CANCEL"}

    async def attack():
        complete = await open_conns(n_conns, env.port)
        partial = await open_conns(n_conns, env.port)
        for c in complete + partial:
            c.preface()
        await asyncio.gather(*(c.wait_settings() for c in complete + partial))
        for c in complete:
            c.write(b"".join(c.headers_frame(c.new_stream(), UNARY_CALL) for _ in range(n_streams)))
        for c in partial:
            st = c.new_stream()
            st.t_sent = now()
            pad = [(f"x-pad-{i}", "p" * 1000) for i in range(3)]
            block = c.header_block(UNARY_CALL, pad)
            q = len(block) // 4
            c.write(frame(HEADERS, 0, st.sid, block[:q]) + frame(CONTINUATION, 0, st.sid, block[q:2 * q])
                    + frame(CONTINUATION, 0, st.sid, block[2 * q:3 * q]))  # the last quarter never comes
            c.t_last_data = now()
        await asyncio.gather(*(c.drain() for c in complete + partial))
        t_sent = now()

        def done():
            return (all(st.reaction() or c.closed for c in complete for st in c.streams.values())
                    and all(c.closed for c in partial))

        await hold(env, bound + 1.0, done)
        await hold(env, 0.2)
        t_end = now()
        close_all(complete + partial)
        return complete, partial, t_sent, t_end

    complete, partial, t_sent, t_end = asyncio.run(attack())
    kinds, lats, missing = collections.Counter(), [], 0
    for c in complete:
        for st in c.streams.values():
            r = st.reaction()
            if r is None:
                missing += 1
                by_server = c.closed and c.close_reason != "closed by us"
                kinds["no answer" + (" (connection closed by the server)" if by_server else "")] += 1
                continue
            kinds[r[0]] += 1
            if r[0] in ok_kinds:
                lats.append(r[1] - st.t_sent)
    n = n_conns * n_streams
    out.react(f"complete headers: {', '.join(f'{v} x {k}' for k, v in kinds.most_common())}; "
              f"expected answer {spread(lats)} after the HEADERS (bound {bound:.1f} s)")
    in_time = sum(1 for x in lats if x <= bound)
    out.expect(in_time == n, f"all {n} complete-headers streams answered DEADLINE_EXCEEDED or RST_STREAM CANCEL "
                             f"within {bound:.1f} s ({in_time} were)")
    goaway_lat = [c.t_goaway - c.t_last_data for c in partial if c.t_goaway is not None]
    close_lat = [c.t_closed - c.t_last_data for c in partial if c.closed and c.close_reason != "closed by us"]
    codes = collections.Counter(h2_error(c.goaway) for c in partial if c.goaway is not None)
    out.react(f"inside a header block: GOAWAY on {len(goaway_lat)}/{n_conns} ({dict(codes) or 'none'}) "
              f"{spread(goaway_lat)} after the last CONTINUATION; closed by the server {len(close_lat)}/{n_conns} "
              f"{spread(close_lat)} (bound {bound:.1f} s)")
    out.expect(sum(1 for x in goaway_lat if x <= bound) == n_conns,
               f"all {n_conns} connections stopped inside a header block got GOAWAY within {bound:.1f} s")
    out.expect(sum(1 for x in close_lat if x <= bound) == n_conns,
               f"all {n_conns} of them were closed by the server within {bound:.1f} s")
    return t_end


def case_slowloris(env, out):
    """1,000 connections in three kinds, interleaved: 'dribble' (preface + SETTINGS, then
    one byte of a PING frame every 2 s), 'fragment' (preface + SETTINGS + 5 of a frame
    header's 9 bytes, then nothing), 'half-preface' (12 of the preface's 24 bytes).
    Want: past max_connections they are closed at once (and the process logs one line
    about the cap); the rest closed by handshake_timeout (half-preface) or idle_timeout
    (the others, counted from the connect: dribbled bytes open no stream)."""
    n = 1000
    at_once_s = 0.5
    slack = 1.0
    kinds = ["dribble", "fragment", "dribble", "fragment", "half-preface"]  # 400 / 400 / 200
    ping = frame(PING, 0, 0, b"\x00" * 8)
    t_attack = now()

    async def attack():
        conns = await open_conns(n, env.port)
        for i, c in enumerate(conns):
            c.kind = kinds[i % len(kinds)]
            c.dribbled = 0
            if c.kind == "half-preface":
                c.write(PREFACE[:12])
            else:
                c.preface()
        # The fragment only once the server's SETTINGS are acknowledged, so no ACK of
        # ours can land inside it.
        frag = [c for c in conns if c.kind == "fragment"]
        await asyncio.gather(*(c.wait_settings(2.0) for c in frag))
        for c in frag:
            c.write(ping[:5])
        t_connected = now()
        end = t_connected + IDLE_TIMEOUT_S + slack + 0.5
        next_drip = now() + 2.0
        while now() < end and not env.aborted() and not all(c.closed for c in conns):
            if now() >= next_drip:
                next_drip += 2.0
                for c in conns:
                    if c.kind == "dribble" and not c.closed:
                        c.write(ping[c.dribbled % len(ping):c.dribbled % len(ping) + 1])
                        c.dribbled += 1
            await asyncio.sleep(0.05)
        t_end = now()
        close_all(conns)
        return conns, t_connected, t_end

    conns, t_connected, t_end = asyncio.run(attack())
    at_once = [c for c in conns if c.close_reason != "closed by us" and c.t_closed - c.t_open <= at_once_s]
    kept = [c for c in conns if c not in at_once]
    bounds = {"half-preface": HANDSHAKE_TIMEOUT_S + slack, "fragment": IDLE_TIMEOUT_S + slack,
              "dribble": IDLE_TIMEOUT_S + slack}
    by_kind = collections.defaultdict(list)
    for c in kept:
        by_kind[c.kind].append(c)
    parts = []
    for kind in ("half-preface", "fragment", "dribble"):
        cs = by_kind[kind]
        closed = [c.t_closed - c.t_open for c in cs if c.close_reason != "closed by us"]
        in_time = sum(1 for x in closed if x <= bounds[kind])
        parts.append(f"{kind}: {len(closed)}/{len(cs)} closed by the server {spread(closed)}")
        out.expect(in_time == len(cs), f"every kept '{kind}' connection closed within {bounds[kind]:.1f} s of its "
                                       f"connect ({in_time}/{len(cs)})")
    out.react(f"{len(conns)} connected in {t_connected - t_attack:.2f} s; {len(at_once)} closed at once "
              f"(<= {at_once_s} s); {len(kept)} kept: " + "; ".join(parts))
    out.expect(len(kept) <= MAX_CONNECTIONS + 2,
               f"at most max_connections ({MAX_CONNECTIONS}, + 2 for the good client) kept; {len(kept)} were")
    cap_lines = [l for l in env.target.proc.lines[env.lines_before:]
                 if re.search(r"max_connections|connection (cap|limit)|too many connections", l, re.I)]
    out.react(f"log lines about the cap: {len(cap_lines)}"
              + (f", first: {cap_lines[0].strip()!r}" if cap_lines else ""))
    out.expect(1 <= len(cap_lines) <= 4, f"the target logged one line about the cap (one per worker at most), "
                                         f"not one per refused connection ({len(cap_lines)})")
    return t_end


def case_server_resets(env, out):
    """Five floods of 20,000, each on a fresh connection, each stopping at GOAWAY:
    compressed flag without grpc-encoding (server answers INTERNAL and resets),
    a length prefix above max_recv_message (RESOURCE_EXHAUSTED and reset),
    empty DATA frames without END_STREAM on one stream, PRIORITY frames,
    zero-increment WINDOW_UPDATE on new streams (RST_STREAM PROTOCOL_ERROR).
    Want: GOAWAY ENHANCE_YOUR_CALM after about glitch_burst glitches (well before
    20,000) and the connection closed."""
    total, batch, max_open, flood_s = 20000, 100, 400, 6.0

    def allowed(elapsed):
        # What the limiter may let through, + one batch in flight (each batch ends with
        # a PING whose ACK is awaited, so the server has processed what came before).
        return GLITCH_BURST + GLITCH_RATE * elapsed + 2 * batch

    async def flood(kind):
        c = (await open_conns(1, env.port))[0]
        c.preface(conn_window_increment=1 << 24)
        await c.wait_settings()
        if kind == "empty_data":
            st = c.new_stream()
            c.write(c.headers_frame(st, STREAMING_INPUT))
        t0 = now()
        prio_sid = 1
        while c.events < total and c.goaway is None and not c.closed and now() - t0 < flood_s and not env.aborted():
            parts = []
            for _ in range(batch):
                if kind == "compressed":
                    st = c.new_stream()
                    parts += [c.headers_frame(st, UNARY_CALL), frame(DATA, 0, st.sid, grpc_frame(SIMPLE_REQUEST, True))]
                elif kind == "oversized":
                    st = c.new_stream()
                    parts += [c.headers_frame(st, UNARY_CALL),
                              frame(DATA, 0, st.sid, grpc_frame(b"", length=4 * MiB + 1))]
                elif kind == "zero_window_update":
                    st = c.new_stream()
                    parts += [c.headers_frame(st, STREAMING_INPUT), window_update(st.sid, 0)]
                elif kind == "empty_data":
                    parts.append(frame(DATA, 0, 1, b""))
                elif kind == "priority":
                    prio_sid += 2  # idle streams, never opened
                    parts.append(frame(PRIORITY, 0, prio_sid, struct.pack(">IB", 0, 15)))
            c.write(b"".join(parts))
            c.events += batch
            await c.drain()
            await c.ping()
            if kind in ("compressed", "oversized", "zero_window_update"):
                t_wait = now()  # keep the server's open streams below its limit
                while (len(c.streams) - c.streams_done > max_open and c.goaway is None and not c.closed
                       and now() - t_wait < 2.0):
                    await asyncio.sleep(0.002)
        await c.ping()
        t_processed = now()
        await hold(env, 2.0, lambda: c.closed)
        resets = sum(c.rst_in.values())
        if c.goaway is not None:
            by_server = c.closed and c.close_reason != "closed by us"
            closed = f"closed {c.t_closed - c.t_goaway:.2f} s after it" if by_server else "still open 2 s later"
            text = (f"{kind}: GOAWAY {h2_error(c.goaway)} after {c.events_at_goaway} events, "
                    f"{c.t_goaway - t0:.2f} s ({resets} RST_STREAM from the server); {closed}")
        else:
            text = (f"{kind}: no GOAWAY after {c.events} events in {t_processed - t0:.1f} s ({resets} RST_STREAM from "
                    f"the server: {', '.join(f'{n} {h2_error(k)}' for k, n in c.rst_in.most_common()) or 'none'})"
                    + (f"; connection {c.close_reason}" if c.closed else ""))
        out.react(text)
        if kind == "zero_window_update":
            # nghttp2 may treat a zero increment on a stream as a connection error
            # (GOAWAY PROTOCOL_ERROR at the first one): bounded too.
            out.expect(c.goaway in (H2_ENHANCE_YOUR_CALM, 1), f"{kind}: GOAWAY ENHANCE_YOUR_CALM (or PROTOCOL_ERROR)")
        else:
            out.expect(c.goaway == H2_ENHANCE_YOUR_CALM, f"{kind}: GOAWAY ENHANCE_YOUR_CALM")
        if c.goaway is not None:
            limit = allowed(c.t_goaway - t0)
            out.expect(c.events_at_goaway <= limit, f"{kind}: GOAWAY after {c.events_at_goaway} events, at most "
                                                    f"{limit:.0f} (burst {GLITCH_BURST} + {GLITCH_RATE}/s + in flight)")
            out.expect(c.closed and c.close_reason != "closed by us" and c.t_closed - c.t_goaway <= 1.0,
                       f"{kind}: the connection closed within 1 s of the GOAWAY")
        c.close()

    async def attack():
        for kind in ("compressed", "oversized", "empty_data", "priority", "zero_window_update"):
            if env.aborted():
                break
            await flood(kind)
        return now()

    return asyncio.run(attack())


def case_hpack_bomb_backend(env, out):
    """20 concurrent calls through the gateway to attack_backend.py: route -> UnaryCall
    routed to the bomb; flow -> CacheableUnaryCall, a flow whose step calls the bomb;
    many_messages -> the flow whose step gets 1,000 messages. Want: every call fails
    fast (within 2 s): INTERNAL or RESOURCE_EXHAUSTED naming the backend or route
    (route), INTERNAL/RESOURCE_EXHAUSTED naming the step (flow), INTERNAL naming the
    step (many_messages)."""
    import grpc

    n_calls, bound = 20, 2.0
    variant = env.args.target
    path = UNARY_CALL if variant == "route" else CACHEABLE_CALL
    want_codes = ("INTERNAL",) if variant == "many_messages" else ("INTERNAL", "RESOURCE_EXHAUSTED")
    want_name = r"bomber|/grpc\.testing\.TestService/UnaryCall|route" if variant == "route" else r"bomb_step"
    ch = grpc.insecure_channel(f"127.0.0.1:{env.port}", options=[("grpc.enable_retries", 0),
                                                                ("grpc.use_local_subchannel_pool", 1)])
    call = ch.unary_unary(path, request_serializer=lambda b: b, response_deserializer=lambda b: b)
    t0 = now()
    done_at = {}
    futs = []
    for i in range(n_calls):
        f = call.future(SIMPLE_REQUEST, timeout=10.0)
        f.add_done_callback(lambda f, i=i: done_at.setdefault(i, now()))
        futs.append(f)
    results = collections.Counter()
    lats, good = [], 0
    for i, f in enumerate(futs):
        try:
            f.result()
            key = "OK"
        except grpc.RpcError as err:
            key = f"{err.code().name}: {err.details()}"
            if err.code().name in want_codes and re.search(want_name, err.details() or ""):
                good += 1
        results[key[:160]] += 1
        lats.append(done_at.get(i, now()) - t0)
    ch.close()
    out.react(f"{n_calls} calls: " + "; ".join(f"{n} x {k}" for k, n in results.most_common())
              + f"; answered {spread(lats)} after the calls started (bound {bound:.1f} s)")
    out.expect(good == n_calls, f"every call failed {' or '.join(want_codes)} naming /{want_name}/ ({good}/{n_calls})")
    out.expect(max(lats) <= bound, f"every call answered within {bound:.1f} s (slowest {max(lats):.2f} s)")
    return now()


# ---- the environment and the measurement -------------------------------------


class Env:
    def __init__(self, args):
        self.args = args
        self.monitor = Monitor()
        self.procs = []  # stopped at the end, in this order
        self.dropped = []
        self.figures = []
        self.problems = []
        self.target = None
        self.others = []
        self.port = self.probe_port = None
        self.lines_before = 0
        self.probe_path = EMPTY_CALL
        self.warmed = False

    def watch(self, name, proc, primary=False):
        w = self.monitor.add(Watched(name, proc))
        w.asan = binary_has_asan(proc.argv[0])
        if primary:
            self.target = w
        else:
            self.others.append(w)
        return w

    def aborted(self):
        return self.target.killed_after is not None or not self.target.alive()

    def figure(self, name, text):
        self.figures.append((name, text))
        harness.log(f"  {name}: {text}")

    def check(self, cond, what):
        harness.log(f"  {'ok' if cond else 'FAIL'}: {what}")
        if not cond:
            self.problems.append(what)
        return cond

    def setup(self):
        a = self.args
        case, target = a.case, a.target
        if target == "server":
            p, self.port, dropped = start_adaptive_server("server", a.server, SERVER_FLAGS[case])
            self.dropped += dropped
            self.procs.append(p)
            self.watch("baton-interop-server", p, primary=True)
            self.probe_port = self.port
            return
        work = Path(tempfile.mkdtemp(prefix="baton-attacks-"))
        harness._cleanup_at_exit(str(work))
        descriptors = self.descriptors(work)
        values = {"descriptors": descriptors}
        backends = []
        if case == "slow_reader_route":
            py, values["backend"] = harness.start_server(
                "py-backend", lambda port: [sys.executable, PY_SERVER, f"--port={port}"])
            good, values["good"], _ = start_adaptive_server("good-backend", a.server, [])
            backends += [py, good]
            template = "attacks_slow_reader_route.yaml"
        elif case == "hpack_bomb_backend":
            mode = "many_messages" if target == "many_messages" else "hpack_bomb"
            bomber, values["bomber"] = harness.start_server(
                "bomber", lambda port: [sys.executable, ATTACK_BACKEND, f"--port={port}", f"--mode={mode}"])
            good, values["good"], _ = start_adaptive_server("good-backend", a.server, [])
            backends += [bomber, good]
            template = "attacks_backend.yaml"
        else:
            be, values["backend"], _ = start_adaptive_server("backend", a.server, [])
            backends.append(be)
            template = f"attacks_{case}.yaml"
        gw, self.port, dropped = start_adaptive_gateway(a.gateway, template, work, **values)
        self.dropped += dropped
        self.procs = [gw] + backends
        self.watch("baton-gateway", gw, primary=True)
        for b in backends:
            self.watch(b.name, b)
        self.probe_port = self.port

    def descriptors(self, work):
        d = self.args.descriptors
        if d and Path(d).is_file():
            return Path(d)
        out = work / "descriptors.pb"
        subprocess.run(["protoc", "--include_imports", f"--descriptor_set_out={out}", f"-I{harness.DEFAULT_PROTO_DIR}",
                        *INTEROP_PROTOS], check=True, timeout=60)
        return out

    def quiet_rss(self, since):
        """RSS after QUIET_S of quiet counted from since (and up to 3 s more while it keeps
        falling towards the baseline); returns (rss at QUIET_S, final rss, seconds waited)."""
        t = self.target
        time.sleep(max(0.0, since + QUIET_S - now()))
        first = t.rss()
        last, waited = first, QUIET_S
        while last is not None and last > t.baseline + t.leak_slack and waited < QUIET_S + 3 and not self.aborted():
            time.sleep(0.25)
            waited += 0.25
            last = t.rss()
        if first is None or last is None or self.aborted():
            return None, None, waited
        return first, last, waited

    def measure(self, tag, attack, budget, budget_why, after_hook=None):
        """One attack: baseline, attack with the good client running, after."""
        t = self.target
        if not self.warmed:  # the code paths of a call paged in before the baseline
            Probe(self.probe_port, self.probe_path, count=3).wait(30)
            self.warmed = True
        time.sleep(QUIET_S)
        if self.args.gdb_trim:
            gdb_malloc_trim(t.pid)
        start = t.rss()
        if t.baseline is None:  # a second run is held to the first run's baseline
            t.baseline = start
        fds0 = t.fds()
        others0 = {w.name: w.rss() for w in self.others}
        asan = t.asan
        t.leak_slack = LEAK_SLACK + (16 * MiB if asan else 0)  # + ASan's quarantine (target_env)
        bound = t.baseline + (2 * (budget + SLACK) + 32 * MiB if asan else budget + SLACK)
        why = f"baseline + {budget_why} + {SLACK // MiB} MiB slack" + (" (x2 + 32 MiB: ASan)" if asan else "")
        probe = Probe(self.probe_port, self.probe_path)
        self.lines_before = len(t.proc.lines)
        t.attack_t0 = t0 = now()
        harness.log(f"--- attack {tag}: {self.args.case} against {t.name} (baseline {mib(t.baseline)})")
        out = Outcome()
        try:
            t_end = attack(self, out)
        except Exception as err:  # the attack itself broke: a failure of the case
            import traceback

            traceback.print_exc()
            out.expect(False, f"the attack raised {type(err).__name__}: {err}")
            t_end = now()
        calls = probe.stop()
        hook_text = after_hook() if after_hook and not self.aborted() else None
        after, after_final, waited = self.quiet_rss(t_end) if not self.aborted() else (None, None, 0)
        # The peak counts until "after" was read: a target may go on growing once the
        # attacker is gone (a handler still producing).
        peak = t.peak(t0)
        alive = t.alive() and t.killed_after is None
        if not alive:
            after = after_final = None
        trimmed = None
        if alive and self.args.gdb_trim:
            gdb_malloc_trim(t.pid)
            time.sleep(0.3)
            trimmed = t.rss()

        name = f"{self.args.case}.{self.args.target}" + (f".{tag}" if tag else "")
        self.figure(f"{name} baseline RSS", f"{mib(t.baseline)} ({fds0} open fds)"
                    + (f"; {mib(start)} when this run started" if start != t.baseline else ""))
        if t.killed_after is not None:
            self.figure(f"{name} peak RSS", f"> {KILL_RSS // GiB} GiB in {t.killed_after:.1f} s (SIGKILLed; "
                                            f"bound {mib(bound)} = {why})")
        else:
            self.figure(f"{name} peak RSS", f"{mib(peak)} (bound {mib(bound)} = {why})")
        if after is not None:
            text = (f"{mib(after)} after {QUIET_S:.0f} s quiet (bound {mib(t.baseline + t.leak_slack)} = "
                    f"baseline + {t.leak_slack // MiB} MiB; {t.fds()} open fds)")
            if after_final != after:
                text += f"; {mib(after_final)} after {waited:.2f} s"
            if trimmed is not None:
                text += f"; {mib(trimmed)} after malloc_trim(0) (gdb)"
            self.figure(f"{name} RSS after", text)
        else:
            self.figure(f"{name} RSS after", "n/a (the target is gone)")
        for w in self.others:
            self.figure(f"{name} {w.name} RSS (info)", f"{mib(others0[w.name])} before, peak {mib(w.peak(t0, t_end))}"
                                                       f", {mib(w.rss())} after")
        for r in out.reactions:
            self.figure(f"{name} reaction", r)
        if hook_text:
            self.figure(f"{name} after disconnect", hook_text)
        during = [c for c in calls if c[0] <= t_end]
        lat = [c[1] for c in during if c[2]]
        failed = [c for c in during if not c[2]]
        slow = [c for c in during if c[2] and c[1] > PROBE_BOUND_S]
        self.figure(f"{name} good client",
                    f"{len(during)} calls, {len(failed)} failed, max {max(lat) * 1000 if lat else 0:.0f} ms, "
                    f"median {statistics.median(lat) * 1000 if lat else 0:.0f} ms (bound {PROBE_BOUND_S * 1000:.0f} ms;"
                    f" new connection per call, refused connects retried)"
                    + (f"; first failure: {failed[0][3][:120]}" if failed else ""))

        self.check(alive, f"{t.name} stayed up" + (f" (SIGKILLed above {KILL_RSS // GiB} GiB after "
                                                    f"{t.killed_after:.1f} s)" if t.killed_after is not None else ""))
        self.check(t.killed_after is None and peak is not None and peak <= bound,
                   f"peak RSS {mib(peak) if t.killed_after is None else '> 4 GiB'} <= {mib(bound)}")
        self.check(during and not failed and not slow,
                   f"the good client was served within {PROBE_BOUND_S:.0f} s during the attack "
                   f"({len(during) - len(failed) - len(slow)}/{len(during)})")
        for cond, what in out.checks:
            self.check(cond, what)
        if hook_text is not None and hasattr(self, "hook_ok"):
            self.check(self.hook_ok, hook_text)
        self.check(after is not None and after_final <= t.baseline + t.leak_slack,
                   f"RSS back within {t.leak_slack // MiB} MiB of the baseline after the attack "
                   f"({mib(after_final)} vs {mib(t.baseline)})")
        return peak, after_final

    def finish(self):
        self.monitor.stop()
        if self.dropped:
            self.figure(f"{self.args.case}.{self.args.target} NOTE",
                        f"the binary under test does not know {', '.join(self.dropped)}: measured without")
            # A limit the binary ignores would make the case prove nothing:
            # only a deliberate measurement of an older build may do that.
            self.check(self.args.allow_unknown_limits,
                       f"every limit of the case is known to the binary (unknown: {', '.join(self.dropped)}; "
                       f"--allow-unknown-limits measures an older build)")
        for p in self.procs:
            w = next((w for w in [self.target] + self.others if w.proc is p), None)
            if w is not None and w.killed_after is not None:
                p.wait_exit(5)
                continue
            for problem in p.stop():
                self.check(False, problem)
            if getattr(p, "must_exit_0", False) and p.proc.returncode not in (0, None):
                self.check(False, f"{p.name} exited with status {p.proc.returncode} after SIGTERM, want 0")
        harness.log("")
        for name, text in self.figures:
            harness.log(f"FIGURE {name}: {text}")
        for p in self.problems:
            harness.log(f"FAIL: {p}")
        harness.log(f"{'FAIL' if self.problems else 'PASS'}: attacks {self.args.case}.{self.args.target}")
        return 1 if self.problems else 0


def cpu_after_disconnect(env):
    """The handlers stop producing once the client is gone: CPU over 2 s after the
    disconnect at most 10% of one core (an idle libuv loop uses ~0)."""
    t = env.target
    c0 = t.cpu_s()
    time.sleep(2.0)
    c1 = t.cpu_s()
    used = (c1 - c0) if c0 is not None and c1 is not None else None
    env.hook_ok = used is not None and used <= 0.2
    return (f"CPU {used:.2f} s in the 2 s after the disconnect (bound 0.20 s: mostly idle)" if used is not None
            else "CPU n/a (the target is gone)")


def run_case(env):
    case = env.args.case
    if case == "partial_messages":
        env.measure("", case_partial_messages, 4 * CONNECTION_BUFFER,
                    f"4 connections x {CONNECTION_BUFFER // MiB} MiB connection_buffer")
    elif case == "slow_reader_stream":
        # Each call's send queue stops at its 1 MiB high-water mark + the one message the
        # handler has in hand; a connection's queues together stay in its 8 MiB budget.
        # Bound: the 4 connections' budgets, plus one 1 MiB message in hand per call
        # (200) that the budget may admit past the mark.
        env.measure("", case_slow_reader_stream, 4 * CONNECTION_BUFFER + 200 * MiB,
                    f"4 x {CONNECTION_BUFFER // MiB} MiB connection_buffer + 200 calls x 1 MiB message in hand",
                    after_hook=lambda: cpu_after_disconnect(env))
    elif case == "slow_reader_route":
        # The python backend runs at most 32 handlers at once (its thread pool): 32 calls
        # stream, each holding at most one 1 MiB message in hand and the 1 MiB the
        # backend may send within the gateway's upstream stream window; the client side's
        # queues stay in the 4 connections' budgets.
        budget = 4 * CONNECTION_BUFFER + 32 * 2 * MiB
        why = (f"4 x {CONNECTION_BUFFER // MiB} MiB connection_buffer"
               " + 32 streaming calls x (1 MiB message + 1 MiB window)")
        runs = []
        for tag in ("run1", "run2"):
            runs.append(env.measure(tag, case_slow_reader_stream, budget, why,
                                    after_hook=lambda: cpu_after_disconnect(env)))
            if env.aborted():
                break
        if len(runs) == 2 and None not in runs[0] + runs[1]:
            (p1, a1), (p2, a2) = runs
            env.figure(f"{case}.gateway second run vs first",
                       f"peak {mib(p2)} vs {mib(p1)}, after {mib(a2)} vs {mib(a1)}")
            env.check(p2 <= p1 + max(LEAK_SLACK, p1 // 10) and a2 <= a1 + LEAK_SLACK,
                      "the second run climbed no higher than the first (peak within 10% / 8 MiB, after within 8 MiB)")
        else:
            env.check(False, "two runs of the slow reader through the route")
    elif case == "stalled_headers":
        # 2,000 open streams, each a call's state and arena (8 KiB, rounded up) with small headers.
        env.measure("", case_stalled_headers, 2000 * 8 * KiB, "2000 streams x 8 KiB")
    elif case == "slowloris":
        # At most max_connections kept, each a session and a read buffer (64 KiB, rounded up).
        env.measure("", case_slowloris, MAX_CONNECTIONS * 64 * KiB,
                    f"{MAX_CONNECTIONS} connections x 64 KiB")
    elif case == "server_resets":
        # One connection at a time, at most 400 streams open on it.
        env.measure("", case_server_resets, 0, "nothing (one connection, <= 400 open streams)")
    elif case == "hpack_bomb_backend":
        env.probe_path = EMPTY_CALL  # routed to the good backend
        if env.args.target == "many_messages":
            # 20 calls, each at most 2 messages of 16 KiB decoded and the 1 MiB upstream window.
            env.measure("", case_hpack_bomb_backend, 20 * (2 * 16 * KiB + MiB),
                        "20 calls x (2 x 16 KiB messages + 1 MiB upstream window)")
        else:
            # 20 calls, each at most the 64 KiB header list the gateway advertises to backends.
            env.measure("", case_hpack_bomb_backend, 20 * 64 * KiB, "20 calls x 64 KiB max_header_list")


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--case", choices=sorted(TARGETS))
    ap.add_argument("--target", help="server or gateway (hpack_bomb_backend: route, flow or many_messages)")
    ap.add_argument("--server", help="baton-interop-server (the target, or the gateway's backend)")
    ap.add_argument("--gateway", help="baton-gateway")
    ap.add_argument("--descriptors", help="interop_proto.pb (default: made with protoc)")
    ap.add_argument("--certs-dir", help="unused (the attacks are h2c); accepted like the other e2e scripts")
    ap.add_argument("--timeout", type=float, default=100, help="hard limit for the whole run, seconds")
    ap.add_argument("--allow-unknown-limits", action="store_true",
                    help="measure a build that predates some limit (the 'before' figures) instead of failing")
    ap.add_argument("--gdb-trim", action="store_true",
                    help="diagnostic: malloc_trim(0) the target through gdb before the baseline and after the "
                         "attack, to tell memory glibc kept from memory still held")
    ap.add_argument("--probe", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--probe-path", default=EMPTY_CALL, help=argparse.SUPPRESS)
    ap.add_argument("--probe-count", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--probe-every", type=float, default=PROBE_EVERY_S, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.probe:
        return probe_main(args)
    if not args.case or not args.server:
        ap.error("--case and --server are required")
    if args.target is None:
        args.target = TARGETS[args.case][0]
    if args.target not in TARGETS[args.case]:
        ap.error(f"--case={args.case} takes --target {', '.join(TARGETS[args.case])}")
    if args.target != "server" and not args.gateway:
        ap.error("--gateway is required for a gateway target")
    harness.hard_timeout(args.timeout)
    env = Env(args)
    try:
        env.setup()
        run_case(env)
    except Exception as err:
        import traceback

        traceback.print_exc()
        env.check(False, f"the case raised {type(err).__name__}: {err}")
    return env.finish()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
