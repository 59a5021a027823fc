#!/usr/bin/python3
"""SIGTERM and SIGINT drain, twice in a row too, with a call in flight.

  python3-grpcio client -> baton-gateway (passthrough) -> baton-interop-server

A server-streaming call asks for 4 responses 300 ms apart. Once the first has
arrived, the process under test gets its stop signal and, 100 ms later, the
same signal again; the call must still end OK with all 4 responses, and the
process must exit 0 within 5 s, with nothing from a sanitizer (a ThreadSanitizer
build catches a signal handler touching the workers' loops). Run against the
gateway, then directly against the interop server; --signal picks the signal.

  stop_signals.py --gateway=PATH --server=PATH [--signal=TERM|INT]
                  [--descriptors=interop_proto.pb]
"""

import signal
import sys
import threading
import time

import harness
import gateway_env as ge

INTEROP_PROTOS = ["grpc/testing/empty.proto", "grpc/testing/messages.proto", "grpc/testing/test.proto"]
RESPONSES, INTERVAL_US = 4, 300_000
EXIT_WITHIN_S = 5.0


def drain_with_call_in_flight(name, proc, port, sig, m, check):
    import grpc

    ch = ge.channel(port)
    call = ch.unary_stream("/grpc.testing.TestService/StreamingOutputCall",
                           request_serializer=lambda r: r.SerializeToString(),
                           response_deserializer=m.StreamingOutputCallResponse.FromString)
    req = m.StreamingOutputCallRequest(
        response_parameters=[m.ResponseParameters(size=10, interval_us=INTERVAL_US) for _ in range(RESPONSES)])
    got, outcome = [], {}
    first = threading.Event()

    def consume():
        try:
            for r in call(req, timeout=10):
                got.append(r)
                first.set()
            outcome["code"] = grpc.StatusCode.OK
        except grpc.RpcError as err:
            outcome["code"] = err.code()
            outcome["details"] = err.details()
        first.set()

    t = threading.Thread(target=consume, daemon=True)
    t.start()
    check(first.wait(5) and got, f"{name}: the first response arrived before the signal")
    proc._signal_group(sig)
    time.sleep(0.1)
    proc._signal_group(sig)
    t0 = time.monotonic()
    t.join(10)
    check(outcome.get("code") == grpc.StatusCode.OK and len(got) == RESPONSES,
          f"{name}: the call in flight finished during the drain: {len(got)}/{RESPONSES} responses, "
          f"{outcome.get('code')} {outcome.get('details') or ''}".rstrip())
    rc = proc.wait_exit(EXIT_WITHIN_S)
    check(rc == 0, f"{name}: exited 0 within {EXIT_WITHIN_S:.0f} s of two {sig.name}s "
                   f"(exit status {rc}, {time.monotonic() - t0:.2f} s after the second)")
    for problem in proc.sanitizer_problems():
        check.fail(problem)
    ch.close()


def main(argv):
    ap = ge.arg_parser(__doc__)
    ap.add_argument("--server", required=True, help="path of baton-interop-server")
    ap.add_argument("--signal", choices=("TERM", "INT"), default="TERM")
    args = ap.parse_args(argv)
    harness.hard_timeout(args.timeout)
    sig = signal.Signals[f"SIG{args.signal}"]
    check = ge.Check()
    work = ge.tmpdir()
    descriptors = ge.descriptors_arg(args, work, harness.DEFAULT_PROTO_DIR, INTEROP_PROTOS)
    _, m = harness.load_interop_messages()

    server, server_port = harness.start_server("server", lambda port: [args.server, f"--port={port}"])
    gw, port, _ = ge.start_gateway(args.gateway, "passthrough.yaml", work, descriptors=descriptors,
                                   backend=server_port, listen_tls="", backend_tls="")
    drain_with_call_in_flight("gateway", gw, port, sig, m, check)
    check(server.alive(), "the server still runs after the gateway stopped")
    drain_with_call_in_flight("server", server, server_port, sig, m, check)
    return check.finish(f"stop signals ({args.signal})")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
