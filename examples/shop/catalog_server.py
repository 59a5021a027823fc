#!/usr/bin/python3
"""The shop's Catalog backend, a stock python3-grpcio server.

Serves shop.v1.Catalog (proto/shop/v1/catalog.proto) with grpcio's generic
handlers: GetProduct (unary; NOT_FOUND for an unknown sku) and ListProducts
(server streaming, every product in sku order, interval_ms apart). Each
answer carries the initial metadata "x-served-by: catalog-python", so a
client of the gateway's passthrough route can see who answered. It exists to
prove that baton-gateway passes calls through to servers nobody here wrote.

    catalog_server.py --port=N [--host=ADDR] [--use_tls=true --cert F --key F]

Prints "listening on PORT" once serving; SIGTERM or SIGINT stops it.
"""

import argparse
import signal
import sys
import threading
from concurrent import futures

import grpc

import shop_protos

SERVED_BY = ("x-served-by", "catalog-python")

# sku -> (name, unit_price_cents, tags); the client's orders use these skus.
PRODUCTS = {
    "sku-book": ("The Art of Computer Programming, Vol. 1", 4200, ["books"]),
    "sku-mug": ("Baton mug", 1250, ["kitchen", "merch"]),
    "sku-pen": ("Fountain pen", 899, ["office"]),
}


def bool_flag(text):
    v = text.strip().lower()
    if v in ("1", "true", "yes", "on"):
        return True
    if v in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"not a boolean: {text!r}")


def build_handler(c):
    def product(sku):
        name, price, tags = PRODUCTS[sku]
        return c.Product(sku=sku, name=name, unit_price_cents=price, tags=tags)

    def get_product(request, context):
        context.send_initial_metadata((SERVED_BY,))
        if request.sku not in PRODUCTS:
            context.abort(grpc.StatusCode.NOT_FOUND, f"no product {request.sku!r}")
        return product(request.sku)

    def list_products(request, context):
        context.send_initial_metadata((SERVED_BY,))
        stop = threading.Event()
        context.add_callback(stop.set)  # the call ended: cancelled or done
        for sku in sorted(PRODUCTS):
            if request.interval_ms > 0 and stop.wait(request.interval_ms / 1000):
                return
            yield product(sku)

    return grpc.method_handlers_generic_handler("shop.v1.Catalog", {
        "GetProduct": grpc.unary_unary_rpc_method_handler(
            get_product, request_deserializer=c.GetProductRequest.FromString,
            response_serializer=c.Product.SerializeToString),
        "ListProducts": grpc.unary_stream_rpc_method_handler(
            list_products, request_deserializer=c.ListProductsRequest.FromString,
            response_serializer=c.Product.SerializeToString),
    })


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--use_tls", type=bool_flag, default=False)
    p.add_argument("--cert", default="certs/out/server.crt")
    p.add_argument("--key", default="certs/out/server.key")
    args = p.parse_args(argv)

    _, _, catalog_pb2 = shop_protos.load()
    # SO_REUSEPORT off: a port clash must fail the bind, not share the port.
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16),
                         options=[("grpc.so_reuseport", 0)])
    server.add_generic_rpc_handlers((build_handler(catalog_pb2),))
    addr = f"{args.host}:{args.port}"
    try:
        if args.use_tls:
            with open(args.key, "rb") as k, open(args.cert, "rb") as c:
                creds = grpc.ssl_server_credentials([(k.read(), c.read())])
            port = server.add_secure_port(addr, creds)
        else:
            port = server.add_insecure_port(addr)
    except RuntimeError as e:  # grpcio raises when the bind fails
        print(f"catalog_server: cannot listen on {addr}: {e}", file=sys.stderr, flush=True)
        return 1
    if port == 0:
        print(f"catalog_server: cannot listen on {addr}", file=sys.stderr, flush=True)
        return 1
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    server.start()
    print(f"listening on {port}", flush=True)
    while not stop.wait(0.5):
        pass
    server.stop(grace=1).wait(5)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
