#!/usr/bin/python3
"""A stock python3-grpcio client for gRPC's interop test cases.

Implements the cases of grpc/doc/interop-test-descriptions.md that need no
cloud credentials or compression introspection, with the flags of gRPC's own
interop clients (--server_host, --server_port, --server_host_override,
--test_case, --use_tls) plus --ca and --cert/--key for Baton's dev PKI.
Prints "PASS <case>" or "FAIL <case>: <why>" per case; exits 0 iff all passed.

--expect_refused is not an interop case: it asserts that a TLS server which
requires client certificates refuses this client (run it without --cert).
"""

import argparse
import queue
import sys
import time

import harness

SVC = "/grpc.testing.TestService/"
ZERO = b"\x00"


class Stub:
    """grpc.testing.TestService through grpcio's generic multicallables."""

    def __init__(self, channel, e, m):
        def uu(path, req, resp):
            return channel.unary_unary(path, request_serializer=req.SerializeToString,
                                       response_deserializer=resp.FromString)

        self.EmptyCall = uu(SVC + "EmptyCall", e.Empty, e.Empty)
        self.UnaryCall = uu(SVC + "UnaryCall", m.SimpleRequest, m.SimpleResponse)
        self.StreamingOutputCall = channel.unary_stream(
            SVC + "StreamingOutputCall",
            request_serializer=m.StreamingOutputCallRequest.SerializeToString,
            response_deserializer=m.StreamingOutputCallResponse.FromString)
        self.StreamingInputCall = channel.stream_unary(
            SVC + "StreamingInputCall",
            request_serializer=m.StreamingInputCallRequest.SerializeToString,
            response_deserializer=m.StreamingInputCallResponse.FromString)
        self.FullDuplexCall = channel.stream_stream(
            SVC + "FullDuplexCall",
            request_serializer=m.StreamingOutputCallRequest.SerializeToString,
            response_deserializer=m.StreamingOutputCallResponse.FromString)
        self.UnimplementedCall = uu(SVC + "UnimplementedCall", e.Empty, e.Empty)
        self.UnimplementedServiceCall = uu("/grpc.testing.UnimplementedService/UnimplementedCall",
                                           e.Empty, e.Empty)


class Pipe:
    """A request iterator the test feeds one message at a time (for ping-pong and cancels)."""

    _END = object()

    def __init__(self):
        self._q = queue.Queue()

    def add(self, msg):
        self._q.put(msg)

    def close(self):
        self._q.put(self._END)

    def __iter__(self):
        return self

    def __next__(self):
        item = self._q.get()
        if item is self._END:
            raise StopIteration
        return item

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        # Unblocks grpc's request-consuming thread whatever happened to the call.
        self.close()


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def expect_rpc_error(fn, code, details=None):
    import grpc

    try:
        fn()
    except grpc.RpcError as err:
        check(err.code() == code, f"status {err.code()} ({err.details()!r}), want {code}")
        if details is not None:
            check(err.details() == details, f"message {err.details()!r}, want {details!r}")
        return err
    raise AssertionError(f"call succeeded, want {code}")


