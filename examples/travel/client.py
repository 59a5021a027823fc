#!/usr/bin/python3
"""A python3-grpcio client of the travel gateway (the saga example).

Books trips through travel.v1.Travel/BookTrip, the saga baton-gateway runs
over three backends (reserve, pay, assign a seat), then reads the backends'
Get to show what each of them applied, and for which saga step:

  ok             a booking that goes through: reservation, payment, seat;
                 every call carried one baton-saga-id; nothing compensated
  payment_fails  card tok_declined: FAILED_PRECONDITION, then (in the
                 background) the reservation is cancelled, exactly once
  seat_fails     flight FULL: RESOURCE_EXHAUSTED, then the payment is
                 refunded and the reservation cancelled, in that order
  all            the three

    client.py [--target=localhost:8444] [--ca=certs/out/ca.crt | --plaintext]
              [--reservations=127.0.0.1:50061] [--payments=127.0.0.1:50062]
              [--seats=127.0.0.1:50063] [--case=ok|payment_fails|seat_fails|all]

Exits 0 when every case got its expected outcome, 1 otherwise.
"""

import argparse
import re
import sys
import time
from pathlib import Path

import grpc

import travel_protos
from travel_protos import Backend

REPO = Path(__file__).resolve().parents[2]
CASES = ("ok", "payment_fails", "seat_fails")
SETTLE_S = 5.0  # how long compensations may take to show in the backends
QUIET_S = 0.3   # then watch this long for a compensation applied twice


class Trip:
    def __init__(self, channel, backends, pb):
        self.pb = pb
        _, travel = pb
        self.book = channel.unary_unary("/travel.v1.Travel/BookTrip",
                                        request_serializer=lambda m: m.SerializeToString(),
                                        response_deserializer=travel.Booking.FromString)
        self.backends = backends  # name -> Backend

    def request(self, flight_id="BT101", card_token="tok_visa"):
        _, travel = self.pb
        return travel.BookTripRequest(customer_id="cust-42", flight_id=flight_id,
                                      seat_preference="window", card_token=card_token,
                                      amount_cents=24900)

    def op_counts(self):
        """How many ops each backend has applied so far."""
        return {n: len(b.get().ops) for n, b in self.backends.items()}

    def new_ops(self, since):
        """The ops applied after since, over all backends, in time order:
        (backend, Operation)."""
        out = []
        for n, b in self.backends.items():
            out += [(n, o) for o in b.get().ops[since[n]:]]
        return sorted(out, key=lambda x: x[1].at_us)


def timed(fn, *args, **kw):
    """(result, error, ms): error is the grpc.RpcError when the call failed."""
    t0 = time.monotonic()
    try:
        r, e = fn(*args, **kw), None
    except grpc.RpcError as err:
        r, e = None, err
    return r, e, (time.monotonic() - t0) * 1000


def show_ops(ops):
    if not ops:
        print("   (no backend applied anything)")
        return
    t0 = ops[0][1].at_us
    saga = ops[0][1].saga_id or "(no baton-saga-id)"
    print(f"   what the backends applied (saga {saga}):")
    for name, o in ops:
        other = "" if o.saga_id == ops[0][1].saga_id else f"  saga {o.saga_id or '-'}"
        at = f"+{(o.at_us - t0) / 1000:.1f} ms"
        print(f"     {at:>10}  {name:<12} {o.op:<12} {o.key or '-':<8} step {o.step or '-'}{other}")


def wait_for(trip, since, done):
    """Polls the backends until done(ops) or SETTLE_S; then QUIET_S more so
    a second application would show. Returns the ops."""
    deadline = time.monotonic() + SETTLE_S
    ops = trip.new_ops(since)
    while not done(ops) and time.monotonic() < deadline:
        time.sleep(0.05)
        ops = trip.new_ops(since)
    if done(ops):
        time.sleep(QUIET_S)
        ops = trip.new_ops(since)
    return ops


def summary(ops):
    """(backend, op, step) of each op."""
    return [(n, o.op, o.step) for n, o in ops]


def saga_problems(ops):
    """Every op must carry the one saga id of the booking."""
    ids = {o.saga_id for _, o in ops}
    if not ids:
        return []
    if ids == {""}:
        return ["the backend calls carried no baton-saga-id metadata"]
    if len(ids) != 1:
        return [f"the ops carry several saga ids: {sorted(ids)}"]
    return []


def case_ok(trip, timeout):
    print("== ok: BookTrip, flight BT101, window seat, card tok_visa, $249.00")
    since = trip.op_counts()
    r, e, ms = timed(trip.book, trip.request(), timeout=timeout)
    if e:
        print(f"   {e.code().name} in {ms:.0f} ms: {e.details()}")
        return ["expected OK"]
    print(f"   OK in {ms:.0f} ms: reservation {r.reservation_id}, payment {r.payment_id}, "
          f"seat {r.seat}")
    problems = []
    if not re.fullmatch(r"res-\d+", r.reservation_id):
        problems.append(f"reservation_id {r.reservation_id!r} is not res-<n>")
    if not re.fullmatch(r"pay-\d+", r.payment_id):
        problems.append(f"payment_id {r.payment_id!r} is not pay-<n>")
    if not re.fullmatch(r"\d+A", r.seat):
        problems.append(f"seat {r.seat!r} is not a window seat <row>A")
    ops = wait_for(trip, since, lambda ops: len(ops) >= 3)
    show_ops(ops)
    want = [("reservations", "create", "reserve"), ("payments", "pay", "pay"),
            ("seats", "assign", "seat")]
    if summary(ops) != want:
        problems.append(f"expected create, pay, assign and nothing else; got {summary(ops)}")
    problems += saga_problems(ops)
    keys = [o.key for _, o in ops]
    if keys and keys != [r.reservation_id, r.payment_id, r.reservation_id]:
        problems.append(f"the ops' keys {keys} do not match the booking")
    return problems


