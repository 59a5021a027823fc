#!/usr/bin/python3
"""baton-gateway's flows end to end: python3-grpcio client -> gateway -> the shop backends.

Starts shop-orders, -payments, -inventory, -shipping (C, generated stubs) and
the python catalog server on free loopback ports, renders gateway/flows.yaml
for them, starts baton-gateway and runs one case:

  mapping           values mapped end to end: items -> order (repeated
                    messages), address -> shipping (a whole sub-message),
                    reservation ids back (repeated strings), int64 totals,
                    UTF-8 strings; a backend's error names its step
  branches          both branches of the "declined" if: then -> fail
                    FAILED_PRECONDITION (and no later step runs), else -> the
                    parallel group runs
  step_timeout      a 300 ms step timeout against a 500 ms backend:
                    DEADLINE_EXCEEDED within 100 ms of the bound, backend call
                    cancelled
  client_deadline   a client deadline shorter than the step timeout: the
                    backend's grpc-timeout is no larger than what is left;
                    without one, it is the step timeout
  killed_backend    retries (attempts counted at the backend), then a killed
                    backend gives UNAVAILABLE and the gateway keeps serving
                    the other flow and the passthrough route
  parallel          two 200 ms parallel steps answer in under 350 ms
  parallel_failure  one parallel step fails at once: the client hears at
                    once, the sibling is cancelled at its backend
  cancel            a client's RST_STREAM, and a dropped connection, cancel
                    the in-flight backend call
  route_deadline_cancel  a passthrough route carries the smaller of the
                    client's deadline and its own timeout, and the client's
                    cancel, to the backend
  metadata          traceparent forwarded (and created when absent),
                    authorization forwarded only when listed
  concurrency       1,000 concurrent flow calls over 10 connections, each
                    answer checked against its own request
  tls_client        TLS between client and gateway
  mtls_client       a listener that requires a client certificate
  tls_backend       TLS from the gateway to the backends, hostname verified

  gateway_flows.py --case=NAME --gateway=PATH --shop-bin-dir=DIR
                   [--descriptors=shop_proto.pb] [--certs-dir=DIR]

At the end every process gets SIGTERM and must exit cleanly with no
sanitizer report.
"""

import os
import re
import socket
import struct
import sys
import time

import harness
import gateway_env as ge

TP_RE = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$")
CLIENT_TP = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


