#!/usr/bin/python3
"""Checks the three travel backends on their own, without the gateway:
idempotency by (baton-saga-id, baton-step), compensations of steps that
never happened, the failure switches, delays (a caller that gives up while a
call is held), UNAVAILABLE, Get/Reset/Configure and the command line.

    test_backends.py [--bin=build/examples/travel]

Starts its own backends on free ports; exits 0 when every check held.
"""

import argparse
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc

import travel_protos
from travel_protos import Backend, ops, saga_md

REPO = Path(__file__).resolve().parents[2]
failures = []


def check(cond, what):
    print(("   ok    " if cond else "   FAIL  ") + what)
    if not cond:
        failures.append(what)


def error_of(fn, *args, **kw):
    """The grpc.RpcError fn raised, or None."""
    try:
        fn(*args, **kw)
    except grpc.RpcError as e:
        return e
    return None


class Proc:
    """A backend process on a free port (it prints "listening on PORT")."""

    def __init__(self, binary, *flags):
        self.p = subprocess.Popen([str(binary), "--port=0", *flags], stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True)
        line = self.p.stdout.readline()
        m = re.fullmatch(r"listening on (\d+)\n", line)
        if not m:
            self.p.kill()
            raise SystemExit(f"{binary}: expected 'listening on PORT', got {line!r}")
        self.port = int(m.group(1))
        self.channel = grpc.insecure_channel(f"127.0.0.1:{self.port}")

    def stop(self):
        self.channel.close()
        self.p.terminate()
        try:
            rc = self.p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.p.kill()
            rc = "killed"
        rest = self.p.stdout.read()
        check(rc == 0, f"{self.p.args[0]} exits 0 on SIGTERM (got {rc}){': ' + rest if rest else ''}")


def test_reservations(r, pb):
    _, travel = pb
    print("== Reservations: idempotent Create and Cancel")
    md = saga_md("saga-1", "reserve")
    a = r.create(travel.CreateReservationRequest(customer_id="c1", flight_id="F1"), metadata=md)
    b = r.create(travel.CreateReservationRequest(customer_id="c1", flight_id="F1"), metadata=md)
    check(re.fullmatch(r"res-\d+", a.id) and a.status == "HELD" and a.flight_id == "F1",
          f"Create answers a HELD res-<n> ({a.id} {a.status})")
    check(a == b, "a repeated (saga-1, reserve) gets the same answer")
    s = r.get()
    check(ops(s) == [("create", a.id, "saga-1", "reserve")], f"one create applied: {ops(s)}")
    check(s.calls == 2 and s.duplicates_ignored == 1, f"calls 2, duplicates 1 ({s.calls}, {s.duplicates_ignored})")

    cmd = saga_md("saga-1", "compensate:reserve")
    c1 = r.cancel(travel.CancelReservationRequest(reservation_id=a.id), metadata=cmd)
    c2 = r.cancel(travel.CancelReservationRequest(reservation_id=a.id), metadata=cmd)
    check(c1.status == "CANCELLED" and c1 == c2, f"Cancel cancels, its repeat answers the same ({c1.status})")
    s = r.get()
    check([o[0] for o in ops(s)] == ["create", "cancel"], f"create then one cancel: {ops(s)}")
    check(s.duplicates_ignored == 2, f"duplicates 2 ({s.duplicates_ignored})")
    check([(x.key, x.status) for x in s.records] == [(a.id, "CANCELLED")], f"records: {[(x.key, x.status) for x in s.records]}")

    print("== Reservations: compensations of reservations that never happened")
    n = r.cancel(travel.CancelReservationRequest(reservation_id="res-999"),
                 metadata=saga_md("saga-2", "compensate:reserve"))
    check(n.id == "res-999" and n.status == "", f"Cancel of an unknown id is OK ({n.id!r} {n.status!r})")
    r.cancel(travel.CancelReservationRequest(), metadata=saga_md("saga-3", "compensate:reserve"))
    again = r.cancel(travel.CancelReservationRequest(reservation_id=a.id),
                     metadata=saga_md("saga-4", "compensate:reserve"))
    check(again.status == "CANCELLED", "Cancel of a cancelled reservation is OK")
    s = r.get()
    check(ops(s)[2:] == [("cancel-noop", "res-999", "saga-2", "compensate:reserve"),
                         ("cancel-noop", "", "saga-3", "compensate:reserve"),
                         ("cancel-noop", a.id, "saga-4", "compensate:reserve")],
          f"three cancel-noops: {ops(s)[2:]}")

    print("== Reservations: an empty id cancels what this saga's reserve step made")
    d = r.create(travel.CreateReservationRequest(customer_id="c2", flight_id="F2"),
                 metadata=saga_md("saga-5", "reserve"))
    e = r.cancel(travel.CancelReservationRequest(), metadata=saga_md("saga-5", "compensate:reserve"))
    check(e.id == d.id and e.status == "CANCELLED", f"Cancel('') in saga-5 cancelled {e.id}")

    print("== Reservations: no saga metadata, no deduplication")
    r.reset()
    r.create(travel.CreateReservationRequest(flight_id="F1"))
    r.create(travel.CreateReservationRequest(flight_id="F1"))
    s = r.get()
    check([o[0] for o in ops(s)] == ["create", "create"] and s.duplicates_ignored == 0,
          f"two creates: {ops(s)}")
    err = error_of(r.create, travel.CreateReservationRequest(customer_id="c"))
    check(err is not None and err.code() == grpc.StatusCode.INVALID_ARGUMENT,
          "Create without a flight_id: INVALID_ARGUMENT")


