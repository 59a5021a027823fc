"""Shared plumbing for Baton's end-to-end tests.

Owns what every e2e script needs and none should repeat: free loopback ports,
starting a peer process and waiting for its "listening" line, stopping it and
deciding whether it behaved (no early death, no sanitizer report), the dev
certificates (made by certs/make-certs.sh), the interop protos compiled to
Python at test time, and a hard watchdog so no test can hang.

Runs only under Debian's /usr/bin/python3 (python3-grpcio, python3-protobuf,
python3-h2); nothing here imports grpc until a script asks for the protos.
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
DEFAULT_PROTO_DIR = REPO / "examples" / "interop" / "proto"
MAKE_CERTS = REPO / "certs" / "make-certs.sh"

# Lines that mean a sanitizer caught something in a peer we started.
SANITIZER_MARKERS = (
    "AddressSanitizer",
    "LeakSanitizer",
    "UndefinedBehaviorSanitizer",
    "ThreadSanitizer",
    "runtime error:",
)

_live = set()  # Process objects not yet reaped, for the watchdog
_live_lock = threading.Lock()


def log(msg):
    print(msg, flush=True)


def bool_flag(text):
    """argparse type for gRPC-style --flag=true/false."""
    if isinstance(text, bool):
        return text
    v = text.strip().lower()
    if v in ("1", "true", "yes", "on"):
        return True
    if v in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"not a boolean: {text!r}")


def free_port():
    """A TCP port that was free on 127.0.0.1 a moment ago (callers retry on a race)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# PR_SET_PDEATHSIG(SIGKILL) is set by setpriv (util-linux) between its start
# and the exec of the peer, not by a preexec_fn: a preexec_fn makes subprocess
# fork() where it would vfork(), and fork() runs grpcio's pthread_atfork
# handler, which can deadlock joining a gRPC executor thread (grpcio 1.51:
# the thread waits for the fork to finish) while this thread holds the GIL,
# freezing the whole script, hard_timeout's watchdog included.
_SETPRIV = shutil.which("setpriv")


