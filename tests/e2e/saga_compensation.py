#!/usr/bin/python3
"""Sagas end to end, live: python3-grpcio client -> baton-gateway -> the travel backends.

Starts travel-reservations, -payments and -seats (examples/travel, C from the
generated stubs) on free loopback ports, baton-gateway on saga/travel.yaml
with a SQLite saga log, and runs one case. What each backend applied (its
Get: ops in order, with the baton-saga-id and baton-step they came with,
counters) and `baton-gateway sagas` are the evidence:

  completed        a booking that succeeds: one saga id on the three calls,
                   steps "reserve", "pay", "seat", nothing compensated, the
                   saga COMPLETED in the log
  payment_fails    card "tok_declined": the client gets the payment's
                   FAILED_PRECONDITION at once (before the slow cancel is
                   applied); the reservation is cancelled exactly once (ops
                   create, cancel), nothing refunded, no seat; saga
                   COMPENSATED (reserve COMPENSATED, pay FAILED)
  seat_fails       flight "FULL": RESOURCE_EXHAUSTED; the payment is
                   refunded, then the reservation cancelled, in that order
                   (the refund takes 1 s: run in parallel, the cancel would
                   come first), after the client heard; each applied once
  client_deadline  a 500 ms client deadline against a 3 s seat step:
                   DEADLINE_EXCEEDED within 100 ms of the deadline, then
                   refund and cancel complete; again with the payment in
                   flight (applied, answer pending): its refund finds it by
                   saga id and step; and over raw HTTP/2 (grpc-timeout 500m,
                   no client-side timer): the gateway's own answer comes
                   within 100 ms of the deadline
  flow_deadline    the flow's own 600 ms timeout against a 3 s seat step:
                   DEADLINE_EXCEEDED within 100 ms of it, then refund and
                   cancel
  client_cancel    the client cancels while the seat is being assigned:
                   the seat call is cancelled, refund and cancel complete

  saga_compensation.py --case=NAME --gateway=PATH --travel-bin-dir=DIR
                       [--descriptors=travel_proto.pb]

At the end every process gets SIGTERM and must exit cleanly with no
sanitizer report.
"""

import sys
import time

import harness
import gateway_env as ge
import saga_env as se
from saga_env import (ops, op_names, find_op, expect_error, saga_of, check_sequence, check_refund_then_cancel,
                      check_log)


# ---- cases -------------------------------------------------------------------------


def case_completed(env, check):
    gw = env.gateway()
    resp = gw.book(flight="F1", seat="window")
    check(resp.reservation_id.startswith("res-") and resp.payment_id.startswith("pay-") and resp.seat != "",
          f"booking answered {resp.reservation_id!r}, {resp.payment_id!r}, seat {resp.seat!r}")
    st = env.states()
    saga = saga_of(st["reservations"], "create") or ""
    check(se.SAGA_ID_RE.match(saga), f"Reservations/Create carried a baton-saga-id ({saga!r})")
    check_sequence(check, st["reservations"], saga, [("create", resp.reservation_id, "reserve")], "reservations")
    check_sequence(check, st["payments"], saga, [("pay", resp.payment_id, "pay")], "payments")
    check(op_names(st["seats"], saga) == ["assign"] and st["seats"].ops[0].step == "seat",
          f"seats: one assign with step 'seat' in saga {saga[:8]}.. ({se.ops(st['seats'])})")
    check(all(len(s.ops) == 1 and s.calls == 1 and s.duplicates_ignored == 0 for s in st.values()),
          "each backend called once, nothing else applied")
    resp2 = gw.book(flight="F1", seat="aisle")
    saga2 = env.res.get().ops[-1].saga_id
    check(saga2 != saga and se.SAGA_ID_RE.match(saga2), f"a second booking is another saga ({saga2!r})")
    check(resp2.reservation_id != resp.reservation_id, "a second reservation id")
    # COMPLETED is durable before the client hears OK.
    lst = gw.sagas()
    check(lst.rc == 0 and lst.state(saga) == "COMPLETED" and lst.state(saga2) == "COMPLETED",
          f"`sagas`: both COMPLETED ({lst.describe(saga)}; {lst.describe(saga2)})")
    for step in ("reserve", "pay"):
        got = lst.step(saga, step)
        check(got is not None and got[0] == "COMMITTED", f"step {step} COMMITTED in the log ({got})")
    check(not lst.unparsed, f"every line of `sagas` parsed ({lst.unparsed})")
    comp = gw.sagas("--state", "COMPENSATED")
    check(comp.rc == 0 and not comp.sagas, f"`sagas --state COMPENSATED`: none ({list(comp.sagas)})")
    bad = gw.sagas("--state", "NOT_A_STATE")
    check(bad.rc not in (0, None), f"`sagas --state NOT_A_STATE` fails (exit {bad.rc})")
    time.sleep(0.3)
    after = env.states()
    check(not any(o.op.startswith(("cancel", "refund")) for s in after.values() for o in s.ops),
          "nothing compensated")