def test_payments(p, pb):
    _, travel = pb
    print("== Payments: declined cards, refunds, no-op refunds")
    md = saga_md("saga-1", "pay")
    e1 = error_of(p.pay, travel.PayRequest(reservation_id="res-1", card_token="tok_declined",
                                           amount_cents=100), metadata=md)
    e2 = error_of(p.pay, travel.PayRequest(reservation_id="res-1", card_token="tok_declined",
                                           amount_cents=100), metadata=md)
    check(e1 is not None and e1.code() == grpc.StatusCode.FAILED_PRECONDITION,
          f"tok_declined: FAILED_PRECONDITION ({e1 and e1.details()})")
    check(e2 is not None and e2.code() == e1.code() and e2.details() == e1.details(),
          "its repeat gets the same error")
    s = p.get()
    check(ops(s) == [] and s.duplicates_ignored == 1, f"nothing applied, one duplicate: {ops(s)}")

    n = p.refund(travel.RefundRequest(reservation_id="res-1", amount_cents=100),
                 metadata=saga_md("saga-1", "compensate:pay"))
    check(n.id == "" and n.status == "", f"Refund with no payment_id is OK ({n.id!r} {n.status!r})")

    md = saga_md("saga-2", "pay")
    a = p.pay(travel.PayRequest(reservation_id="res-2", card_token="tok_visa", amount_cents=12300),
              metadata=md)
    check(re.fullmatch(r"pay-\d+", a.id) and a.status == "CAPTURED" and a.amount_cents == 12300,
          f"Pay captures ({a.id} {a.status} {a.amount_cents})")
    cmd = saga_md("saga-2", "compensate:pay")
    b = p.refund(travel.RefundRequest(payment_id=a.id, reservation_id="res-2", amount_cents=12300),
                 metadata=cmd)
    b2 = p.refund(travel.RefundRequest(payment_id=a.id, reservation_id="res-2", amount_cents=12300),
                  metadata=cmd)
    check(b.status == "REFUNDED" and b == b2, "Refund refunds; its repeat answers the same")
    p.refund(travel.RefundRequest(payment_id=a.id), metadata=saga_md("saga-9", "compensate:pay"))
    s = p.get()
    check(ops(s) == [("refund-noop", "", "saga-1", "compensate:pay"),
                     ("pay", a.id, "saga-2", "pay"),
                     ("refund", a.id, "saga-2", "compensate:pay"),
                     ("refund-noop", a.id, "saga-9", "compensate:pay")],
          f"ops: {ops(s)}")
    err = error_of(p.pay, travel.PayRequest(reservation_id="res-3", amount_cents=-1))
    check(err is not None and err.code() == grpc.StatusCode.INVALID_ARGUMENT,
          "a negative amount: INVALID_ARGUMENT")


