#!/usr/bin/python3
"""Runs one interop pairing: start a server, run a client against it, stop the server.

  run_interop.py --server=py|PATH --client=py|PATH --transport=h2c|tls|mtls

"py" means the stock python3-grpcio peer in this directory; a PATH is a Baton
interop binary taking the same flags. Fails if any case fails, if the server
died early or needed SIGKILL, or if a sanitizer reported anything. For mtls it
also asserts that a client without a certificate is refused.
"""

import argparse
import sys
import time

import harness

PY_SERVER = harness.HERE / "interop_python_server.py"
PY_CLIENT = harness.HERE / "interop_python_client.py"


def server_argv(args, certs, port):
    base = [sys.executable, PY_SERVER] if args.server == "py" else [args.server]
    argv = base + [f"--port={port}"]
    if args.transport != "h2c":
        argv += ["--use_tls=true", f"--cert={certs.server_crt}", f"--key={certs.server_key}"]
    if args.transport == "mtls":
        argv += [f"--ca={certs.ca}", "--require_client_cert=true"]
    if args.server == "py" and args.proto_dir:
        argv.append(f"--proto_dir={args.proto_dir}")
    return argv


def client_argv(args, certs, port, with_cert=True):
    base = [sys.executable, PY_CLIENT] if args.client == "py" else [args.client]
    argv = base + ["--server_host=127.0.0.1", f"--server_port={port}", f"--test_case={args.test_case}"]
    if args.transport != "h2c":
        # Connect by address but verify the name, as a deployment behind DNS would.
        argv += ["--use_tls=true", f"--ca={certs.ca}", "--server_host_override=localhost"]
    if args.transport == "mtls" and with_cert:
        argv += [f"--cert={certs.client_crt}", f"--key={certs.client_key}"]
    if args.client == "py" and args.proto_dir:
        argv.append(f"--proto_dir={args.proto_dir}")
    return argv


def run_client(name, argv, timeout):
    """Returns a list of problems with one client run."""
    p = harness.Process(name, argv)
    rc = p.wait_exit(timeout)
    problems = p.sanitizer_problems()
    if rc is None:
        problems.append(f"{name} still running after {timeout}s; killed")
    elif rc != 0:
        problems.append(f"{name} exited with status {rc}")
    return problems


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--server", required=True, help="'py' or the path of baton-interop-server")
    ap.add_argument("--client", required=True, help="'py' or the path of baton-interop-client")
    ap.add_argument("--transport", choices=("h2c", "tls", "mtls"), default="h2c")
    ap.add_argument("--test_case", default="all")
    ap.add_argument("--certs-dir", help="where make-certs.sh keeps the dev PKI (default: a temp dir)")
    ap.add_argument("--proto_dir", help="root of grpc/testing/*.proto for the Python peers")
    ap.add_argument("--timeout", type=float, default=100, help="hard limit for the whole run, seconds")
    args = ap.parse_args(argv)
    if args.transport == "mtls" and args.client != "py":
        ap.error("mtls needs the Python client (it presents the client certificate)")

    harness.hard_timeout(args.timeout)
    started = time.monotonic()
    certs = harness.ensure_certs(args.certs_dir) if args.transport != "h2c" else None
    server, port = harness.start_server(
        "server", lambda port: server_argv(args, certs, port))

    budget = max(10.0, args.timeout - (time.monotonic() - started) - 20)
    problems = run_client("client", client_argv(args, certs, port), budget)
    if args.transport == "mtls":
        refused = client_argv(args, certs, port, with_cert=False) + ["--expect_refused"]
        problems += run_client("client-without-cert", refused, 30)
    if not server.alive():
        problems.append("server is not running after the client finished")
    problems += server.stop()

    for p in problems:
        harness.log(f"FAIL: {p}")
    harness.log(f"{'FAIL' if problems else 'PASS'}: interop server={args.server} client={args.client} "
                f"transport={args.transport}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
