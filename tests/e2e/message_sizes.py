#!/usr/bin/python3
"""The message-size matrix: every size in every call kind, both ways, against stock peers.

  message_sizes.py --peer=py|node --direction=to_baton|from_baton|through_gateway|through_flow
                   --transport=h2c|tls [--server=PATH] [--client=PATH] [--gateway=PATH]
                   [--descriptors=interop_proto.pb] [--certs-dir=DIR]
                   [--sizes=N,N,...] [--rpc-timeout=SECONDS] [--timeout=SECONDS]

  to_baton         stock client (--peer) -> baton-interop-server (--server)
  from_baton       baton-interop-client (--client) -> stock server (--peer)
  through_gateway  stock client -> baton-gateway (--gateway; one passthrough
                   route for grpc.testing.TestService) -> stock server
  through_flow     the same, but UnaryCall is a flow whose one step calls the
                   stock server's UnaryCall: the gateway decodes the request,
                   builds the step's request, decodes the step's response and
                   builds its own (the other kinds stay routed)

The peers: py is Debian's python3-grpcio (the client is this script's
`client` command, the server interop_python_server.py); node is @grpc/grpc-js
(peers/node, installed with npm ci on first use: harness.node_peer_dir). Each
leaves its message limits at gRPC's defaults (receive 4 MiB).

For each size S (default below), four cells, each a call with a deadline
(--rpc-timeout, default 20 s) so that a stall fails its cell and names it:

  UnaryCall/S            a request of S bytes, response_size so the response is S bytes
  StreamingOutputCall/S  three responses of S bytes
  StreamingInputCall/S   three requests of S bytes
  FullDuplexCall/S       two ping-pong exchanges, S bytes each way

S is the size of the serialized message (SimpleRequest, SimpleResponse,
StreamingOutputCallRequest/Response, StreamingInputCallRequest), the number
gRPC's default 4 MiB receive limit is compared with (the 5-byte length prefix
is not counted: grpcio, grpc-js and Baton all refuse a message only when it is
longer than 4194304 bytes). The payload body is sized with the proto3 wire
format's arithmetic (msg_len below; the same in the node and C clients, which
also check it against the real serialized length): for S = 4194240 (4 MiB - 64)
a SimpleResponse is tag(1) + len(4) + Payload{ tag(1) + len(4) + body }, so the
body is 4194240 - 10 = 4194230 bytes; the SimpleRequest adds response_size
(tag + 4-byte varint), so its body is 4194225. Every message of the default
sizes is exactly S bytes (in general the largest body that fits is taken, so a
message may be a byte under S where a varint would grow; never over).

Requests carry the payload pattern (harness.PATTERN_KEY: byte i of the k-th
request of a call is (i + k) % 251), which the stock servers check byte for
byte (DATA_LOSS otherwise); Baton's server only counts StreamingInputCall's
bytes. Responses must be all zeros of the asked length. After a failed cell
the client starts the next one on a fresh connection, so a stalled connection
fails only the cells that stall themselves.

Output: the client's "PASS Kind/S (ms)" / "FAIL Kind/S: why" lines, then a
table (milliseconds per cell; FAIL, or "-" for a cell that never ran) and one
"FAIL ..." line per failed cell naming size, kind, direction, peer and
transport. Exit status 0 iff every cell passed and every process behaved.
"""

import argparse
import re
import sys
import time

import harness

KINDS = ("UnaryCall", "StreamingOutputCall", "StreamingInputCall", "FullDuplexCall")
# 1 KiB, 16 KiB, 64 KiB - 1, 64 KiB + 1, 1 MiB, 3 MiB, 4 MiB - 64 (whole serialized messages).
DEFAULT_SIZES = (1024, 16384, 65535, 65537, 1048576, 3145728, 4194240)
MAX_MESSAGE = 4 << 20  # gRPC's default receive limit, which no size may pass
PY_SERVER = harness.HERE / "interop_python_server.py"
INTEROP_PROTOS = ["grpc/testing/empty.proto", "grpc/testing/messages.proto", "grpc/testing/test.proto"]