def case_payment_fails(env, check):
    gw = env.gateway()
    # The cancel is held 1 s: the client must hear of the payment at once,
    # not after its compensation.
    env.res.configure(delay_ms=1000, delay_methods=["Cancel"])
    start = time.monotonic()
    err = ge.rpc_error(lambda: gw.book(card="tok_declined"))
    ms = ge.elapsed_ms(start)
    expect_error(check, err, "FAILED_PRECONDITION", "declined card", step="pay")
    harness.log(f"  the client heard after {ms:.0f} ms")
    r0 = env.res.get()
    saga = saga_of(r0, "create") or "?"
    res_key = find_op(r0, "create").key if find_op(r0, "create") else "?"
    check("cancel" not in op_names(r0), "the client heard before the (1 s) cancel was applied")
    r = env.res.wait(lambda s: "cancel" in op_names(s), 10)
    time.sleep(0.5)  # a late duplicate would show now
    r = env.res.get()
    check_sequence(check, r, saga, [("create", res_key, "reserve"), ("cancel", res_key, "compensate:reserve")],
                   "reservations")
    check(r.calls == 2 and r.duplicates_ignored == 0,
          f"reservations: 2 calls, no repeat (calls {r.calls}, duplicates {r.duplicates_ignored})")
    rec = [x for x in r.records if x.key == res_key]
    check(rec and rec[0].status == "CANCELLED", f"reservation {res_key} CANCELLED ({[str(x) for x in rec]})")
    p, s = env.pay.get(), env.seats.get()
    check(not [o for o in p.ops if o.op.startswith("refund")], f"nothing refunded ({ops(p)})")
    check(s.calls == 0, f"no seat assigned (seats calls {s.calls})")
    check_log(check, gw, saga, "COMPENSATED", {"reserve": "COMPENSATED", "pay": "FAILED"}, "declined card")


def case_seat_fails(env, check):
    gw = env.gateway()
    # A slow refund: run together with the cancel, the cancel would land
    # first; and the client must not wait for it.
    env.pay.configure(delay_ms=1000, delay_methods=["Refund"])
    start = time.monotonic()
    err = ge.rpc_error(lambda: gw.book(flight="FULL"))
    ms = ge.elapsed_ms(start)
    expect_error(check, err, "RESOURCE_EXHAUSTED", "full flight", step="seat")
    st = env.states()
    harness.log(f"  the client heard after {ms:.0f} ms")
    check(not [o for s in st.values() for o in s.ops if o.op.startswith(("refund", "cancel"))],
          "the client heard before the (1 s) refund and the cancel were applied")
    saga = saga_of(st["reservations"], "create") or "?"
    res_key = find_op(st["reservations"], "create").key
    pay_key = find_op(st["payments"], "pay").key if find_op(st["payments"], "pay") else "?"
    check_refund_then_cancel(check, env, saga, pay_key, res_key, "full flight")
    time.sleep(0.5)
    st = env.states()
    check(st["payments"].duplicates_ignored == 0 and st["reservations"].duplicates_ignored == 0
          and st["payments"].calls == 2 and st["reservations"].calls == 2,
          f"each compensation sent once (payments calls {st['payments'].calls}, reservations calls "
          f"{st['reservations'].calls}, duplicates {st['payments'].duplicates_ignored}/"
          f"{st['reservations'].duplicates_ignored})")
    recs = {x.key: x.status for s in (st["payments"], st["reservations"]) for x in s.records}
    check(recs.get(pay_key) == "REFUNDED" and recs.get(res_key) == "CANCELLED",
          f"payment REFUNDED, reservation CANCELLED ({recs})")
    check_log(check, gw, saga, "COMPENSATED", {"reserve": "COMPENSATED", "pay": "COMPENSATED"}, "full flight")


