#!/usr/bin/python3
"""baton-gateway's limits end to end: back-pressure towards a backend, default
timeouts, route prefixes, baton-* metadata, a repeated SIGTERM, the connection cap.

  python3-grpcio client (or raw sockets) -> baton-gateway -> a backend

The backend is this script's own python3-grpcio echo server (started as
`gateway_limits.py --serve-backend --port=N`) or baton-interop-server
(--server=PATH). The echo server answers any unary method: it sleeps the
request's x-sleep-ms metadata (in 10 ms steps, stopping early when the call is
cancelled), then returns a grpc.testing.SimpleResponse whose username is JSON:
{"path", "metadata" (what it received), "remaining_ms" (its deadline, null
when none)}. It prints "call PATH tag=T remaining_ms=R" on arrival and
"done PATH tag=T" / "cancelled PATH tag=T" at the end, T being the x-tag
metadata, so the test can see which calls reached it and when.

Cases (configs in gateway/limits_*.yaml):

  pending_cap             one backend stream (connections: 1, max_streams: 1),
                          max_pending: 1: a call holds the stream, a second
                          waits, a third fails at once with UNAVAILABLE naming
                          the backend and max_pending; the first two complete
  pending_timeout         the same stream, pending_timeout: 300ms: the call
                          waiting behind a 2 s one fails with UNAVAILABLE
                          (pending_timeout) after ~300 ms, never reaching it
  route_timeout_default   limits.route_timeout 300ms: a slow call on a route
                          without timeout gets DEADLINE_EXCEEDED at ~300 ms;
                          on a route with 'timeout: 0s' it completes (the
                          backend sees the client's deadline, or none); with no
                          limits at all a route's backend sees 60 s
  step_timeout_default    limits.step_timeout 300ms: a flow step without
                          timeout calling a slow backend fails
                          DEADLINE_EXCEEDED naming the step at ~300 ms; without
                          limits the step's backend sees 10 s
  route_prefix_boundary   prefix /grpc.testing.TestService/EmptyCall routes that
                          method only (EmptyCallX: UNIMPLEMENTED); prefix
                          /grpc.testing.Test routes /grpc.testing.Test/... but
                          not /grpc.testing.TestService/UnaryCall
  baton_metadata_dropped  a client's baton-saga-id and baton-step never reach
                          the backend through a route; x-keep does
  forward_metadata_baton_rejected  `--check` refuses forward_metadata:
                          [baton-saga-id] with file:line naming baton-*
  double_sigterm          the gateway draining calls held by
                          baton-interop-server gets 21 SIGTERMs in ~200 ms:
                          the calls complete, it prints "stopped", exits 0
  double_sigterm_server   the same against baton-interop-server itself
  connection_cap          limits.max_connections 20: of 40 raw h2c connections
                          20 stay open and 20 are closed at once, one
                          "connection limit" line; then a grpcio call works

  gateway_limits.py --case=NAME --gateway=PATH [--server=baton-interop-server]
                    [--descriptors=interop_proto.pb]

Every process gets SIGTERM at the end and must exit cleanly with no sanitizer
report. Timing bounds are loose above (sanitizer builds are slow) and tight below.
"""

import json
import os
import select
import signal
import socket
import sys
import threading
import time

import harness
import gateway_env as ge

INTEROP_PROTOS = ["grpc/testing/empty.proto", "grpc/testing/messages.proto", "grpc/testing/test.proto"]
SVC = "/grpc.testing.TestService"
H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
H2_EMPTY_SETTINGS = b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
# What a backend may see of a grpcio client's 10 s deadline: grpcio rounds the
# grpc-timeout it sends up to 3 significant figures (10 s goes out as "10100m").
GRPCIO_10S_MS = 10100


# ---- the echo backend (runs as its own process) ------------------------------


