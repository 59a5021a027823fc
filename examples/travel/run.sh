#!/usr/bin/env bash
# The flight-booking saga example end to end, on loopback: the three C
# backends (travel-reservations :50061, travel-payments :50062,
# travel-seats :50063), then baton-gateway with examples/travel/gateway.yaml
# (TLS on 127.0.0.1:8444, saga log BUILD_DIR/travel-saga.db, started
# empty), and client.py running every case: a booking that succeeds, one
# whose payment fails and one whose seat assignment fails, each followed by
# what the backends applied — the compensations included.
#
#   examples/travel/run.sh [--keep]
#
# Without --keep everything is stopped afterwards and the exit status is the
# client's (0: every case as expected). With --keep the processes stay up
# for your own calls until Ctrl-C. BUILD_DIR (default: build) is the build
# to use; logs go to BUILD_DIR/travel-logs/.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
# shellcheck source=examples/lib/run-common.sh
source examples/lib/run-common.sh

run_init travel "$@"
prepare "$BIN"/travel-{reservations,payments,seats}
ports_free 50061 50062 50063 8444

start_backends travel 50061 reservations payments seats

# The backends start with empty memories, so the log of an earlier run
# would only have its gateway compensate sagas these backends never saw.
SAGA_DB="$(cd "$BUILD_DIR" && pwd)/travel-saga.db"
rm -f "$SAGA_DB" "$SAGA_DB-wal" "$SAGA_DB-shm" "$SAGA_DB-journal"
start_gateway "$(gateway_config examples/travel/gateway.yaml)" 8444 "saga log $SAGA_DB, new"
run_client
finish "$PY examples/travel/client.py --case=seat_fails" "$GATEWAY sagas --config $CONFIG"
