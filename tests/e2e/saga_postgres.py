#!/usr/bin/python3
"""Two gateways on one PostgreSQL saga log: one dies mid-saga, the other finishes its sagas.

A throwaway PostgreSQL cluster (tests/e2e/pg.sh, Debian's postgresql
package), the travel backends (examples/travel), and two baton-gateways on
the same saga log with different owners and a 1 s lease:

  two_gateways  three bookings through gateway A are held at the payment
                (applied, answer pending). They stay A's while A lives: for
                2.5 s (more than two leases) B takes none of them over. Then
                a booking through B whose payment takes 2.5 s (B must not
                take over its own live saga) and A is SIGKILLed. B takes
                A's sagas over when A's lease runs out and compensates them:
                each payment refunded, each reservation cancelled, once;
                `sagas --state COMPENSATED` lists the three with owner B.
                B's own booking succeeds, COMPLETED, nothing of it undone.
  slow_compensation  one gateway, a 1 s lease: a refund that takes 3 s,
                then refunds refused for 2.5 s: each compensation is sent
                once (retried, not doubled by the gateway's periodic
                takeover of its own sagas), the saga ends COMPENSATED.

  saga_postgres.py --case=NAME --gateway=PATH --travel-bin-dir=DIR
                   [--descriptors=travel_proto.pb] [--pg-script=pg.sh]
"""

import sys
import time

import harness
import gateway_env as ge
import saga_env as se
from saga_env import ops, op_names, find_op, check_log


def pg_log(conninfo, owner, lease="1s"):
    return f'{{ postgres: "{conninfo}", lease: {lease}, owner: {owner} }}'


def case_two_gateways(env, check):
    conninfo = env.postgres()
    a = env.gateway("gw-a", saga_log=pg_log(conninfo, "gw-a"))
    b = env.gateway("gw-b", saga_log=pg_log(conninfo, "gw-b"))
    b.book()  # both work on the same log
    a.book()
    for be in env.backends.values():
        be.reset()

    env.pay.configure(delay_ms=60000, delay_methods=["Pay"], apply_before_delay=True)
    futs = [a.book_async(timeout=90) for _ in range(3)]
    p = env.pay.wait(lambda s: op_names(s).count("pay") >= 3, 15)
    st = env.states()
    sagas = se.saga_ids(st["reservations"])
    check(len(sagas) == 3 and op_names(p).count("pay") == 3, f"three sagas of A held at the payment ({sagas})")
    lst = b.sagas()
    for s in sagas:
        check(lst.state(s) == "RUNNING" and lst.sagas[s]["owner"] == "gw-a",
              f"A's saga listed RUNNING, owner gw-a ({lst.describe(s)})")

    # A is alive and renews its lease: its live sagas are left alone, by B
    # and by A's own periodic takeover.
    time.sleep(2.5)
    st = env.states()
    undone = [o for s in st.values() for o in s.ops if o.op.startswith(("cancel", "refund"))]
    check(not undone, f"nothing of A's live sagas compensated while A lives "
                      f"({[(o.op, o.saga_id[:8]) for o in undone]})")
    lst = b.sagas()
    check(all(lst.state(s) == "RUNNING" and lst.sagas[s]["owner"] == "gw-a" for s in sagas),
          f"A's sagas still RUNNING, owned by gw-a ({[lst.describe(s) for s in sagas]})")

    # B's own saga outlives two leases.
    env.pay.configure(delay_ms=2500, delay_methods=["Pay"], apply_before_delay=False)
    fut_b = b.book_async(timeout=30)
    env.pay.wait(lambda s: s.calls >= 4, 10)
    a.kill()
    for f in futs:
        err = ge.rpc_error(f.result)
        check(err is not None, f"A's client did not get OK from a killed gateway ({ge.describe_error(err)})")

    start = time.monotonic()
    for s in sagas:
        r = env.res.wait(lambda st: "cancel" in op_names(st, s), 20)
        p = env.pay.wait(lambda st: "refund" in op_names(st, s), 5)
        c, pay = find_op(r, "create", s), find_op(p, "pay", s)
        check(ops(p, s) == [("pay", pay.key, "pay"), ("refund", pay.key, "compensate:pay")],
              f"saga {s[:8]}..: payments {ops(p, s)}, want pay then refund of {pay.key}")
        check(ops(r, s) == [("create", c.key, "reserve"), ("cancel", c.key, "compensate:reserve")],
              f"saga {s[:8]}..: reservations {ops(r, s)}, want create then cancel of {c.key}")
        refund, cancel = find_op(p, "refund", s), find_op(r, "cancel", s)
        check(refund and cancel and refund.at_us < cancel.at_us, f"saga {s[:8]}..: refund before cancel")
    harness.log(f"  B compensated A's sagas {ge.elapsed_ms(start):.0f} ms after A died")
    for s in sagas:
        lst = check_log(check, b, s, "COMPENSATED", {"reserve": "COMPENSATED", "pay": "COMPENSATED"},
                        f"A's saga {s[:8]}..")
        check(lst.sagas.get(s, {}).get("owner") == "gw-b", f"taken over by gw-b ({lst.describe(s)})")
    comp = b.sagas("--state", "COMPENSATED")
    check(sorted(comp.ids()) == sorted(sagas), f"`sagas --state COMPENSATED` lists A's three ({comp.ids()})")

    resp = fut_b.result()
    check(resp.payment_id.startswith("pay-"), "B's own slow booking succeeded")
    st = env.states()
    mine = [o.saga_id for o in st["reservations"].ops if o.op == "create" and o.saga_id not in sagas]
    check(len(mine) == 1, f"one saga of B ({mine})")
    for s in mine:
        undone = [(o.op, o.key) for x in st.values() for o in x.ops
                  if o.saga_id == s and o.op.startswith(("cancel", "refund"))]
        check(not undone, f"nothing of B's own (successful) saga compensated ({undone})")
        lst = b.sagas()
        check(lst.state(s) == "COMPLETED", f"B's saga COMPLETED ({lst.describe(s)})")
    time.sleep(0.5)
    p, r = env.pay.get(), env.res.get()
    check(p.duplicates_ignored == 0 and r.duplicates_ignored == 0,
          f"no compensation sent twice (duplicates {p.duplicates_ignored}/{r.duplicates_ignored})")
    unfinished = [k for k, v in b.sagas().sagas.items() if v["state"] in ("RUNNING", "COMPENSATING")]
    check(not unfinished, f"no saga left unfinished ({unfinished})")