def serve_backend(argv):
    import argparse
    from concurrent import futures

    import grpc

    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    a = ap.parse_args(argv)
    _, m = harness.load_interop_messages()

    def handler(path):
        def handle(request, context):
            md = [(k, v if isinstance(v, str) else v.hex()) for k, v in context.invocation_metadata()]
            d = dict(md)
            tag = d.get("x-tag", "")
            left = context.time_remaining()
            # grpcio reports "no deadline" as a huge remaining time.
            remaining_ms = None if left is None or left > 1e6 else int(left * 1000)
            print(f"call {path} tag={tag} remaining_ms={remaining_ms}", flush=True)
            end = time.monotonic() + int(d.get("x-sleep-ms", "0")) / 1000
            while time.monotonic() < end:
                if not context.is_active():
                    print(f"cancelled {path} tag={tag}", flush=True)
                    return b""
                time.sleep(min(0.01, max(0.0, end - time.monotonic())))
            print(f"done {path} tag={tag}", flush=True)
            body = json.dumps({"path": path, "metadata": md, "remaining_ms": remaining_ms})
            return m.SimpleResponse(username=body).SerializeToString()

        return grpc.unary_unary_rpc_method_handler(handle)  # bytes in, bytes out

    class Any(grpc.GenericRpcHandler):
        def service(self, details):
            return handler(details.method)

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=32), options=[("grpc.so_reuseport", 0)])
    server.add_generic_rpc_handlers((Any(),))
    if server.add_insecure_port(f"127.0.0.1:{a.port}") == 0:
        print(f"cannot listen on 127.0.0.1:{a.port}", file=sys.stderr, flush=True)
        return 1
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    server.start()
    print(f"listening on {a.port}", flush=True)
    while not stop.wait(0.5):
        pass
    server.stop(grace=1).wait(5)
    return 0


def start_echo():
    return harness.start_server("echo", lambda port: [sys.executable, __file__, "--serve-backend",
                                                      f"--port={port}"])


def backend_lines(proc, kind, tag=None):
    """The echo backend's "call"/"done"/"cancelled" lines (for one x-tag)."""
    out = []
    for line in proc.output().splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[0] == kind and (tag is None or parts[2] == f"tag={tag}"):
            out.append(line)
    return out


# ---- client helpers ---------------------------------------------------------


class Env:
    def __init__(self, args):
        self.args = args
        self.dir = ge.tmpdir()
        self.descriptors = ge.descriptors_arg(args, self.dir, harness.DEFAULT_PROTO_DIR, INTEROP_PROTOS)
        self.procs = []  # stopped in this order at the end
        self._n = 0

    def gateway(self, template, **values):
        self._n += 1
        d = self.dir / f"gw{self._n}"
        d.mkdir()
        gw, port, cfg = ge.start_gateway(self.args.gateway, template, d, name=f"gateway{self._n}",
                                         descriptors=self.descriptors, **values)
        self.procs.insert(0, gw)  # gateways stop before their backends
        return gw, port

    def echo(self):
        p, port = start_echo()
        self.procs.append(p)
        return p, port


def raw_unary(ch, path):
    return ch.unary_unary(path, request_serializer=lambda b: b, response_deserializer=lambda b: b)


def echo_of(resp_bytes):
    """The echo backend's JSON from a SimpleResponse's bytes."""
    from grpc.testing import messages_pb2

    return json.loads(messages_pb2.SimpleResponse.FromString(resp_bytes).username)


def md(tag, sleep_ms=0, *extra):
    return (("x-tag", tag), ("x-sleep-ms", str(sleep_ms))) + tuple(extra)


def timed_call(fn):
    """(response or None, grpc.RpcError or None, milliseconds)."""
    import grpc

    start = time.monotonic()
    try:
        return fn(), None, ge.elapsed_ms(start)
    except grpc.RpcError as err:
        return None, err, ge.elapsed_ms(start)


def future_outcome(fut, timeout):
    """(response, error) of a grpc future, waiting at most timeout seconds."""
    import grpc

    try:
        return fut.result(timeout=timeout), None
    except grpc.FutureTimeoutError:
        fut.cancel()
        return None, f"no answer within {timeout}s"
    except grpc.RpcError as err:
        return None, err


