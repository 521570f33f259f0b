#!/usr/bin/env bash
# shunt's benchmark: direct connections, shunt in every mode, HAProxy in the
# same transparent position, and the explicit proxies against microsocks,
# dante and tinyproxy, in throwaway namespaces on this machine. Writes
# bench/results/latest.json, docs/benchmarks.md and docs/benchmarks.png.
#   scripts/bench.sh [--quick] [--paths direct,shunt-ebpf,haproxy] [--repetitions N]
# Not part of CI; figures, never assertions.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ ${1:-} == -h || ${1:-} == --help ]]; then sed -n '2,7p' "$0"; exit 0; fi
if [[ $(id -u) -ne 0 ]]; then
  echo "bench.sh: must run as root (it loads BPF programs and creates namespaces)" >&2
  exit 1
fi
scripts/setup.sh
BENCH_PACKAGES=(haproxy microsocks dante-server tinyproxy gnuplot-nox)
missing=()
for pkg in "${BENCH_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  echo "bench.sh: installing ${missing[*]}"
  # The packages' own services are not wanted: keep them from starting.
  created_policy=
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    created_policy=1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  [[ -n $created_policy ]] && rm -f /usr/sbin/policy-rc.d
fi
scripts/build.sh release >/dev/null
python3 bench/run_bench.py "$@"
python3 bench/report.py
python3 vmtests/check_leftovers.py