def test_seats(st, pb):
    _, travel = pb
    print("== Seats: assignment and a full flight")
    e = error_of(st.assign, travel.AssignSeatRequest(reservation_id="res-1", flight_id="FULL"),
                 metadata=saga_md("saga-1", "seat"))
    check(e is not None and e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED,
          f"flight FULL: RESOURCE_EXHAUSTED ({e and e.details()})")
    a = st.assign(travel.AssignSeatRequest(reservation_id="res-2", flight_id="F1", preference="window"),
                  metadata=saga_md("saga-2", "seat"))
    b = st.assign(travel.AssignSeatRequest(reservation_id="res-3", flight_id="F1", preference="aisle"),
                  metadata=saga_md("saga-3", "seat"))
    c = st.assign(travel.AssignSeatRequest(reservation_id="res-3", flight_id="F1", preference="aisle"),
                  metadata=saga_md("saga-3", "seat"))
    check((a.seat, b.seat, c.seat) == ("1A", "2C", "2C"), f"seats 1A, 2C, and 2C again: {a.seat} {b.seat} {c.seat}")
    s = st.get()
    check([o[0] for o in ops(s)] == ["assign", "assign"], f"two assigns: {ops(s)}")


def test_switches(r, pb):
    _, travel = pb
    req = travel.CreateReservationRequest(customer_id="c", flight_id="F1")
    r.reset()
    print("== switches: a call held 500 ms whose caller gives up applies nothing")
    r.configure(delay_ms=500, delay_methods=["Create"])
    t0 = time.monotonic()
    e = error_of(r.create, req, metadata=saga_md("saga-d1", "reserve"), timeout=0.1)
    check(e is not None and e.code() == grpc.StatusCode.DEADLINE_EXCEEDED,
          f"deadline 100 ms: DEADLINE_EXCEEDED in {(time.monotonic() - t0) * 1000:.0f} ms")
    c = r.cancel(travel.CancelReservationRequest(), metadata=saga_md("saga-d1", "compensate:reserve"))
    check(c.id == "", "Cancel is not delayed (only Create is)")
    time.sleep(0.2)
    s = r.get()
    check(ops(s) == [("cancel-noop", "", "saga-d1", "compensate:reserve")] and s.cancelled == 1,
          f"no create, one cancel-noop, cancelled 1: {ops(s)} cancelled={s.cancelled}")
    t0 = time.monotonic()
    ok = r.create(req, metadata=saga_md("saga-d2", "reserve"), timeout=5)
    ms = (time.monotonic() - t0) * 1000
    check(ok.status == "HELD" and 450 <= ms < 2000, f"a patient caller gets it after {ms:.0f} ms")

    print("== switches: apply_before_delay — applied, the answer lost")
    r.configure(delay_ms=500, apply_before_delay=True)
    e = error_of(r.create, req, metadata=saga_md("saga-d3", "reserve"), timeout=0.1)
    check(e is not None and e.code() == grpc.StatusCode.DEADLINE_EXCEEDED, "DEADLINE_EXCEEDED")
    c = r.cancel(travel.CancelReservationRequest(), metadata=saga_md("saga-d3", "compensate:reserve"),
                 timeout=5)
    check(c.status == "CANCELLED", f"Cancel('') finds and cancels it ({c.id})")

    print("== switches: two copies of one step arriving together apply once")
    r.configure(delay_ms=300)
    out = []
    ths = [threading.Thread(target=lambda: out.append(
        r.create(req, metadata=saga_md("saga-d4", "reserve"), timeout=5))) for _ in range(2)]
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    s = r.get()
    check(len(out) == 2 and out[0] == out[1], f"both got {out[0].id if out else '?'}")
    check([o for o in ops(s) if o[2] == "saga-d4"] == [("create", out[0].id, "saga-d4", "reserve")],
          "one create for saga-d4")

    print("== switches: unavailable, then back")
    r.configure(unavailable_methods=["Cancel"])
    e = error_of(r.cancel, travel.CancelReservationRequest(reservation_id=out[0].id),
                 metadata=saga_md("saga-d4", "compensate:reserve"))
    check(e is not None and e.code() == grpc.StatusCode.UNAVAILABLE, f"UNAVAILABLE ({e and e.details()})")
    r.configure()
    c = r.cancel(travel.CancelReservationRequest(reservation_id=out[0].id),
                 metadata=saga_md("saga-d4", "compensate:reserve"))
    check(c.status == "CANCELLED", "the retry after the switch is off applies (the refusal was not remembered)")
    s = r.get()
    check(s.unavailable == 1, f"unavailable 1 ({s.unavailable})")

    print("== Reset")
    before = r.reset()
    after = r.get()
    check(ops(before) == ops(s) and before.calls == s.calls, "Reset answers the state before")
    check(len(after.ops) == 0 and len(after.records) == 0 and after.calls == 0
          and after.duplicates_ignored == 0, "and forgets it")
    again = r.create(req, metadata=saga_md("saga-d4", "reserve"))
    check(again.id != out[0].id, f"answers are forgotten too; ids keep counting ({again.id})")


