"""Shared plumbing for baton-gateway's saga end-to-end tests (saga_*.py).

Owns what those scripts share on top of harness.py and gateway_env.py: their
flags, the travel example's message classes (proto/travel/v1, compiled with
protoc at test time), the three travel backends (started, read through their
Get method, switched with Configure, killed and restarted on the same port),
baton-gateway over them from the template saga/travel.yaml (started, SIGKILLed
and restarted on the same saga log), the `baton-gateway sagas` command and its
output parsed, and a throwaway PostgreSQL cluster through tests/e2e/pg.sh.

Every wait is bounded; harness.hard_timeout is the backstop.
"""

import argparse
import os
import re
import string
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import harness
import gateway_env as ge

SAGA_DIR = harness.HERE / "saga"  # the config template
PG_SCRIPT = harness.HERE / "pg.sh"  # the throwaway PostgreSQL cluster
TRAVEL_PROTO_ROOT = harness.REPO / "proto"
TRAVEL_PROTOS = ["travel/v1/state.proto", "travel/v1/travel.proto"]
FLOW = "travel.v1.Travel/BookTrip"
BACKENDS = {"reservations": "Reservations", "payments": "Payments", "seats": "Seats"}
RPC_WAIT = ge.RPC_WAIT
SAGA_ID_RE = re.compile(r"^[0-9A-Za-z_-]{8,64}$")

# The template's timings unless a case says otherwise: long forward steps (a
# case holds a call for seconds to kill the gateway under it), compensations
# retried often and quickly.
DEFAULTS = dict(workers=0, flow_timeout="30s", step_timeout="20s", comp_timeout="2s",
                comp_attempts=100, comp_backoff="50ms", comp_max_backoff="300ms")


def arg_parser(doc, cases):
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--case", required=True, choices=sorted(cases), help="the one case to run")
    ap.add_argument("--gateway", required=True, help="path of baton-gateway")
    ap.add_argument("--travel-bin-dir", required=True, help="folder of travel-reservations, ...")
    ap.add_argument("--descriptors", help="travel_proto.pb (default: made with protoc)")
    ap.add_argument("--pg-script", default=str(PG_SCRIPT), help="the PostgreSQL cluster script")
    ap.add_argument("--timeout", type=float, default=100, help="hard limit for the whole run, seconds")
    return ap


_pb = None


def travel_messages():
    """(state_pb2, travel_pb2) for proto/travel/v1, compiled once per process."""
    global _pb
    if _pb is None:
        out = tempfile.mkdtemp(prefix="baton-saga-pb2-")
        harness._cleanup_at_exit(out)
        subprocess.run(["protoc", f"--python_out={out}", f"-I{TRAVEL_PROTO_ROOT}", *TRAVEL_PROTOS],
                       check=True, timeout=60)
        sys.path.insert(0, out)
        from travel.v1 import state_pb2, travel_pb2  # noqa: E402

        _pb = (state_pb2, travel_pb2)
    return _pb


