#!/usr/bin/env bash
# Fails when a tracked C file differs from what clang-format makes of it with
# the repo's .clang-format (the fix: clang-format -i FILE).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
git ls-files -z '*.c' '*.h' | xargs -0 clang-format --dry-run -Werror
echo "check-format: $(git ls-files '*.c' '*.h' | wc -l) files formatted as .clang-format says"
