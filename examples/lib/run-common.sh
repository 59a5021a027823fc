# shellcheck shell=bash
# examples/lib/run-common.sh: what the examples' run.sh scripts share,
# sourced from the repository's top directory after `set -euo pipefail`:
# their flags (--keep, --help), the build's binaries, background processes
# with a log each, waiting until one listens, stopping them all at exit, the
# gateway's config for another build dir, and the client's run.
#
# The sequence of a run.sh (examples/shop/run.sh is one):
#   run_init NAME "$@"            flags, BUILD_DIR, logs, the exit trap
#   prepare FILE...               built? (the gateway too); certs, logs
#   ports_free PORT...            nobody else on the example's ports
#   start_backends NAME-PREFIX FIRST_PORT SVC...
#   start_gateway "$(gateway_config examples/NAME/gateway.yaml)" PORT
#   run_client                    client.py --case=all against the gateway
#   finish "hint line"...         exit with the client's status, or --keep
#
# Globals it sets: REPO, BUILD_DIR, BIN (the example's binaries), GATEWAY,
# PY, LOGS, GATEWAY_PORT (start_gateway), CONFIG, tmp (removed at exit).

# run_init NAME ARGS...: NAME is the example (examples/NAME/); ARGS are the
# script's own. Exits for --help (the script's header comment) or a bad
# argument.
run_init() {
  EXAMPLE="$1"
  shift
  REPO="$PWD"
  keep=0
  local arg
  for arg in "$@"; do
    case "$arg" in
      --keep) keep=1 ;;
      -h | --help)
        # The header comment: from line 2 to the first line not a comment.
        sed -n '2,/^[^#]/p' "examples/$EXAMPLE/run.sh" | sed -e '$d' -e 's/^# \{0,1\}//'
        exit 0
        ;;
      *)
        echo "run.sh: unknown argument $arg (try --help)" >&2
        exit 2
        ;;
    esac
  done

  BUILD_DIR="${BUILD_DIR:-build}"
  BIN="$BUILD_DIR/examples/$EXAMPLE"
  GATEWAY="$BUILD_DIR/gateway/baton-gateway"
  PY=/usr/bin/python3 # Debian's, with python3-grpcio
  WAIT_S=15           # how long a process may take to start listening
  LOGS="$BUILD_DIR/$EXAMPLE-logs"
  tmp="$(mktemp -d)"
  pids=()
  names=()
  trap stop_all EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
}

# prepare FILE...: exits unless each (and the gateway) is built; then
# makes the dev certificates and the log folder.
prepare() {
  local f
  for f in "$@" "$GATEWAY"; do
    if [[ ! -x "$f" ]]; then
      echo "run.sh: $f is missing; build first: cmake -S . -B $BUILD_DIR && cmake --build $BUILD_DIR -j2" >&2
      exit 1
    fi
  done
  bash certs/make-certs.sh >/dev/null
  mkdir -p "$LOGS"
}

# ports_free PORT...: a port someone else holds would make ready() below
# talk to them instead.
ports_free() {
  local port
  for port in "$@"; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "run.sh: 127.0.0.1:$port is already in use (another run.sh --keep?)" >&2
      exit 1
    fi
  done
}

# shellcheck disable=SC2317  # (a trap handler: reached, though not called)
# Stops what this script started, last started first (the gateway): SIGTERM,
# up to 5 s to drain, then SIGKILL for anything still there.
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

# start_backends PREFIX FIRST_PORT SVC...: BIN/PREFIX-SVC for each SVC on
# consecutive ports, each waited for (bt_serve prints "listening on PORT").
start_backends() {
  local prefix="$1" port="$2" svc
  shift 2
  echo "starting the $EXAMPLE backends (logs in $LOGS/)"
  for svc in "$@"; do
    start "$prefix-$svc" "$BIN/$prefix-$svc" --port="$port"
    ready "$prefix-$svc" "$port" "listening on $port"
    port=$((port + 1))
  done
}

# gateway_config FILE: prints the config the gateway should load. A
# gateway.yaml names the descriptors (and the saga log) of ../../build; for
# another build dir it is a copy whose paths point at it (and, from its new
# folder, at certs/).
gateway_config() {
  local build_abs
  build_abs="$(cd "$BUILD_DIR" && pwd)"
  if [[ "$build_abs" == "$REPO/build" ]]; then
    echo "$1"
    return
  fi
  sed -e "s|\.\./\.\./build/|$build_abs/|g" \
    -e "s|\.\./\.\./certs/|$REPO/certs/|g" "$1" >"$tmp/gateway.yaml"
  echo "$tmp/gateway.yaml"
}

# start_gateway CONFIG PORT [NOTE]: baton-gateway --config CONFIG, waited
# for on PORT; NOTE goes into the "starting" line.
start_gateway() {
  CONFIG="$1"
  GATEWAY_PORT="$2"
  echo "starting baton-gateway --config $CONFIG${3:+ ($3)}"
  start baton-gateway "$GATEWAY" --config "$CONFIG"
  ready baton-gateway "$GATEWAY_PORT"
}

# run_client: examples/EXAMPLE/client.py, every case, against the gateway;
# its exit status in status.
run_client() {
  local client="examples/$EXAMPLE/client.py"
  local flags=(--target="localhost:$GATEWAY_PORT" --ca=certs/out/ca.crt --case=all)
  echo
  echo "running $client ${flags[*]}"
  echo
  set +e
  "$PY" "$client" "${flags[@]}"
  status=$?
  set -e
  if ((status != 0)); then
    echo
    echo "run.sh: the client saw unexpected results; the gateway's last log lines:" >&2
    tail -n 30 "$LOGS/baton-gateway.log" >&2
  fi
}

# finish HINT...: exits with the client's status; with --keep first serves
# until Ctrl-C, suggesting the HINT commands.
finish() {
  if ((keep)); then
    echo
    echo "The gateway is serving on localhost:$GATEWAY_PORT (TLS, CA certs/out/ca.crt), e.g.:"
    printf '  %s\n' "$@"
    echo "Press Ctrl-C to stop everything."
    while kill -0 "${pids[-1]}" 2>/dev/null; do sleep 1; done
    echo "run.sh: baton-gateway exited; its log: $LOGS/baton-gateway.log" >&2
    exit 1
  fi
  exit "$status"
}