class Env:
    """The shop backends, the catalog, the gateway and client stubs for one case."""

    def __init__(self, args, tls_backends=False, listen_tls="", forward=True,
                 extra_backends="", extra_routes="", pay_timeout="300ms"):
        self.args = args
        self.common, self.shop, self.catalog = ge.shop_messages()
        self.dir = ge.tmpdir()
        self.procs = {}
        self.ports = {}
        self.certs = harness.ensure_certs(args.certs_dir) if (tls_backends or listen_tls) else None
        tls_flags = []
        if tls_backends:
            tls_flags = ["--use_tls=true", f"--cert={self.certs.server_crt}", f"--key={self.certs.server_key}"]
        for svc in ("orders", "payments", "inventory", "shipping"):
            self.procs[svc], self.ports[svc] = ge.start_shop_backend(args, svc, *tls_flags)
        self.procs["catalog"], self.ports["catalog"] = ge.start_catalog()
        self.descriptors = ge.shop_descriptors(args, self.dir)
        self.stats = {svc: ge.Stats(name, self.ports[svc]) for svc, name in (
            ("orders", "Orders"), ("payments", "Payments"), ("inventory", "Inventory"),
            ("shipping", "Shipping"))} if not tls_backends else {}
        self.template_values = dict(
            descriptors=self.descriptors,
            listen_tls=listen_tls.format(certs=self.certs) if listen_tls else "",
            forward_metadata="forward_metadata: [authorization]" if forward else "",
            backend_tls=(f", tls: {{ ca: {self.certs.ca}, server_name: localhost }}" if tls_backends else ""),
            extra_backends=extra_backends.format(certs=self.certs, **self.ports),
            extra_routes=extra_routes,
            pay_timeout=pay_timeout,
            **self.ports)
        self.gw, self.port, self.config = self.start_gateway()

    def start_gateway(self, name="gateway", **overrides):
        """Another baton-gateway over the same backends (its own folder for its config)."""
        d = self.dir / name
        d.mkdir()
        return ge.start_gateway(self.args.gateway, "flows.yaml", d, name=name,
                                **dict(self.template_values, **overrides))

    def stubs(self, ch):
        s = type("Stubs", (), {})()
        s.place_order = ge.unary(ch, "/shop.v1.Shop/PlaceOrder", self.shop.PlaceOrderResponse)
        s.reserve = ge.unary(ch, "/shop.v1.Inventory/Reserve", self.shop.Reservation)
        s.get_product = ge.unary(ch, "/shop.v1.Catalog/GetProduct", self.catalog.Product)
        return s

    def order(self, i=0, card="tok_ok", express=False, n_items=2, address=True, skus=None):
        skus = skus or [f"sku-{i}-{k}" for k in range(n_items)]
        items = [self.common.Item(sku=sku, quantity=1 + (i + k) % 4, unit_price_cents=100 * (k + 1) + i)
                 for k, sku in enumerate(skus)]
        req = self.shop.PlaceOrderRequest(customer_id=f"cust-{i}", items=items, express=express,
                                          card_token=card)
        if address:
            req.address.CopyFrom(self.common.Address(street=f"{i} rue de la Paix", city="Paris",
                                                     zip="75002", country="FR"))
        return req

    def stop_all(self, check, name):
        for s in self.stats.values():
            s.close()
        # The gateway first: it must drain while its backends are still up.
        procs = [self.gw] + list(self.procs.values())
        return check.finish(name, procs)


def expected_response(req):
    """What the backends compute for req (see examples/shop/*.c), minus the order id."""
    total = sum(it.quantity * it.unit_price_cents for it in req.items)
    return dict(total_cents=total, eta_days=1 if req.express else 5,
                reservation_ids=[f"res-{it.sku}" for it in req.items])


def check_order_response(check, req, resp, what="answer"):
    want = expected_response(req)
    ok = (resp.order_id.startswith("ord-") and resp.tracking_id == f"trk-{resp.order_id}"
          and resp.total_cents == want["total_cents"] and resp.eta_days == want["eta_days"]
          and list(resp.reservation_ids) == want["reservation_ids"])
    return check(ok, f"{what}: order_id={resp.order_id!r} tracking_id={resp.tracking_id!r} "
                     f"total_cents={resp.total_cents} eta_days={resp.eta_days} "
                     f"reservation_ids={list(resp.reservation_ids)}; want tracking 'trk-<order_id>', {want}")


def timed(fn):
    start = time.monotonic()
    err = ge.rpc_error(fn)
    return err, ge.elapsed_ms(start)


# ---- cases --------------------------------------------------------------------


def case_mapping(env, check):
    st = env.stubs(ge.channel(env.port))
    # int64 beyond 32 bits, a non-ASCII sku, three items: each must arrive intact.
    req = env.order(7, express=True, skus=["sku-caf\u00e9", "sku-big", "sku-3"])
    req.items[1].unit_price_cents = 3_000_000_000
    resp = st.place_order(req, timeout=ge.RPC_WAIT)
    check_order_response(check, req, resp, "express order")
    req2 = env.order(8, express=False, n_items=1)
    resp2 = st.place_order(req2, timeout=ge.RPC_WAIT)
    check_order_response(check, req2, resp2, "standard order")
    check(resp2.order_id != resp.order_id, f"two orders got two ids ({resp.order_id}, {resp2.order_id})")
    # No address: the whole (absent) sub-message is mapped; shipping refuses it
    # and the client is told which step failed.
    req3 = env.order(9, address=False)
    err = ge.rpc_error(lambda: st.place_order(req3, timeout=ge.RPC_WAIT))
    got = ge.describe_error(err)
    check(err is not None and err.code().name == "INVALID_ARGUMENT" and "step 'ship'" in err.details()
          and "address" in err.details(),
          f"no address: INVALID_ARGUMENT naming step 'ship' and shipping's reason, got {got}")


