#!/usr/bin/env bash
# The QEMU kernel matrix from a fresh machine: installs what it needs,
# builds the release build, and runs vmtests/qemu/run_qemu.py with the
# arguments given (default: every kernel, every mode). See docs/vmtests.md.
#   scripts/vmtests.sh [--kernel 5.10|6.1|6.12|7.3|ci|all] [--scenarios redirect,failures] ...
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ ${1:-} == -h || ${1:-} == --help ]]; then
  sed -n '2,5p' "$0"
  exec python3 vmtests/qemu/run_qemu.py --help
fi
if [[ $(id -u) -ne 0 ]]; then
  echo "vmtests.sh: must run as root (the guests' suite loads BPF programs)" >&2
  exit 1
fi
scripts/setup.sh
scripts/build.sh release
exec python3 vmtests/qemu/run_qemu.py --update-docs "$@"