def outcome_text(resp, err):
    if err is None:
        return "OK"
    return ge.describe_error(err) if hasattr(err, "code") else str(err)


def is_status(err, code):
    return err is not None and hasattr(err, "code") and err.code().name == code


# ---- cases ------------------------------------------------------------------


def case_pending_cap(env, check):
    echo, bport = env.echo()
    gw, port = env.gateway("limits_pending_cap.yaml", backend=bport)
    ch = ge.channel(port)
    call = raw_unary(ch, f"{SVC}/UnaryCall")
    call(b"", timeout=ge.RPC_WAIT, metadata=md("warm"))  # the backend connection is up
    hold_ms = 2000
    t0 = time.monotonic()
    fa = call.future(b"", timeout=ge.RPC_WAIT, metadata=md("A", hold_ms))
    check(echo.wait_for_line(r"^call \S+ tag=A ", 5), "call A reached the backend and holds its one stream")
    fb = call.future(b"", timeout=ge.RPC_WAIT, metadata=md("B"))
    time.sleep(0.3)  # B is waiting in the gateway (the backend cannot have it: one stream)
    check(not backend_lines(echo, "call", "B"), "call B waits in the gateway, not at the backend")
    _, err, ms = timed_call(lambda: call(b"", timeout=ge.RPC_WAIT, metadata=md("C")))
    want = f"1 call already waiting for a stream to backend 'slow' (127.0.0.1:{bport}) (max_pending)"
    got = ge.describe_error(err)
    check(is_status(err, "UNAVAILABLE") and "max_pending" in err.details() and "backend 'slow'" in err.details()
          and "already waiting" in err.details(),
          f"call C: UNAVAILABLE naming backend 'slow', 'already waiting' and max_pending, got {got}")
    check(err is not None and err.details() == want, f"call C's message is exactly {want!r} (got {got})")
    check(ms < 1000, f"call C failed at once: {ms:.0f} ms (pending_timeout is 5 s)")
    ra, ea = future_outcome(fa, 15)
    rb, eb = future_outcome(fb, 15)
    b_ms = ge.elapsed_ms(t0)
    check(ea is None and echo_of(ra)["path"] == f"{SVC}/UnaryCall", f"call A completed: {outcome_text(ra, ea)}")
    check(eb is None and echo_of(rb)["path"] == f"{SVC}/UnaryCall",
          f"call B completed once A freed the stream: {outcome_text(rb, eb)} ({b_ms:.0f} ms after A started)")
    check(b_ms >= hold_ms - 50, f"B ended after A's {hold_ms} ms ({b_ms:.0f} ms)")
    check(not backend_lines(echo, "call", "C"), "call C never reached the backend")
    # The backend's lines reach us through a reader thread: B's may still be
    # on their way when B's answer already came.
    echo.wait_for_line(r"^call \S+ tag=B ", 5)
    out = echo.output().splitlines()
    order = [l.split()[0] + " " + l.split()[2] for l in out if l.startswith(("call ", "done "))]
    check("call tag=B" in order and "done tag=A" in order
          and order.index("call tag=B") > order.index("done tag=A"),
          f"the backend got B only after A was done: {order}")
    ch.close()
    harness.log(f"timing: pending_cap C answered in {ms:.0f} ms")


