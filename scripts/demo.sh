#!/usr/bin/env bash
# shunt's main job, live on this machine: a throwaway "pod" namespace and a
# "server" namespace joined by veth, the agent attached at a cgroup this
# script creates (never the machine's root cgroup), the proxy in the pod,
# real requests from the pod over IPv4 and IPv6, the access log and the
# agent's status, then everything removed again.
#   scripts/demo.sh [--mode auto|ebpf|tproxy|redirect] [--backend nft|iptables-nft|iptables-legacy]
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=auto
BACKEND=auto
while [[ $# -gt 0 ]]; do
  case "$1" in
    --mode) MODE=${2:?--mode needs a value}; shift 2 ;;
    --backend) BACKEND=${2:?--backend needs a value}; shift 2 ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) echo "demo.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
ROOT=$(pwd)
if [[ $(id -u) -ne 0 ]]; then
  echo "demo.sh: must run as root (it loads BPF programs and creates namespaces)" >&2
  exit 1
fi
scripts/setup.sh
if [[ ! -x build/bin/shunt-agent || ! -x build/bin/shunt-proxy ]]; then
  echo "== building"
  scripts/build.sh release >/dev/null
fi
BIN=$ROOT/build/bin

CG2=$(awk '$9 == "cgroup2" { print $5; exit }' /proc/self/mountinfo)
[[ -n $CG2 ]] || { echo "demo.sh: no cgroup2 mount found" >&2; exit 1; }
TAG=demo$$
POD=shunt-$TAG-pod
SRV=shunt-$TAG-srv
CGROUP=$CG2/shunt-$TAG
BPFFS=/sys/fs/bpf/shunt-$TAG
WORK=$(mktemp -d /tmp/shunt-$TAG.XXXX)
SOCKET=$WORK/agent.sock
STATE=$WORK/state
PIDS=()

cleanup() {
  set +e
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null; done
  "$BIN/shunt-agent" uninstall --cgroup "$CGROUP" --bpffs "$BPFFS" --socket "$SOCKET" \
    --state-dir "$STATE" >/dev/null 2>&1
  ip netns del "$POD" 2>/dev/null
  ip netns del "$SRV" 2>/dev/null
  rmdir "$CGROUP/shunt-proxies" 2>/dev/null
  if [[ -d $CGROUP ]]; then
    for _ in $(seq 50); do
      pids=$(cat "$CGROUP/cgroup.procs" 2>/dev/null)
      [[ -z $pids ]] && break
      kill -9 $pids 2>/dev/null
      sleep 0.1
    done
    rmdir "$CGROUP" 2>/dev/null
  fi
  rm -rf "$WORK"
  echo "== cleaned up: namespaces, cgroup, pins and processes removed"
}
trap cleanup EXIT INT TERM

in_pod() {  # runs a command in the pod's namespace, inside the attach cgroup
  sh -c 'echo $$ > "$0/cgroup.procs" && exec "$@"' "$CGROUP" ip netns exec "$POD" "$@"
}

echo "== topology: $POD (10.200.0.1, fd00:200::1) <-veth-> $SRV (10.200.0.2, fd00:200::2)"
mkdir "$CGROUP"
ip netns add "$POD"
ip netns add "$SRV"
ip link add "v$TAG" netns "$POD" type veth peer name "w$TAG" netns "$SRV"
ip -n "$POD" addr add 10.200.0.1/24 dev "v$TAG"
ip -n "$SRV" addr add 10.200.0.2/24 dev "w$TAG"
ip -n "$POD" addr add fd00:200::1/64 dev "v$TAG" nodad
ip -n "$SRV" addr add fd00:200::2/64 dev "w$TAG" nodad
for ns in "$POD" "$SRV"; do ip -n "$ns" link set lo up; done
ip -n "$POD" link set "v$TAG" up
ip -n "$SRV" link set "w$TAG" up

echo "== servers in $SRV: HTTP on :8080, TCP echo on :7000"
mkdir -p "$WORK/www" && echo "hello from the server namespace" > "$WORK/www/index.html"
ip netns exec "$SRV" python3 -m http.server 8080 --bind :: --directory "$WORK/www" \
  >"$WORK/http.log" 2>&1 &
PIDS+=($!)
ip netns exec "$SRV" python3 vmtests/tools/echo_server.py --port 7000 \
  --report "$WORK/echo.jsonl" --ready "$WORK/echo.ready" >"$WORK/echo.log" 2>&1 &
PIDS+=($!)