def case_branches(env, check):
    st = env.stubs(ge.channel(env.port))
    inv, ship = env.stats["inventory"], env.stats["shipping"]
    req = env.order(1, card="tok_declined")
    err = ge.rpc_error(lambda: st.place_order(req, timeout=ge.RPC_WAIT))
    got = ge.describe_error(err)
    m = re.fullmatch(r"payment declined for order (ord-\d+) \(DECLINED\)", err.details() if err else "")
    check(err is not None and err.code().name == "FAILED_PRECONDITION" and m,
          f"declined: FAILED_PRECONDITION 'payment declined for order ord-N (DECLINED)', got {got}")
    check(inv.get().calls == 0 and ship.get().calls == 0,
          f"declined: the else branch did not run (inventory calls {inv.get().calls}, "
          f"shipping calls {ship.get().calls})")
    req = env.order(2, card="tok_ok")
    resp = st.place_order(req, timeout=ge.RPC_WAIT)
    check_order_response(check, req, resp, "approved (else branch)")
    check(inv.get().calls == 1 and ship.get().calls == 1,
          f"approved: the else branch called inventory and shipping once each "
          f"(got {inv.get().calls}, {ship.get().calls})")


def case_step_timeout(env, check):
    st = env.stubs(ge.channel(env.port))
    st.place_order(env.order(0), timeout=ge.RPC_WAIT)  # warm: connections are up
    pay = env.stats["payments"]
    pay.reset()
    bound = 300  # the pay step's timeout in flows.yaml; tok_slow answers after 500 ms
    for attempt in range(3):
        err, ms = timed(lambda: st.place_order(env.order(1, card="tok_slow"), timeout=ge.RPC_WAIT))
        got = ge.describe_error(err)
        check(err is not None and err.code().name == "DEADLINE_EXCEEDED" and "pay" in err.details(),
              f"call {attempt}: DEADLINE_EXCEEDED naming step 'pay', got {got}")
        check(bound - 5 <= ms <= bound + 100,
              f"call {attempt}: answered after {ms:.0f} ms, want within 100 ms of the {bound} ms step timeout")
    s = pay.wait_for(lambda s: s.cancelled >= 3, timeout=2)
    check(s.calls == 3 and s.cancelled == 3,
          f"payments saw 3 calls, all cancelled (calls {s.calls}, cancelled {s.cancelled})")


def case_client_deadline(env, check):
    st = env.stubs(ge.channel(env.port))
    st.place_order(env.order(0), timeout=ge.RPC_WAIT)  # warm
    pay, orders = env.stats["payments"], env.stats["orders"]
    # No client deadline to speak of: the backend gets the step timeout.
    pay.reset()
    st.place_order(env.order(1), timeout=30)
    s = pay.get()
    check(200 <= s.last_deadline_ms <= 300,
          f"client deadline 30 s, step timeout 300 ms: payments got {s.last_deadline_ms} ms left, want <= 300")
    # A 150 ms client deadline, shorter than the 300 ms step timeout.
    pay.reset()
    orders.reset()
    client_ms = 150
    err, ms = timed(lambda: st.place_order(env.order(2, card="tok_slow"), timeout=client_ms / 1000))
    check(err is not None and err.code().name == "DEADLINE_EXCEEDED",
          f"client deadline {client_ms} ms: DEADLINE_EXCEEDED, got {ge.describe_error(err)} after {ms:.0f} ms")
    o = orders.get()
    s = pay.wait_for(lambda s: s.cancelled >= 1, timeout=2)
    check(o.calls == 1 and 0 <= o.last_deadline_ms <= client_ms,
          f"orders got {o.last_deadline_ms} ms left, want 0..{client_ms} (calls {o.calls})")
    check(s.calls == 1 and 0 <= s.last_deadline_ms <= min(client_ms, o.last_deadline_ms),
          f"payments got {s.last_deadline_ms} ms left, want no more than orders' {o.last_deadline_ms} "
          f"(calls {s.calls})")
    check(s.cancelled == 1, f"payments' call was cancelled when the deadline passed (cancelled {s.cancelled})")


