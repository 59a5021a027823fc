#!/usr/bin/python3
"""TLS session resumption against baton-interop-server, with and without
client certificates.

A stock client (Python's ssl module over OpenSSL, ALPN h2) connects, reads the
server's SETTINGS (TLS 1.3 session tickets arrive with the first data), closes,
and reconnects offering the session. The second handshake must succeed and
resume, and a well-formed h2 exchange must follow. Without a session id
context a server that verifies clients refuses every resumed session with an
internal-error alert; that is what this guards.

  tls_resumption.py --server=PATH [--certs-dir=DIR] [--timeout=SECONDS]
"""

import argparse
import socket
import ssl
import sys

import harness

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
SETTINGS = b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"


def connect(ctx, port, session=None):
    raw = socket.create_connection(("127.0.0.1", port), timeout=5)
    s = ctx.wrap_socket(raw, server_hostname="localhost", session=session)
    s.sendall(PREFACE + SETTINGS)
    data = s.recv(4096)
    if len(data) < 9 or data[3] != 0x4:
        raise AssertionError(f"expected the server's SETTINGS, got {data[:20]!r}")
    return s


def run_case(name, server, certs, mtls):
    argv = lambda port: [server, f"--port={port}", "--use_tls=true",
                         f"--cert={certs.server_crt}", f"--key={certs.server_key}"] + (
        [f"--ca={certs.ca}", "--require_client_cert=true"] if mtls else [])
    proc, port = harness.start_server("baton-interop-server", argv)
    try:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(str(certs.ca))
        if mtls:
            ctx.load_cert_chain(str(certs.client_crt), str(certs.client_key))
        ctx.set_alpn_protocols(["h2"])
        first = connect(ctx, port)
        session = first.session
        first.close()
        if session is None:
            raise AssertionError("the first connection got no session to resume")
        try:
            second = connect(ctx, port, session)
        except (ssl.SSLError, OSError) as e:
            raise AssertionError(f"the resumed handshake failed: {e}")
        resumed = second.session_reused
        second.close()
        if not resumed:
            raise AssertionError("the server did not resume the session")
        if not proc.alive():
            raise AssertionError("the server died")
    except AssertionError as e:
        harness.log(f"FAIL {name}: {e}")
        return False
    finally:
        proc.stop()
    problems = proc.sanitizer_problems()
    if problems:
        harness.log(f"FAIL {name}: {problems}")
        return False
    harness.log(f"PASS {name}: session resumed")
    return True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True)
    ap.add_argument("--certs-dir")
    ap.add_argument("--timeout", type=float, default=60)
    args = ap.parse_args()
    harness.hard_timeout(args.timeout)
    certs = harness.ensure_certs(args.certs_dir)
    ok = run_case("tls", args.server, certs, mtls=False)
    ok &= run_case("mtls", args.server, certs, mtls=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
