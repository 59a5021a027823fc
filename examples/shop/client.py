#!/usr/bin/python3
"""A python3-grpcio client of the shop gateway (the README's first command).

Calls shop.v1.Shop/PlaceOrder, the flow baton-gateway runs over the four
backends, and shop.v1.Catalog, which the gateway passes through to the
python3-grpcio catalog server, and prints each result:

  happy     an order that goes through: order id, tracking id, total, eta
            and reservation ids, checked against what the backends compute
  declined  card tok_declined: the flow's branch answers FAILED_PRECONDITION
  timeout   card tok_slow (payment answers after 500 ms) with a 200 ms
            client deadline: DEADLINE_EXCEEDED
  catalog   passthrough: GetProduct, ListProducts (streaming), and NOT_FOUND

    client.py [--target=localhost:8443] [--ca=certs/out/ca.crt | --plaintext]
              [--case=happy|declined|timeout|catalog|all]

Exits 0 when every case got its expected outcome, 1 otherwise.
"""

import argparse
import re
import sys
import time
from pathlib import Path

import grpc

import shop_protos

REPO = Path(__file__).resolve().parents[2]
CASES = ("happy", "declined", "timeout", "catalog")
METADATA = (("authorization", "Bearer demo-token"),)  # the gateway forwards it


def dollars(cents):
    return f"${cents / 100:.2f}"


class Shop:
    """Unary and streaming callables of the two services, by generic API."""

    def __init__(self, channel, pb):
        common, shop, catalog = pb
        self.pb = pb

        def unary(path, resp):
            return channel.unary_unary(path, request_serializer=lambda m: m.SerializeToString(),
                                       response_deserializer=resp.FromString)

        self.place_order = unary("/shop.v1.Shop/PlaceOrder", shop.PlaceOrderResponse)
        self.get_product = unary("/shop.v1.Catalog/GetProduct", catalog.Product)
        self.list_products = channel.unary_stream(
            "/shop.v1.Catalog/ListProducts", request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=catalog.Product.FromString)

    def order(self, card_token):
        common, shop, _ = self.pb
        return shop.PlaceOrderRequest(
            customer_id="cust-42",
            items=[common.Item(sku="sku-book", quantity=2, unit_price_cents=4200),
                   common.Item(sku="sku-mug", quantity=1, unit_price_cents=1250)],
            address=common.Address(street="1 Main St", city="Springfield", zip="12345",
                                   country="US"),
            express=True,
            card_token=card_token)


def timed(fn, *args, **kw):
    """(result, error, ms): error is the grpc.RpcError when the call failed."""
    t0 = time.monotonic()
    try:
        r, e = fn(*args, **kw), None
    except grpc.RpcError as err:
        r, e = None, err
    return r, e, (time.monotonic() - t0) * 1000


def status_line(e, ms):
    return f"{e.code().name} in {ms:.0f} ms: {e.details()}"


def case_happy(s, timeout):
    print("== happy: PlaceOrder, card tok_visa, 2 x sku-book @ $42.00 + 1 x sku-mug @ $12.50, express")
    r, e, ms = timed(s.place_order, s.order("tok_visa"), timeout=timeout, metadata=METADATA)
    if e:
        print(f"   {status_line(e, ms)}")
        return ["expected OK"]
    print(f"   OK in {ms:.0f} ms")
    print(f"   order_id         {r.order_id}")
    print(f"   tracking_id      {r.tracking_id}")
    print(f"   total_cents      {r.total_cents} ({dollars(r.total_cents)})")
    print(f"   eta_days         {r.eta_days}")
    print(f"   reservation_ids  {', '.join(r.reservation_ids)}")
    problems = []
    if not re.fullmatch(r"ord-\d+", r.order_id):
        problems.append(f"order_id {r.order_id!r} is not ord-<n>")
    if r.tracking_id != f"trk-{r.order_id}":
        problems.append(f"tracking_id {r.tracking_id!r} != 'trk-{r.order_id}'")
    if r.total_cents != 2 * 4200 + 1250:
        problems.append(f"total_cents {r.total_cents} != 9650")
    if r.eta_days != 1:
        problems.append(f"eta_days {r.eta_days} != 1 (express)")
    if list(r.reservation_ids) != ["res-sku-book", "res-sku-mug"]:
        problems.append(f"reservation_ids {list(r.reservation_ids)}")
    return problems


def case_declined(s, timeout):
    print("== declined: PlaceOrder, card tok_declined")
    r, e, ms = timed(s.place_order, s.order("tok_declined"), timeout=timeout, metadata=METADATA)
    if not e:
        print(f"   OK in {ms:.0f} ms: order {r.order_id}")
        return ["expected FAILED_PRECONDITION"]
    print(f"   {status_line(e, ms)}")
    problems = []
    if e.code() != grpc.StatusCode.FAILED_PRECONDITION:
        problems.append("expected FAILED_PRECONDITION")
    if not re.fullmatch(r"payment declined for order ord-\d+", e.details() or ""):
        problems.append(f"message {e.details()!r} is not 'payment declined for order ord-<n>'")
    return problems