# ---- sizes: the proto3 wire format's arithmetic ------------------------------
#
# Every field number in these messages is below 16, so each tag is one byte; a
# length-delimited field is tag + varint(length) + content; an int32 is tag +
# varint(value), and absent when 0 in proto3 (response_type and Payload.type
# are COMPRESSABLE = 0, never on the wire).

def varint_len(v):
    n = 1
    while v >= 0x80:
        v >>= 7
        n += 1
    return n


def field_len(n):
    return 1 + varint_len(n) + n


def int_field(v):
    return 1 + varint_len(v) if v else 0


def payload_field(n):
    """Payload { body = n bytes } as a field of its parent message."""
    return field_len(field_len(n) if n else 0)


def payload_only_len(n):
    """SimpleResponse, StreamingOutputCallResponse, StreamingInputCallRequest."""
    return payload_field(n)


def simple_request_len(n, r):
    """SimpleRequest { response_size = r, payload = n bytes }."""
    return int_field(r) + payload_field(n)


def output_request_len(n, r):
    """StreamingOutputCallRequest { response_parameters = [{ size = r }], payload = n bytes }."""
    return field_len(int_field(r)) + payload_field(n)


def fit(msg_len, target):
    """The largest body length n with msg_len(n) <= target."""
    n = max(0, target - 16)
    while msg_len(n + 1) <= target:
        n += 1
    while n > 0 and msg_len(n) > target:
        n -= 1
    return n


def parse_sizes(text):
    sizes = [int(s) for s in text.split(",") if s.strip()]
    for s in sizes:
        if not 16 <= s <= MAX_MESSAGE:
            raise argparse.ArgumentTypeError(f"size {s} is not from 16 to {MAX_MESSAGE}")
    return sizes


# ---- the python3-grpcio client (`message_sizes.py client ...`) ---------------

class Matrix:
    """The four cells of one size, from grpcio; each raises on failure."""

    def __init__(self, args, e, m):
        self.args, self.e, self.m, self.t = args, e, m, args.rpc_timeout
        self.md = ((harness.PATTERN_KEY, harness.PATTERN_VALUE),)
        self.calls = []  # the streaming calls of the current cell, cancelled if it fails
        self.channel = self.stub = None
        self.connect()

    def connect(self):
        import grpc
        import interop_python_client as ipc

        a = self.args
        target = f"{a.server_host}:{a.server_port}"
        # A private subchannel pool: a new channel is a new connection.
        options = [("grpc.enable_http_proxy", 0), ("grpc.enable_retries", 0),
                   ("grpc.use_local_subchannel_pool", 1)]
        if a.server_host_override:
            options.append(("grpc.ssl_target_name_override" if a.use_tls else "grpc.default_authority",
                            a.server_host_override))
        if a.use_tls:
            ca = open(a.ca, "rb").read() if a.ca else None
            self.channel = grpc.secure_channel(target, grpc.ssl_channel_credentials(ca), options=options)
        else:
            self.channel = grpc.insecure_channel(target, options=options)
        self.stub = ipc.Stub(self.channel, self.e, self.m)

    def reconnect(self):
        for call in self.calls:
            call.cancel()
        self.calls = []
        self.channel.close()
        self.connect()

    def payload(self, n, k):
        return self.m.Payload(body=harness.payload_pattern(n, k))

    @staticmethod
    def check_len(msg, want, size):
        got = msg.ByteSize()
        check(got == want and got <= size, f"request serializes to {got} bytes, sized for {want} (<= {size})")

    def UnaryCall(self, size):
        r = fit(payload_only_len, size)
        n = fit(lambda x: simple_request_len(x, r), size)
        req = self.m.SimpleRequest(response_size=r, payload=self.payload(n, 0))
        self.check_len(req, simple_request_len(n, r), size)
        resp = self.stub.UnaryCall(req, metadata=self.md, timeout=self.t)
        check_zeros(resp.payload, r, "response")

    def StreamingOutputCall(self, size):
        r = fit(payload_only_len, size)
        req = self.m.StreamingOutputCallRequest(
            response_parameters=[self.m.ResponseParameters(size=r) for _ in range(3)])
        it = self.stub.StreamingOutputCall(req, metadata=self.md, timeout=self.t)
        self.calls.append(it)
        got = list(it)
        check(len(got) == 3, f"{len(got)} responses, want 3")
        for i, resp in enumerate(got):
            check_zeros(resp.payload, r, f"response {i + 1}")

    def StreamingInputCall(self, size):
        n = fit(payload_only_len, size)

        def requests():
            for k in range(3):
                req = self.m.StreamingInputCallRequest(payload=self.payload(n, k))
                if k == 0:
                    self.check_len(req, payload_only_len(n), size)
                yield req

        resp = self.stub.StreamingInputCall(requests(), metadata=self.md, timeout=self.t)
        check(resp.aggregated_payload_size == 3 * n,
              f"aggregated_payload_size {resp.aggregated_payload_size}, want {3 * n}")

    def FullDuplexCall(self, size):
        import interop_python_client as ipc

        r = fit(payload_only_len, size)
        n = fit(lambda x: output_request_len(x, r), size)
        with ipc.Pipe() as pipe:
            it = self.stub.FullDuplexCall(pipe, metadata=self.md, timeout=self.t)
            self.calls.append(it)
            for k in range(2):
                req = self.m.StreamingOutputCallRequest(
                    response_parameters=[self.m.ResponseParameters(size=r)], payload=self.payload(n, k))
                if k == 0:
                    self.check_len(req, output_request_len(n, r), size)
                pipe.add(req)
                resp = next(it, None)
                check(resp is not None, f"the call ended before response {k + 1}")
                check_zeros(resp.payload, r, f"response {k + 1}")
            pipe.close()
            rest = list(it)
            check(not rest, f"{len(rest)} responses after the second, want none")


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def check_zeros(payload, n, what):
    body = payload.body
    check(len(body) == n, f"{what}: payload of {len(body)} bytes, want {n}")
    check(body == bytes(n), f"{what}: payload bytes are not all zero")


