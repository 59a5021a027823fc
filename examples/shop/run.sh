#!/usr/bin/env bash
# The order example end to end, on loopback: the four C backends
# (shop-orders :50051, shop-payments :50052, shop-inventory :50053,
# shop-shipping :50054), the python3-grpcio catalog (:50055), then
# baton-gateway with examples/shop/gateway.yaml (TLS on 127.0.0.1:8443), and
# client.py running every case against the gateway.
#
#   examples/shop/run.sh [--keep]
#
# Without --keep everything is stopped afterwards and the exit status is the
# client's (0: every case as expected). With --keep the processes stay up
# for your own calls until Ctrl-C. BUILD_DIR (default: build) is the build
# to use; logs go to BUILD_DIR/shop-logs/.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
# shellcheck source=examples/lib/run-common.sh
source examples/lib/run-common.sh

run_init shop "$@"
prepare "$BIN"/shop-{orders,payments,inventory,shipping}
ports_free 50051 50052 50053 50054 50055 8443

start_backends shop 50051 orders payments inventory shipping
start catalog "$PY" examples/shop/catalog_server.py --port=50055
ready catalog 50055 "listening on 50055"

start_gateway "$(gateway_config examples/shop/gateway.yaml)" 8443
run_client
finish "$PY examples/shop/client.py --case=happy"