def case_slow_compensation(env, check):
    conninfo = env.postgres()
    gw = env.gateway("gw-a", saga_log=pg_log(conninfo, "gw-a"), comp_timeout="10s")
    # 1. A refund that takes 3 s, three leases (within the compensation's
    # timeout): the gateway's periodic takeover must not start a second
    # compensation of its own saga.
    env.pay.configure(delay_ms=3000, delay_methods=["Refund"])
    err = ge.rpc_error(lambda: gw.book(flight="FULL"))
    se.expect_error(check, err, "RESOURCE_EXHAUSTED", "full flight", step="seat")
    saga = se.saga_of(env.res.get(), "create")
    r = env.res.wait(lambda st: "cancel" in op_names(st, saga), 15)
    time.sleep(0.5)
    p, r = env.pay.get(), env.res.get()
    check(p.calls == 2 and p.duplicates_ignored == 0 and op_names(p, saga) == ["pay", "refund"],
          f"slow refund: sent once (payments calls {p.calls}, duplicates {p.duplicates_ignored}, "
          f"ops {ops(p, saga)})")
    check(r.calls == 2 and r.duplicates_ignored == 0 and op_names(r, saga) == ["create", "cancel"],
          f"slow refund: cancel sent once (reservations calls {r.calls}, duplicates {r.duplicates_ignored})")
    check_log(check, gw, saga, "COMPENSATED", {"reserve": "COMPENSATED", "pay": "COMPENSATED"}, "slow refund")
    for b in env.backends.values():
        b.reset()

    # 2. Refunds refused for 2.5 s, then accepted: one retry loop, not two.
    env.pay.configure(unavailable_methods=["Refund"])
    err = ge.rpc_error(lambda: gw.book(flight="FULL"))
    se.expect_error(check, err, "RESOURCE_EXHAUSTED", "full flight", step="seat")
    saga = se.saga_of(env.res.get(), "create")
    time.sleep(2.5)
    p = env.pay.configure()
    harness.log(f"  refund attempts refused while switched off: {p.unavailable}")
    check(p.unavailable >= 2, f"refunds were retried while refused ({p.unavailable} attempts)")
    r = env.res.wait(lambda st: "cancel" in op_names(st, saga), 15)
    time.sleep(0.5)
    p, r = env.pay.get(), env.res.get()
    check(op_names(p, saga) == ["pay", "refund"] and p.duplicates_ignored == 0,
          f"refund retried: applied once, never sent twice (ops {ops(p, saga)}, "
          f"duplicates {p.duplicates_ignored})")
    check(op_names(r, saga) == ["create", "cancel"] and r.duplicates_ignored == 0,
          f"refund retried: one cancel (ops {ops(r, saga)}, duplicates {r.duplicates_ignored})")
    check_log(check, gw, saga, "COMPENSATED", {"reserve": "COMPENSATED", "pay": "COMPENSATED"}, "refund retried")


CASES = {
    "two_gateways": (case_two_gateways, {}),
    "slow_compensation": (case_slow_compensation, {}),
}

if __name__ == "__main__":
    sys.exit(se.run_main(__doc__, CASES, sys.argv[1:]))
