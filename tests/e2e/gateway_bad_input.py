#!/usr/bin/python3
"""Bad input never hurts baton-gateway: malformed client messages, oversized
messages, unknown methods, and backends that answer wrongly.

Starts shop-orders, baton-gateway with gateway/bad_input.yaml and, for the
backend_* cases, gateway_bad_backend.py in the matching mode; then runs one
case. Every case asserts the gRPC status (code, and a message that names
the field or the step), that 20 good calls on another connection at the
same time all succeed, that a good flow call and a good route call succeed
afterwards, and that the gateway exits cleanly on SIGTERM with no sanitizer
report.

  client sends                         want
  invalid_utf8         customer_id not UTF-8          INVALID_ARGUMENT naming customer_id
  invalid_utf8_nested  items[1].sku not UTF-8         INVALID_ARGUMENT naming items[1].sku
  truncated_varint     express's varint cut short     INVALID_ARGUMENT naming express
  truncated_length     customer_id longer than sent   INVALID_ARGUMENT naming customer_id
  oversized            100 KiB > limits 64 KiB        RESOURCE_EXHAUSTED (flow and route)
  unknown_method       no flow or route for it        UNIMPLEMENTED

  backend answers (step 'charge')      want (gRPC's HTTP mapping, libbaton's client rules)
  backend_garbage_message              INTERNAL
  backend_truncated_frame              INTERNAL
  backend_wrong_content_type           UNKNOWN
  backend_no_trailers                  INTERNAL
  backend_http_503                     UNAVAILABLE
  backend_not_http2                    UNAVAILABLE

  gateway_bad_input.py --case=NAME --gateway=PATH --shop-bin-dir=DIR [--descriptors=shop_proto.pb]
"""

import sys
import time

import harness
import gateway_env as ge

BAD_BACKEND = harness.HERE / "gateway_bad_backend.py"
PLACE_ORDER = "/shop.v1.Shop/PlaceOrder"
CHARGE = "/shop.v1.Payments/Charge"

# Hand-written PlaceOrderRequest bytes: 1 customer_id, 2 items (Item: 1 sku,
# 2 quantity, 3 unit_price_cents), 4 express.
GOOD_CUSTOMER = b"\x0a\x01c"
GOOD_ITEM = b"\x12\x08\x0a\x02ok\x10\x01\x18\x05"

MALFORMED = {
    "invalid_utf8": (GOOD_ITEM + b"\x0a\x02\xff\xfe", r"customer_id"),
    "invalid_utf8_nested": (GOOD_CUSTOMER + GOOD_ITEM + b"\x12\x03\x0a\x01\xff", r"items\[1\]\.sku"),
    "truncated_varint": (GOOD_CUSTOMER + GOOD_ITEM + b"\x20\x80", r"express"),
    "truncated_length": (GOOD_ITEM + b"\x0a\x10ab", r"customer_id"),
}

BACKEND = {
    "backend_garbage_message": "INTERNAL",
    "backend_truncated_frame": "INTERNAL",
    "backend_wrong_content_type": "UNKNOWN",
    "backend_no_trailers": "INTERNAL",
    "backend_http_503": "UNAVAILABLE",
    "backend_not_http2": "UNAVAILABLE",
}

CASES = sorted(list(MALFORMED) + list(BACKEND) + ["oversized", "unknown_method"])


def raw_call(ch, path):
    return ch.unary_unary(path, request_serializer=lambda b: b, response_deserializer=lambda b: b)