def case_payment_fails(trip, timeout):
    print("== payment_fails: BookTrip, card tok_declined")
    since = trip.op_counts()
    r, e, ms = timed(trip.book, trip.request(card_token="tok_declined"), timeout=timeout)
    if not e:
        print(f"   OK in {ms:.0f} ms: {r}")
        return ["expected FAILED_PRECONDITION"]
    print(f"   {e.code().name} in {ms:.0f} ms: {e.details()}")
    problems = []
    if e.code() != grpc.StatusCode.FAILED_PRECONDITION:
        problems.append("expected FAILED_PRECONDITION")
    ops = wait_for(trip, since, lambda ops: any(o.op == "cancel" for _, o in ops))
    show_ops(ops)
    want = [("reservations", "create", "reserve"),
            ("reservations", "cancel", "compensate:reserve")]
    if summary(ops) != want:
        problems.append(f"expected the reservation created and cancelled once, nothing else; "
                        f"got {summary(ops)}")
    problems += saga_problems(ops)
    if len(ops) == 2 and ops[0][1].key != ops[1][1].key:
        problems.append(f"cancelled {ops[1][1].key}, not the reservation {ops[0][1].key}")
    return problems


def case_seat_fails(trip, timeout):
    print("== seat_fails: BookTrip, flight FULL")
    since = trip.op_counts()
    r, e, ms = timed(trip.book, trip.request(flight_id="FULL"), timeout=timeout)
    if not e:
        print(f"   OK in {ms:.0f} ms: {r}")
        return ["expected RESOURCE_EXHAUSTED"]
    print(f"   {e.code().name} in {ms:.0f} ms: {e.details()}")
    problems = []
    if e.code() != grpc.StatusCode.RESOURCE_EXHAUSTED:
        problems.append("expected RESOURCE_EXHAUSTED")
    ops = wait_for(trip, since, lambda ops: {"refund", "cancel"} <= {o.op for _, o in ops})
    show_ops(ops)
    want = [("reservations", "create", "reserve"), ("payments", "pay", "pay"),
            ("payments", "refund", "compensate:pay"),
            ("reservations", "cancel", "compensate:reserve")]
    if summary(ops) != want:
        problems.append("expected create, pay, then refund before cancel, each once; "
                        f"got {summary(ops)}")
    problems += saga_problems(ops)
    return problems


def find_file(path):
    """path as given, else relative to the repository (run from anywhere)."""
    p = Path(path)
    return p if p.exists() or p.is_absolute() else REPO / p


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", default="localhost:8444")
    ap.add_argument("--ca", default="certs/out/ca.crt", help="CA of the gateway's certificate")
    ap.add_argument("--plaintext", action="store_true", help="h2c instead of TLS")
    ap.add_argument("--reservations", default="127.0.0.1:50061")
    ap.add_argument("--payments", default="127.0.0.1:50062")
    ap.add_argument("--seats", default="127.0.0.1:50063")
    ap.add_argument("--case", default="all", choices=CASES + ("all",))
    ap.add_argument("--connect_timeout", type=float, default=10.0, help="seconds")
    args = ap.parse_args(argv)

    pb = travel_protos.load()
    if args.plaintext:
        channel = grpc.insecure_channel(args.target)
    else:
        ca = find_file(args.ca).read_bytes()
        channel = grpc.secure_channel(args.target, grpc.ssl_channel_credentials(root_certificates=ca))
    backend_channels = {n: grpc.insecure_channel(getattr(args, n))
                        for n in ("reservations", "payments", "seats")}
    for name, ch in [("gateway", channel)] + list(backend_channels.items()):
        try:
            grpc.channel_ready_future(ch).result(timeout=args.connect_timeout)
        except grpc.FutureTimeoutError:
            print(f"cannot connect to the {name} within {args.connect_timeout:g} s",
                  file=sys.stderr)
            return 1

    backends = {n: Backend(ch, n.capitalize(), pb) for n, ch in backend_channels.items()}
    trip = Trip(channel, backends, pb)
    run = CASES if args.case == "all" else (args.case,)
    failed = []
    for name in run:
        problems = globals()[f"case_{name}"](trip, 5.0)
        for p in problems:
            print(f"   -> UNEXPECTED: {p}")
        if problems:
            failed.append(name)
        else:
            print("   -> as expected")
    channel.close()
    for ch in backend_channels.values():
        ch.close()
    print()
    print(f"{len(run) - len(failed)}/{len(run)} cases as expected"
          + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