def case_timeout(s, deadline_ms):
    print(f"== timeout: PlaceOrder, card tok_slow (payment answers after 500 ms), "
          f"client deadline {deadline_ms} ms")
    r, e, ms = timed(s.place_order, s.order("tok_slow"), timeout=deadline_ms / 1000,
                     metadata=METADATA)
    if not e:
        print(f"   OK in {ms:.0f} ms: order {r.order_id}")
        return ["expected DEADLINE_EXCEEDED"]
    print(f"   {status_line(e, ms)}")
    problems = []
    if e.code() != grpc.StatusCode.DEADLINE_EXCEEDED:
        problems.append("expected DEADLINE_EXCEEDED")
    if ms > deadline_ms + 300:
        problems.append(f"took {ms:.0f} ms for a {deadline_ms} ms deadline")
    return problems


def case_catalog(s, timeout):
    _, _, catalog = s.pb
    print("== catalog: passthrough to the python3-grpcio Catalog server")
    problems = []

    t0 = time.monotonic()
    try:
        p, call = s.get_product.with_call(catalog.GetProductRequest(sku="sku-book"),
                                          timeout=timeout, metadata=METADATA)
        served_by = dict(call.initial_metadata()).get("x-served-by", "?")
        print(f"   GetProduct sku-book  OK in {(time.monotonic() - t0) * 1000:.0f} ms: "
              f"{p.name!r} {dollars(p.unit_price_cents)} tags={list(p.tags)} "
              f"(x-served-by: {served_by})")
        if p.sku != "sku-book" or p.unit_price_cents != 4200:
            problems.append(f"GetProduct answered {p}")
        if served_by != "catalog-python":
            problems.append("initial metadata x-served-by did not come through")
    except grpc.RpcError as e:
        print(f"   GetProduct sku-book  {status_line(e, (time.monotonic() - t0) * 1000)}")
        problems.append("GetProduct: expected OK")

    t0 = time.monotonic()
    try:
        skus = [p.sku for p in s.list_products(catalog.ListProductsRequest(), timeout=timeout,
                                               metadata=METADATA)]
        print(f"   ListProducts         OK in {(time.monotonic() - t0) * 1000:.0f} ms: "
              f"{len(skus)} products: {', '.join(skus)}")
        if skus != ["sku-book", "sku-mug", "sku-pen"]:
            problems.append(f"ListProducts streamed {skus}")
    except grpc.RpcError as e:
        print(f"   ListProducts         {status_line(e, (time.monotonic() - t0) * 1000)}")
        problems.append("ListProducts: expected OK")

    _, e, ms = timed(s.get_product, catalog.GetProductRequest(sku="sku-nope"), timeout=timeout)
    if e:
        print(f"   GetProduct sku-nope  {status_line(e, ms)}")
    else:
        print(f"   GetProduct sku-nope  OK in {ms:.0f} ms")
    if not e or e.code() != grpc.StatusCode.NOT_FOUND:
        problems.append("GetProduct sku-nope: expected NOT_FOUND")
    return problems


def find_file(path):
    """path as given, else relative to the repository (run from anywhere)."""
    p = Path(path)
    return p if p.exists() or p.is_absolute() else REPO / p


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", default="localhost:8443")
    ap.add_argument("--ca", default="certs/out/ca.crt", help="CA of the gateway's certificate")
    ap.add_argument("--plaintext", action="store_true", help="h2c instead of TLS")
    ap.add_argument("--case", default="all", choices=CASES + ("all",))
    ap.add_argument("--deadline_ms", type=int, default=200, help="the timeout case's deadline")
    ap.add_argument("--connect_timeout", type=float, default=10.0, help="seconds")
    args = ap.parse_args(argv)

    pb = shop_protos.load()
    if args.plaintext:
        channel = grpc.insecure_channel(args.target)
    else:
        ca = find_file(args.ca).read_bytes()
        channel = grpc.secure_channel(args.target, grpc.ssl_channel_credentials(root_certificates=ca))
    try:
        grpc.channel_ready_future(channel).result(timeout=args.connect_timeout)
    except grpc.FutureTimeoutError:
        print(f"cannot connect to {args.target} within {args.connect_timeout:g} s", file=sys.stderr)
        return 1

    s = Shop(channel, pb)
    run = CASES if args.case == "all" else (args.case,)
    failed = []
    for name in run:
        if name == "timeout":
            problems = case_timeout(s, args.deadline_ms)
        else:
            problems = globals()[f"case_{name}"](s, 5.0)
        for p in problems:
            print(f"   -> UNEXPECTED: {p}")
        if problems:
            failed.append(name)
        else:
            print("   -> as expected")
    channel.close()
    print()
    print(f"{len(run) - len(failed)}/{len(run)} cases as expected"
          + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