class Cases:
    def __init__(self, stub, e, m, timeout):
        self.s, self.e, self.m, self.t = stub, e, m, timeout

    def payload(self, n):
        return self.m.Payload(type=self.m.COMPRESSABLE, body=ZERO * n)

    def check_body(self, payload, n, what="response"):
        check(len(payload.body) == n, f"{what} payload is {len(payload.body)} bytes, want {n}")
        check(payload.body == ZERO * n, f"{what} payload is not all zeros")

    def empty_unary(self):
        resp = self.s.EmptyCall(self.e.Empty(), timeout=self.t)
        check(isinstance(resp, self.e.Empty), f"response is {type(resp)}")

    def large_unary(self):
        req = self.m.SimpleRequest(response_type=self.m.COMPRESSABLE, response_size=314159,
                                   payload=self.payload(271828))
        resp = self.s.UnaryCall(req, timeout=self.t)
        self.check_body(resp.payload, 314159)

    def client_streaming(self):
        sizes = (27182, 8, 1828, 45904)
        reqs = [self.m.StreamingInputCallRequest(payload=self.payload(n)) for n in sizes]
        resp = self.s.StreamingInputCall(iter(reqs), timeout=self.t)
        check(resp.aggregated_payload_size == 74922,
              f"aggregated_payload_size {resp.aggregated_payload_size}, want 74922")

    def server_streaming(self):
        sizes = (31415, 9, 2653, 58979)
        req = self.m.StreamingOutputCallRequest(
            response_type=self.m.COMPRESSABLE,
            response_parameters=[self.m.ResponseParameters(size=n) for n in sizes])
        resps = list(self.s.StreamingOutputCall(req, timeout=self.t))
        check(len(resps) == 4, f"{len(resps)} responses, want 4")
        for i, (r, n) in enumerate(zip(resps, sizes)):
            self.check_body(r.payload, n, f"response {i}")

    def ping_pong(self):
        req_sizes = (27182, 8, 1828, 45904)
        resp_sizes = (31415, 9, 2653, 58979)
        with Pipe() as pipe:
            it = self.s.FullDuplexCall(pipe, timeout=self.t)
            for i, (rq, rs) in enumerate(zip(req_sizes, resp_sizes)):
                pipe.add(self.m.StreamingOutputCallRequest(
                    response_type=self.m.COMPRESSABLE,
                    response_parameters=[self.m.ResponseParameters(size=rs)],
                    payload=self.payload(rq)))
                resp = next(it)
                self.check_body(resp.payload, rs, f"response {i}")
            pipe.close()
            rest = list(it)
            check(not rest, f"{len(rest)} extra responses after half-close")

    def empty_stream(self):
        resps = list(self.s.FullDuplexCall(iter(()), timeout=self.t))
        check(not resps, f"{len(resps)} responses, want 0")

    def custom_metadata(self):
        init = ("x-grpc-test-echo-initial", "test_initial_metadata_value")
        trail = ("x-grpc-test-echo-trailing-bin", b"\xab\xab\xab")

        def check_md(call, step):
            got_init = dict(call.initial_metadata())
            got_trail = dict(call.trailing_metadata())
            check(got_init.get(init[0]) == init[1],
                  f"{step}: initial metadata {init[0]}={got_init.get(init[0])!r}, want {init[1]!r}")
            check(got_trail.get(trail[0]) == trail[1],
                  f"{step}: trailing metadata {trail[0]}={got_trail.get(trail[0])!r}, want {trail[1]!r}")

        req = self.m.SimpleRequest(response_type=self.m.COMPRESSABLE, response_size=314159,
                                   payload=self.payload(271828))
        resp, call = self.s.UnaryCall.with_call(req, metadata=(init, trail), timeout=self.t)
        self.check_body(resp.payload, 314159, "UnaryCall")
        check_md(call, "UnaryCall")

        req = self.m.StreamingOutputCallRequest(
            response_type=self.m.COMPRESSABLE,
            response_parameters=[self.m.ResponseParameters(size=314159)],
            payload=self.payload(271828))
        it = self.s.FullDuplexCall(iter([req]), metadata=(init, trail), timeout=self.t)
        resps = list(it)
        check(len(resps) == 1, f"FullDuplexCall: {len(resps)} responses, want 1")
        self.check_body(resps[0].payload, 314159, "FullDuplexCall")
        check_md(it, "FullDuplexCall")

    def _echo_status(self, code, message, duplex):
        import grpc

        want = {c.value[0]: c for c in grpc.StatusCode}[code]
        status = self.m.EchoStatus(code=code, message=message)
        expect_rpc_error(
            lambda: self.s.UnaryCall(self.m.SimpleRequest(response_status=status), timeout=self.t),
            want, message)
        if duplex:
            req = self.m.StreamingOutputCallRequest(response_status=status)
            expect_rpc_error(lambda: list(self.s.FullDuplexCall(iter([req]), timeout=self.t)),
                             want, message)

    def status_code_and_message(self):
        self._echo_status(2, "test status message", duplex=True)

    def special_status_message(self):
        self._echo_status(
            2, "\t\ntest with whitespace\r\nand Unicode BMP \u263a and non-BMP \U0001f608\t\n",
            duplex=False)

    def unimplemented_method(self):
        import grpc

        expect_rpc_error(lambda: self.s.UnimplementedCall(self.e.Empty(), timeout=self.t),
                         grpc.StatusCode.UNIMPLEMENTED)

    def unimplemented_service(self):
        import grpc

        expect_rpc_error(lambda: self.s.UnimplementedServiceCall(self.e.Empty(), timeout=self.t),
                         grpc.StatusCode.UNIMPLEMENTED)

    def cancel_after_begin(self):
        import grpc

        with Pipe() as pipe:
            fut = self.s.StreamingInputCall.future(pipe, timeout=self.t)
            fut.cancel()
            check(fut.cancelled(), "future not cancelled after cancel()")
            check(fut.code() == grpc.StatusCode.CANCELLED, f"status {fut.code()}, want CANCELLED")

    def cancel_after_first_response(self):
        import grpc

        with Pipe() as pipe:
            it = self.s.FullDuplexCall(pipe, timeout=self.t)
            pipe.add(self.m.StreamingOutputCallRequest(
                response_type=self.m.COMPRESSABLE,
                response_parameters=[self.m.ResponseParameters(size=31415)],
                payload=self.payload(27182)))
            resp = next(it)
            self.check_body(resp.payload, 31415, "first response")
            it.cancel()
            expect_rpc_error(lambda: next(it), grpc.StatusCode.CANCELLED)

    def timeout_on_sleeping_server(self):
        import grpc

        with Pipe() as pipe:
            it = self.s.FullDuplexCall(pipe, timeout=0.001)
            pipe.add(self.m.StreamingOutputCallRequest(payload=self.payload(27182)))
            expect_rpc_error(lambda: next(it), grpc.StatusCode.DEADLINE_EXCEEDED)