def case_pending_timeout(env, check):
    echo, bport = env.echo()
    gw, port = env.gateway("limits_pending_timeout.yaml", backend=bport)
    ch = ge.channel(port)
    call = raw_unary(ch, f"{SVC}/UnaryCall")
    call(b"", timeout=ge.RPC_WAIT, metadata=md("warm"))
    fa = call.future(b"", timeout=ge.RPC_WAIT, metadata=md("A", 2000))
    check(echo.wait_for_line(r"^call \S+ tag=A ", 5), "call A reached the backend and holds its one stream")
    timings = []
    for name in ("B1", "B2"):
        _, err, ms = timed_call(lambda: call(b"", timeout=ge.RPC_WAIT, metadata=md(name)))
        timings.append(ms)
        want = f"no stream to backend 'slow' (127.0.0.1:{bport}) within 300 ms (pending_timeout)"
        got = ge.describe_error(err)
        check(is_status(err, "UNAVAILABLE") and "pending_timeout" in err.details(),
              f"call {name}: UNAVAILABLE mentioning pending_timeout, got {got}")
        check(err is not None and err.details() == want, f"call {name}'s message is exactly {want!r} (got {got})")
        check(250 <= ms <= 1500, f"call {name} failed after {ms:.0f} ms, want 250..1500 (pending_timeout 300ms)")
    ra, ea = future_outcome(fa, 15)
    check(ea is None, f"call A completed: {outcome_text(ra, ea)}")
    check(not backend_lines(echo, "call", "B1") and not backend_lines(echo, "call", "B2"),
          "the calls that gave up never reached the backend")
    ch.close()
    harness.log(f"timing: pending_timeout answered in {', '.join(f'{t:.0f}' for t in timings)} ms")


def case_route_timeout_default(env, check):
    echo, bport = env.echo()
    gw, port = env.gateway("limits_routes.yaml", backend=bport, limits="limits: { route_timeout: 300ms }")
    ch = ge.channel(port)
    empty = raw_unary(ch, f"{SVC}/EmptyCall")  # the route without timeout: 300 ms
    unary = raw_unary(ch, f"{SVC}/UnaryCall")  # 'timeout: 0s'
    r = empty(b"", timeout=ge.RPC_WAIT, metadata=md("warm"))
    rem = echo_of(r)["remaining_ms"]
    check(rem is not None and 0 < rem <= 300,
          f"no route timeout, limits.route_timeout 300ms, client deadline 10 s: the backend got {rem} ms")
    timings = []
    for i in range(2):
        tag = f"slow{i}"
        _, err, ms = timed_call(lambda: empty(b"", timeout=ge.RPC_WAIT, metadata=md(tag, 2000)))
        timings.append(ms)
        check(is_status(err, "DEADLINE_EXCEEDED"),
              f"{tag}: a 2 s call on the route without timeout: DEADLINE_EXCEEDED, got {ge.describe_error(err)}")
        check(280 <= ms <= 1200, f"{tag}: answered after {ms:.0f} ms, want 280..1200 (route_timeout 300ms)")
        check(echo.wait_for_line(rf"^cancelled \S+ tag={tag}$", 3),
              f"{tag}: the backend's call was cancelled (not run to its end)")

    resp, err, ms = timed_call(lambda: unary(b"", timeout=ge.RPC_WAIT, metadata=md("zero", 1000)))
    check(err is None, f"a 1 s call on the 'timeout: 0s' route completes, got {outcome_text(resp, err)}")
    check(1000 <= ms <= 5000, f"... after {ms:.0f} ms, want 1000..5000")
    if err is None:
        rem = echo_of(resp)["remaining_ms"]
        # grpcio rounds its grpc-timeout up to 3 significant figures: 10 s goes out as 10100m.
        check(rem is not None and 5000 < rem <= GRPCIO_10S_MS,
              f"... and the backend got the client's 10 s deadline, not 300 ms ({rem} ms)")
    resp, err, ms = timed_call(lambda: unary(b"", metadata=md("nodeadline", 400)))
    check(err is None and echo_of(resp)["remaining_ms"] is None,
          f"no client deadline on the 'timeout: 0s' route: the backend gets none "
          f"({outcome_text(resp, err)}, remaining {echo_of(resp)['remaining_ms'] if resp else '-'})")
    ch.close()

    # No limits at all: the default route_timeout is 60 s.
    gw2, port2 = env.gateway("limits_routes.yaml", backend=bport, limits="")
    ch2 = ge.channel(port2)
    r = raw_unary(ch2, f"{SVC}/EmptyCall")(b"", timeout=ge.RPC_WAIT, metadata=md("default"))
    rem = echo_of(r)["remaining_ms"]
    check(rem is not None and 5000 < rem <= GRPCIO_10S_MS,
          f"default, client deadline 10 s: the backend got {rem} ms (the client's deadline)")
    r = raw_unary(ch2, f"{SVC}/EmptyCall")(b"", metadata=md("default-nodeadline"))
    rem = echo_of(r)["remaining_ms"]
    check(rem is None,
          f"default, no client deadline: the backend got no deadline ({rem}): the 60 s default "
          f"route_timeout is the gateway's own bound, enforced by resetting the call")
    ch2.close()
    harness.log(f"timing: route_timeout answered in {', '.join(f'{t:.0f}' for t in timings)} ms")


