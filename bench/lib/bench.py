#!/usr/bin/python3
"""bench.py: the measuring half of bench/run (which starts and stops the
processes). Standard library only.

  bench.py frame OUT                 stdin (a protobuf message) -> OUT, with
                                     gRPC's 5-byte prefix
  bench.py check URL BODY            one call with nghttp -v; exit 0 only
                                     when the trailers say grpc-status: 0
  bench.py measure [opts] URL        one h2load run, sampling the given
                                     processes; appends a JSON line
  bench.py idle [opts]               RSS of a server holding N idle TLS
                                     HTTP/2 connections opened here
  bench.py inflight [opts] URL       RSS of a server with N calls in flight
  bench.py report JSONL              the table, from the JSON lines

Processes are given as --proc ROLE=PID; a role's figures are those of PID
and all its descendants (nghttpx serves from a child process).
"""
import argparse
import asyncio
import json
import math
import os
import re
import resource
import ssl
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")
GRPC_HEADERS = ["-H", "content-type: application/grpc", "-H", "te: trailers"]


# ---- /proc ------------------------------------------------------------------

def _children_map():
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                s = f.read()
        except OSError:
            continue
        ppid = int(s[s.rindex(")") + 2:].split()[1])
        kids.setdefault(ppid, []).append(int(d))
    return kids


def tree(pid):
    """pid and its descendants, now."""
    kids = _children_map()
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def cpu_ticks(pids):
    """utime + stime of pids (each counts its threads, dead ones too)."""
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/stat") as f:
                s = f.read()
        except OSError:
            continue
        fields = s[s.rindex(")") + 2:].split()
        total += int(fields[11]) + int(fields[12])
    return total


def status_kib(pids, key):
    """Sum of a /proc/PID/status field in KiB (VmRSS, VmHWM) over pids."""
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith(key + ":"):
                        total += int(line.split()[1])
                        break
        except OSError:
            continue
    return total


def parse_procs(specs):
    """["ROLE=PID[,PID...]", ...] -> {role: [pid, ...]}"""
    procs = {}
    for s in specs or []:
        role, _, pids = s.partition("=")
        procs[role] = [int(p) for p in pids.split(",") if p]
    return procs


def trees(pids):
    """The union of the process trees under pids."""
    out = []
    for p in pids:
        out.extend(tree(p))
    return out


class Sampler(threading.Thread):
    """Samples VmRSS of each role's process tree every `every` seconds and
    keeps the largest; marks CPU at the times asked for with mark()."""

    def __init__(self, procs, every=0.25):
        super().__init__(daemon=True)
        self.procs = procs
        self.trees = {r: trees(p) for r, p in procs.items()}
        self.every = every
        self.peak = {r: 0 for r in procs}
        self.stop = threading.Event()

    def sample_rss(self):
        for r, pids in self.trees.items():
            v = status_kib(pids, "VmRSS")
            if v > self.peak[r]:
                self.peak[r] = v

    def run(self):
        while not self.stop.is_set():
            self.sample_rss()
            self.stop.wait(self.every)

    def cpu(self):
        self.trees = {r: trees(p) for r, p in self.procs.items()}
        return time.monotonic(), {r: cpu_ticks(t) for r, t in self.trees.items()}


# ---- h2load -------------------------------------------------------------------

H2LOAD_RE = {
    "rps": re.compile(r"finished in [\d.]+m?s, ([\d.]+) req/s"),
    "data": re.compile(r"traffic: .* \((\d+)\) data"),
    "requests": re.compile(
        r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, "
        r"(\d+) failed, (\d+) errored, (\d+) timeout"),
}


def parse_h2load(out):
    r = {}
    m = H2LOAD_RE["rps"].search(out)
    r["rps"] = float(m.group(1)) if m else 0.0
    m = H2LOAD_RE["requests"].search(out)
    if m:
        (r["total"], _, r["done"], r["succeeded"], r["failed"], r["errored"],
         r["timeout"]) = (int(x) for x in m.groups())
    else:
        r.update(total=0, done=0, succeeded=0, failed=0, errored=0, timeout=0)
    m = H2LOAD_RE["data"].search(out)
    r["data_bytes"] = int(m.group(1)) if m else 0
    return r