def case_killed_backend(env, check):
    st = env.stubs(ge.channel(env.port))
    pay, orders = env.stats["payments"], env.stats["orders"]
    st.place_order(env.order(0), timeout=ge.RPC_WAIT)  # warm
    pay.reset()
    err = ge.rpc_error(lambda: st.place_order(env.order(1, card="tok_unavailable"), timeout=ge.RPC_WAIT))
    check(err is not None and err.code().name == "UNAVAILABLE" and "step 'pay'" in err.details(),
          f"always-UNAVAILABLE payments: UNAVAILABLE naming step 'pay', got {ge.describe_error(err)}")
    check(pay.get().calls == 3, f"retry attempts: 3 reached payments (got {pay.get().calls})")
    pay.reset()
    req = env.order(2, card="tok_flaky")
    resp = st.place_order(req, timeout=ge.RPC_WAIT)
    check_order_response(check, req, resp, "UNAVAILABLE once, then retried")
    check(pay.get().calls == 2, f"flaky payments: 2 attempts (got {pay.get().calls})")

    env.stats.pop("payments").close()
    killed = env.procs.pop("payments")
    killed.kill()
    rc = killed.wait_exit(5)
    harness.log(f"killed shop-payments (status {rc})")
    before = orders.get().calls
    for i in range(3):
        err, ms = timed(lambda: st.place_order(env.order(3 + i), timeout=ge.RPC_WAIT))
        check(err is not None and err.code().name == "UNAVAILABLE" and "step 'pay'" in err.details()
              and ms < 1500,
              f"killed payments, call {i}: UNAVAILABLE naming step 'pay' well before the 5 s flow timeout, "
              f"got {ge.describe_error(err)} after {ms:.0f} ms")
    check(orders.get().calls == before + 3, "the steps before 'pay' still ran")
    # The rest of the gateway is unaffected.
    r = st.reserve(env.shop.ReserveRequest(order_id="o-1", items=[env.common.Item(sku="a", quantity=1)]),
                   timeout=ge.RPC_WAIT)
    check(list(r.ids) == ["res-a"] and r.order_id == "trk-o-1",
          f"another flow still served: ids={list(r.ids)} order_id={r.order_id!r}")
    p = st.get_product(env.catalog.GetProductRequest(sku="sku-mug"), timeout=ge.RPC_WAIT)
    check(p.name == "Baton mug", f"the passthrough route still served: {p.name!r}")
    check(env.gw.alive(), "the gateway is still running")


def case_parallel(env, check):
    st = env.stubs(ge.channel(env.port))
    req = env.shop.ReserveRequest(order_id="o-par", items=[env.common.Item(sku="x", quantity=1),
                                                            env.common.Item(sku="y", quantity=2)],
                                  delay_ms=200)
    st.reserve(req, timeout=ge.RPC_WAIT)  # warm
    for i in range(3):
        start = time.monotonic()
        r = st.reserve(req, timeout=ge.RPC_WAIT)
        ms = ge.elapsed_ms(start)
        check(list(r.ids) == ["res-x", "res-y"] and r.order_id == "trk-o-par",
              f"call {i}: both results mapped (ids={list(r.ids)}, order_id={r.order_id!r})")
        check(200 <= ms < 350, f"call {i}: two 200 ms steps in parallel took {ms:.0f} ms, want 200..350")


