"""Shared plumbing for baton-gateway's end-to-end tests (gateway_*.py).

Owns what those scripts share on top of harness.py: their common flags, the
shop's message classes, descriptor sets, starting the shop backends and the
gateway (a config rendered from a template under gateway/ with the ports and
paths of this run), reading a backend's Stats, grpcio channels, and the
PASS/FAIL bookkeeping. Every wait is bounded; harness.hard_timeout is the
backstop.

Configs are templates so they can be read as plain YAML: "${name}" is filled
in by render() (string.Template), everything else is passed unchanged.
"""

import argparse
import string
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import harness

GW_DIR = harness.HERE / "gateway"  # config templates and --check fixtures
SHOP_EXAMPLE = harness.REPO / "examples" / "shop"
SHOP_PROTO_ROOT = harness.REPO / "proto"
SHOP_PROTOS = ["shop/v1/common.proto", "shop/v1/shop.proto", "shop/v1/catalog.proto"]
READY = r"baton-gateway: ready"
RPC_WAIT = 10.0  # seconds any single call in these tests may take, unless it says otherwise


def arg_parser(doc, cases=None):
    """The flags every gateway script takes (and --case=NAME when it has cases)."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    if cases is not None:
        ap.add_argument("--case", required=True, choices=sorted(cases), help="the one case to run")
    ap.add_argument("--gateway", required=True, help="path of baton-gateway")
    ap.add_argument("--shop-bin-dir", help="folder of shop-orders, shop-payments, ...")
    ap.add_argument("--descriptors", help="the FileDescriptorSet to load (default: made with protoc)")
    ap.add_argument("--certs-dir", help="where make-certs.sh keeps the dev PKI (default: a temp dir)")
    ap.add_argument("--timeout", type=float, default=100, help="hard limit for the whole run, seconds")
    return ap


def tmpdir():
    d = tempfile.mkdtemp(prefix="baton-gw-e2e-")
    harness._cleanup_at_exit(d)
    return Path(d)


def descriptor_set(proto_root, files, out_dir):
    """protoc --include_imports --descriptor_set_out, as the README tells users to run it."""
    out = Path(out_dir) / "descriptors.pb"
    subprocess.run(["protoc", "--include_imports", f"--descriptor_set_out={out}", f"-I{proto_root}",
                    *files], check=True, timeout=60)
    return out


def descriptors_arg(args, out_dir, proto_root, files):
    """--descriptors (the build's set) when it exists, else one made with protoc from files."""
    if args.descriptors and Path(args.descriptors).is_file():
        return Path(args.descriptors)
    if args.descriptors:
        harness.log(f"note: {args.descriptors} does not exist; making the descriptor set with protoc")
    return descriptor_set(proto_root, files, out_dir)


def shop_descriptors(args, out_dir):
    return descriptors_arg(args, out_dir, SHOP_PROTO_ROOT, SHOP_PROTOS)


_shop_pb = None


def shop_messages():
    """(common_pb2, shop_pb2, catalog_pb2), compiled once per process by examples/shop/shop_protos.py."""
    global _shop_pb
    if _shop_pb is None:
        sys.path.insert(0, str(SHOP_EXAMPLE))
        import shop_protos  # noqa: E402

        _shop_pb = shop_protos.load(SHOP_PROTO_ROOT)
    return _shop_pb


def render(template, out_dir, **values):
    """Writes gateway/<template> with ${...} filled in to out_dir; returns the new path.

    Lines are kept as they are, so line numbers in the gateway's errors match
    the template's."""
    src = GW_DIR / template
    text = string.Template(src.read_text()).substitute(**{k: str(v) for k, v in values.items()})
    out = Path(out_dir) / Path(template).name
    out.write_text(text)
    return out


def start_gateway(gateway, template, out_dir, name="gateway", **values):
    """Renders template with ${port} = a free port and starts baton-gateway on it.

    Returns (Process, port, config path). A port someone else took makes the
    gateway exit; start_server then tries another."""
    paths = {}

    def argv(port):
        cfg = render(template, out_dir, port=port, **values)
        paths["cfg"] = cfg
        return [gateway, "--config", cfg]

    proc, port = harness.start_server(name, argv, ready=READY, timeout=30)
    proc.must_exit_0 = True  # SIGTERM drains and exits 0; death by the signal is a failure
    return proc, port, paths["cfg"]


def start_shop_backend(args, svc, *extra):
    """shop-<svc> (orders, payments, inventory, shipping) on a free port: (Process, port)."""
    binary = Path(args.shop_bin_dir) / f"shop-{svc}"
    return harness.start_server(svc, lambda port: [binary, f"--port={port}", *extra])


def start_catalog():
    return harness.start_server(
        "catalog", lambda port: [sys.executable, SHOP_EXAMPLE / "catalog_server.py", f"--port={port}"])


def channel(port, creds=None, name_override=None, own_connection=True):
    """A grpcio channel to 127.0.0.1:port (TLS when creds is given).

    own_connection: grpcio shares one TCP connection between channels with the
    same target and arguments unless each has its own subchannel pool."""
    import grpc

    options = [("grpc.enable_http_proxy", 0), ("grpc.enable_retries", 0)]
    if own_connection:
        options.append(("grpc.use_local_subchannel_pool", 1))
    if name_override:
        options.append(("grpc.ssl_target_name_override", name_override))
    target = f"127.0.0.1:{port}"
    if creds is None:
        return grpc.insecure_channel(target, options=options)
    return grpc.secure_channel(target, creds, options=options)


def unary(ch, path, resp_cls, req_serializer=None):
    return ch.unary_unary(path, request_serializer=req_serializer or (lambda m: m.SerializeToString()),
                          response_deserializer=resp_cls.FromString)


class Stats:
    """Reads (and resets) what one shop backend saw, straight from the backend."""

    def __init__(self, svc, port):
        common, _, _ = shop_messages()
        self.svc = svc
        self.common = common
        self.ch = channel(port)
        self.call = unary(self.ch, f"/shop.v1.{svc}/Stats", common.StatsResponse)

    def get(self, reset=False):
        return self.call(self.common.StatsRequest(reset=reset), timeout=RPC_WAIT)

    def reset(self):
        self.get(reset=True)

    def wait_for(self, pred, timeout=3.0):
        """Polls until pred(stats) holds; returns the last stats seen."""
        deadline = time.monotonic() + timeout
        while True:
            s = self.get()
            if pred(s) or time.monotonic() > deadline:
                return s
            time.sleep(0.02)

    def close(self):
        self.ch.close()


def rpc_error(fn):
    """Runs fn(); returns the grpc.RpcError it raised, or None if it succeeded."""
    import grpc

    try:
        fn()
    except grpc.RpcError as err:
        return err
    return None


def describe_error(err):
    if err is None:
        return "OK"
    return f"{err.code().name}: {err.details()!r}"


class Check:
    """Collects failed expectations; the script fails if there are any."""

    def __init__(self):
        self.problems = []

    def __call__(self, cond, what):
        if cond:
            harness.log(f"  ok: {what}")
        else:
            harness.log(f"  FAIL: {what}")
            self.problems.append(what)
        return cond

    def fail(self, what):
        self(False, what)

    def stop(self, p):
        """Stops one process with SIGTERM; its misbehaviour counts as a failure."""
        for problem in p.stop():
            self.fail(problem)
        rc = p.proc.returncode
        if getattr(p, "must_exit_0", False) and rc not in (0, None):
            self.fail(f"{p.name} exited with status {rc} after SIGTERM, want 0")

    def finish(self, name, procs=()):
        """Stops procs in the order given; returns the script's exit status."""
        for p in procs:
            if p is not None:
                self.stop(p)
        for p in self.problems:
            harness.log(f"FAIL: {p}")
        harness.log(f"{'FAIL' if self.problems else 'PASS'}: {name}")
        return 1 if self.problems else 0


def elapsed_ms(start):
    return (time.monotonic() - start) * 1000