class Env:
    def __init__(self, args):
        self.common, self.shop, _ = ge.shop_messages()
        work = ge.tmpdir()
        self.orders, orders_port = ge.start_shop_backend(args, "orders")
        self.bad = None
        bad_port = harness.free_port()  # nothing listens there unless a backend_* case
        if args.case in BACKEND:
            mode = args.case[len("backend_"):]
            self.bad, bad_port = harness.start_server(
                "bad-backend", lambda port: [sys.executable, BAD_BACKEND, f"--port={port}", f"--mode={mode}"])
        self.gw, self.port, _ = ge.start_gateway(
            args.gateway, "bad_input.yaml", work, descriptors=ge.shop_descriptors(args, work),
            orders=orders_port, bad=bad_port)
        self.ch = ge.channel(self.port)
        self.other = ge.channel(self.port)  # "other clients": a second connection

    def good_request(self, i=0):
        return self.shop.PlaceOrderRequest(
            customer_id=f"good-{i}", items=[self.common.Item(sku="s", quantity=2, unit_price_cents=50)])

    def good_flow_call(self, ch):
        resp = ge.unary(ch, PLACE_ORDER, self.shop.PlaceOrderResponse)(self.good_request(), timeout=ge.RPC_WAIT)
        return resp.order_id.startswith("ord-") and resp.total_cents == 100

    def good_route_call(self, ch):
        s = ge.unary(ch, "/shop.v1.Orders/Stats", self.common.StatsResponse)(
            self.common.StatsRequest(), timeout=ge.RPC_WAIT)
        return s.calls >= 1

    def others_during(self, n=20):
        call = ge.unary(self.other, PLACE_ORDER, self.shop.PlaceOrderResponse)
        return [call.future(self.good_request(i), timeout=ge.RPC_WAIT) for i in range(n)]


def expect(check, err, code, pattern, what):
    import re

    got = ge.describe_error(err)
    return check(err is not None and err.code().name == code and re.search(pattern, err.details() or ""),
                 f"{what}: {code} with a message matching /{pattern}/, got {got}")


def run_case(env, case, check):
    if case in MALFORMED:
        body, field = MALFORMED[case]
        err = ge.rpc_error(lambda: raw_call(env.ch, PLACE_ORDER)(body, timeout=ge.RPC_WAIT))
        expect(check, err, "INVALID_ARGUMENT", field, f"{case} ({body.hex()})")
    elif case == "oversized":
        big = env.shop.PlaceOrderRequest(customer_id="x" * (100 * 1024)).SerializeToString()
        err = ge.rpc_error(lambda: raw_call(env.ch, PLACE_ORDER)(big, timeout=ge.RPC_WAIT))
        expect(check, err, "RESOURCE_EXHAUSTED", r".", "a 100 KiB request to a flow (limit 64 KiB)")
        err = ge.rpc_error(lambda: raw_call(env.ch, "/shop.v1.Orders/Stats")(big, timeout=ge.RPC_WAIT))
        expect(check, err, "RESOURCE_EXHAUSTED", r".", "a 100 KiB request to a route (limit 64 KiB)")
    elif case == "unknown_method":
        for path in ("/shop.v1.Nope/Nothing", "/shop.v1.Shipping/Quote", "/not-even-a-method"):
            err = ge.rpc_error(lambda: raw_call(env.ch, path)(b"", timeout=ge.RPC_WAIT))
            expect(check, err, "UNIMPLEMENTED", r".*", path)
    else:
        req = env.shop.ChargeRequest(order_id="o-1", amount_cents=100, card_token="tok")
        start = time.monotonic()
        err = ge.rpc_error(lambda: ge.unary(env.ch, CHARGE, env.shop.Charge)(req, timeout=ge.RPC_WAIT))
        ms = ge.elapsed_ms(start)
        expect(check, err, BACKEND[case], r"step 'charge'", f"a backend that answers {case[8:]}")
        check(ms < 2000, f"answered in {ms:.0f} ms, not at the 5 s flow timeout")


def main(argv):
    ap = ge.arg_parser(__doc__, CASES)
    args = ap.parse_args(argv)
    if not args.shop_bin_dir:
        ap.error("--shop-bin-dir is required")
    harness.hard_timeout(args.timeout)
    check = ge.Check()
    env = Env(args)
    try:
        check(env.good_flow_call(env.ch), "a good call before")
        during = env.others_during()
        run_case(env, args.case, check)
        failed = [ge.describe_error(f.exception()) for f in during if f.exception() is not None]
        check(not failed, f"20 good calls on another connection at the same time all succeeded {failed[:3]}")
        check(env.gw.alive(), "the gateway is still running")
        check(env.good_flow_call(env.ch), "a good flow call afterwards, same connection")
        check(env.good_flow_call(ge.channel(env.port)), "a good flow call afterwards, new connection")
        check(env.good_route_call(env.ch), "a good route call afterwards")
    except Exception as err:  # an unexpected error fails the case, after a clean stop
        import traceback

        traceback.print_exc()
        check.fail(f"case raised {type(err).__name__}: {err}")
    env.ch.close()
    env.other.close()
    return check.finish(f"gateway bad input {args.case}", [env.gw, env.orders, env.bad])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
