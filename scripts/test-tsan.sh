#!/usr/bin/env bash
# The ThreadSanitizer run: builds everything with -fsanitize=thread
# (RelWithDebInfo, so the threaded e2e tests keep their timing) and runs the
# unit tests and the e2e tests, whose gateways and servers run several worker
# threads and a saga log thread. Left out: the attack tests (label "attacks"),
# whose RSS bounds are stated for builds without TSan's shadow memory.
#   BUILD_DIR (default build-tsan) and JOBS (default 2) can be overridden.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

BUILD_DIR="${BUILD_DIR:-build-tsan}"
JOBS="${JOBS:-2}"

# halt_on_error: the first race fails the process, and so its test.
export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1${TSAN_OPTIONS:+:$TSAN_OPTIONS}"

bash certs/make-certs.sh
cmake -S . -B "$BUILD_DIR" -DBATON_TSAN=ON -DBATON_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build "$BUILD_DIR" -j"$JOBS"
exec ctest --test-dir "$BUILD_DIR" --output-on-failure -j"$JOBS" -LE attacks