def describe(err):
    import grpc

    if isinstance(err, grpc.RpcError) and hasattr(err, "code"):
        return f"status {err.code().name}: {err.details()}"
    return f"{type(err).__name__}: {err}"


def client_main(argv):
    p = argparse.ArgumentParser(prog="message_sizes.py client",
                                description="the message-size matrix from python3-grpcio")
    p.add_argument("--server_host", default="127.0.0.1")
    p.add_argument("--server_port", type=int, required=True)
    p.add_argument("--server_host_override", default="")
    p.add_argument("--use_tls", type=harness.bool_flag, default=False, nargs="?", const=True)
    p.add_argument("--ca", help="PEM root CA")
    p.add_argument("--test_case", default="message_sizes", choices=("message_sizes",))
    p.add_argument("--sizes", type=parse_sizes, default=list(DEFAULT_SIZES))
    p.add_argument("--rpc_timeout", type=float, default=20.0, help="deadline of every call, seconds")
    p.add_argument("--proto_dir", help="root of grpc/testing/*.proto (default: examples/interop/proto)")
    args = p.parse_args(argv)
    e, m = harness.load_interop_messages(args.proto_dir)
    mx = Matrix(args, e, m)
    failed = cells = 0
    for size in args.sizes:
        for kind in KINDS:
            cells += 1
            start = time.monotonic()
            try:
                getattr(mx, kind)(size)
            except Exception as err:  # one cell's failure is reported; the rest still run
                failed += 1
                harness.log(f"FAIL {kind}/{size}: {describe(err)} (after {(time.monotonic() - start) * 1000:.0f} ms)")
                mx.reconnect()  # a stalled connection must not fail the cells after it
            else:
                mx.calls = []
                harness.log(f"PASS {kind}/{size} ({(time.monotonic() - start) * 1000:.0f} ms)")
    mx.channel.close()
    harness.log(f"{cells - failed}/{cells} cells passed")
    return 1 if failed else 0


# ---- the driver ---------------------------------------------------------------

