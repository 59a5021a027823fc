#!/usr/bin/python3
"""Compensations whose backend is down: retried, or given up and kept as COMPENSATION_FAILED.

The travel backends (examples/travel) behind baton-gateway with a SQLite
saga log; a booking on flight "FULL" fails at the seat step, so the payment
must be refunded, then the reservation cancelled:

  comp_backend_down   travel-payments SIGKILLed after the payment, so every
                      refund attempt fails (connection refused); the cancel
                      waits. Restarted on the same port 2.5 s later (without
                      its memory: the refund is a "refund-noop" there), the
                      refund gets through, then the cancel; the saga ends
                      COMPENSATED with more than one attempt logged
  comp_failed_retry   Payments/Refund answers UNAVAILABLE for good
                      (ConfigureRequest.unavailable_methods) and the
                      compensation allows 3 attempts: exactly 3 reach the
                      backend, the saga is COMPENSATION_FAILED, logged at
                      error level, listed by `sagas --state
                      COMPENSATION_FAILED`. With the backend back and the
                      gateway stopped, `sagas --retry ID` puts it back; the
                      restarted gateway refunds the payment (once) and the
                      saga ends COMPENSATED. --retry of a saga that is not
                      COMPENSATION_FAILED, or of an unknown id, fails.

  saga_retry.py --case=NAME --gateway=PATH --travel-bin-dir=DIR
                [--descriptors=travel_proto.pb]
"""

import re
import sys
import time

import harness
import gateway_env as ge
import saga_env as se
from saga_env import ops, op_names, find_op, expect_error, saga_of, check_sequence, check_log


def case_comp_backend_down(env, check):
    gw = env.gateway(comp_attempts=100, comp_backoff="50ms", comp_max_backoff="300ms")
    # The seat step is held 1.5 s: time to kill payments after the payment.
    env.seats.configure(delay_ms=1500, delay_methods=["Assign"])
    fut = gw.book_async(flight="FULL", timeout=20)
    env.pay.wait(lambda s: "pay" in op_names(s), 10)
    st = env.states()
    saga = saga_of(st["reservations"], "create") or "?"
    res_key = find_op(st["reservations"], "create").key
    env.pay.kill()
    err = ge.rpc_error(fut.result)
    expect_error(check, err, "RESOURCE_EXHAUSTED", "full flight", step="seat")
    time.sleep(2.5)  # down for a while: refunds fail, the cancel must wait
    r = env.res.get()
    check(op_names(r, saga) == ["create"], f"while payments is down the cancel waits ({ops(r, saga)})")
    lst = gw.sagas()
    check(lst.state(saga) == "COMPENSATING", f"while payments is down: {lst.describe(saga)}, want COMPENSATING")
    env.pay.restart()
    p = env.pay.wait(lambda s: any(o.op.startswith("refund") for o in s.ops), 20)
    got = [(o.op, o.step) for o in p.ops if o.saga_id == saga]
    check(got == [("refund-noop", "compensate:pay")],
          f"the restarted payments got the refund once (a no-op: it lost its memory): {got}")
    r = env.res.wait(lambda s: "cancel" in op_names(s, saga), 15)
    check_sequence(check, r, saga, [("create", res_key, "reserve"), ("cancel", res_key, "compensate:reserve")],
                   "reservations")
    refund, cancel = find_op(p, "refund-noop", saga), find_op(r, "cancel", saga)
    check(refund is not None and cancel is not None and refund.at_us < cancel.at_us,
          "the cancel came after the refund got through")
    lst = check_log(check, gw, saga, "COMPENSATED", {"reserve": "COMPENSATED", "pay": "COMPENSATED"},
                    "payments down for a while")
    attempts = (lst.step(saga, "pay") or ("", 0))[1]
    check(attempts >= 2, f"the refund took several attempts (logged {attempts})")
    time.sleep(0.5)
    p, r = env.pay.get(), env.res.get()
    check(p.calls == 1 and p.duplicates_ignored == 0 and r.duplicates_ignored == 0,
          f"each compensation applied once (payments calls {p.calls}, duplicates {p.duplicates_ignored}/"
          f"{r.duplicates_ignored})")