def case_step_timeout_default(env, check):
    echo, bport = env.echo()
    gw, port = env.gateway("limits_step_timeout.yaml", backend=bport, limits="limits: { step_timeout: 300ms }")
    ch = ge.channel(port)
    call = raw_unary(ch, f"{SVC}/UnaryCall")
    r = call(b"", timeout=ge.RPC_WAIT, metadata=md("warm"))
    e = echo_of(r)
    check(e["path"] == f"{SVC}/UnaryCall" and e["remaining_ms"] is not None and 0 < e["remaining_ms"] <= 300,
          f"the flow works; its step's backend got {e['remaining_ms']} ms (step_timeout 300ms)")
    timings = []
    for i in range(2):
        tag = f"slow{i}"
        _, err, ms = timed_call(lambda: call(b"", timeout=ge.RPC_WAIT, metadata=md(tag, 2000)))
        timings.append(ms)
        got = ge.describe_error(err)
        check(is_status(err, "DEADLINE_EXCEEDED") and "step 'slow'" in err.details(),
              f"{tag}: a 2 s backend behind a step without timeout: DEADLINE_EXCEEDED naming step 'slow', got {got}")
        check(280 <= ms <= 1200, f"{tag}: answered after {ms:.0f} ms, want 280..1200 (step_timeout 300ms)")
        check(echo.wait_for_line(rf"^cancelled \S+ tag={tag}$", 3),
              f"{tag}: the backend's call was cancelled (not run to its end)")
    ch.close()

    gw2, port2 = env.gateway("limits_step_timeout.yaml", backend=bport, limits="")
    ch2 = ge.channel(port2)
    r = raw_unary(ch2, f"{SVC}/UnaryCall")(b"", metadata=md("default"))
    rem = echo_of(r)["remaining_ms"]
    check(rem is not None and 8000 <= rem <= 10000,
          f"no limits, no client deadline: the step's backend got {rem} ms, want the 10 s default step_timeout")
    ch2.close()
    harness.log(f"timing: step_timeout answered in {', '.join(f'{t:.0f}' for t in timings)} ms")


def case_route_prefix_boundary(env, check):
    echo, bport = env.echo()
    gw, port = env.gateway("limits_prefix.yaml", backend=bport)
    ch = ge.channel(port)
    path = f"{SVC}/EmptyCall"
    resp, err, _ = timed_call(lambda: raw_unary(ch, path)(b"", timeout=ge.RPC_WAIT, metadata=md("empty")))
    check(err is None and echo_of(resp)["path"] == path,
          f"{path} is proxied (the backend saw {echo_of(resp)['path'] if resp else outcome_text(resp, err)})")
    path = "/grpc.testing.Test/Anything"
    resp, err, _ = timed_call(lambda: raw_unary(ch, path)(b"", timeout=ge.RPC_WAIT, metadata=md("svc")))
    check(err is None and echo_of(resp)["path"] == path,
          f"{path} is proxied by prefix /grpc.testing.Test "
          f"({echo_of(resp)['path'] if resp else outcome_text(resp, err)})")
    for path, tag in ((f"{SVC}/EmptyCallX", "x"), (f"{SVC}/UnaryCall", "unary"),
                      ("/grpc.testing.TestServiceX/EmptyCall", "svcx")):
        _, err, _ = timed_call(lambda: raw_unary(ch, path)(b"", timeout=ge.RPC_WAIT, metadata=md(tag)))
        want = f"Method not found: {path}"
        check(is_status(err, "UNIMPLEMENTED") and err.details() == want,
              f"{path}: UNIMPLEMENTED {want!r} from the gateway, got {ge.describe_error(err)}")
        check(not backend_lines(echo, "call", tag), f"{path} never reached the backend")
    ch.close()


