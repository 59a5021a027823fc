"""The shop's message classes for the Python programs of examples/shop.

Debian has no grpc_tools, so the .proto files in proto/shop/v1 are compiled
with protoc's built-in Python generator at run time into a temporary
directory (removed at exit) and imported from there; services are served and
called through grpcio's generic API, which needs only the message classes.
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
FILES = ["shop/v1/common.proto", "shop/v1/shop.proto", "shop/v1/catalog.proto"]


def load(proto_dir=None):
    """Returns (common_pb2, shop_pb2, catalog_pb2)."""
    src = Path(proto_dir or os.environ.get("SHOP_PROTO_DIR") or PROTO_DIR)
    out = tempfile.mkdtemp(prefix="baton-shop-pb2-")
    atexit.register(shutil.rmtree, out, ignore_errors=True)
    subprocess.run(["protoc", f"--python_out={out}", f"-I{src}", *FILES],
                   check=True, timeout=60)
    sys.path.insert(0, out)
    from shop.v1 import catalog_pb2, common_pb2, shop_pb2  # noqa: E402

    return common_pb2, shop_pb2, catalog_pb2