def case_comp_failed_retry(env, check):
    gw = env.gateway(comp_attempts=3, comp_backoff="20ms", comp_max_backoff="50ms")
    env.pay.configure(unavailable_methods=["Refund"])
    err = ge.rpc_error(lambda: gw.book(flight="FULL"))
    expect_error(check, err, "RESOURCE_EXHAUSTED", "full flight", step="seat")
    st = env.states()
    saga = saga_of(st["reservations"], "create") or "?"
    res_key = find_op(st["reservations"], "create").key
    pay_key = find_op(st["payments"], "pay").key
    lst = check_log(check, gw, saga, "COMPENSATION_FAILED", {"pay": "COMPENSATION_FAILED"}, "refund down for good")
    check((lst.step(saga, "pay") or ("", 0))[1] == 3, f"3 refund attempts logged ({lst.step(saga, 'pay')})")
    p = env.pay.get()
    check(p.unavailable == 3 and not [o for o in p.ops if o.op.startswith("refund")],
          f"exactly 3 refund attempts reached payments, none applied (unavailable {p.unavailable})")
    failed = gw.sagas("--state", "COMPENSATION_FAILED")
    check(failed.ids() == [saga], f"`sagas --state COMPENSATION_FAILED` lists just this saga ({failed.ids()})")
    others = gw.sagas("--state", "COMPENSATED")
    check(saga not in others.ids(), "not listed as COMPENSATED")
    lines = [l for l in gw.proc.output().splitlines() if saga in l and "COMPENSATION_FAILED" in l]
    check(any(re.search(r"error", l, re.I) for l in lines),
          f"the gateway logged the COMPENSATION_FAILED saga at error level ({lines})")
    r = env.res.get()
    check(op_names(r, saga).count("cancel") <= 1, f"the reservation cancelled at most once ({ops(r, saga)})")
    harness.log(f"  note: after the refund gave up, reservations has {ops(r, saga)}")
    time.sleep(0.5)
    check(env.pay.get().unavailable == 3, "no more attempts once COMPENSATION_FAILED")

    # The backend comes back; an operator retries the saga.
    env.pay.configure()
    gw.stop()
    bad = gw.sagas("--retry", "0123456789abcdef0123456789abcdef")
    check(bad.rc not in (0, None), f"--retry of an unknown saga fails (exit {bad.rc})")
    ok = gw.sagas("--retry", saga)
    check(ok.rc == 0, f"--retry {saga[:8]}.. succeeds (exit {ok.rc})")
    lst = gw.sagas()
    check(lst.state(saga) == "COMPENSATING", f"after --retry: {lst.describe(saga)}, want COMPENSATING")
    again = gw.sagas("--retry", saga)
    check(again.rc not in (0, None), f"--retry of a saga that is not COMPENSATION_FAILED fails (exit {again.rc})")
    gw.start()
    lst = check_log(check, gw, saga, "COMPENSATED", {"reserve": "COMPENSATED", "pay": "COMPENSATED"},
                    "after --retry")
    p = env.pay.wait(lambda s: "refund" in op_names(s, saga), 10)
    check_sequence(check, p, saga, [("pay", pay_key, "pay"), ("refund", pay_key, "compensate:pay")], "payments")
    r = env.res.wait(lambda s: "cancel" in op_names(s, saga), 10)
    check_sequence(check, r, saga, [("create", res_key, "reserve"), ("cancel", res_key, "compensate:reserve")],
                   "reservations")
    recs = {x.key: x.status for s in (p, r) for x in s.records}
    check(recs.get(pay_key) == "REFUNDED" and recs.get(res_key) == "CANCELLED", f"refunded and cancelled ({recs})")
    failed = gw.sagas("--state", "COMPENSATION_FAILED")
    check(failed.rc == 0 and not failed.ids(), f"nothing COMPENSATION_FAILED any more ({failed.ids()})")


CASES = {
    "comp_backend_down": (case_comp_backend_down, {}),
    "comp_failed_retry": (case_comp_failed_retry, {}),
}

if __name__ == "__main__":
    sys.exit(se.run_main(__doc__, CASES, sys.argv[1:]))
