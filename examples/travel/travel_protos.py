"""The travel example's message classes and stubs for its Python programs.

Debian has no grpc_tools, so proto/travel/v1/*.proto are compiled with
protoc's built-in Python generator at run time into a temporary directory
(removed at exit) and imported from there; services are called through
grpcio's generic API, which needs only the message classes.
"""

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PROTO_DIR = REPO / "proto"
FILES = ["travel/v1/state.proto", "travel/v1/travel.proto"]


def load(proto_dir=None):
    """Returns (state_pb2, travel_pb2)."""
    src = Path(proto_dir or os.environ.get("TRAVEL_PROTO_DIR") or PROTO_DIR)
    out = tempfile.mkdtemp(prefix="baton-travel-pb2-")
    atexit.register(shutil.rmtree, out, ignore_errors=True)
    subprocess.run(["protoc", f"--python_out={out}", f"-I{src}", *FILES],
                   check=True, timeout=60)
    sys.path.insert(0, out)
    from travel.v1 import state_pb2, travel_pb2  # noqa: E402

    return state_pb2, travel_pb2


class Backend:
    """Callables of one backend service ("Reservations", "Payments",
    "Seats"): its business methods by name and Get, Reset, Configure."""

    METHODS = {
        "Reservations": {"Create": "Reservation", "Cancel": "Reservation"},
        "Payments": {"Pay": "Payment", "Refund": "Payment"},
        "Seats": {"Assign": "Seat"},
    }

    def __init__(self, channel, service, pb):
        state, travel = pb
        self.service = service

        def unary(method, resp):
            return channel.unary_unary(f"/travel.v1.{service}/{method}",
                                       request_serializer=lambda m: m.SerializeToString(),
                                       response_deserializer=resp.FromString)

        for method, resp in self.METHODS[service].items():
            setattr(self, method.lower(), unary(method, getattr(travel, resp)))
        self._get = unary("Get", state.BackendState)
        self._reset = unary("Reset", state.BackendState)
        self._configure = unary("Configure", state.BackendState)
        self.state_pb = state

    def get(self, timeout=5.0):
        return self._get(self.state_pb.GetStateRequest(), timeout=timeout)

    def reset(self, timeout=5.0):
        return self._reset(self.state_pb.ResetRequest(), timeout=timeout)

    def configure(self, timeout=5.0, **switches):
        return self._configure(self.state_pb.ConfigureRequest(**switches), timeout=timeout)


def saga_md(saga_id, step):
    """The metadata baton-gateway sends with a saga's calls."""
    return (("baton-saga-id", saga_id), ("baton-step", step))


def ops(state):
    """A backend state's ops as (op, key, saga_id, step) tuples."""
    return [(o.op, o.key, o.saga_id, o.step) for o in state.ops]
