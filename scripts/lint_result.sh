#!/usr/bin/env bash
# The ctest test `lint`: the result of the lint that scripts/test.sh started
# in the background (at the lowest priority, beside the other tests, so that
# its minutes of CPU fill the time they spend waiting), or, when none was
# started (ctest run by hand), scripts/lint.sh itself.
# Usage: scripts/lint_result.sh BUILD_DIR
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:?usage: scripts/lint_result.sh BUILD_DIR}
background=$build/lint-background
if [[ ! -f $background/started ]]; then
  exec scripts/lint.sh "$build"
fi
while [[ ! -f $background/status ]]; do sleep 2; done
cat "$background/log"
exit "$(cat "$background/status")"
