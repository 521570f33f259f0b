#!/usr/bin/env bash
# The house's style, enforced (CI runs it as the ctest test `lint`):
#   1. clang-format: no drift in C++ (.clang-format) or BPF C (bpf/.clang-format);
#   2. clang-tidy: no warning in the project's own code (.clang-tidy), over
#      every translation unit in BUILD_DIR's compile_commands.json;
#   3. scripts/check_sizes.py: no file over 400 lines, no function over 80.
# Usage: scripts/lint.sh BUILD_DIR [--fix]   (--fix rewrites the formatting)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:?usage: scripts/lint.sh BUILD_DIR [--fix]}
fix=${2:-}
status=0

mapfile -t sources < <(git ls-files -- 'agent/*.cpp' 'agent/*.h' 'userspace-proxy/*.cpp' \
  'userspace-proxy/*.h' 'common/*.cpp' 'common/*.h' 'bench/*.cpp' 'bench/*.h' 'fuzz/*.cpp' \
  'tests/unit/*.cpp' 'tests/unit/*.h' 'bpf/*.c' 'bpf/*.h')
echo "== clang-format: ${#sources[@]} files"
if [[ $fix == --fix ]]; then
  clang-format -i "${sources[@]}"
elif ! clang-format --dry-run -Werror "${sources[@]}"; then
  echo "lint: formatting drift (scripts/lint.sh $build --fix rewrites it)" >&2
  status=1
fi

# The project's own translation units (not the generated skeletons, not the
# fuzzers, which the clang build compiles apart).
mapfile -t units < <(git ls-files -- 'agent/*.cpp' 'userspace-proxy/*.cpp' 'common/*.cpp' \
  'bench/*.cpp' 'tests/unit/*.cpp')
echo "== clang-tidy: ${#units[@]} translation units"
jobs=$(nproc)
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# --quiet: only our diagnostics; the header filter in .clang-tidy keeps
# third-party headers out; warnings are errors there.
if ! printf '%s\n' "${units[@]}" |
    xargs -P "$jobs" -n 4 clang-tidy -p "$build" --quiet >"$log" 2>&1; then
  grep -E "(warning|error):" "$log" | sort -u >&2 || cat "$log" >&2
  echo "lint: clang-tidy found the above" >&2
  status=1
fi

echo "== sizes"
python3 scripts/check_sizes.py || status=1
exit $status