class Process:
    """A child process whose stdout and stderr are echoed with a prefix and kept.

    The echo makes `ctest --output-on-failure` show what the peer said; the kept
    lines let the harness look for the ready line and for sanitizer reports.
    """

    def __init__(self, name, argv, env=None):
        self.name = name
        self.argv = [str(a) for a in argv]
        self.lines = []
        self._cond = threading.Condition()
        self._threads = []
        log(f"[{name}] $ {' '.join(self.argv)}")
        die_with_us = [_SETPRIV, "--pdeathsig", "KILL", "--"] if _SETPRIV else []
        self.proc = subprocess.Popen(
            die_with_us + self.argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            # Own process group, so stop/kill also reach anything a wrapper script spawned;
            # and killed with us if this script is killed (say by CTest's TIMEOUT).
            start_new_session=True,
        )
        with _live_lock:
            _live.add(self)
        for stream, tag in ((self.proc.stdout, "out"), (self.proc.stderr, "err")):
            t = threading.Thread(target=self._pump, args=(stream, tag), daemon=True)
            t.start()
            self._threads.append(t)

    def _pump(self, stream, tag):
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\n")
            print(f"[{self.name}:{tag}] {line}", flush=True)
            with self._cond:
                self.lines.append(line)
                self._cond.notify_all()
        stream.close()

    def wait_for_line(self, pattern, timeout):
        """True once a line matches pattern; False on timeout or if the process exits first."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        seen = 0
        with self._cond:
            while True:
                for line in self.lines[seen:]:
                    if rx.search(line):
                        return True
                seen = len(self.lines)
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    # One last look: the line may have arrived with the exit.
                    return any(rx.search(l) for l in self.lines[seen:])
                self._cond.wait(min(left, 0.1))

    def alive(self):
        return self.proc.poll() is None

    def output(self):
        with self._cond:
            return "\n".join(self.lines)

    def sanitizer_problems(self):
        text = self.output()
        return [
            f"{self.name}: sanitizer report in its output ({m!r})"
            for m in SANITIZER_MARKERS
            if m in text
        ]

    def _reap(self):
        for t in self._threads:
            t.join(timeout=5)
        with _live_lock:
            _live.discard(self)

    def _signal_group(self, sig):
        try:
            os.killpg(self.proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def wait_exit(self, timeout):
        """Exit status, or None after killing it because it outlived timeout."""
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._signal_group(signal.SIGKILL)
            self.proc.wait()
            rc = None
        # Leave nothing of its group behind (a wrapper's children, say).
        self._signal_group(signal.SIGKILL)
        self._reap()
        return rc

    def stop(self, timeout=10):
        """SIGTERM a long-running peer; returns a list of problems (empty = it behaved).

        Problems: it had already exited (died early), it needed SIGKILL, it exited
        with a status other than 0 or death-by-SIGTERM, or a sanitizer spoke.
        """
        problems = []
        rc = self.proc.poll()
        if rc is not None:
            problems.append(f"{self.name} died early (exit status {rc})")
            self._signal_group(signal.SIGKILL)
            self._reap()
        else:
            self._signal_group(signal.SIGTERM)
            rc = self.wait_exit(timeout)
            if rc is None:
                problems.append(f"{self.name} ignored SIGTERM for {timeout}s; killed")
            elif rc not in (0, -signal.SIGTERM):
                problems.append(f"{self.name} exited with status {rc} after SIGTERM")
        problems += self.sanitizer_problems()
        return problems

    def kill(self):
        self._signal_group(signal.SIGKILL)


def start_server(name, make_argv, ready=r"listening", timeout=20, attempts=3):
    """Start a server on a fresh free port; returns (Process, port).

    make_argv(port) builds the command line. Retries on a new port when the
    process exits before printing its ready line (someone took the port).
    """
    last = None
    for _ in range(attempts):
        port = free_port()
        p = Process(name, make_argv(port))
        if p.wait_for_line(ready, timeout):
            return p, port
        last = p
        if p.alive():
            p.kill()
            p.wait_exit(5)
            raise RuntimeError(f"{name} printed no {ready!r} line within {timeout}s")
        p.wait_exit(5)
    raise RuntimeError(f"{name} exited before listening ({attempts} attempts): {last.output()[-2000:]}")


def hard_timeout(seconds):
    """Kill every child and exit(124) if the script is still running after seconds.

    A daemon thread, so it also fires while the main thread is blocked in C code
    (grpc, socket waits).
    """

    def fire():
        log(f"FAIL: hard timeout of {seconds}s reached; killing children")
        with _live_lock:
            procs = list(_live)
        for p in procs:
            p.kill()
        sys.stdout.flush()
        os._exit(124)

    t = threading.Timer(seconds, fire)
    t.daemon = True
    t.start()
    return t


class Certs:
    def __init__(self, d):
        d = Path(d)
        self.dir = d
        self.ca = d / "ca.crt"
        self.server_crt = d / "server.crt"
        self.server_key = d / "server.key"
        self.client_crt = d / "client.crt"
        self.client_key = d / "client.key"


def ensure_certs(certs_dir=None):
    """Dev CA + server + client certificates in certs_dir (made if missing or invalid).

    make-certs.sh is idempotent and takes a lock, so parallel tests can share a dir.
    Without certs_dir a temporary directory is used and removed at exit.
    """
    if certs_dir is None:
        certs_dir = tempfile.mkdtemp(prefix="baton-e2e-certs-")
        _cleanup_at_exit(certs_dir)
    subprocess.run(["bash", str(MAKE_CERTS), str(certs_dir)], check=True, timeout=120,
                   stdout=subprocess.DEVNULL)
    return Certs(certs_dir)


_cleanups = []


def _cleanup_at_exit(path):
    import atexit

    if not _cleanups:
        atexit.register(lambda: [shutil.rmtree(p, ignore_errors=True) for p in _cleanups])
    _cleanups.append(path)


def proto_dir(explicit=None):
    return Path(explicit or os.environ.get("BATON_INTEROP_PROTO_DIR") or DEFAULT_PROTO_DIR)


def load_interop_messages(explicit_proto_dir=None):
    """Compile empty.proto and messages.proto with protoc's built-in Python generator.

    Returns (empty_pb2, messages_pb2). Debian has no grpc_tools; the services are
    called through grpcio's generic API, so only the message classes are needed.
    """
    src = proto_dir(explicit_proto_dir)
    out = tempfile.mkdtemp(prefix="baton-e2e-pb2-")
    _cleanup_at_exit(out)
    files = ["grpc/testing/empty.proto", "grpc/testing/messages.proto"]
    subprocess.run(["protoc", f"--python_out={out}", f"-I{src}", *files], check=True, timeout=60)
    # The generated modules are grpc.testing.*_pb2, inside grpcio's own "grpc"
    # package; grpcio ships no grpc.testing, so let "grpc" also search the
    # generated tree (it becomes a namespace portion there).
    import grpc

    gen = os.path.join(out, "grpc")
    if gen not in grpc.__path__:
        grpc.__path__.append(gen)
    from grpc.testing import empty_pb2, messages_pb2  # noqa: E402

    return empty_pb2, messages_pb2


# Status codes by number, without needing grpc imported (bad_input.py speaks raw HTTP/2).
STATUS_NAMES = {
    0: "OK", 1: "CANCELLED", 2: "UNKNOWN", 3: "INVALID_ARGUMENT", 4: "DEADLINE_EXCEEDED",
    5: "NOT_FOUND", 6: "ALREADY_EXISTS", 7: "PERMISSION_DENIED", 8: "RESOURCE_EXHAUSTED",
    9: "FAILED_PRECONDITION", 10: "ABORTED", 11: "OUT_OF_RANGE", 12: "UNIMPLEMENTED",
    13: "INTERNAL", 14: "UNAVAILABLE", 15: "DATA_LOSS", 16: "UNAUTHENTICATED",
}


# ---- payload patterns (message_sizes.py) -----------------------------------
#
# A client that sends this metadata key promises that byte i of the payload
# body in its k-th request message of the call (k from 0) is (i + k) % 251;
# a server that knows the key (interop_python_server.py, the node peer)
# checks every byte and ends the call with DATA_LOSS on a difference. 251 is
# prime, so no frame or buffer size is a multiple of it: a lost, repeated or
# reordered chunk, or a message swapped with its neighbour, breaks the pattern.
PATTERN_KEY = "x-baton-payload-pattern"
PATTERN_VALUE = "mod251"
_PATTERN_PERIOD = bytes(range(251))


def payload_pattern(n, k=0):
    """n bytes of the pattern of request message k."""
    k %= 251
    reps = (n + k) // 251 + 1
    return (_PATTERN_PERIOD * reps)[k:k + n]


def pattern_problem(body, k=0):
    """None when body is payload_pattern(len(body), k), else where it differs."""
    want = payload_pattern(len(body), k)
    if body == want:
        return None
    i = next(i for i, (a, b) in enumerate(zip(body, want)) if a != b)
    return f"payload of request {k} ({len(body)} bytes): byte {i} is {body[i]}, want {want[i]}"


# ---- the @grpc/grpc-js peers (tests/e2e/peers/node) ------------------------

NODE_PEER_DIR = HERE / "peers" / "node"


def node_peer_dir():
    """tests/e2e/peers/node with its node_modules installed; returns the path.

    Runs `npm ci` (exactly package-lock.json's versions, from the registry)
    once, when node_modules is missing or was installed from another lock
    file; concurrent tests wait on a lock for the one that installs.
    node_modules is git-ignored. --ignore-scripts: the only install script
    in the tree is protobufjs's postinstall, a version check these peers do
    not need.
    """
    import fcntl
    import hashlib

    d = NODE_PEER_DIR
    lock_file = d / "package-lock.json"
    want = hashlib.sha256(lock_file.read_bytes()).hexdigest()
    stamp = d / "node_modules" / ".baton-npm-ci"  # written after a complete install
    with open(d / ".npm-ci.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if stamp.is_file() and stamp.read_text().strip() == want:
            return d
        npm = shutil.which("npm")
        if not npm:
            raise RuntimeError("npm is not installed: the @grpc/grpc-js peers need Node.js and npm")
        log(f"[npm] installing {d}/node_modules from package-lock.json")
        started = time.monotonic()
        r = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts"], cwd=d,
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=300)
        out = r.stdout.decode("utf-8", "replace")
        for line in out.splitlines():
            log(f"[npm] {line}")
        if r.returncode != 0:
            raise RuntimeError(f"npm ci in {d} failed (exit status {r.returncode})")
        stamp.write_text(want + "\n")
        log(f"[npm] done in {time.monotonic() - started:.1f}s")
    return d