def grpc_failures(res, expect_data):
    """Calls h2load counted as succeeded (HTTP 200) whose gRPC status was
    not OK, estimated from the bytes: h2load's data counter is the DATA
    payload received, and an OK call of this kind carries expect_data bytes
    while a failed one (trailers only) carries none. Responses cut off at
    the end may add data for calls not counted as done, so failures up to
    the calls in flight can hide; None when unknown. expect_data must be
    the smallest OK response of the run, so the figure is a lower bound;
    it is exact when every OK response has the same size."""
    if not expect_data or not res.get("done"):
        return None
    return max(0, res["done"] - res["data_bytes"] // expect_data)


def percentiles(log_path):
    """p50/p99/p999 of the per-request durations (us) in an h2load log."""
    d = []
    with open(log_path) as f:
        for line in f:
            parts = line.split("\t")
            if len(parts) >= 3:
                d.append(int(parts[2]))
    if not d:
        return {}
    d.sort()

    def q(p):
        return d[min(len(d) - 1, int(math.ceil(p * len(d))) - 1)] / 1000.0

    return {"p50_ms": q(0.50), "p99_ms": q(0.99), "p999_ms": q(0.999),
            "n_lat": len(d)}


def summary_lines(out):
    keep = ("finished in", "requests:", "status codes:", "time for request:",
            "TLS Protocol", "Application protocol")
    return [l.strip() for l in out.splitlines() if l.strip().startswith(keep)]


def wait_until(t, proc):
    """Sleeps until monotonic time t, or until proc has exited."""
    while proc.poll() is None:
        left = t - time.monotonic()
        if left <= 0:
            return
        time.sleep(min(left, 0.05))


# h2load (1.52) sometimes never exits in duration mode: a client whose TLS
# handshake completes after the measured phase ended is not stopped and keeps
# sending. Such a run is killed after this much slack and run again.
H2LOAD_SLACK_S = 10
H2LOAD_ATTEMPTS = 3


def h2load_cmd(a, duration, log=None):
    cmd = ["h2load", "-c", str(a.c), "-m", str(a.m), "-t", str(a.threads),
           "-D", f"{round(duration * 1000)}ms", "-d", a.body] + GRPC_HEADERS
    if log:
        cmd.append(f"--log-file={log}")
    if a.rps:
        cmd.append(f"--rps={a.rps / a.c:.4f}")
    return cmd + [a.url]


def h2load_once(a, procs):
    """A warm-up run, then the measured run while sampling procs; None when
    h2load hung.

    The warm-up is a run of its own rather than h2load's --warm-up-time,
    whose figures for the bytes received include the warm-up while its
    request counts do not: with a run of its own, DATA bytes / requests
    tells how many "succeeded" calls really had grpc-status 0 (see
    grpc_failures). The measured run opens its connections anew (64 TLS
    handshakes at most, before the CPU window starts)."""
    procs = dict(procs)
    if a.warmup > 0:
        w = subprocess.Popen(h2load_cmd(a, a.warmup), stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        try:
            w.wait(timeout=a.warmup + H2LOAD_SLACK_S)
        except subprocess.TimeoutExpired:
            w.kill()
            w.wait()
    fd, lat_log = tempfile.mkstemp(prefix="h2load-", suffix=".log")
    os.close(fd)
    cmd = h2load_cmd(a, a.duration, lat_log)

    start = time.monotonic()
    h2 = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True)
    procs["h2load"] = [h2.pid]
    sampler = Sampler(procs)
    sampler.start()
    # CPU is read twice well inside the measured run (its connections are up
    # by the first read), so it counts the requests h2load counts; per
    # request = CPU rate / request rate.
    margin = min(0.3, a.duration * 0.1)
    wait_until(start + margin, h2)
    t0, c0 = sampler.cpu()
    wait_until(start + a.duration - margin, h2)
    t1, c1 = sampler.cpu()
    try:
        out, _ = h2.communicate(
            timeout=max(0.0, start + a.duration + H2LOAD_SLACK_S
                        - time.monotonic()))
    except subprocess.TimeoutExpired:
        h2.kill()
        h2.communicate()
        out = None
    sampler.stop.set()
    sampler.join()
    if out is None:
        os.unlink(lat_log)
        return None, cmd
    hwm = {r: status_kib(t, "VmHWM") for r, t in sampler.trees.items()
           if r != "h2load"}

    res = parse_h2load(out)
    res.update(percentiles(lat_log))
    os.unlink(lat_log)
    wall = max(t1 - t0, 1e-3)
    res["cpu_util"] = {r: (c1[r] - c0[r]) / CLK_TCK / wall for r in c0}
    res["cpu_us_per_req"] = {
        r: (u * 1e6 / res["rps"] if res["rps"] else None)
        for r, u in res["cpu_util"].items()}
    res["rss_peak_kib"] = {r: v for r, v in sampler.peak.items()
                           if r != "h2load"}
    res["hwm_kib"] = hwm
    res["returncode"] = h2.returncode
    res["out"] = out
    return res, cmd


def cmd_measure(a):
    procs = parse_procs(a.proc)
    # Every run starts with one checked call over its path; its response
    # size is what each OK call of the load must receive.
    ok, expect_data, detail = grpc_call(a.url, a.body)
    if not ok:
        print(f"bench: check before the run failed: {a.url}: {detail}",
              file=sys.stderr)
        expect_data = 0
    for attempt in range(1, H2LOAD_ATTEMPTS + 1):
        res, cmd = h2load_once(a, procs)
        if res is not None:
            break
        note = (f"{json.loads(a.tags)} {a.url} -c {a.c} -m {a.m}: h2load did "
                f"not exit {H2LOAD_SLACK_S}s after its duration (attempt "
                f"{attempt}); killed")
        print("  " + note, flush=True)
        with open(a.log, "a") as f:
            f.write(note + "\n")
    if res is None:
        res = {"rps": 0.0, "done": 0, "succeeded": 0, "failed": 0,
               "errored": 0, "timeout": 0, "cpu_util": {},
               "cpu_us_per_req": {}, "rss_peak_kib": {}, "hwm_kib": {},
               "returncode": -1, "out": "h2load hung on every attempt"}
    res["attempts"] = attempt
    returncode = res.pop("returncode")
    out = res.pop("out")

    # The response size again after the run. The shop's responses grow with
    # its order numbers (one byte per digit, twice), so the sizes of a run
    # lie between the two checks; the smaller one gives a lower bound on
    # the failures, exact unless the run crossed a power of ten.
    ok_after, data_after, detail = grpc_call(a.url, a.body)
    if not ok_after:
        print(f"bench: check after the run failed: {a.url}: {detail}",
              file=sys.stderr)
    ok = ok and ok_after
    res["check_ok"] = ok
    res["expect_data"] = [expect_data, data_after]
    res["grpc_failures"] = grpc_failures(res, min(expect_data, data_after))
    res["ok"] = (ok and returncode == 0 and res["done"] > 0
                 and res["succeeded"] == res["done"]
                 and res["errored"] == 0 and res["timeout"] == 0
                 and not res["grpc_failures"])
    res.update(json.loads(a.tags))
    res["load"] = f"-c {a.c} -m {a.m}"
    res["rps_target"] = a.rps
    res["cmd"] = " ".join(cmd[:-1] + [a.url])

    line = (f"{res.get('series')} {res.get('side'):<10} {res.get('tls'):<3} "
            f"{res['load']:<12} pair {res.get('pair')}: "
            f"{res['rps']:>10.0f} req/s  p50 {res.get('p50_ms', 0):7.2f} ms  "
            f"p99 {res.get('p99_ms', 0):7.2f} ms  CPU/req "
            + "  ".join(f"{r} {v:.1f}us" for r, v in res["cpu_us_per_req"].items()
                        if v is not None)
            + "  peak RSS "
            + "  ".join(f"{r} {v / 1024:.1f}MiB"
                        for r, v in res["rss_peak_kib"].items())
            + ("" if res["ok"] else "  ** RUN HAD ERRORS **"
               + (f" (at least {res['grpc_failures']} calls without "
                  f"grpc-status 0)" if res["grpc_failures"] else "")
               + ("" if ok else " (a check call failed)")))
    with open(a.log, "a") as f:
        f.write(line + "\n")
        for l in summary_lines(out):
            f.write("    " + l + "\n")
        if not res["ok"]:
            f.write("    h2load output:\n" + "".join(
                "      " + l + "\n" for l in out.splitlines()[-25:]))
    with open(a.jsonl, "a") as f:
        f.write(json.dumps(res) + "\n")
    print("  " + line, flush=True)
    return 0


# ---- check -------------------------------------------------------------------

def grpc_call(url, body, timeout=10):
    """One call with nghttp -v: (ok, response DATA bytes, detail). ok only
    when the trailers say grpc-status: 0 (an HTTP 200 alone proves
    nothing)."""
    cmd = ["nghttp", "-v", "-d", body] + GRPC_HEADERS + [url]
    try:
        p = subprocess.run(cmd, capture_output=True, timeout=timeout)
        out = p.stdout.decode("latin-1") + p.stderr.decode("latin-1")
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode("latin-1") + "\n(timed out)"
    codes = re.findall(r"recv \(stream_id=\d+\) grpc-status: (\d+)", out)
    msgs = re.findall(r"recv \(stream_id=\d+\) grpc-message: (.*)", out)
    data = sum(int(n) for n in re.findall(
        r"recv DATA frame <length=(\d+)", out))
    if codes == ["0"]:
        return True, data, "grpc-status 0"
    return False, data, (f"grpc-status {codes or 'missing'} {msgs}\n"
                         + "\n".join(out.splitlines()[-20:]))


def cmd_check(a):
    ok, data, detail = grpc_call(a.url, a.body, a.timeout)
    if ok:
        print(f"  check {a.url}: grpc-status 0, {data} response bytes")
        return 0
    print(f"bench: check {a.url} failed: {detail}", file=sys.stderr)
    return 1


# ---- frame -------------------------------------------------------------------

def cmd_frame(a):
    msg = sys.stdin.buffer.read()
    with open(a.out, "wb") as f:
        f.write(b"\0" + struct.pack(">I", len(msg)) + msg)
    return 0


# ---- idle TLS connections ----------------------------------------------------

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def h2_frame(ftype, flags, payload=b"", stream=0):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + \
        struct.pack(">I", stream) + payload


async def open_idle(host, port, ctx, sem, conns, errors):
    async with sem:
        try:
            r, w = await asyncio.wait_for(
                asyncio.open_connection(host, port, ssl=ctx,
                                        server_hostname="localhost"), 30)
            alpn = w.get_extra_info("ssl_object").selected_alpn_protocol()
            if alpn != "h2":
                raise RuntimeError(f"ALPN {alpn!r}")
            w.write(PREFACE + h2_frame(4, 0))  # client SETTINGS, empty
            await w.drain()
            # Wait for the server's SETTINGS, then ACK it: the connection
            # is then fully set up and idle.
            hdr = await asyncio.wait_for(r.readexactly(9), 30)
            if hdr[3] != 4:
                raise RuntimeError(f"first frame type {hdr[3]}, not SETTINGS")
            await r.readexactly(int.from_bytes(hdr[:3], "big"))
            w.write(h2_frame(4, 1))
            await w.drain()
            conns.append((r, w))
        except Exception as e:  # counted and reported, not fatal
            errors.append(repr(e))


async def idle_main(a, procs):
    ctx = ssl.create_default_context(cafile=a.ca)
    ctx.set_alpn_protocols(["h2"])
    sem = asyncio.Semaphore(a.parallel)
    conns, errors = [], []
    t = time.monotonic()
    await asyncio.gather(*(open_idle(a.host, a.port, ctx, sem, conns, errors)
                           for _ in range(a.n)))
    opened_in = time.monotonic() - t
    await asyncio.sleep(a.settle)
    rss = {}
    for _ in range(5):  # the largest of a few samples, 0.2 s apart
        for r, p in procs.items():
            rss[r] = max(rss.get(r, 0), status_kib(trees(p), "VmRSS"))
        await asyncio.sleep(0.2)
    for _, w in conns:
        w.close()
    return len(conns), errors, opened_in, rss


def raise_nofile(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, need), hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def cmd_idle(a):
    procs = parse_procs(a.proc)
    limit = raise_nofile(a.n + 200)
    if limit < a.n + 100:
        print(f"bench: idle: open-files limit {limit} < {a.n + 100}; "
              f"raise ulimit -n", file=sys.stderr)
        return 1
    base = {r: status_kib(trees(p), "VmRSS") for r, p in procs.items()}
    n, errors, opened_in, rss = asyncio.run(idle_main(a, procs))
    res = json.loads(a.tags)
    res.update(kind="idle", n=a.n, opened=n, errors=len(errors),
               opened_in_s=opened_in, base_kib=base, rss_kib=rss,
               per_conn_kib={r: (rss[r] - base[r]) / n if n else None
                             for r in procs})
    res["ok"] = n == a.n
    line = (f"{res.get('series')} {res.get('side')}: {n}/{a.n} idle TLS "
            f"connections in {opened_in:.1f}s; "
            + "  ".join(f"{r} RSS {base[r] / 1024:.1f} -> {rss[r] / 1024:.1f} "
                        f"MiB = {res['per_conn_kib'][r]:.1f} KiB/conn"
                        for r in procs if n)
            + ("" if res["ok"] else
               f"  ** {len(errors)} FAILED: {errors[:3]} **"))
    with open(a.log, "a") as f:
        f.write(line + "\n")
    with open(a.jsonl, "a") as f:
        f.write(json.dumps(res) + "\n")
    print("  " + line, flush=True)
    return 0 if n else 1


# ---- calls in flight ---------------------------------------------------------

def cmd_inflight(a):
    procs = parse_procs(a.proc)
    raise_nofile(a.c + 200)
    base = {r: status_kib(trees(p), "VmRSS") for r, p in procs.items()}
    cmd = ["h2load", "-n", str(a.n), "-c", str(a.c), "-m", str(a.n // a.c),
           "-t", "1", "-d", a.body] + GRPC_HEADERS + [a.url]
    sampler = Sampler(procs, every=0.05)
    sampler.start()
    t = time.monotonic()
    p = subprocess.run(cmd, capture_output=True, text=True)
    elapsed = time.monotonic() - t
    sampler.stop.set()
    sampler.join()
    h = parse_h2load(p.stdout)
    _, expect_data, _ = grpc_call(a.url, a.body, a.hold + 10)
    res = json.loads(a.tags)
    res.update(kind="inflight", n=a.n, c=a.c, elapsed_s=elapsed, base_kib=base,
               rss_kib=sampler.peak, succeeded=h["succeeded"],
               msg_bytes=a.msg_bytes,
               per_call_kib={r: (sampler.peak[r] - base[r]) / a.n
                             for r in procs})
    # All N must have been open together: one hold, not several rounds.
    res["all_at_once"] = elapsed < a.hold * 1.75
    res["grpc_failures"] = grpc_failures(h, expect_data)
    res["ok"] = (h["succeeded"] == a.n and res["all_at_once"]
                 and not res["grpc_failures"])
    line = (f"{res.get('series')} {res.get('side')}: {h['succeeded']}/{a.n} "
            f"calls held {a.hold:g}s over {a.c} connections, done in "
            f"{elapsed:.2f}s; "
            + "  ".join(f"{r} RSS {base[r] / 1024:.1f} -> "
                        f"{sampler.peak[r] / 1024:.1f} MiB = "
                        f"{res['per_call_kib'][r]:.2f} KiB/call" for r in procs)
            + ("" if res["ok"] else "  ** NOT ALL CALLS IN FLIGHT AT ONCE OR "
               f"SOME FAILED ({res['grpc_failures']} without grpc-status 0) **"))
    with open(a.log, "a") as f:
        f.write(line + "\n")
        for l in summary_lines(p.stdout):
            f.write("    " + l + "\n")
    with open(a.jsonl, "a") as f:
        f.write(json.dumps(res) + "\n")
    print("  " + line, flush=True)
    return 0


# ---- report ------------------------------------------------------------------

def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt(v, unit=""):
    if v is None:
        return "-"
    if unit == "rps":
        return f"{v:,.0f}"
    if abs(v) >= 100:
        return f"{v:.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


class Table:
    def __init__(self):
        self.rows = []

    def add(self, *cols):
        self.rows.append([str(c) for c in cols])

    def head(self, text):
        self.rows.append(text)

    def render(self):
        rows = [r for r in self.rows if isinstance(r, list)]
        w = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        out = []
        for r in self.rows:
            if isinstance(r, str):
                out.append(r)
            else:
                out.append("  " + "  ".join(
                    c.ljust(w[i]) if i < 2 or i >= len(r) - 2 else c.rjust(w[i])
                    for i, c in enumerate(r)).rstrip())
        return "\n".join(out)


def verdict(ratio, target, le):
    if ratio is None:
        return "n/a"
    return "met" if (ratio <= target if le else ratio >= target) else "NOT MET"


def pair_ratios(runs, a_side, b_side, get):
    """{pair: get(A)/get(B)} for pairs where both ran cleanly."""
    by = {}
    for r in runs:
        by.setdefault(r["pair"], {})[r["side"]] = r
    out = []
    for p in sorted(by):
        a, b = by[p].get(a_side), by[p].get(b_side)
        if not a or not b or not a["ok"] or not b["ok"]:
            continue
        va, vb = get(a), get(b)
        if va is not None and vb:
            out.append(va / vb)
    return out


def cmd_report(a):
    runs = [json.loads(l) for l in open(a.jsonl) if l.strip()]
    meta = json.loads(open(a.meta).read()) if a.meta else {}
    t = Table()
    t.add("series / metric", "load", "A", "B", "A/B", "per pair", "target",
          "")

    def ab_rows(series, a_side, b_side, rows):
        sel = [r for r in runs if r.get("series") == series
               and r.get("kind", "load") == "load"]
        for tls in ("h2c", "tls"):
            for load in ("-c 8 -m 16", "-c 64 -m 32"):
                rs = [r for r in sel if r["tls"] == tls and r["load"] == load]
                if not rs:
                    continue
                bad = sum(not r["ok"] for r in rs)
                for name, get, target, le in rows:
                    va = med(get(r) for r in rs if r["side"] == a_side and r["ok"])
                    vb = med(get(r) for r in rs if r["side"] == b_side and r["ok"])
                    pr = pair_ratios(rs, a_side, b_side, get)
                    ratio = med(pr)
                    tgt = ("" if target is None else
                           ("<= " if le else ">= ") + f"{target:g}")
                    unit = "rps" if "req/s" in name else ""
                    t.add("    " + name, f"{tls} {load}", fmt(va, unit),
                          fmt(vb, unit), fmt(ratio),
                          " ".join(f"{x:.2f}" for x in pr) or "-", tgt,
                          (verdict(ratio, target, le) if target is not None
                           else "") + (f" ({bad} bad runs)" if bad else ""))

    def cpu(role):
        return lambda r: r["cpu_us_per_req"].get(role)

    def rss(role):
        return lambda r: r["rss_peak_kib"].get(role, 0) / 1024

    def hwm(role):
        return lambda r: r["hwm_kib"].get(role, 0) / 1024

    def rps(r):
        return r["rps"]

    def p99(r):
        return r.get("p99_ms")

    if any(r.get("series") == "1" for r in runs):
        t.head("1. Stub server (A: baton-interop-server) vs grpc++ server "
               "(B), direct, UnaryCall 100 B")
        ab_rows("1", "baton", "grpc++", [
            ("req/s", rps, 2, False),
            ("server CPU us/req", cpu("server"), 0.4, True),
            ("p99 ms", p99, None, True),
            ("server peak RSS MiB", rss("server"), None, True),
            ("server VmHWM MiB", hwm("server"), None, True)])
    if any(r.get("series") == "2" for r in runs):
        t.head("2. Passthrough: baton-gateway (A) vs nghttpx (B, "
               f"{meta.get('nghttpx_best', '?')}), backend grpc++")
        ab_rows("2", "gateway", "nghttpx", [
            ("req/s", rps, 1.2, False),
            ("p99 ms", p99, 1.0, True),
            ("proxy CPU us/req", cpu("proxy"), 0.8, True),
            ("backend CPU us/req", cpu("backend"), None, True),
            ("proxy peak RSS MiB", rss("proxy"), None, True),
            ("proxy VmHWM MiB", hwm("proxy"), None, True)])
    sel = [r for r in runs if r.get("series") == "sel"]
    if sel:
        t.head("2a. nghttpx settings tried (h2c, one short run per load; "
               "wN = --workers, sN = backend max_concurrent_streams, s0 = "
               "unlimited)")
        for side in dict.fromkeys(r["side"] for r in sel):
            rs = {r["load"]: r for r in sel if r["side"] == side}
            for load, r in rs.items():
                t.add(f"    nghttpx {side} req/s", f"h2c {load}",
                      fmt(r["rps"] if r["ok"] else None, "rps"), "", "", "",
                      "", "" if r["ok"] else "(errors)")
    if any(r.get("series") == "3" for r in runs):
        t.head("3. Gateway: shop PlaceOrder flow, 4 backend calls (A) vs "
               "passthrough UnaryCall (B)")
        ab_rows("3", "shop", "passthru", [
            ("gateway CPU us/call", cpu("gateway"), 3, True),
            ("req/s", rps, None, True),
            ("backends CPU us/call", cpu("backends"), None, True),
            ("gateway peak RSS MiB", rss("gateway"), None, True),
            ("gateway VmHWM MiB", hwm("gateway"), None, True)])
    mem = [r for r in runs if r.get("series") == "4"]
    if mem:
        t.head("4. Memory (RSS growth / count; fresh processes)")
        for r in mem:
            if r["kind"] == "idle":
                for role, v in r["per_conn_kib"].items():
                    is_gw = role == "gateway"
                    t.add(f"    {role} KiB per idle TLS conn",
                          f"{r['opened']}/{r['n']} conns", fmt(v), "", "", "",
                          "<= 40" if is_gw else "(reference)",
                          (verdict(v, 40, True) if is_gw else "")
                          + ("" if r["ok"] else " (errors)"))
            else:
                for role, v in r["per_call_kib"].items():
                    is_gw = role == "gateway"
                    t.add(f"    {role} KiB per call in flight",
                          f"{r['succeeded']}/{r['n']} calls of "
                          f"{r['msg_bytes']} B", fmt(v), "", "",
                          "", "<= 16" if is_gw else "(reference)",
                          (verdict(v, 16, True) if is_gw else "")
                          + ("" if r["ok"] else " (not all at once)"))
    lat = [r for r in runs if r.get("series") == "5"]
    if lat:
        t.head(f"5. Latency added at a fixed {lat[0]['rps_target']:g} req/s "
               "(A: gateway, B: nghttpx; added = proxied - direct, per pair)")
        for tls in ("h2c", "tls"):
            for load in ("-c 8 -m 16", "-c 64 -m 32"):
                rs = [r for r in lat if r["tls"] == tls and r["load"] == load]
                if not rs:
                    continue
                by = {}
                for r in rs:
                    by.setdefault(r["pair"], {})[r["side"]] = r
                for q in ("p50_ms", "p99_ms"):
                    added = {"gateway": [], "nghttpx": []}
                    direct = []
                    for p, sides in sorted(by.items()):
                        d = sides.get("direct")
                        if not d or not d["ok"]:
                            continue
                        direct.append(d[q])
                        for s in added:
                            if s in sides and sides[s]["ok"]:
                                added[s].append(sides[s][q] - d[q])
                    ga, na = med(added["gateway"]), med(added["nghttpx"])
                    t.add(f"    {q[:3]} added ms (direct {fmt(med(direct))})",
                          f"{tls} {load}", fmt(ga), fmt(na),
                          fmt(ga - na if ga is not None and na is not None
                              else None) + " (A-B)",
                          " ".join(f"{x:.2f}/{y:.2f}" for x, y in
                                   zip(added["gateway"], added["nghttpx"]))
                          or "-",
                          "A <= B" if q == "p99_ms" else "",
                          ("met" if ga is not None and na is not None
                           and ga <= na else "NOT MET"
                           if ga is not None and na is not None else "n/a")
                          if q == "p99_ms" else "")
    text = t.render()
    print(text)
    return 0


# ---- select ------------------------------------------------------------------

def cmd_select(a):
    """Prints the side of series `a.series` with the best geometric mean of
    req/s over its loads (runs with errors count as 0)."""
    runs = [json.loads(l) for l in open(a.jsonl) if l.strip()]
    score = {}
    for r in runs:
        if r.get("series") == a.series:
            score.setdefault(r["side"], []).append(r["rps"] if r["ok"] else 0)
    best = max(score, key=lambda k: math.prod(score[k]) ** (1 / len(score[k])))
    print(best)
    return 0


# ---- main --------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("frame")
    p.add_argument("out")

    p = sub.add_parser("check")
    p.add_argument("url")
    p.add_argument("body")
    p.add_argument("--timeout", type=float, default=10)

    def common(p):
        p.add_argument("--proc", action="append", help="ROLE=PID")
        p.add_argument("--tags", default="{}", help="JSON merged into the record")
        p.add_argument("--log", required=True)
        p.add_argument("--jsonl", required=True)

    p = sub.add_parser("measure")
    common(p)
    p.add_argument("--c", type=int, required=True)
    p.add_argument("--m", type=int, required=True)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--duration", type=float, required=True)
    p.add_argument("--warmup", type=float, required=True)
    p.add_argument("--rps", type=float, default=0, help="total, 0 = flat out")
    p.add_argument("--body", required=True)
    p.add_argument("url")

    p = sub.add_parser("idle")
    common(p)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--ca", required=True)
    p.add_argument("--n", type=int, default=5000)
    p.add_argument("--parallel", type=int, default=64)
    p.add_argument("--settle", type=float, default=1.0)

    p = sub.add_parser("inflight")
    common(p)
    p.add_argument("--n", type=int, default=10000)
    p.add_argument("--c", type=int, default=100)
    p.add_argument("--hold", type=float, default=2.0)
    p.add_argument("--msg-bytes", type=int, default=0)
    p.add_argument("--body", required=True)
    p.add_argument("url")

    p = sub.add_parser("report")
    p.add_argument("jsonl")
    p.add_argument("--meta")

    p = sub.add_parser("select")
    p.add_argument("jsonl")
    p.add_argument("series")

    a = ap.parse_args()
    return {"frame": cmd_frame, "check": cmd_check, "measure": cmd_measure,
            "idle": cmd_idle, "inflight": cmd_inflight,
            "report": cmd_report, "select": cmd_select}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
