#!/usr/bin/python3
"""A stock python3-grpcio grpc.testing.TestService server for interop tests.

Implements the server features of grpc/doc/interop-test-descriptions.md with
grpcio's generic handlers: EmptyCall, UnaryCall, CacheableUnaryCall,
StreamingInputCall, StreamingOutputCall, FullDuplexCall, HalfDuplexCall, Echo
Status (response_status), Echo Metadata (x-grpc-test-echo-initial and
x-grpc-test-echo-trailing-bin), ResponseParameters.interval_us and
CompressedResponse. UnimplementedCall and grpc.testing.UnimplementedService
are deliberately absent so grpcio answers UNIMPLEMENTED. grpcio cannot tell
whether a request arrived compressed, so expect_compressed is not checked.

Flags match baton-interop-server: --port, --use_tls, --cert, --key, --ca,
--require_client_cert. Prints "listening on PORT" once serving; SIGTERM stops it.

Not from the descriptions: a call carrying harness.PATTERN_KEY (message_sizes.py)
has every request payload checked byte for byte against harness.payload_pattern;
a difference ends it with DATA_LOSS.
"""

import argparse
import signal
import sys
import threading
import time
from concurrent import futures

import grpc

import harness

INITIAL_KEY = "x-grpc-test-echo-initial"
TRAILING_KEY = "x-grpc-test-echo-trailing-bin"
CODES = {c.value[0]: c for c in grpc.StatusCode}


