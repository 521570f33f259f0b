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
# The release build's `lint` test (clang-tidy over every translation unit,
# minutes of CPU and no namespace, no timing) runs at the lowest priority
# while the sanitizer build's tests run, which mostly wait on the network;
# the release build's other tests run after it, alone. CI's time budget.
lint_log=$(mktemp)
lint_pid=
if [[ " ${flavours[*]} " == *" release "* ]]; then
  (cd build && nice -n 19 ctest -R '^lint$' --output-on-failure >"$lint_log" 2>&1) &
  lint_pid=$!
fi
for flavour in "${flavours[@]}"; do
  dir=build
  skip=()
  if [[ $flavour == asan ]]; then
    dir=build-asan
  elif [[ -n $lint_pid ]]; then
    echo "== tests: release (build): lint"
    wait "$lint_pid" || status=1
    cat "$lint_log"
    skip=(-E '^lint$')
  fi
  echo "== tests: $flavour ($dir)"
  (cd "$dir" && ctest --output-on-failure "${skip[@]}") || status=1
done
rm -f "$lint_log"
exit $status