GATEWAY_CONFIG = """\
# message_sizes.py's gateway: no flows, one passthrough route for
# grpc.testing.TestService to the stock server. Every limit is left at its
# default (max_recv_message 4 MiB, from clients and from the backend).
listen:
  address: "127.0.0.1:{port}"
  {listen_tls}
descriptors: {descriptors}
backends:
  interop: {{ endpoints: ["127.0.0.1:{backend}"] {backend_tls} }}
routes:
  - {{ prefix: /grpc.testing.TestService/, backend: interop }}
"""

FLOW_CONFIG = GATEWAY_CONFIG + """\
forward_metadata: [{pattern_key}]
flows:
  grpc.testing.TestService/UnaryCall:
    steps:
      - name: echo
        call: interop grpc.testing.TestService/UnaryCall
        request: {{ response_size: request.response_size, payload: request.payload }}
    response: {{ payload: echo.payload }}
"""

CELL_LINE = re.compile(r"^(PASS|FAIL) (\w+)/(\d+)(?: \((\d+) ms\)|: (.*))$")


def tls_server_flags(certs):
    return ["--use_tls=true", f"--cert={certs.server_crt}", f"--key={certs.server_key}"] if certs else []


def tls_client_flags(certs):
    # Connect by address but verify the name, as a deployment behind DNS would.
    return ["--use_tls=true", f"--ca={certs.ca}", "--server_host_override=localhost"] if certs else []


def stock_server_argv(args, certs, port):
    if args.peer == "py":
        base = [sys.executable, PY_SERVER]
    else:
        base = ["node", harness.node_peer_dir() / "interop_server.js"]
    return base + [f"--port={port}"] + tls_server_flags(certs)


def stock_client_argv(args, certs, port):
    if args.peer == "py":
        base = [sys.executable, __file__, "client"]
    else:
        base = ["node", harness.node_peer_dir() / "message_sizes_client.js"]
    return base + ["--server_host=127.0.0.1", f"--server_port={port}", "--test_case=message_sizes",
                   f"--sizes={','.join(map(str, args.sizes))}", f"--rpc_timeout={args.rpc_timeout:g}"
                   ] + tls_client_flags(certs)


def baton_client_argv(args, certs, port):
    return [args.client, "--server_host=127.0.0.1", f"--server_port={port}", "--test_case=message_sizes",
            f"--sizes={','.join(map(str, args.sizes))}", f"--rpc_timeout={args.rpc_timeout:g}"
            ] + tls_client_flags(certs)


def start_gateway(args, certs, backend_port):
    import gateway_env as ge

    work = ge.tmpdir()
    descriptors = ge.descriptors_arg(args, work, harness.DEFAULT_PROTO_DIR, INTEROP_PROTOS)
    cfg = work / "sizes.yaml"

    template = FLOW_CONFIG if args.direction == "through_flow" else GATEWAY_CONFIG

    def argv(port):
        cfg.write_text(template.format(
            port=port, descriptors=descriptors, backend=backend_port, pattern_key=harness.PATTERN_KEY,
            listen_tls=f"tls: {{ cert: {certs.server_crt}, key: {certs.server_key} }}" if certs else "",
            backend_tls=f", tls: {{ ca: {certs.ca}, server_name: localhost }}" if certs else ""))
        return [args.gateway, "--config", cfg]

    return harness.start_server("gateway", argv, ready=ge.READY, timeout=30)


def report(args, lines, problems):
    """Reads the client's cell lines; prints the table; returns the failed cells' problems."""
    results = {}  # (kind, size) -> ("PASS", ms) | ("FAIL", why)
    for line in lines:
        mt = CELL_LINE.match(line.strip())
        if mt and mt.group(2) in KINDS:
            key = (mt.group(2), int(mt.group(3)))
            results[key] = ("PASS", mt.group(4)) if mt.group(1) == "PASS" else ("FAIL", mt.group(5))
    where = f"peer={args.peer} direction={args.direction} transport={args.transport}"
    w = max(len(k) for k in KINDS)
    harness.log(f"message sizes, {where} (ms per cell; deadline {args.rpc_timeout:g} s):")
    harness.log("  " + " " * w + "".join(f"{s:>10}" for s in args.sizes))
    failures = []
    for kind in KINDS:
        row = []
        for size in args.sizes:
            res = results.get((kind, size))
            if res is None:
                row.append("-")
                failures.append(f"{kind}/{size} [{where}]: never ran (the client ended or was killed first)")
            elif res[0] == "PASS":
                row.append(res[1] or "ok")
            else:
                row.append("FAIL")
                failures.append(f"{kind}/{size} [{where}]: {res[1]}")
        harness.log(f"  {kind:<{w}}" + "".join(f"{c:>10}" for c in row))
    return failures + problems