echo "== shunt-agent run --mode $MODE --cgroup $CGROUP --bpffs $BPFFS"
backend_args=()
[[ $BACKEND != auto ]] && backend_args=(--backend "$BACKEND")
"$BIN/shunt-agent" run --mode "$MODE" "${backend_args[@]}" --cgroup "$CGROUP" --bpffs "$BPFFS" \
  --socket "$SOCKET" --state-dir "$STATE" >"$WORK/agent.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do "$BIN/shunt-agent" status --socket "$SOCKET" >/dev/null 2>&1 && break; sleep 0.1; done
"$BIN/shunt-agent" status --socket "$SOCKET" >/dev/null || { cat "$WORK/agent.log"; exit 1; }

echo "== shunt-proxy in $POD (sidecar placement, in the proxies' cgroup $CGROUP/shunt-proxies)"
# The agent created that cgroup: only processes there are exempt from
# capture (docs/policy.md). Not through in_pod: a backgrounded function
# would be a subshell, and $! must be the proxy itself so that cleanup
# stops it.
sh -c 'echo $$ > "$0/cgroup.procs" && exec "$@"' "$CGROUP/shunt-proxies" ip netns exec "$POD" \
  "$BIN/shunt-proxy" --outbound-port 15001 --access-log "$WORK/access.log" >"$WORK/proxy.log" 2>&1 &
PROXY_PID=$!
PIDS+=($!)
for _ in $(seq 100); do grep -q "outbound listener" "$WORK/proxy.log" && break; sleep 0.1; done
for _ in $(seq 100); do [[ -e $WORK/echo.ready ]] && break; sleep 0.1; done

echo "== shunt-agent enroll --netns /run/netns/$POD"
"$BIN/shunt-agent" enroll --netns "/run/netns/$POD" --socket "$SOCKET"

echo "== requests from the pod (the application sees the address it asked for)"
for url in "http://10.200.0.2:8080/" "http://[fd00:200::2]:8080/"; do
  printf '   curl %-28s -> ' "$url"
  in_pod curl -gsS -m 5 -o /dev/null -w 'HTTP %{http_code}, curl saw peer %{remote_ip} port %{remote_port}\n' "$url"
done
for host in 10.200.0.2 fd00:200::2; do
  printf '   echo 64 KiB to %-14s -> ' "$host"
  in_pod python3 vmtests/tools/client.py --host "$host" --port 7000 --size 65536 |
    python3 -c 'import json,sys; r=json.load(sys.stdin); print("intact=%s getpeername=%s" % (r.get("intact"), r.get("peername")))'
done

sleep 0.3
echo "== access log (one JSON line per connection, with where original_dst came from)"
cat "$WORK/access.log"
echo "== shunt-agent status"
"$BIN/shunt-agent" status --socket "$SOCKET"
if "$BIN/shunt-agent" status --socket "$SOCKET" --json | grep -q '"state_dir"'; then
  echo "== the rules in $POD (docs/modes.md explains them)"
  ip netns exec "$POD" nft list table inet shunt 2>/dev/null || true
  for tool in iptables-legacy-save ip6tables-legacy-save iptables-nft-save ip6tables-nft-save; do
    ip netns exec "$POD" $tool 2>/dev/null | grep SHUNT | sed "s/^/$tool: /" || true
  done
  ip -n "$POD" rule | grep fwmark || true
fi

echo "== the proxy is killed: with proxy-down closed (the default) connects are refused at once"
kill -9 "$PROXY_PID"
wait "$PROXY_PID" 2>/dev/null || true
for _ in $(seq 50); do
  "$BIN/shunt-agent" status --socket "$SOCKET" | grep -q "proxy down" && break
  sleep 0.1
done
in_pod python3 vmtests/tools/connects.py --host 10.200.0.2 --port 7000 --count 100 |
  python3 -c 'import json,sys; r=json.load(sys.stdin); print("   100 connects:", r["outcomes"], "slowest", r["slowest_ms"], "ms")'
echo "== enrolled again with --proxy-down open: the same connects go to the server directly"
"$BIN/shunt-agent" enroll --netns "/run/netns/$POD" --proxy-down open --socket "$SOCKET" >/dev/null
in_pod python3 vmtests/tools/connects.py --host 10.200.0.2 --port 7000 --count 100 |
  python3 -c 'import json,sys; r=json.load(sys.stdin); print("   100 connects:", r["outcomes"], "slowest", r["slowest_ms"], "ms")'