def wait_until(fn, timeout, interval=0.05):
    """Calls fn until it returns something true or timeout passes; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(interval)


# ---- the travel backends ---------------------------------------------------------


def ops(state, saga_id=None):
    """The operations of a BackendState (of one saga) as (op, key, step) tuples, in order."""
    return [(o.op, o.key, o.step) for o in state.ops if saga_id is None or o.saga_id == saga_id]


def op_names(state, saga_id=None):
    return [o.op for o in state.ops if saga_id is None or o.saga_id == saga_id]


def find_op(state, op, saga_id=None):
    for o in state.ops:
        if o.op == op and (saga_id is None or o.saga_id == saga_id):
            return o
    return None


class Backend:
    """One travel backend process, and a client for its Get, Reset and Configure."""

    def __init__(self, args, name, *flags):
        self.name = name
        self.svc = BACKENDS[name]
        self.binary = Path(args.travel_bin_dir) / f"travel-{name}"
        self.flags = flags
        self.starts = 0
        self.ch = None
        self.proc, self.port = harness.start_server(name, lambda port: self._argv(port))
        self.starts = 1
        self._connect()

    def _argv(self, port):
        return [self.binary, f"--port={port}", *self.flags]

    def _connect(self):
        state_pb2, _ = travel_messages()
        self.state_pb2 = state_pb2
        self.ch = ge.channel(self.port)
        base = f"/travel.v1.{self.svc}"
        self._get = ge.unary(self.ch, f"{base}/Get", state_pb2.BackendState)
        self._reset = ge.unary(self.ch, f"{base}/Reset", state_pb2.BackendState)
        self._configure = ge.unary(self.ch, f"{base}/Configure", state_pb2.BackendState)

    def get(self):
        return self._get(self.state_pb2.GetStateRequest(), timeout=RPC_WAIT)

    def reset(self):
        return self._reset(self.state_pb2.ResetRequest(), timeout=RPC_WAIT)

    def configure(self, delay_ms=0, delay_methods=(), apply_before_delay=False, unavailable_methods=()):
        req = self.state_pb2.ConfigureRequest(delay_ms=delay_ms, delay_methods=list(delay_methods),
                                              apply_before_delay=apply_before_delay,
                                              unavailable_methods=list(unavailable_methods))
        harness.log(f"[{self.name}] Configure({str(req).strip() or 'defaults'})".replace("\n", ", "))
        return self._configure(req, timeout=RPC_WAIT)

    def wait(self, pred, timeout=10.0):
        """Polls Get until pred(state) holds; returns the last state seen."""
        last = [None]

        def probe():
            last[0] = self.get()
            return pred(last[0])

        wait_until(probe, timeout)
        return last[0]

    def kill(self):
        """SIGKILL: the backend is gone, its memory with it."""
        if self.ch:
            self.ch.close()
            self.ch = None
        self.proc.kill()
        rc = self.proc.wait_exit(5)
        harness.log(f"[{self.name}] killed (status {rc})")

    def restart(self, timeout=20):
        """Starts the backend again on the same port (retried while the port is not free yet)."""
        deadline = time.monotonic() + timeout
        while True:
            self.starts += 1
            p = harness.Process(f"{self.name}#{self.starts}", self._argv(self.port))
            if p.wait_for_line(r"listening", 20):
                self.proc = p
                self._connect()
                return
            p.kill()
            p.wait_exit(5)
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} could not listen on port {self.port} again")
            time.sleep(0.2)

    def close(self):
        if self.ch:
            self.ch.close()
            self.ch = None


# ---- baton-gateway ------------------------------------------------------------------


class SagaList:
    """The output of `baton-gateway sagas`, parsed.

    One line per saga, `<id>  <STATE> <time>  <flow>  owner=<owner>`, then one
    line per step, `    step <name> <STATE> attempts=<n>`, then a count."""

    SAGA_RE = re.compile(r"^(\S+)\s+([A-Z_]+)\s+(\S+)\s+(\S+)\s+owner=(\S*)\s*$")
    STEP_RE = re.compile(r"^\s+step\s+(\S+)\s+([A-Z_]+)\s+attempts=(\d+)\s*$")

    def __init__(self, rc, out, err):
        self.rc, self.out, self.err = rc, out, err
        self.sagas = {}  # id -> dict(state, time, flow, owner, steps={name: (state, attempts)})
        self.unparsed = []
        cur = None
        for line in out.splitlines():
            m = self.SAGA_RE.match(line)
            if m:
                cur = dict(state=m.group(2), time=m.group(3), flow=m.group(4), owner=m.group(5), steps={})
                self.sagas[m.group(1)] = cur
                continue
            m = self.STEP_RE.match(line)
            if m and cur is not None:
                cur["steps"][m.group(1)] = (m.group(2), int(m.group(3)))
                continue
            if line.strip() and not re.match(r"^\d+ sagas?$", line.strip()):
                self.unparsed.append(line)

    def log(self):
        harness.log(f"[sagas] exit {self.rc}")
        for line in (self.out + self.err).splitlines():
            harness.log(f"[sagas]   {line}")

    def state(self, saga_id):
        s = self.sagas.get(saga_id)
        return s["state"] if s else None

    def step(self, saga_id, name):
        s = self.sagas.get(saga_id)
        return s["steps"].get(name) if s else None

    def ids(self, state=None):
        return [k for k, v in self.sagas.items() if state is None or v["state"] == state]

    def describe(self, saga_id):
        s = self.sagas.get(saga_id)
        if not s:
            return f"saga {saga_id}: not listed"
        steps = ", ".join(f"{k}={v[0]}/{v[1]}" for k, v in s["steps"].items())
        return f"saga {saga_id}: {s['state']} owner={s['owner']} steps: {steps}"


class Gateway:
    """baton-gateway on the config rendered from saga/travel.yaml, restartable on the same log."""

    def __init__(self, env, name, values):
        self.env = env
        self.name = name
        self.dir = env.dir / name
        self.dir.mkdir()
        self.values = values
        self.config = self.dir / "travel.yaml"
        self.proc = None
        self.port = None
        self.ch = None
        self.starts = 0
        self.render(0)  # so `sagas` works before the first start

    def render(self, port):
        text = string.Template((SAGA_DIR / "travel.yaml").read_text()).substitute(
            port=port, **{k: str(v) for k, v in self.values.items()})
        self.config.write_text(text)
        return self.config

    def argv(self, port):
        self.render(port)
        return [self.env.args.gateway, "--config", self.config]

    def start(self):
        """Starts it (on a fresh port) and waits for its ready line."""
        self.starts += 1
        pname = self.name if self.starts == 1 else f"{self.name}#{self.starts}"
        self.proc, self.port = harness.start_server(pname, self.argv, ready=ge.READY, timeout=30)
        self._running()
        return self

    def _running(self):
        self.proc.must_exit_0 = True  # SIGTERM drains and exits 0
        self.ch = ge.channel(self.port)
        _, travel_pb2 = travel_messages()
        self.book_trip = ge.unary(self.ch, "/travel.v1.Travel/BookTrip", travel_pb2.Booking)

    def start_expecting_failure(self, timeout=30):
        """Starts it when it may refuse to: (Process, exit status). The status is None when it
        became ready (then self.proc is the Process) or was still starting after timeout (killed)."""
        self.starts += 1
        port = harness.free_port()
        p = harness.Process(f"{self.name}#{self.starts}", self.argv(port))
        deadline = time.monotonic() + timeout
        while p.alive() and time.monotonic() < deadline:
            if p.wait_for_line(ge.READY, 0.2):
                self.proc, self.port = p, port
                self._running()
                return p, None
        if p.alive():
            p.kill()
            p.wait_exit(5)
            return p, None
        return p, p.wait_exit(5)

    def kill(self):
        """SIGKILL, as a crash: nothing is flushed, nothing is drained.
        The client channel closes only after the kill: closed first, the
        gateway would see its calls cancelled and start compensating."""
        self.proc.kill()
        rc = self.proc.wait_exit(5)
        if self.ch:
            self.ch.close()
            self.ch = None
        harness.log(f"[{self.proc.name}] SIGKILLed (status {rc})")
        self.proc = None

    def stop(self):
        """SIGTERM; must exit 0 with no sanitizer report (counted by env.check)."""
        if self.ch:
            self.ch.close()
            self.ch = None
        if self.proc:
            self.env.check.stop(self.proc)
            self.proc = None

    def book(self, timeout=RPC_WAIT, **kw):
        return self.book_trip(self.env.trip(**kw), timeout=timeout)

    def book_async(self, timeout=RPC_WAIT, **kw):
        """A BookTrip future (result() raises the call's grpc.RpcError)."""
        return self.book_trip.future(self.env.trip(**kw), timeout=timeout)

    def sagas(self, *args, timeout=60, quiet=False):
        """Runs `baton-gateway sagas --config <this config> args...`: a SagaList.

        A sanitizer report, a death by signal or a hang fails the case;
        quiet leaves the output out of the log (polling)."""
        argv = [str(self.env.args.gateway), "sagas", "--config", str(self.config), *map(str, args)]
        try:
            r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
            rc, out, err = r.returncode, r.stdout, r.stderr
        except subprocess.TimeoutExpired as e:
            rc, out, err = None, e.stdout or "", e.stderr or ""
            if isinstance(out, bytes):
                out, err = out.decode("utf-8", "replace"), (err or b"").decode("utf-8", "replace")
        lst = SagaList(rc, out, err)
        if not quiet:
            lst.log()
        what = f"`sagas {' '.join(map(str, args))}`".replace(" `", "`")
        check = self.env.check
        if rc is None:
            check.fail(f"{what} did not answer within {timeout}s")
        elif rc < 0:
            check.fail(f"{what} was killed by signal {-rc}")
        for m in harness.SANITIZER_MARKERS:
            if m in err:
                check.fail(f"{what}: sanitizer report in its output ({m!r})")
        if (rc is None or rc < 0) and quiet:
            lst.log()
        return lst

    def wait_saga(self, saga_id, states, timeout=20.0):
        """Polls `sagas` until saga_id is in one of states; returns (and logs) the last SagaList."""
        states = (states,) if isinstance(states, str) else tuple(states)
        last = [None]

        def probe():
            last[0] = self.sagas(quiet=True)
            return last[0].state(saga_id) in states

        wait_until(probe, timeout, interval=0.2)
        last[0].log()
        return last[0]


class Env:
    """The travel backends, the gateways and the checks of one case."""

    def __init__(self, args, check, backend_flags=None):
        self.args = args
        self.check = check
        self.dir = ge.tmpdir()
        self.descriptors = ge.descriptors_arg(args, self.dir, TRAVEL_PROTO_ROOT, TRAVEL_PROTOS)
        backend_flags = backend_flags or {}
        self.backends = {name: Backend(args, name, *backend_flags.get(name, ())) for name in BACKENDS}
        self.res = self.backends["reservations"]
        self.pay = self.backends["payments"]
        self.seats = self.backends["seats"]
        self.gateways = []
        self.pg = None
        self.n_trips = 0

    def sqlite_log(self, name="saga.db"):
        return self.dir / name

    def gateway(self, name="gateway", saga_log=None, start=True, **values):
        """A gateway on the SQLite log <dir>/saga.db unless saga_log (YAML flow map) says otherwise."""
        if saga_log is None:
            saga_log = f'{{ sqlite: "{self.sqlite_log()}" }}'
        v = dict(DEFAULTS, descriptors=self.descriptors, saga_log=saga_log,
                 **{name: b.port for name, b in self.backends.items()})
        v.update(values)
        gw = Gateway(self, name, v)
        self.gateways.append(gw)
        if start:
            gw.start()
        return gw

    def trip(self, customer="cust", flight="F1", seat="window", card="tok_ok", amount=12300):
        _, travel_pb2 = travel_messages()
        self.n_trips += 1
        return travel_pb2.BookTripRequest(customer_id=f"{customer}-{self.n_trips}", flight_id=flight,
                                          seat_preference=seat, card_token=card, amount_cents=amount)

    def states(self):
        return {name: b.get() for name, b in self.backends.items()}

    def log_states(self, what=""):
        for name, b in self.backends.items():
            try:
                s = b.get()
            except Exception as err:  # a backend that is down
                harness.log(f"  {name}{what}: unreachable ({err.__class__.__name__})")
                continue
            harness.log(f"  {name}{what}: calls={s.calls} duplicates_ignored={s.duplicates_ignored} "
                        f"cancelled={s.cancelled} unavailable={s.unavailable} ops="
                        + ", ".join(f"{o.op}({o.key},{o.saga_id[:8]},{o.step})" for o in s.ops))

    def postgres(self):
        """A throwaway PostgreSQL cluster for this case (pg.sh); its libpq conninfo."""
        if self.pg is None:
            self.pg = PgCluster(self.args.pg_script)
        return self.pg.conninfo

    def finish(self, name):
        """Stops every gateway still running, then the backends, then PostgreSQL; the exit status."""
        for gw in self.gateways:
            gw.stop()
        for b in self.backends.values():
            b.close()
        status = self.check.finish(name, [b.proc for b in self.backends.values()])
        if self.pg is not None:
            problems = self.pg.stop()
            for p in problems:
                harness.log(f"FAIL: {p}")
            if problems:
                status = 1
        return status


# ---- PostgreSQL ------------------------------------------------------------------------


class PgCluster:
    """A PostgreSQL cluster of its own, from the shared script tests/e2e/pg.sh.

    Under CTest the script runs this one (`pg.sh run -- python3 saga_...`)
    and passes the cluster's libpq conninfo in BATON_TEST_PG; pg.sh then
    removes the cluster even if this script is killed. Run by hand without
    it, `pg.sh start DIR` makes one here and `pg.sh stop DIR` removes it."""

    def __init__(self, script):
        self.script = Path(script)
        self.dir = None
        given = os.environ.get("BATON_TEST_PG")
        if given:
            self.conninfo = given
            harness.log(f"[pg] the cluster of pg.sh run: {self.conninfo}")
            return
        if not self.script.is_file():
            raise RuntimeError(f"no PostgreSQL script at {self.script}")
        # Directly under /tmp: the cluster runs as user postgres, which must
        # reach its folder (pg.sh hands over only the folder itself).
        self.dir = Path(tempfile.mkdtemp(prefix="baton-saga-pg-"))
        r = subprocess.run(["bash", str(self.script), "start", str(self.dir)], capture_output=True,
                           text=True, timeout=120)
        for line in (r.stdout + r.stderr).splitlines():
            harness.log(f"[pg] {line}")
        lines = [l for l in r.stdout.splitlines() if l.strip()]
        if r.returncode != 0 or not lines:
            raise RuntimeError(f"pg.sh start failed (exit {r.returncode})")
        self.conninfo = lines[-1].strip()
        harness.log(f"[pg] conninfo: {self.conninfo}")

    def stop(self):
        if self.dir is None:
            return []
        r = subprocess.run(["bash", str(self.script), "stop", str(self.dir)], capture_output=True,
                           text=True, timeout=60)
        for line in (r.stdout + r.stderr).splitlines():
            harness.log(f"[pg] {line}")
        return [] if r.returncode == 0 else [f"pg.sh stop failed (exit {r.returncode})"]


# ---- checks the cases share -----------------------------------------------------------


def expect_error(check, err, code, what, step=None):
    got = ge.describe_error(err)
    ok = err is not None and err.code().name == code
    if ok and step:
        ok = step in (err.details() or "")
    want = f"{code}" + (f" naming step {step!r}" if step else "")
    return check(ok, f"{what}: {want}, got {got}")


class CaseAbort(Exception):
    """The case cannot go on (its message says why); fails it without a traceback."""


def saga_of(state, op):
    """The baton-saga-id of the first op named op; aborts the case when there is none."""
    o = find_op(state, op)
    if o is None:
        raise CaseAbort(f"no {op!r} applied at the backend (ops {ops(state)})")
    if not SAGA_ID_RE.match(o.saga_id):
        raise CaseAbort(f"the call that applied {op!r} {o.key} carried no baton-saga-id metadata "
                        f"(saga id {o.saga_id!r}, baton-step {o.step!r})")
    return o.saga_id


def saga_ids(state, op="create"):
    """The baton-saga-ids of every op named op, in order; aborts the case when one has none."""
    ids = []
    for o in state.ops:
        if o.op == op:
            if not SAGA_ID_RE.match(o.saga_id):
                raise CaseAbort(f"the call that applied {op!r} {o.key} carried no baton-saga-id metadata "
                                f"(saga id {o.saga_id!r}, baton-step {o.step!r})")
            ids.append(o.saga_id)
    return ids


def wait_compensated(env, check, saga, refund=True, timeout=15.0):
    """Waits for the saga's cancel (and refund); returns (reservations, payments) states."""
    r = env.res.wait(lambda s: "cancel" in op_names(s, saga), timeout)
    p = env.pay.wait(lambda s: not refund or "refund" in op_names(s, saga) or "refund-noop" in op_names(s, saga),
                     timeout)
    return r, p


def check_sequence(check, state, saga, want, what):
    got = ops(state, saga)
    return check(got == want, f"{what}: ops of saga {saga[:8]}.. {got}, want {want}")


def check_refund_then_cancel(check, env, saga, pay_key, res_key, what, paid=True):
    """Waits for the saga's compensations: the payment refunded ("refund-noop" with no key when
    it never happened: not paid), then the reservation cancelled; each once, in that order."""
    r, p = wait_compensated(env, check, saga)
    refund_op = "refund" if paid else "refund-noop"
    want = [("pay", pay_key, "pay"), ("refund", pay_key, "compensate:pay")] if paid else [
        ("refund-noop", "", "compensate:pay")]
    check_sequence(check, p, saga, want, f"{what}: payments")
    check_sequence(check, r, saga, [("create", res_key, "reserve"), ("cancel", res_key, "compensate:reserve")],
                   f"{what}: reservations")
    refund, cancel = find_op(p, refund_op, saga), find_op(r, "cancel", saga)
    if refund and cancel:
        check(refund.at_us < cancel.at_us,
              f"{what}: refund applied before cancel ({refund.at_us} < {cancel.at_us})")
    return r, p


def check_log(check, gw, saga, state, steps, what):
    lst = gw.wait_saga(saga, state, timeout=15)
    check(lst.state(saga) == state, f"{what}: `sagas` shows {lst.describe(saga)}, want {state}")
    for name, st in steps.items():
        got = lst.step(saga, name)
        check(got is not None and got[0] == st, f"{what}: step {name} {st} in the log, got {got}")
    s = lst.sagas.get(saga)
    if s:
        check(s["flow"] == FLOW, f"{what}: the log names flow {s['flow']}, want {FLOW}")
    return lst


def run_main(doc, cases, argv):
    """The main of a saga script: one case, then every process stopped and checked."""
    ap = arg_parser(doc, cases)
    args = ap.parse_args(argv)
    harness.hard_timeout(args.timeout)
    fn, opts = cases[args.case]
    check = ge.Check()
    env = None
    try:
        env = Env(args, check, **opts)
        harness.log(f"--- case {args.case}")
        fn(env, check)
    except CaseAbort as err:
        check.fail(f"case stopped: {err}")
    except Exception as err:  # an unexpected error fails the case, after a clean stop
        import traceback

        traceback.print_exc()
        check.fail(f"case raised {type(err).__name__}: {err}")
    if env is None:
        return check.finish(f"saga case {args.case}")
    try:
        env.log_states(" at the end")
    except Exception:
        pass
    return env.finish(f"saga case {args.case}")