def test_flags(bin_dir, pb):
    _, travel = pb
    print("== command line")
    bad = subprocess.run([str(bin_dir / "travel-seats"), "--port=0", "--delay_ms=x"],
                         capture_output=True, text=True)
    check(bad.returncode == 2 and "bad flag --delay_ms=x" in bad.stderr, "a bad flag exits 2")
    p = Proc(bin_dir / "travel-payments", "--delay_ms=400", "--delay_methods=Refund",
             "--unavailable_methods=Nothing")
    try:
        b = Backend(p.channel, "Payments", pb)
        t0 = time.monotonic()
        pay = b.pay(travel.PayRequest(reservation_id="res-1", amount_cents=1), timeout=5)
        t1 = time.monotonic()
        b.refund(travel.RefundRequest(payment_id=pay.id), timeout=5)
        t2 = time.monotonic()
        check(t1 - t0 < 0.3 and t2 - t1 >= 0.38, f"--delay_methods=Refund: Pay {(t1 - t0) * 1000:.0f} ms, "
              f"Refund {(t2 - t1) * 1000:.0f} ms")
        b.configure()
        b.reset()  # back to the flags' switches
        t0 = time.monotonic()
        b.refund(travel.RefundRequest(payment_id=pay.id), timeout=5)
        check(time.monotonic() - t0 >= 0.38, "Reset restores the command line's delay")
    finally:
        p.stop()


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", default=str(REPO / "build/examples/travel"))
    args = ap.parse_args(argv)
    bin_dir = Path(args.bin)
    pb = travel_protos.load()
    procs = {}
    try:
        for svc, exe in (("Reservations", "travel-reservations"), ("Payments", "travel-payments"),
                         ("Seats", "travel-seats")):
            procs[svc] = Proc(bin_dir / exe)
        be = {svc: Backend(p.channel, svc, pb) for svc, p in procs.items()}
        test_reservations(be["Reservations"], pb)
        test_payments(be["Payments"], pb)
        test_seats(be["Seats"], pb)
        test_switches(be["Reservations"], pb)
        test_flags(bin_dir, pb)
    finally:
        for p in procs.values():
            p.stop()
    print()
    print("all checks held" if not failures else f"{len(failures)} checks failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