def case_baton_metadata_dropped(env, check):
    echo, bport = env.echo()
    gw, port = env.gateway("limits_routes.yaml", backend=bport, limits="")
    ch = ge.channel(port)
    sent = (("baton-saga-id", "forged"), ("baton-step", "x"), ("x-keep", "1"))
    for path in (f"{SVC}/EmptyCall", f"{SVC}/UnaryCall"):
        resp, err, _ = timed_call(lambda: raw_unary(ch, path)(b"", timeout=ge.RPC_WAIT, metadata=md("m") + sent))
        if not check(err is None, f"{path} with baton-* metadata answered: {outcome_text(resp, err)}"):
            continue
        seen = echo_of(resp)["metadata"]
        baton = [(k, v) for k, v in seen if k.startswith("baton-")]
        check(not baton, f"{path}: the backend saw no baton-* key (saw {baton})")
        check(("x-keep", "1") in [tuple(kv) for kv in seen],
              f"{path}: the backend saw x-keep: 1 (keys seen: {[k for k, _ in seen]})")
    ch.close()


def case_forward_metadata_baton_rejected(env, check):
    template = ge.GW_DIR / "limits_forward_metadata.yaml"
    line = next(n for n, l in enumerate(template.read_text().splitlines(), 1) if l.strip() == "- ${key}")
    for key, valid in (("x-keep", True), ("baton-saga-id", False), ("baton-step", False)):
        d = env.dir / key
        d.mkdir()
        cfg = ge.render("limits_forward_metadata.yaml", d, descriptors=env.descriptors, key=key)
        p = harness.Process(f"check-{key}", [env.args.gateway, "--check", cfg])
        rc = p.wait_exit(30)
        out = p.output().splitlines()
        for problem in p.sanitizer_problems():
            check.fail(problem)
        if valid:
            check(rc == 0 and any(f"{cfg} is valid" in l for l in out),
                  f"forward_metadata: [traceparent, {key}] is valid (exit {rc})")
            continue
        check(rc is not None and 0 < rc < 128, f"forward_metadata: [{key}]: a non-zero exit, not a crash ({rc})")
        hits = [l for l in out if l.startswith(f"{cfg}:{line}: ")]
        check(any(key in l and "baton-*" in l for l in hits),
              f"forward_metadata: [{key}]: an error at {cfg.name}:{line} naming {key} and baton-* "
              f"(got {hits or out})")


def stream_calls(port, n, responses, interval_us, label):
    """n StreamingOutputCalls, each asking for `responses` messages interval_us apart;
    returns (threads, results) where results[i] = (messages received, status text)."""
    import grpc
    from grpc.testing import messages_pb2 as m

    ch = ge.channel(port)
    call = ch.unary_stream(f"{SVC}/StreamingOutputCall", request_serializer=lambda r: r.SerializeToString(),
                           response_deserializer=m.StreamingOutputCallResponse.FromString)
    req = m.StreamingOutputCallRequest(response_parameters=[
        m.ResponseParameters(size=10, interval_us=interval_us) for _ in range(responses)])
    results = [[0, "running"] for _ in range(n)]
    first = [threading.Event() for _ in range(n)]

    def run(i):
        try:
            for _ in call(req, timeout=60):
                results[i][0] += 1
                first[i].set()
            results[i][1] = "OK"
        except grpc.RpcError as err:
            results[i][1] = ge.describe_error(err)
        first[i].set()

    threads = [threading.Thread(target=run, args=(i,), daemon=True, name=f"{label}-{i}") for i in range(n)]
    for t in threads:
        t.start()
    for e in first:
        e.wait(10)
    return ch, threads, results


