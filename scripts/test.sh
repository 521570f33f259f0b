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
for flavour in "${flavours[@]}"; do
  dir=build
  [[ $flavour == asan ]] && dir=build-asan
  echo "== tests: $flavour ($dir)"
  (cd "$dir" && ctest --output-on-failure) || status=1
done
exit $status
