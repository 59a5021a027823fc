#!/usr/bin/env bash
# The test command: makes the dev certificates, builds everything with
# ASan+UBSan and -Werror (Debug), and runs every test (unit, e2e, fuzz replays)
# with CTest. Its last line is CTest's summary; its exit status is CTest's.
#   BUILD_DIR (default build-ci) and JOBS (default 2) can be overridden.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

BUILD_DIR="${BUILD_DIR:-build-ci}"
JOBS="${JOBS:-2}"

# Later options win, so a caller's own ASAN_OPTIONS/UBSAN_OPTIONS still apply.
export ASAN_OPTIONS="detect_leaks=1:strict_string_checks=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"

bash certs/make-certs.sh
cmake -S . -B "$BUILD_DIR" -DBATON_SANITIZE=ON -DBATON_WERROR=ON -DCMAKE_BUILD_TYPE=Debug
cmake --build "$BUILD_DIR" -j"$JOBS"
# No retries: a test that fails is a failure (a flaky test is a bug to find).
exec ctest --test-dir "$BUILD_DIR" --output-on-failure -j"$JOBS"