def sigterm_storm(proc, check, what, wait_s=35):
    """SIGTERM, then 20 more over ~200 ms; returns seconds from the first to the exit."""
    pid = proc.proc.pid
    t0 = time.monotonic()
    os.kill(pid, signal.SIGTERM)
    sent = 1
    for _ in range(20):
        time.sleep(0.01)
        try:
            os.kill(pid, signal.SIGTERM)
            sent += 1
        except ProcessLookupError:
            break
    storm = time.monotonic() - t0
    rc = proc.wait_exit(wait_s)
    took = time.monotonic() - t0
    harness.log(f"timing: {what}: {sent} SIGTERMs in {storm * 1000:.0f} ms; exit status {rc} after {took:.2f} s")
    check(sent == 21, f"{what}: 21 SIGTERMs sent while it drained ({sent} before it exited)")
    check(rc == 0, f"{what}: exit status 0 after repeated SIGTERMs (got {rc}; None = still running after {wait_s}s)")
    check(rc is not None and took <= wait_s, f"{what}: exited {took:.2f} s after the first SIGTERM (<= {wait_s} s)")
    problems = proc.sanitizer_problems()
    check(not problems, f"{what}: no sanitizer report ({problems or 'none'})")
    return rc, took


def check_streams(check, threads, results, responses, what):
    for t in threads:
        t.join(40)
    for i, (n, status) in enumerate(results):
        check(n == responses and status == "OK",
              f"{what}: in-flight call {i} drained to its end: {n}/{responses} messages, {status}")


def case_double_sigterm(env, check):
    server, sport = harness.start_server("server", lambda port: [env.args.server, f"--port={port}"])
    env.procs.append(server)
    gw, port = env.gateway("limits_drain.yaml", backend=sport)
    responses, interval_us = 5, 400_000  # each call lasts ~2 s
    ch, threads, results = stream_calls(port, 4, responses, interval_us, "gw")
    check(all(r[0] >= 1 for r in results), f"4 calls in flight through the gateway ({[r[0] for r in results]})")
    rc, took = sigterm_storm(gw, check, "gateway")
    env.procs.remove(gw)
    check(any("baton-gateway: stopped" in l for l in gw.output().splitlines()), "the gateway printed 'stopped'")
    check_streams(check, threads, results, responses, "gateway")
    ch.close()


def case_double_sigterm_server(env, check):
    server, sport = harness.start_server("server", lambda port: [env.args.server, f"--port={port}"])
    env.procs.append(server)
    responses, interval_us = 5, 400_000
    ch, threads, results = stream_calls(sport, 4, responses, interval_us, "srv")
    check(all(r[0] >= 1 for r in results), f"4 calls in flight at the server ({[r[0] for r in results]})")
    sigterm_storm(server, check, "baton-interop-server")
    env.procs.remove(server)
    check_streams(check, threads, results, responses, "baton-interop-server")
    ch.close()