def main(argv):
    if argv and argv[0] == "client":
        return client_main(argv[1:])
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--peer", choices=("py", "node"), required=True, help="the stock gRPC peer")
    ap.add_argument("--direction", choices=("to_baton", "from_baton", "through_gateway", "through_flow"),
                    required=True)
    ap.add_argument("--transport", choices=("h2c", "tls"), default="h2c")
    ap.add_argument("--server", help="path of baton-interop-server (to_baton)")
    ap.add_argument("--client", help="path of baton-interop-client (from_baton)")
    ap.add_argument("--gateway", help="path of baton-gateway (through_gateway)")
    ap.add_argument("--descriptors", help="interop FileDescriptorSet for the gateway (default: made with protoc)")
    ap.add_argument("--certs-dir", help="where make-certs.sh keeps the dev PKI (default: a temp dir)")
    ap.add_argument("--sizes", type=parse_sizes, default=list(DEFAULT_SIZES),
                    help="comma-separated serialized message sizes (default: %(default)s)")
    ap.add_argument("--rpc-timeout", type=float, default=20.0, help="deadline of every call, seconds")
    ap.add_argument("--timeout", type=float, default=100, help="hard limit for the whole run, seconds")
    args = ap.parse_args(argv)
    need = {"to_baton": "server", "from_baton": "client", "through_gateway": "gateway",
            "through_flow": "gateway"}[args.direction]
    if not getattr(args, need):
        ap.error(f"--direction={args.direction} needs --{need}")

    harness.hard_timeout(args.timeout)
    started = time.monotonic()
    certs = harness.ensure_certs(args.certs_dir) if args.transport == "tls" else None
    if args.peer == "node":
        harness.node_peer_dir()  # npm ci now, not inside a server's start-up wait

    procs = []  # long-running, stopped in this order at the end
    if args.direction == "to_baton":
        server, port = harness.start_server(
            "baton-server", lambda p: [args.server, f"--port={p}"] + tls_server_flags(certs))
        procs.append(server)
        client = stock_client_argv(args, certs, port)
    else:
        server, port = harness.start_server(f"{args.peer}-server", lambda p: stock_server_argv(args, certs, p))
        procs.append(server)
        if args.direction == "from_baton":
            client = baton_client_argv(args, certs, port)
        else:
            gw, port = start_gateway(args, certs, port)
            procs.insert(0, gw)
            client = stock_client_argv(args, certs, port)

    name = "baton-client" if args.direction == "from_baton" else f"{args.peer}-client"
    budget = max(10.0, args.timeout - (time.monotonic() - started) - 15)
    t0 = time.monotonic()
    p = harness.Process(name, client)
    rc = p.wait_exit(budget)
    elapsed = time.monotonic() - t0
    problems = p.sanitizer_problems()
    if rc is None:
        problems.append(f"{name} still running after {budget:.0f}s; killed")
    elif rc not in (0, 1):  # 1 is failed cells, reported cell by cell
        problems.append(f"{name} exited with status {rc}")
    for proc in procs:
        if not proc.alive():
            problems.append(f"{proc.name} is not running after the client finished")
        problems += proc.stop()
    problems = report(args, p.lines, problems)
    if rc == 1 and not problems:
        problems.append(f"{name} exited with status 1 but reported no failed cell")

    for problem in problems:
        harness.log(f"FAIL {problem}")
    harness.log(f"{'FAIL' if problems else 'PASS'}: message sizes peer={args.peer} direction={args.direction} "
                f"transport={args.transport}: {len(args.sizes) * len(KINDS)} cells, client {elapsed:.1f}s")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
