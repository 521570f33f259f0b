#!/usr/bin/env bash
# Installs every build and test dependency of shunt from Debian packages.
# Idempotent: packages already present are left alone, apt is only asked
# when something is missing.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build pkg-config
  clang llvm libclang-rt-dev clang-format clang-tidy
  libbpf-dev bpftool libelf-dev zlib1g-dev
  libboost1.81-dev libcli11-dev libyaml-cpp-dev nlohmann-json3-dev
  libspdlog-dev libfmt-dev libgtest-dev libgmock-dev
  iproute2 iptables nftables curl python3 python3-socks ncat procps util-linux kmod
  qemu-system-x86 busybox-static xz-utils zstd
  podman runc conmon containernetworking-plugins libcurl4-openssl-dev openssl python3-yaml
  containerd python3-grpcio python3-protobuf protobuf-compiler python3-prometheus-client
  bind9-dnsutils dnsmasq-base dnsperf
)

if [[ $(id -u) -ne 0 ]]; then
  echo "setup.sh: must run as root (it installs Debian packages)" >&2
  exit 1
fi

missing=()
for pkg in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done

if ((${#missing[@]})); then
  echo "setup.sh: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "setup.sh: all dependencies present"
fi