def case_parallel_failure(env, check):
    st = env.stubs(ge.channel(env.port))
    ok = env.shop.ReserveRequest(order_id="o-1", items=[env.common.Item(sku="x", quantity=1)])
    st.reserve(ok, timeout=ge.RPC_WAIT)  # warm
    ship = env.stats["shipping"]
    ship.reset()
    bad = env.shop.ReserveRequest(order_id="o-2", items=[env.common.Item(sku="oos-x", quantity=1)])
    err, ms = timed(lambda: st.reserve(bad, timeout=ge.RPC_WAIT))
    check(err is not None and err.code().name == "FAILED_PRECONDITION" and "step 'stock'" in err.details()
          and "oos-x" in err.details(),
          f"out of stock: FAILED_PRECONDITION naming step 'stock', got {ge.describe_error(err)}")
    check(ms < 150, f"answered after {ms:.0f} ms, without waiting for the 200 ms sibling")
    s = ship.wait_for(lambda s: s.cancelled >= 1, timeout=2)
    check(s.calls == 1 and s.cancelled == 1,
          f"the sibling's call was cancelled at shipping (calls {s.calls}, cancelled {s.cancelled})")


def case_cancel(env, check):
    import bad_input  # its raw HTTP/2 client

    st = env.stubs(ge.channel(env.port))
    st.place_order(env.order(0), timeout=ge.RPC_WAIT)  # warm
    pay, inv = env.stats["payments"], env.stats["inventory"]
    pay.reset()
    inv.reset()
    # 1. RST_STREAM from the client while 'pay' (500 ms) is in flight.
    fut = st.place_order.future(env.order(1, card="tok_slow"), timeout=ge.RPC_WAIT)
    s = pay.wait_for(lambda s: s.calls >= 1, timeout=2)
    check(s.calls == 1, f"the pay step reached payments (calls {s.calls})")
    fut.cancel()
    t0 = time.monotonic()
    s = pay.wait_for(lambda s: s.cancelled >= 1, timeout=2)
    check(s.cancelled == 1,
          f"client cancel: payments' call cancelled within {ge.elapsed_ms(t0):.0f} ms (cancelled {s.cancelled})")
    time.sleep(0.6)  # past when tok_slow would have answered
    check(inv.get().calls == 0, f"the flow did not go on after the cancel (inventory calls {inv.get().calls})")

    # 2. The client's connection drops while 'pay' is in flight.
    pay.reset()
    c = bad_input.H2Client(env.port)
    body = env.order(2, card="tok_slow").SerializeToString()
    c.request(c.headers("/shop.v1.Shop/PlaceOrder"), body=struct.pack(">BI", 0, len(body)) + body)
    s = pay.wait_for(lambda s: s.calls >= 1, timeout=2)
    check(s.calls == 1, f"the raw client's pay step reached payments (calls {s.calls})")
    c.sock.shutdown(socket.SHUT_RDWR)
    c.close()
    t0 = time.monotonic()
    s = pay.wait_for(lambda s: s.cancelled >= 1, timeout=2)
    check(s.cancelled == 1,
          f"dropped connection: payments' call cancelled within {ge.elapsed_ms(t0):.0f} ms "
          f"(cancelled {s.cancelled})")
    st.place_order(env.order(3), timeout=ge.RPC_WAIT)
    check(env.gw.alive(), "the gateway still serves")