def open_raw(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(H2_PREFACE + H2_EMPTY_SETTINGS)
    s.setblocking(False)
    return s


def watch(socks, seconds, got=None):
    """Reads every socket for `seconds`; returns {index: ms after t_open until EOF/reset}.
    got, when given, collects the indexes of the sockets that received bytes."""
    closed = {}
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and len(closed) < len(socks):
        live = [s for i, (s, _) in enumerate(socks) if i not in closed]
        r, _, _ = select.select(live, [], [], max(0.0, deadline - time.monotonic()))
        for s in r:
            i = next(k for k, (x, _) in enumerate(socks) if x is s)
            try:
                data = s.recv(65536)
            except (ConnectionResetError, BrokenPipeError):
                data = b""
            except BlockingIOError:
                continue
            if not data:
                closed[i] = (time.monotonic() - socks[i][1]) * 1000
            elif got is not None:
                got.add(i)
    return closed


def case_connection_cap(env, check):
    echo, bport = env.echo()
    gw, port = env.gateway("limits_connections.yaml", backend=bport)
    socks = []
    for _ in range(40):
        t = time.monotonic()
        socks.append((open_raw(port), t))
    answered = set()
    closed = watch(socks, 1.5, answered)
    n_open = len(socks) - len(closed)
    slowest = max(closed.values()) if closed else 0
    harness.log(f"timing: 40 connections: {n_open} open, {len(closed)} closed "
                f"(the last close {slowest:.0f} ms after its connect)")
    check(n_open == 20, f"of 40 connections, 20 stay open (open: {n_open})")
    live = [i for i in range(len(socks)) if i not in closed]
    check(all(i in answered for i in live),
          f"each open one got the gateway's SETTINGS ({len([i for i in live if i in answered])}/{len(live)})")
    check(len(closed) == 20 and slowest <= 1000,
          f"the other 20 are closed by the gateway within 1 s ({len(closed)} closed, slowest {slowest:.0f} ms)")
    # More past the cap within 10 s: refused again, no second log line.
    more = [(open_raw(port), time.monotonic()) for _ in range(5)]
    closed_more = watch(more, 1.5)
    check(len(closed_more) == 5, f"5 more connections at the cap are closed too ({len(closed_more)})")
    time.sleep(0.2)
    lines = [l for l in gw.output().splitlines() if "connection limit" in l]
    check(len(lines) == 1, f"one 'connection limit' line for both bursts within 10 s (got {len(lines)}: {lines})")
    for s, _ in socks + more:
        s.close()
    time.sleep(0.5)  # the gateway sees the closes
    ch = ge.channel(port)
    resp, err, ms = timed_call(lambda: raw_unary(ch, f"{SVC}/EmptyCall")(b"", timeout=ge.RPC_WAIT,
                                                                          metadata=md("after")))
    check(err is None and echo_of(resp)["path"] == f"{SVC}/EmptyCall",
          f"after closing them a grpcio call succeeds: {outcome_text(resp, err)} in {ms:.0f} ms")
    ch.close()


CASES = {
    "pending_cap": case_pending_cap,
    "pending_timeout": case_pending_timeout,
    "route_timeout_default": case_route_timeout_default,
    "step_timeout_default": case_step_timeout_default,
    "route_prefix_boundary": case_route_prefix_boundary,
    "baton_metadata_dropped": case_baton_metadata_dropped,
    "forward_metadata_baton_rejected": case_forward_metadata_baton_rejected,
    "double_sigterm": case_double_sigterm,
    "double_sigterm_server": case_double_sigterm_server,
    "connection_cap": case_connection_cap,
}
NEEDS_SERVER = ("double_sigterm", "double_sigterm_server")


def main(argv):
    if argv and argv[0] == "--serve-backend":
        return serve_backend(argv[1:])
    ap = ge.arg_parser(__doc__, CASES)
    ap.add_argument("--server", help="path of baton-interop-server (double_sigterm, double_sigterm_server)")
    args = ap.parse_args(argv)
    if args.case in NEEDS_SERVER and not args.server:
        ap.error(f"--case={args.case} needs --server")
    harness.hard_timeout(args.timeout)
    harness.load_interop_messages()
    check = ge.Check()
    env = Env(args)
    harness.log(f"--- case {args.case}")
    try:
        CASES[args.case](env, check)
    except Exception as err:  # an unexpected error fails the case, after a clean stop
        import traceback

        traceback.print_exc()
        check.fail(f"case raised {type(err).__name__}: {err}")
    return check.finish(f"gateway limits case {args.case}", env.procs)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
