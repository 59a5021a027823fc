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
REPO="$PWD"

keep=0
for arg in "$@"; do
  case "$arg" in
    --keep) keep=1 ;;
    -h | --help)
      sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    *)
      echo "run.sh: unknown argument $arg (try --help)" >&2
      exit 2
      ;;
  esac
done

BUILD_DIR="${BUILD_DIR:-build}"
BIN="$BUILD_DIR/examples/travel"
GATEWAY="$BUILD_DIR/gateway/baton-gateway"
CONFIG="examples/travel/gateway.yaml"
GATEWAY_PORT=8444
PY=/usr/bin/python3 # Debian's, with python3-grpcio
WAIT_S=15           # how long a process may take to start listening

for f in "$BIN"/travel-{reservations,payments,seats} "$GATEWAY"; do
  if [[ ! -x "$f" ]]; then
    echo "run.sh: $f is missing; build first: cmake -S . -B $BUILD_DIR && cmake --build $BUILD_DIR -j2" >&2
    exit 1
  fi
done
bash certs/make-certs.sh >/dev/null

LOGS="$BUILD_DIR/travel-logs"
mkdir -p "$LOGS"
tmp="$(mktemp -d)"
pids=()
names=()

# shellcheck disable=SC2317  # (a trap handler: reached, though not called)
# Stops what this script started, gateway first: SIGTERM, up to 5 s to
# drain, then SIGKILL for anything still there.
stop_all() {
  local i n
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill -TERM "${pids[i]}" 2>/dev/null || true
  done
  for ((n = 0; n < 50; n++)); do
    local alive=0
    for i in "${!pids[@]}"; do
      if kill -0 "${pids[i]}" 2>/dev/null; then alive=1; fi
    done
    ((alive)) || break
    sleep 0.1
  done
  for i in "${!pids[@]}"; do
    if kill -0 "${pids[i]}" 2>/dev/null; then
      echo "run.sh: ${names[i]} ignored SIGTERM; killing it" >&2
      kill -KILL "${pids[i]}" 2>/dev/null || true
    fi
    wait "${pids[i]}" 2>/dev/null || true
  done
  rm -rf "$tmp"
}
trap stop_all EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# start NAME COMMAND...: runs it in the background, output to its log.
start() {
  local name="$1"
  shift
  "$@" >"$LOGS/$name.log" 2>&1 &
  pids+=($!)
  names+=("$name")
}

# ready NAME PORT [LINE]: waits (bounded) until the last started process
# accepts connections on PORT and, when given, printed LINE.
ready() {
  local name="$1" port="$2" line="${3:-}" pid="${pids[-1]}" n
  for ((n = 0; n < WAIT_S * 10; n++)); do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "run.sh: $name exited before listening on :$port; its log ($LOGS/$name.log):" >&2
      tail -n 20 "$LOGS/$name.log" >&2
      exit 1
    fi
    if { [[ -z "$line" ]] || grep -qs "$line" "$LOGS/$name.log"; } &&
      (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "  $name listening on 127.0.0.1:$port"
      return 0
    fi
    sleep 0.1
  done
  echo "run.sh: $name is not listening on :$port after ${WAIT_S}s; its log ($LOGS/$name.log):" >&2
  tail -n 20 "$LOGS/$name.log" >&2
  exit 1
}

# A port someone else holds would make ready() below talk to them instead.
for port in 50061 50062 50063 "$GATEWAY_PORT"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "run.sh: 127.0.0.1:$port is already in use (another run.sh --keep?)" >&2
    exit 1
  fi
done

echo "starting the travel backends (logs in $LOGS/)"
port=50061
for svc in reservations payments seats; do
  start "travel-$svc" "$BIN/travel-$svc" --port="$port"
  ready "travel-$svc" "$port" "listening on $port"
  port=$((port + 1))
done

# gateway.yaml names the descriptors and the saga log of ../../build; for
# another build dir run a copy whose paths point at it (and, from its new
# folder, at certs/).
build_abs="$(cd "$BUILD_DIR" && pwd)"
if [[ "$build_abs" != "$REPO/build" ]]; then
  sed -e "s|\.\./\.\./build/|$build_abs/|g" \
    -e "s|\.\./\.\./certs/|$REPO/certs/|g" "$CONFIG" >"$tmp/gateway.yaml"
  CONFIG="$tmp/gateway.yaml"
fi
# The backends start with empty memories, so the log of an earlier run
# would only have its gateway compensate sagas these backends never saw.
SAGA_DB="$build_abs/travel-saga.db"
rm -f "$SAGA_DB" "$SAGA_DB-wal" "$SAGA_DB-shm" "$SAGA_DB-journal"
echo "starting baton-gateway --config $CONFIG (saga log $SAGA_DB, new)"
start baton-gateway "$GATEWAY" --config "$CONFIG"
ready baton-gateway "$GATEWAY_PORT"

echo
echo "running examples/travel/client.py --target=localhost:$GATEWAY_PORT --ca=certs/out/ca.crt --case=all"
echo
set +e
"$PY" examples/travel/client.py --target="localhost:$GATEWAY_PORT" --ca=certs/out/ca.crt --case=all
status=$?
set -e
if ((status != 0)); then
  echo
  echo "run.sh: the client saw unexpected results; the gateway's last log lines:" >&2
  tail -n 30 "$LOGS/baton-gateway.log" >&2
fi

if ((keep)); then
  echo
  echo "The gateway is serving on localhost:$GATEWAY_PORT (TLS, CA certs/out/ca.crt), e.g.:"
  echo "  $PY examples/travel/client.py --case=seat_fails"
  echo "  $GATEWAY sagas --config $CONFIG"
  echo "Press Ctrl-C to stop everything."
  while kill -0 "${pids[-1]}" 2>/dev/null; do sleep 1; done
  echo "run.sh: baton-gateway exited; its log: $LOGS/baton-gateway.log" >&2
  exit 1
fi
exit "$status"
