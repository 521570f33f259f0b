#!/usr/bin/env bash
# The test command: installs what it needs, builds the release and the
# sanitizer builds, and runs the whole suite (unit tests and the scenario
# suite on this kernel) in both. Ends with ctest's summary.
# Usage: scripts/test.sh [--release-only]
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ $(id -u) -ne 0 ]]; then
  echo "test.sh: must run as root (the scenarios load BPF programs and create namespaces)" >&2
  exit 1
fi
scripts/setup.sh
flavours=(asan release)
[[ ${1:-} == --release-only ]] && flavours=(release)

status=0
for flavour in "${flavours[@]}"; do
  echo "== build: $flavour"
  scripts/build.sh "$flavour"
done
# The release build's lint (clang-tidy over every translation unit, minutes
# of CPU and no namespace, no timing) runs in the background at the lowest
# priority, from the start of the tests to the end: the scenarios mostly
# wait on the network and the kernel, and the lint fills that time. The
# release build's ctest test `lint` (scripts/lint_result.sh) runs last and
# reports its result. CI's time budget.
if [[ " ${flavours[*]} " == *" release "* ]]; then
  background=build/lint-background
  rm -rf "$background"
  mkdir -p "$background"
  touch "$background/started"
  (
    status=0
    nice -n 19 scripts/lint.sh build >"$background/log" 2>&1 || status=$?
    echo "$status" >"$background/status.tmp"
    mv "$background/status.tmp" "$background/status"
  ) &
fi
for flavour in "${flavours[@]}"; do
  dir=build
  [[ $flavour == asan ]] && dir=build-asan
  echo "== tests: $flavour ($dir)"
  (cd "$dir" && ctest --output-on-failure) || status=1
done
wait
rm -rf build/lint-background
exit $status