def build_handler(e, m):
    def echo_metadata(context):
        md = dict(context.invocation_metadata())
        if INITIAL_KEY in md:
            context.send_initial_metadata(((INITIAL_KEY, md[INITIAL_KEY]),))
        if TRAILING_KEY in md:
            context.set_trailing_metadata(((TRAILING_KEY, md[TRAILING_KEY]),))

    def echo_status(request, context):
        """Echo Status: end the call with the requested code and message."""
        if request.HasField("response_status") and request.response_status.code != 0:
            code = CODES.get(request.response_status.code, grpc.StatusCode.UNKNOWN)
            context.abort(code, request.response_status.message)

    def check_type(response_type, context):
        if response_type != m.COMPRESSABLE:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"unsupported response_type {response_type}")

    def payload(n):
        return m.Payload(type=m.COMPRESSABLE, body=b"\x00" * n)

    def pattern_checked(requests, context):
        """The requests, each payload checked against harness.payload_pattern when
        the call carries harness.PATTERN_KEY (message_sizes.py); DATA_LOSS on a
        difference."""
        if harness.PATTERN_KEY not in dict(context.invocation_metadata()):
            yield from requests
            return
        for k, request in enumerate(requests):
            problem = harness.pattern_problem(request.payload.body, k)
            if problem:
                context.abort(grpc.StatusCode.DATA_LOSS, problem)
            yield request

    def empty_call(request, context):
        echo_metadata(context)
        return e.Empty()

    def unary_call(request, context):
        echo_metadata(context)
        echo_status(request, context)
        check_type(request.response_type, context)
        request, = pattern_checked([request], context)
        if request.HasField("response_compressed") and request.response_compressed.value:
            context.set_compression(grpc.Compression.Gzip)
        return m.SimpleResponse(payload=payload(request.response_size))

    def cacheable_unary_call(request, context):
        context.send_initial_metadata((("cache-control", "max-age=60"),))
        return m.SimpleResponse(payload=m.Payload(body=str(time.time_ns()).encode()))

    def streaming_input_call(request_iterator, context):
        echo_metadata(context)
        request_iterator = pattern_checked(request_iterator, context)
        total = sum(len(r.payload.body) for r in request_iterator)
        return m.StreamingInputCallResponse(aggregated_payload_size=total)

    def respond(request, context):
        """The responses one StreamingOutputCallRequest asks for, honouring interval_us."""
        check_type(request.response_type, context)
        compress = any(p.HasField("compressed") and p.compressed.value for p in request.response_parameters)
        if compress:
            context.set_compression(grpc.Compression.Gzip)
        for p in request.response_parameters:
            if p.interval_us > 0:
                time.sleep(p.interval_us / 1e6)
            if compress and not (p.HasField("compressed") and p.compressed.value):
                context.disable_next_message_compression()
            yield m.StreamingOutputCallResponse(payload=payload(p.size))

    def streaming_output_call(request, context):
        echo_metadata(context)
        yield from respond(request, context)
        echo_status(request, context)

    def full_duplex_call(request_iterator, context):
        echo_metadata(context)
        request_iterator = pattern_checked(request_iterator, context)
        for request in request_iterator:
            echo_status(request, context)
            yield from respond(request, context)

    def half_duplex_call(request_iterator, context):
        echo_metadata(context)
        requests = list(request_iterator)
        for request in requests:
            echo_status(request, context)
            yield from respond(request, context)

    def uu(fn, req, resp):
        return grpc.unary_unary_rpc_method_handler(fn, request_deserializer=req.FromString,
                                                   response_serializer=resp.SerializeToString)

    sreq, sresp = m.StreamingOutputCallRequest, m.StreamingOutputCallResponse
    handlers = {
        "EmptyCall": uu(empty_call, e.Empty, e.Empty),
        "UnaryCall": uu(unary_call, m.SimpleRequest, m.SimpleResponse),
        "CacheableUnaryCall": uu(cacheable_unary_call, m.SimpleRequest, m.SimpleResponse),
        "StreamingInputCall": grpc.stream_unary_rpc_method_handler(
            streaming_input_call, request_deserializer=m.StreamingInputCallRequest.FromString,
            response_serializer=m.StreamingInputCallResponse.SerializeToString),
        "StreamingOutputCall": grpc.unary_stream_rpc_method_handler(
            streaming_output_call, request_deserializer=sreq.FromString,
            response_serializer=sresp.SerializeToString),
        "FullDuplexCall": grpc.stream_stream_rpc_method_handler(
            full_duplex_call, request_deserializer=sreq.FromString,
            response_serializer=sresp.SerializeToString),
        "HalfDuplexCall": grpc.stream_stream_rpc_method_handler(
            half_duplex_call, request_deserializer=sreq.FromString,
            response_serializer=sresp.SerializeToString),
    }
    return grpc.method_handlers_generic_handler("grpc.testing.TestService", handlers)


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--use_tls", type=harness.bool_flag, default=False, nargs="?", const=True)
    p.add_argument("--cert", help="server certificate chain (PEM)")
    p.add_argument("--key", help="server private key (PEM)")
    p.add_argument("--ca", help="CA for client certificates (PEM)")
    p.add_argument("--require_client_cert", type=harness.bool_flag, default=False, nargs="?", const=True)
    p.add_argument("--proto_dir", help="root of grpc/testing/*.proto (default: examples/interop/proto)")
    args = p.parse_args(argv)
    if args.use_tls and not (args.cert and args.key):
        p.error("--use_tls needs --cert and --key")
    if args.require_client_cert and not args.ca:
        p.error("--require_client_cert needs --ca")
    return args


def main(argv):
    args = parse_args(argv)
    e, m = harness.load_interop_messages(args.proto_dir)
    # SO_REUSEPORT off: a port clash must fail the bind, not share the port silently.
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=32),
                         options=[("grpc.so_reuseport", 0)])
    server.add_generic_rpc_handlers((build_handler(e, m),))
    addr = f"{args.host}:{args.port}"
    if args.use_tls:
        creds = grpc.ssl_server_credentials(
            [(open(args.key, "rb").read(), open(args.cert, "rb").read())],
            root_certificates=open(args.ca, "rb").read() if args.ca else None,
            require_client_auth=args.require_client_cert)
        port = server.add_secure_port(addr, creds)
    else:
        port = server.add_insecure_port(addr)
    if port == 0:
        print(f"cannot listen on {addr}", file=sys.stderr, flush=True)
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