def case_route_deadline_cancel(env, check):
    """A passthrough route carries the deadline (the client's or the route's, the smaller)
    and the client's cancel to its backend."""
    ch = ge.channel(env.port)
    charge = ge.unary(ch, "/shop.v1.Payments/Charge", env.shop.Charge)
    pay = env.stats["payments"]
    req = env.shop.ChargeRequest(order_id="o-1", amount_cents=100, card_token="tok_ok")
    c = charge(req, timeout=ge.RPC_WAIT)
    check(c.id == "ch-o-1" and c.status == env.shop.APPROVED, f"a call through the route: {c.id!r} {c.status}")
    s = pay.get()
    check(0 < s.last_deadline_ms <= ROUTE_TIMEOUT_MS,
          f"client deadline 10 s, route timeout {ROUTE_TIMEOUT_MS} ms: payments got {s.last_deadline_ms} ms")

    pay.reset()
    slow = env.shop.ChargeRequest(order_id="o-2", amount_cents=100, card_token="tok_slow")
    err, ms = timed(lambda: charge(slow, timeout=ge.RPC_WAIT))
    check(err is not None and err.code().name == "DEADLINE_EXCEEDED" and ms <= ROUTE_TIMEOUT_MS + 250,  # loose: a loaded CI machine, sanitizers
          f"a 500 ms answer behind a {ROUTE_TIMEOUT_MS} ms route timeout: DEADLINE_EXCEEDED, "
          f"got {ge.describe_error(err)} after {ms:.0f} ms")
    s = pay.wait_for(lambda s: s.cancelled >= 1, timeout=2)
    check(s.cancelled == 1, f"... and the backend's call was cancelled (cancelled {s.cancelled})")

    pay.reset()
    err, ms = timed(lambda: charge(slow, timeout=0.1))
    s = pay.wait_for(lambda s: s.cancelled >= 1, timeout=2)
    check(err is not None and err.code().name == "DEADLINE_EXCEEDED",
          f"client deadline 100 ms: DEADLINE_EXCEEDED, got {ge.describe_error(err)}")
    check(s.calls == 1 and 0 <= s.last_deadline_ms <= 100,
          f"client deadline 100 ms: payments got {s.last_deadline_ms} ms (calls {s.calls})")
    check(s.cancelled == 1, f"... and its call was cancelled (cancelled {s.cancelled})")

    pay.reset()
    fut = charge.future(slow, timeout=ge.RPC_WAIT)
    s = pay.wait_for(lambda s: s.calls >= 1, timeout=2)
    fut.cancel()
    t0 = time.monotonic()
    s = pay.wait_for(lambda s: s.cancelled >= 1, timeout=2)
    check(s.calls == 1 and s.cancelled == 1,
          f"client cancel through the route reached payments within {ge.elapsed_ms(t0):.0f} ms "
          f"(calls {s.calls}, cancelled {s.cancelled})")
    ch.close()


def trace_id(tp):
    m = TP_RE.match(tp)
    return m.group(1) if m else None


def case_metadata(env, check):
    st = env.stubs(ge.channel(env.port))
    orders, pay = env.stats["orders"], env.stats["payments"]
    md = (("traceparent", CLIENT_TP), ("authorization", "Bearer e2e-token"), ("x-not-listed", "1"))
    st.place_order(env.order(1), timeout=ge.RPC_WAIT, metadata=md)
    o, p = orders.get(), pay.get()
    for name, s in (("orders", o), ("payments", p)):
        check(trace_id(s.last_traceparent) == CLIENT_TP[3:35],
              f"{name} got the client's trace: traceparent {s.last_traceparent!r}")
        check(s.last_authorization == "Bearer e2e-token",
              f"{name} got the listed authorization: {s.last_authorization!r}")

    st.place_order(env.order(2), timeout=ge.RPC_WAIT)
    o, p = orders.get(), pay.get()
    t1 = trace_id(o.last_traceparent)
    check(t1 is not None and t1 != "0" * 32 and t1 != CLIENT_TP[3:35],
          f"no traceparent from the client: the gateway made one ({o.last_traceparent!r})")
    check(trace_id(p.last_traceparent) == t1,
          f"both steps of one call share its trace ({o.last_traceparent!r}, {p.last_traceparent!r})")
    check(o.last_authorization == "", f"no authorization sent, none forwarded ({o.last_authorization!r})")
    st.place_order(env.order(3), timeout=ge.RPC_WAIT)
    t2 = trace_id(orders.get().last_traceparent)
    check(t2 is not None and t2 != t1, f"each call gets its own new trace ({t1}, {t2})")

    # A gateway whose config does not list authorization must not forward it.
    gw2, port2, _ = env.start_gateway("gateway-unlisted", forward_metadata="")
    try:
        st2 = env.stubs(ge.channel(port2))
        st2.place_order(env.order(4), timeout=ge.RPC_WAIT, metadata=md)
        o = orders.get()
        check(o.last_authorization == "",
              f"authorization not listed: not forwarded (orders got {o.last_authorization!r})")
        check(trace_id(o.last_traceparent) == CLIENT_TP[3:35],
              f"traceparent is forwarded without being listed ({o.last_traceparent!r})")
    finally:
        check.stop(gw2)


