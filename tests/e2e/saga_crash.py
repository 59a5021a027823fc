#!/usr/bin/python3
"""Sagas across a gateway crash: SIGKILL at a chosen point, restart on the same SQLite log.

The travel backends (examples/travel) keep running and remember what they
applied; one of their calls is held (ConfigureRequest.delay_ms) so the
gateway can be SIGKILLed at a known point of a saga. A new gateway on the
same saga log must find the unfinished saga and drive it to COMPENSATED,
each compensation applied once (the backends deduplicate repeats by
(baton-saga-id, baton-step) and count them):

  kill_after_commit      reserve and pay COMMITTED, the seat step held:
                         killed; after the restart, refund then cancel
  kill_in_flight_applied the payment held after it was applied (its answer
                         lost): killed; the in-flight step counts as
                         possibly committed: refunded (found by saga id and
                         step, the gateway never saw its id), then cancel
  kill_in_flight_never   the payment held before it applies: killed, so it
                         never happens; its compensation still runs and is
                         safe ("refund-noop"), then cancel
  kill_during_refund     the seat fails; the refund applied and held, the
                         gateway killed; after the restart the refund is
                         sent again (a duplicate the backend ignores), then
                         cancel
  kill_during_cancel     the refund done (COMPENSATED in the log) and the
                         cancel held: killed; after the restart only the
                         cancel is sent again, not the refund

Each ends with `baton-gateway sagas --state COMPENSATED` listing the saga,
a booking through the restarted gateway, and one more restart that must
not compensate anything again.

  saga_crash.py --case=NAME --gateway=PATH --travel-bin-dir=DIR
                [--descriptors=travel_proto.pb]
"""

import sys
import time

import harness
import gateway_env as ge
import saga_env as se
from saga_env import ops, op_names, find_op, expect_error, saga_of, check_log


def log_before_kill(check, gw, saga, steps, what):
    """What the log holds just before the crash (read while the gateway runs)."""
    lst = gw.sagas()
    for name, st in steps.items():
        got = lst.step(saga, name)
        check(got is not None and got[0] == st, f"{what}: before the kill, step {name} is {st} in the log ({got})")
    return lst


def crash_and_recover(env, check, gw, fut, saga, what):
    gw.kill()
    err = ge.rpc_error(fut.result) if fut is not None else None
    harness.log(f"  the client's call ended with {ge.describe_error(err)}")
    check(fut is None or err is not None, f"{what}: the client did not get OK from a killed gateway")
    st = env.states()
    harness.log(f"  after the kill: reservations {ops(st['reservations'], saga)}, payments "
                f"{ops(st['payments'], saga)}")
    return st


def restart(env, gw, saga):
    for b in env.backends.values():
        b.configure()  # no more holds: the recovery runs at full speed
    gw.start()


def after_recovery(env, check, gw, saga, what, dup_res=0, dup_pay=0, pay_calls=None):
    """The saga ends COMPENSATED, listed by --state COMPENSATED; the gateway serves; one more
    restart changes nothing."""
    lst = check_log(check, gw, saga, "COMPENSATED", {"reserve": "COMPENSATED", "pay": "COMPENSATED"}, what)
    comp = gw.sagas("--state", "COMPENSATED")
    check(saga in comp.ids() and all(s["state"] == "COMPENSATED" for s in comp.sagas.values()),
          f"{what}: `sagas --state COMPENSATED` lists the saga, and only COMPENSATED ones "
          f"({ {k: v['state'] for k, v in comp.sagas.items()} })")
    unfinished = [k for k, v in gw.sagas().sagas.items() if v["state"] in ("RUNNING", "COMPENSATING")]
    check(not unfinished, f"{what}: no saga left RUNNING or COMPENSATING ({unfinished})")
    st = env.states()
    r, p = st["reservations"], st["payments"]
    check(r.duplicates_ignored == dup_res and p.duplicates_ignored == dup_pay,
          f"{what}: repeats ignored by reservations {r.duplicates_ignored} (want {dup_res}), payments "
          f"{p.duplicates_ignored} (want {dup_pay})")
    if pay_calls is not None:
        check(p.calls == pay_calls, f"{what}: payments called {p.calls} times, want {pay_calls}")
    # The restarted gateway serves new sagas.
    resp = gw.book()
    check(resp.reservation_id.startswith("res-"), f"{what}: a booking through the restarted gateway succeeds")
    before = {n: ops(s) for n, s in env.states().items()}
    # A clean stop and one more start: the saga has ended, nothing is redone.
    gw.stop()
    gw.start()
    time.sleep(1.0)
    after = {n: ops(s) for n, s in env.states().items()}
    check(after == before, f"{what}: another restart applied nothing ({after if after != before else 'same'})")
    lst = gw.sagas()
    check(lst.state(saga) == "COMPENSATED", f"{what}: still COMPENSATED ({lst.describe(saga)})")


def keys(st, saga):
    c, p = find_op(st["reservations"], "create", saga), find_op(st["payments"], "pay", saga)
    return (c.key if c else "?"), (p.key if p else "?")


# ---- cases -------------------------------------------------------------------------------


def case_kill_after_commit(env, check):
    gw = env.gateway()
    env.seats.configure(delay_ms=30000, delay_methods=["Assign"])
    fut = gw.book_async(timeout=40)
    env.seats.wait(lambda s: s.calls >= 1, 10)
    st = env.states()
    saga = saga_of(st["reservations"], "create") or "?"
    log_before_kill(check, gw, saga, {"reserve": "COMMITTED", "pay": "COMMITTED"}, "after commit")
    st = crash_and_recover(env, check, gw, fut, saga, "after commit")
    res_key, pay_key = keys(st, saga)
    check(op_names(st["reservations"], saga) == ["create"] and op_names(st["payments"], saga) == ["pay"],
          "nothing compensated by the dead gateway")
    restart(env, gw, saga)
    se.check_refund_then_cancel(check, env, saga, pay_key, res_key, "after commit")
    after_recovery(env, check, gw, saga, "after commit", pay_calls=2)