def timed_deadline(check, fn, deadline_ms, what, attempts_left):
    start = time.monotonic()
    err = ge.rpc_error(fn)
    ms = ge.elapsed_ms(start)
    expect_error(check, err, "DEADLINE_EXCEEDED", what)
    prompt = deadline_ms - 5 <= ms <= deadline_ms + 100
    if not prompt and attempts_left:
        harness.log(f"  note: {what}: answered after {ms:.0f} ms; one more try (a loaded machine)")
        return False
    check(prompt, f"{what}: answered after {ms:.0f} ms, want within 100 ms of the {deadline_ms} ms deadline")
    return True


def case_client_deadline(env, check):
    gw = env.gateway()
    gw.book()  # warm: connections up
    env.states()
    for b in env.backends.values():
        b.reset()

    # 1. The seat step outlives the client's deadline: both committed steps undone.
    env.seats.configure(delay_ms=3000, delay_methods=["Assign"])
    for attempt in range(3):
        if timed_deadline(check, lambda: gw.book(timeout=0.5), 500, "seat in flight", 2 - attempt):
            break
    st = env.states()
    sagas = se.saga_ids(st["reservations"])
    for saga in sagas:
        res_key = find_op(st["reservations"], "create", saga).key
        pay_key = find_op(st["payments"], "pay", saga).key
        check_refund_then_cancel(check, env, saga, pay_key, res_key, f"seat in flight, saga {saga[:8]}..")
        check_log(check, gw, saga, "COMPENSATED", {"reserve": "COMPENSATED", "pay": "COMPENSATED"},
                  "seat in flight")
    s = env.seats.wait(lambda s: s.cancelled >= len(sagas), 3)
    check(s.cancelled == len(sagas) and not s.ops,
          f"seats: the held assignment(s) cancelled, none applied (cancelled {s.cancelled}, ops {ops(s)})")
    env.seats.configure()
    for b in env.backends.values():
        b.reset()

    # 2. The payment in flight when the deadline passes: applied at the
    # backend, its answer never heard. Possibly committed: refunded anyway,
    # found by (saga id, "compensate:pay").
    env.pay.configure(delay_ms=3000, delay_methods=["Pay"], apply_before_delay=True)
    for attempt in range(3):
        if timed_deadline(check, lambda: gw.book(timeout=0.5), 500, "payment in flight", 2 - attempt):
            break
    st = env.states()
    se.saga_ids(st["reservations"])
    for o in [o for o in st["reservations"].ops if o.op == "create"]:
        saga = o.saga_id
        pay = find_op(env.pay.get(), "pay", saga)
        check(pay is not None, f"payment in flight: the payment was applied ({ops(env.pay.get(), saga)})")
        check_refund_then_cancel(check, env, saga, pay.key if pay else "?", o.key,
                                 f"payment in flight, saga {saga[:8]}..")
        recs = {x.key: x.status for x in env.pay.get().records}
        check(pay is not None and recs.get(pay.key) == "REFUNDED", f"payment {pay and pay.key} REFUNDED ({recs})")
        check_log(check, gw, saga, "COMPENSATED", {"reserve": "COMPENSATED", "pay": "COMPENSATED"},
                  "payment in flight")
    check(env.seats.get().calls == 0, "payment in flight: no seat step")
    env.pay.configure()
    for b in env.backends.values():
        b.reset()

    # 3. Raw HTTP/2 with grpc-timeout and no timer of the client's own: the
    # gateway itself must answer DEADLINE_EXCEEDED on time.
    import bad_input

    env.seats.configure(delay_ms=3000, delay_methods=["Assign"])
    body = bad_input.grpc_frame(env.trip().SerializeToString())
    for attempt in range(3):
        c = bad_input.H2Client(gw.port)
        try:
            start = time.monotonic()
            sid = c.request(c.headers(path="/travel.v1.Travel/BookTrip", extra=[("grpc-timeout", "500m")]),
                            body=body)
            stream = c.wait(sid, timeout=5)
            ms = ge.elapsed_ms(start)
            got = c.describe(sid)
        finally:
            c.close()
        check(stream.grpc_status == 4, f"raw h2, grpc-timeout 500m: grpc-status 4 (DEADLINE_EXCEEDED), got {got}")
        prompt = 495 <= ms <= 600
        if prompt or attempt == 2:
            check(prompt, f"raw h2: the gateway answered after {ms:.0f} ms, want within 100 ms of 500 ms")
            break
        harness.log(f"  note: raw h2 answered after {ms:.0f} ms; one more try")
    st = env.states()
    se.saga_ids(st["reservations"])
    for o in [o for o in st["reservations"].ops if o.op == "create"]:
        pay = find_op(env.pay.get(), "pay", o.saga_id)
        check_refund_then_cancel(check, env, o.saga_id, pay.key if pay else "?", o.key,
                                 f"raw h2, saga {o.saga_id[:8]}..")