def established_connections(port):
    """TCP connections of this process to 127.0.0.1:port that are ESTABLISHED."""
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            link = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    n = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = open(table).read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            if f[3] == "01" and int(f[2].rsplit(":", 1)[1], 16) == port and f[9] in inodes:
                n += 1
    return n


def case_concurrency(env, check):
    n_calls, n_conns = 1000, 10
    channels = [ge.channel(env.port) for _ in range(n_conns)]
    stubs = [env.stubs(ch) for ch in channels]
    for s in stubs:
        s.place_order(env.order(0), timeout=ge.RPC_WAIT)  # each connection up before the burst
    conns = established_connections(env.port)
    check(conns == n_conns, f"{conns} connections to the gateway, want {n_conns}")
    reqs = [env.order(i, express=i % 2 == 1, n_items=1 + i % 3) for i in range(n_calls)]
    start = time.monotonic()
    futs = [stubs[i % n_conns].place_order.future(reqs[i], timeout=60) for i in range(n_calls)]
    results = []
    for f in futs:
        try:
            results.append((f.result(), None))
        except Exception as err:  # grpc.RpcError or a timeout: counted below
            results.append((None, err))
    took = time.monotonic() - start
    harness.log(f"{n_calls} calls over {n_conns} connections in {took:.2f} s ({n_calls / took:.0f} calls/s)")
    bad = []
    for i, (resp, err) in enumerate(results):
        if err is not None:
            bad.append(f"call {i}: {ge.describe_error(err) if hasattr(err, 'code') else err!r}")
            continue
        want = expected_response(reqs[i])
        if not (resp.tracking_id == f"trk-{resp.order_id}" and resp.total_cents == want["total_cents"]
                and resp.eta_days == want["eta_days"]
                and list(resp.reservation_ids) == want["reservation_ids"]):
            bad.append(f"call {i}: wrong answer {resp} for {reqs[i]}")
    check(not bad, f"all {n_calls} answered correctly ({len(bad)} not"
                   + (f"; first: {bad[:3]}" if bad else "") + ")")
    ids = {r.order_id for r, e in results if r is not None}
    check(len(ids) == n_calls - len([1 for r, e in results if r is None]),
          f"every call got its own order ({len(ids)} distinct ids)")
    for ch in channels:
        ch.close()


ROUTE_TIMEOUT_MS = 250
ROUTE_TO_PAYMENTS = f"- {{ prefix: /shop.v1.Payments/, backend: payments, timeout: {ROUTE_TIMEOUT_MS}ms }}"

LISTEN_TLS = "tls: {{ cert: {certs.server_crt}, key: {certs.server_key} }}"
LISTEN_MTLS = ("tls: {{ cert: {certs.server_crt}, key: {certs.server_key}, ca: {certs.ca}, "
               "require_client_cert: true }}")


def creds(certs, with_cert):
    import grpc

    return grpc.ssl_channel_credentials(
        root_certificates=certs.ca.read_bytes(),
        private_key=certs.client_key.read_bytes() if with_cert else None,
        certificate_chain=certs.client_crt.read_bytes() if with_cert else None)


def case_tls_client(env, check):
    st = env.stubs(ge.channel(env.port, creds(env.certs, False), name_override="localhost"))
    req = env.order(1)
    check_order_response(check, req, st.place_order(req, timeout=ge.RPC_WAIT), "over TLS")
    plain = env.stubs(ge.channel(env.port))
    err = ge.rpc_error(lambda: plain.place_order(req, timeout=3))
    check(err is not None and err.code().name == "UNAVAILABLE",
          f"plaintext to the TLS listener fails, got {ge.describe_error(err)}")


