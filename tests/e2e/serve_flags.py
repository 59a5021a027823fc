#!/usr/bin/python3
"""bt_serve's command line, run against a program whose main is bt_serve.

  bad flag, no --port     exit status 2, the usage on stderr, nothing served
  --help                  exit status 0, the usage on stdout
  missing TLS file        exit status 1, one stderr line naming the flag and file
  not a certificate       exit status 1, a line saying the TLS files failed
  port in use             exit status 1, a line naming the address
  --workers N             one more thread per worker ("--workers 1" vs "3",
                          the value as the next argument), "listening on PORT"
  --use_tls               a TLS listener that negotiates h2
  SIGTERM                 exit status 0

  serve_flags.py --server=PATH [--certs-dir=DIR]
"""

import argparse
import os
import re
import socket
import ssl
import subprocess
import sys
import time

import harness
import gateway_env as ge

RUN_TIMEOUT_S = 10


def run(server, *flags):
    """Runs server with flags to its exit; returns (status, stdout, stderr)."""
    p = subprocess.run([server, *flags], capture_output=True, text=True, timeout=RUN_TIMEOUT_S,
                       stdin=subprocess.DEVNULL)
    harness.log(f"$ {os.path.basename(server)} {' '.join(flags)} -> {p.returncode}")
    for line in (p.stdout + p.stderr).splitlines():
        harness.log(f"  | {line}")
    return p.returncode, p.stdout, p.stderr


def refused(check, server, name, flags, want):
    rc, out, err = run(server, *flags)
    check(rc == 2 and want in err and f"usage: {name}" in err and "listening" not in out,
          f"{' '.join(flags)}: exit 2, {want!r} and the usage on stderr (exit {rc})")


def fails_to_start(check, server, flags, want, what):
    rc, out, err = run(server, *flags)
    lines = [l for l in err.splitlines() if l.startswith(os.path.basename(server) + ":")]
    check(rc == 1 and "listening" not in out and len(lines) == 1 and re.search(want, lines[0]),
          f"{what}: exit 1 with one line of its own matching {want!r} (exit {rc}, lines {lines})")


def threads(pid):
    return len(os.listdir(f"/proc/{pid}/task"))


def workers_honoured(check, server):
    counts = {}
    for n in (1, 3):
        proc, port = harness.start_server(f"workers-{n}", lambda port: [server, "--port", str(port),
                                                                         "--workers", str(n)])
        check(any(l == f"listening on {port}" for l in proc.lines), f"--workers {n}: 'listening on {port}'")
        counts[n] = threads(proc.proc.pid)
        for problem in proc.stop():
            check.fail(problem)
    check(counts[3] - counts[1] == 2, f"--workers 3 runs 2 threads more than --workers 1 ({counts})")


def tls_listener(check, server, certs):
    proc, port = harness.start_server("tls", lambda port: [server, f"--port={port}", "--use_tls",
                                                           f"--cert={certs.server_crt}",
                                                           f"--key={certs.server_key}"])
    ctx = ssl.create_default_context(cafile=str(certs.ca))
    ctx.set_alpn_protocols(["h2"])
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
                alpn = tls.selected_alpn_protocol()
    except (OSError, ssl.SSLError) as e:
        alpn = repr(e)
    check(alpn == "h2", f"--use_tls: a TLS listener negotiating h2 ({alpn})")
    t0 = time.monotonic()
    problems = proc.stop()
    check(not problems, f"SIGTERM: exit 0 in {time.monotonic() - t0:.2f} s {problems or ''}".rstrip())


def port_in_use(check, server):
    # Bound without SO_REUSEPORT, so the server's socket cannot share it.
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        fails_to_start(check, server, [f"--port={port}"], rf"error: cannot listen on [^ ]+:{port}: Address already in use",
                       "a port in use")


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--server", required=True, help="a program whose main is bt_serve")
    ap.add_argument("--certs-dir", help="where make-certs.sh keeps the dev PKI (default: a temp dir)")
    ap.add_argument("--timeout", type=float, default=100, help="hard limit for the whole run, seconds")
    args = ap.parse_args(argv)
    harness.hard_timeout(args.timeout)
    check = ge.Check()
    server = args.server
    name = os.path.basename(server)
    certs = harness.ensure_certs(args.certs_dir)

    refused(check, server, name, ["--port=0", "--bogus"], "unknown flag --bogus")
    refused(check, server, name, ["--workers=1"], "--port is required")
    refused(check, server, name, ["--port=0", "--workers=many"], "bad value many for --workers")
    rc, out, err = run(server, "--help")
    check(rc == 0 and out.startswith(f"usage: {name} --port=N") and not err,
          f"--help: exit 0, the usage on stdout (exit {rc})")

    missing = "/nonexistent/server.crt"
    fails_to_start(check, server, ["--port=0", "--use_tls", f"--cert={missing}", f"--key={certs.server_key}"],
                   rf"cannot read --cert={re.escape(missing)}: No such file", "a missing --cert")
    fails_to_start(check, server, ["--port=0", "--use_tls=true", f"--cert={certs.ca}", f"--key={certs.ca}"],
                   rf"error: listener [^ ]+: cannot load private key {re.escape(str(certs.ca))}: ",
                   "a --key that is no key")
    port_in_use(check, server)
    workers_honoured(check, server)
    tls_listener(check, server, certs)
    return check.finish(f"bt_serve flags ({name})")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
