#!/usr/bin/python3
"""gRPC's interop cases through baton-gateway's passthrough route.

  python3-grpcio interop client -> baton-gateway -> interop server

The server is baton-interop-server (--server=PATH) or the stock grpcio
TestService server (--server=py); the gateway has no flows, only the route
/grpc.testing.TestService/ -> that server (gateway/passthrough.yaml). Every
interop case must pass: unary, both streaming directions and bidi, metadata
and trailers both ways, status codes and messages, cancellation and
deadlines. unimplemented_service also proves that a method no route covers
is UNIMPLEMENTED; this script adds one more such call of its own. With
--transport=tls both hops are TLS (client -> gateway, gateway -> server).

  gateway_passthrough.py --server=py|PATH --gateway=PATH [--transport=h2c|tls]
                         [--descriptors=interop_proto.pb] [--certs-dir=DIR]
"""

import sys
import time

import harness
import gateway_env as ge

PY_SERVER = harness.HERE / "interop_python_server.py"
PY_CLIENT = harness.HERE / "interop_python_client.py"
INTEROP_PROTOS = ["grpc/testing/empty.proto", "grpc/testing/messages.proto", "grpc/testing/test.proto"]


def server_argv(args, certs, port):
    argv = ([sys.executable, PY_SERVER] if args.server == "py" else [args.server]) + [f"--port={port}"]
    if args.transport == "tls":
        argv += ["--use_tls=true", f"--cert={certs.server_crt}", f"--key={certs.server_key}"]
    return argv


def unknown_method(port, certs, check):
    """A method the gateway has no route or flow for: UNIMPLEMENTED from the gateway itself."""
    import grpc

    creds = grpc.ssl_channel_credentials(certs.ca.read_bytes()) if certs else None
    ch = ge.channel(port, creds, name_override="localhost" if certs else None)
    for path in ("/nope.v1.Nothing/Here", "/grpc.testing.TestServic/EmptyCall"):
        call = ch.unary_unary(path, request_serializer=lambda b: b, response_deserializer=lambda b: b)
        err = ge.rpc_error(lambda: call(b"", timeout=ge.RPC_WAIT))
        check(err is not None and err.code() == grpc.StatusCode.UNIMPLEMENTED,
              f"{path}: UNIMPLEMENTED, got {ge.describe_error(err)}")
    ch.close()


def main(argv):
    ap = ge.arg_parser(__doc__)
    ap.add_argument("--server", required=True, help="'py' or the path of baton-interop-server")
    ap.add_argument("--transport", choices=("h2c", "tls"), default="h2c")
    args = ap.parse_args(argv)
    harness.hard_timeout(args.timeout)
    started = time.monotonic()
    check = ge.Check()
    work = ge.tmpdir()
    certs = harness.ensure_certs(args.certs_dir) if args.transport == "tls" else None
    descriptors = ge.descriptors_arg(args, work, harness.DEFAULT_PROTO_DIR, INTEROP_PROTOS)

    server, server_port = harness.start_server("server", lambda port: server_argv(args, certs, port))
    tls = args.transport == "tls"
    gw, port, _ = ge.start_gateway(
        args.gateway, "passthrough.yaml", work, descriptors=descriptors, backend=server_port,
        listen_tls=f"tls: {{ cert: {certs.server_crt}, key: {certs.server_key} }}" if tls else "",
        backend_tls=f", tls: {{ ca: {certs.ca}, server_name: localhost }}" if tls else "")

    client = [sys.executable, PY_CLIENT, "--server_host=127.0.0.1", f"--server_port={port}", "--test_case=all"]
    if tls:
        client += ["--use_tls=true", f"--ca={certs.ca}", "--server_host_override=localhost"]
    budget = max(10.0, args.timeout - (time.monotonic() - started) - 20)
    p = harness.Process("client", client)
    rc = p.wait_exit(budget)
    for problem in p.sanitizer_problems():
        check.fail(problem)
    check(rc == 0, f"every interop case passed through the gateway (client exit status {rc})")

    unknown_method(port, certs, check)
    check(gw.alive() and server.alive(), "the gateway and the server are still running")
    return check.finish(f"passthrough server={args.server} transport={args.transport}", [gw, server])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