ALL_CASES = (
    "empty_unary", "large_unary", "client_streaming", "server_streaming", "ping_pong",
    "empty_stream", "custom_metadata", "status_code_and_message", "special_status_message",
    "unimplemented_method", "unimplemented_service", "cancel_after_begin",
    "cancel_after_first_response", "timeout_on_sleeping_server",
)


def make_channel(args, with_client_cert=True):
    import grpc

    target = f"{args.server_host}:{args.server_port}"
    # Never route loopback tests through a proxy from the environment.
    options = [("grpc.enable_http_proxy", 0), ("grpc.enable_retries", 0)]
    if not args.use_tls:
        if args.server_host_override:
            options.append(("grpc.default_authority", args.server_host_override))
        return grpc.insecure_channel(target, options=options)
    ca = open(args.ca, "rb").read() if args.ca else None
    key = crt = None
    if with_client_cert and args.cert:
        crt = open(args.cert, "rb").read()
        key = open(args.key, "rb").read()
    creds = grpc.ssl_channel_credentials(root_certificates=ca, private_key=key, certificate_chain=crt)
    if args.server_host_override:
        options.append(("grpc.ssl_target_name_override", args.server_host_override))
    return grpc.secure_channel(target, creds, options=options)


def run_expect_refused(args, e):
    """The server requires a client certificate and this client presents none."""
    import grpc

    channel = make_channel(args, with_client_cert=False)
    call = channel.unary_unary(SVC + "EmptyCall", request_serializer=e.Empty.SerializeToString,
                               response_deserializer=e.Empty.FromString)
    name = "refused_without_client_cert"
    try:
        call(e.Empty(), timeout=args.rpc_timeout)
    except grpc.RpcError as err:
        if err.code() == grpc.StatusCode.UNAVAILABLE:
            harness.log(f"PASS {name} (UNAVAILABLE: {err.details()})")
            return True
        harness.log(f"FAIL {name}: status {err.code()} ({err.details()!r}), want UNAVAILABLE")
        return False
    finally:
        channel.close()
    harness.log(f"FAIL {name}: the call succeeded without a client certificate")
    return False


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--server_host", default="127.0.0.1")
    p.add_argument("--server_port", type=int, required=True)
    p.add_argument("--server_host_override", default="")
    p.add_argument("--test_case", default="all",
                   help="a case name, a comma-separated list, or 'all': " + ", ".join(ALL_CASES))
    p.add_argument("--use_tls", type=harness.bool_flag, default=False, nargs="?", const=True)
    p.add_argument("--use_test_ca", type=harness.bool_flag, default=False, nargs="?", const=True,
                   help="accepted for compatibility; the CA comes from --ca")
    p.add_argument("--ca", "--ca_file", dest="ca", help="PEM root CA (default: system roots)")
    p.add_argument("--cert", help="client certificate chain (PEM) for mTLS")
    p.add_argument("--key", help="client private key (PEM) for mTLS")
    p.add_argument("--rpc_timeout", type=float, default=15.0, help="deadline of every call, seconds")
    p.add_argument("--proto_dir", help="root of grpc/testing/*.proto (default: examples/interop/proto)")
    p.add_argument("--expect_refused", action="store_true",
                   help="only assert that the (mTLS) server refuses this client without a certificate")
    args = p.parse_args(argv)
    if bool(args.cert) != bool(args.key):
        p.error("--cert and --key go together")
    return args


def main(argv):
    args = parse_args(argv)
    e, m = harness.load_interop_messages(args.proto_dir)
    if args.expect_refused:
        return 0 if run_expect_refused(args, e) else 1

    names = ALL_CASES if args.test_case == "all" else args.test_case.split(",")
    unknown = [n for n in names if n not in ALL_CASES]
    if unknown:
        harness.log(f"unknown test case(s): {', '.join(unknown)}")
        return 2

    channel = make_channel(args)
    cases = Cases(Stub(channel, e, m), e, m, args.rpc_timeout)
    failed = []
    for name in names:
        start = time.monotonic()
        try:
            getattr(cases, name)()
        except Exception as err:  # any failure of one case is reported and the rest still run
            failed.append(name)
            harness.log(f"FAIL {name}: {type(err).__name__}: {err}")
        else:
            harness.log(f"PASS {name} ({(time.monotonic() - start) * 1000:.0f} ms)")
    channel.close()
    harness.log(f"{len(names) - len(failed)}/{len(names)} cases passed"
                + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