def case_kill_in_flight_applied(env, check):
    gw = env.gateway()
    env.pay.configure(delay_ms=30000, delay_methods=["Pay"], apply_before_delay=True)
    fut = gw.book_async(timeout=40)
    env.pay.wait(lambda s: "pay" in op_names(s), 10)
    st = env.states()
    saga = saga_of(st["reservations"], "create") or "?"
    log_before_kill(check, gw, saga, {"reserve": "COMMITTED", "pay": "STARTED"}, "in flight, applied")
    st = crash_and_recover(env, check, gw, fut, saga, "in flight, applied")
    res_key, pay_key = keys(st, saga)
    restart(env, gw, saga)
    se.check_refund_then_cancel(check, env, saga, pay_key, res_key, "in flight, applied")
    recs = {x.key: x.status for x in env.pay.get().records}
    check(recs.get(pay_key) == "REFUNDED", f"the payment the gateway never heard of is REFUNDED ({recs})")
    check(env.seats.get().calls == 0, "no seat step")
    after_recovery(env, check, gw, saga, "in flight, applied", pay_calls=2)


def case_kill_in_flight_never(env, check):
    gw = env.gateway()
    env.pay.configure(delay_ms=30000, delay_methods=["Pay"], apply_before_delay=False)
    fut = gw.book_async(timeout=40)
    env.pay.wait(lambda s: s.calls >= 1, 10)
    st = env.states()
    saga = saga_of(st["reservations"], "create") or "?"
    log_before_kill(check, gw, saga, {"reserve": "COMMITTED", "pay": "STARTED"}, "in flight, never applied")
    st = crash_and_recover(env, check, gw, fut, saga, "in flight, never applied")
    p = env.pay.wait(lambda s: s.cancelled >= 1, 5)
    check(p.cancelled == 1 and not p.ops,
          f"the held payment was cancelled, never applied ({p.cancelled}, {ops(p)})")
    res_key, _ = keys(st, saga)
    restart(env, gw, saga)
    se.check_refund_then_cancel(check, env, saga, "", res_key, "in flight, never applied", paid=False)
    p = env.pay.get()
    check(not p.records, f"payments: no payment record ({len(p.records)})")
    after_recovery(env, check, gw, saga, "in flight, never applied", pay_calls=2)


def case_kill_during_refund(env, check):
    gw = env.gateway(comp_timeout="40s")
    env.pay.configure(delay_ms=30000, delay_methods=["Refund"], apply_before_delay=True)
    err = ge.rpc_error(lambda: gw.book(flight="FULL"))
    expect_error(check, err, "RESOURCE_EXHAUSTED", "full flight", step="seat")
    env.pay.wait(lambda s: "refund" in op_names(s), 10)
    st = env.states()
    saga = saga_of(st["reservations"], "create") or "?"
    lst = log_before_kill(check, gw, saga, {"reserve": "COMMITTED", "pay": "COMMITTED"}, "during refund")
    check(lst.state(saga) == "COMPENSATING", f"before the kill: {lst.describe(saga)}, want COMPENSATING")
    st = crash_and_recover(env, check, gw, None, saga, "during refund")
    check(op_names(st["reservations"], saga) == ["create"], "the cancel waits for the refund: not sent yet")
    res_key, pay_key = keys(st, saga)
    restart(env, gw, saga)
    se.check_refund_then_cancel(check, env, saga, pay_key, res_key, "during refund")
    # The refund was applied before the crash; sent again, it is a repeat.
    after_recovery(env, check, gw, saga, "during refund", dup_pay=1, pay_calls=3)


def case_kill_during_cancel(env, check):
    gw = env.gateway(comp_timeout="40s")
    env.res.configure(delay_ms=30000, delay_methods=["Cancel"], apply_before_delay=True)
    err = ge.rpc_error(lambda: gw.book(flight="FULL"))
    expect_error(check, err, "RESOURCE_EXHAUSTED", "full flight", step="seat")
    env.res.wait(lambda s: "cancel" in op_names(s), 10)
    st = env.states()
    saga = saga_of(st["reservations"], "create") or "?"
    lst = log_before_kill(check, gw, saga, {"reserve": "COMMITTED", "pay": "COMPENSATED"}, "during cancel")
    check(lst.state(saga) == "COMPENSATING", f"before the kill: {lst.describe(saga)}, want COMPENSATING")
    st = crash_and_recover(env, check, gw, None, saga, "during cancel")
    res_key, pay_key = keys(st, saga)
    restart(env, gw, saga)
    se.check_refund_then_cancel(check, env, saga, pay_key, res_key, "during cancel")
    # Only the cancel is sent again; the refund, COMPENSATED in the log, is not.
    after_recovery(env, check, gw, saga, "during cancel", dup_res=1, pay_calls=2)


CASES = {
    "kill_after_commit": (case_kill_after_commit, {}),
    "kill_in_flight_applied": (case_kill_in_flight_applied, {}),
    "kill_in_flight_never": (case_kill_in_flight_never, {}),
    "kill_during_refund": (case_kill_during_refund, {}),
    "kill_during_cancel": (case_kill_during_cancel, {}),
}

if __name__ == "__main__":
    sys.exit(se.run_main(__doc__, CASES, sys.argv[1:]))