def case_flow_deadline(env, check):
    gw = env.gateway(flow_timeout="600ms", step_timeout="5s")
    gw.book()  # warm
    for b in env.backends.values():
        b.reset()
    env.seats.configure(delay_ms=3000, delay_methods=["Assign"])
    for attempt in range(3):
        if timed_deadline(check, lambda: gw.book(timeout=10), 600, "flow timeout 600 ms", 2 - attempt):
            break
    st = env.states()
    se.saga_ids(st["reservations"])
    creates = [o for o in st["reservations"].ops if o.op == "create"]
    check(creates, "the saga reached the backends")
    for o in creates:
        pay = find_op(st["payments"], "pay", o.saga_id)
        check_refund_then_cancel(check, env, o.saga_id, pay.key if pay else "?", o.key,
                                 f"flow timeout, saga {o.saga_id[:8]}..")
        check_log(check, gw, o.saga_id, "COMPENSATED", {"reserve": "COMPENSATED", "pay": "COMPENSATED"},
                  "flow timeout")


def case_client_cancel(env, check):
    gw = env.gateway()
    env.seats.configure(delay_ms=5000, delay_methods=["Assign"])
    fut = gw.book_async(timeout=20)
    s = env.seats.wait(lambda s: s.calls >= 1, 10)
    check(s.calls == 1, "the seat step is in flight")
    fut.cancel()
    err = ge.rpc_error(fut.result) if not fut.cancelled() else None
    harness.log(f"  the client's call: cancelled={fut.cancelled()} ({ge.describe_error(err)})")
    st = env.states()
    saga = saga_of(st["reservations"], "create") or "?"
    res_key = find_op(st["reservations"], "create").key
    pay_key = find_op(st["payments"], "pay").key
    check_refund_then_cancel(check, env, saga, pay_key, res_key, "client cancel")
    s = env.seats.wait(lambda s: s.cancelled >= 1, 3)
    check(s.cancelled == 1 and not s.ops,
          f"seats: the assignment cancelled, not applied ({s.cancelled}, {ops(s)})")
    check_log(check, gw, saga, "COMPENSATED", {"reserve": "COMPENSATED", "pay": "COMPENSATED"}, "client cancel")


CASES = {
    "completed": (case_completed, {}),
    "payment_fails": (case_payment_fails, {}),
    "seat_fails": (case_seat_fails, {}),
    "client_deadline": (case_client_deadline, {}),
    "flow_deadline": (case_flow_deadline, {}),
    "client_cancel": (case_client_cancel, {}),
}

if __name__ == "__main__":
    sys.exit(se.run_main(__doc__, CASES, sys.argv[1:]))
