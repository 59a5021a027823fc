#!/usr/bin/env bash
# The main job until the gateway lands: baton-interop-server over TLS with
# the dev certificates, and baton-interop-client running every interop case
# against it. Expects a build in BUILD_DIR (default: build).
#   PORT (default 50443) picks the server's port.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

BUILD_DIR="${BUILD_DIR:-build}"
PORT="${PORT:-50443}"
BIN="$BUILD_DIR/examples/interop"

bash certs/make-certs.sh >/dev/null
"$BIN/baton-interop-server" --port="$PORT" --use_tls=true \
  --cert=certs/out/server.crt --key=certs/out/server.key &
server=$!
trap 'kill "$server" 2>/dev/null; wait "$server" 2>/dev/null || true' EXIT

# Wait for the listener (bounded).
for _ in $(seq 1 50); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then break; fi
  sleep 0.1
done

echo "baton-interop-server listening on 127.0.0.1:$PORT (TLS, ALPN h2)"
"$BIN/baton-interop-client" --server_host=127.0.0.1 --server_port="$PORT" \
  --use_tls=true --ca=certs/out/ca.crt --server_host_override=localhost \
  --test_case=all
