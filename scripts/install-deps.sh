#!/usr/bin/env bash
# Installs every Debian 12 package Baton's build, tests, fuzzers and bench need.
# Idempotent: when everything is already installed it does nothing (no apt-get
# update), so running it at the start of every CI job costs well under a second.
# Runs as root (CI) or through sudo.
set -euo pipefail

PACKAGES=(
  # toolchain
  build-essential cmake pkg-config clang clang-format
  # runtime libraries
  libprotobuf-c-dev protobuf-c-compiler libnghttp2-dev libssl-dev zlib1g-dev libuv1-dev
  libyaml-dev
  # the gateway's saga log: SQLite (embedded) and libpq, and the PostgreSQL
  # server the tests start a throwaway cluster of (tests/e2e/pg.sh)
  libsqlite3-dev libpq-dev postgresql
  # protoc (+ C++ protobuf headers for protoc-gen-baton's plugin interface)
  protobuf-compiler libprotobuf-dev libprotoc-dev
  # unit tests
  libcmocka-dev
  # dev certificates and the e2e lock around them
  openssl util-linux
  # e2e tests: stock gRPC peers and a raw HTTP/2 client (system python3 only)
  python3 python3-grpcio python3-protobuf python3-h2 python3-hyperframe
  # h2load and nghttp for bench/ and manual poking
  nghttp2-client
)

missing=()
for pkg in "${PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$pkg" 2>/dev/null || true)
  if [[ "$status" != ii* ]]; then
    missing+=("$pkg")
  fi
done

if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#PACKAGES[@]} packages already installed"
  exit 0
fi

if ((EUID == 0)); then
  SUDO=()
elif command -v sudo >/dev/null 2>&1; then
  SUDO=(sudo)
else
  echo "install-deps: need root or sudo to install: ${missing[*]}" >&2
  exit 1
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
echo "install-deps: done"