def case_mtls_client(env, check):
    st = env.stubs(ge.channel(env.port, creds(env.certs, True), name_override="localhost"))
    req = env.order(1)
    check_order_response(check, req, st.place_order(req, timeout=ge.RPC_WAIT), "mTLS with a client certificate")
    anon = env.stubs(ge.channel(env.port, creds(env.certs, False), name_override="localhost"))
    err = ge.rpc_error(lambda: anon.place_order(req, timeout=5))
    check(err is not None and err.code().name == "UNAVAILABLE",
          f"without a client certificate: refused (UNAVAILABLE), got {ge.describe_error(err)}")


# A second name for the TLS orders backend whose certificate does not match,
# and routes to tell the two apart.
TLS_EXTRA_BACKENDS = ("orders_wrong_name: {{ endpoints: [\"127.0.0.1:{orders}\"], "
                      "tls: {{ ca: {certs.ca}, server_name: wrong.example }} }}")
TLS_EXTRA_ROUTES = ("- { prefix: /shop.v1.Orders/, backend: orders_wrong_name }\n"
                    "  - { prefix: /shop.v1.Payments/, backend: payments }")


def case_tls_backend(env, check):
    st = env.stubs(ge.channel(env.port))
    req = env.order(1, express=True)
    check_order_response(check, req, st.place_order(req, timeout=ge.RPC_WAIT), "backends over TLS")
    ch = ge.channel(env.port)
    pay_stats = ge.unary(ch, "/shop.v1.Payments/Stats", env.common.StatsResponse)
    s = pay_stats(env.common.StatsRequest(), timeout=ge.RPC_WAIT)
    check(s.calls == 1, f"a passthrough route to a TLS backend works (payments saw {s.calls} call)")
    orders_stats = ge.unary(ch, "/shop.v1.Orders/Stats", env.common.StatsResponse)
    err = ge.rpc_error(lambda: orders_stats(env.common.StatsRequest(), timeout=5))
    check(err is not None and err.code().name == "UNAVAILABLE",
          f"a backend whose certificate does not name server_name is refused, got {ge.describe_error(err)}")


CASES = {
    "mapping": (case_mapping, {}),
    "branches": (case_branches, {}),
    "step_timeout": (case_step_timeout, {}),
    "client_deadline": (case_client_deadline, {}),
    "killed_backend": (case_killed_backend, {}),
    "parallel": (case_parallel, {}),
    "parallel_failure": (case_parallel_failure, {}),
    "cancel": (case_cancel, {}),
    "route_deadline_cancel": (case_route_deadline_cancel, {"extra_routes": ROUTE_TO_PAYMENTS}),
    "metadata": (case_metadata, {}),
    "concurrency": (case_concurrency, {"pay_timeout": "5s"}),
    "tls_client": (case_tls_client, {"listen_tls": LISTEN_TLS}),
    "mtls_client": (case_mtls_client, {"listen_tls": LISTEN_MTLS}),
    "tls_backend": (case_tls_backend, {"tls_backends": True, "extra_backends": TLS_EXTRA_BACKENDS,
                                       "extra_routes": TLS_EXTRA_ROUTES}),
}


def main(argv):
    ap = ge.arg_parser(__doc__, CASES)
    args = ap.parse_args(argv)
    if not args.shop_bin_dir:
        ap.error("--shop-bin-dir is required")
    harness.hard_timeout(args.timeout)
    fn, opts = CASES[args.case]
    check = ge.Check()
    env = Env(args, **opts)
    harness.log(f"--- case {args.case} (gateway on port {env.port})")
    try:
        fn(env, check)
    except Exception as err:  # an unexpected error fails the case, after a clean stop
        import traceback

        traceback.print_exc()
        check.fail(f"case raised {type(err).__name__}: {err}")
    return env.stop_all(check, f"gateway flow case {args.case}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
