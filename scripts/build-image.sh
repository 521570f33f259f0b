#!/usr/bin/env bash
# Builds shunt's node image locally with podman, no registry: stages a root
# tree (the release binaries, the firewall and iproute tools the fallback
# modes run, their shared libraries) and builds agent/deploy/Containerfile
# FROM scratch over it.
# Usage: scripts/build-image.sh [TAG]        (default localhost/shunt:dev)
# podman's own configuration is used unless CONTAINERS_CONF /
# CONTAINERS_STORAGE_CONF say otherwise (the tests point them elsewhere).
set -euo pipefail
cd "$(dirname "$0")/.."
tag=${1:-localhost/shunt:dev}
bin=${SHUNT_BIN:-build/bin}
for b in shunt-agent shunt-cni shunt-proxy; do
  if [[ ! -x $bin/$b ]]; then
    echo "build-image.sh: $bin/$b is missing (run scripts/build.sh release first)" >&2
    exit 1
  fi
done
stage=$(mktemp -d /tmp/shunt-image-XXXXXX)
trap 'rm -rf "$stage"' EXIT
root=$stage/rootfs
mkdir -p "$root"/{usr/local/bin,usr/sbin,usr/bin,etc/shunt,run,tmp,var/lib/cni,lib64}
chmod 1777 "$root/tmp"
ln -s ../run "$root/var/run"
ln -s usr/sbin "$root/sbin"
ln -s usr/bin "$root/bin"
# The binaries, stripped: debug information stays in the build tree.
for b in shunt-agent shunt-cni shunt-proxy; do
  strip -o "$root/usr/local/bin/$b" "$bin/$b"
done
# The tools the agent runs (docs/modes.md): every iptables/ip6tables name
# (symlinks to the two multi-call binaries), nft and ip.
tools=(/usr/sbin/nft /usr/bin/ip /usr/sbin/xtables-legacy-multi /usr/sbin/xtables-nft-multi)
cp -L /usr/sbin/nft /usr/sbin/xtables-legacy-multi /usr/sbin/xtables-nft-multi "$root/usr/sbin/"
cp -L "$(command -v ip)" "$root/usr/bin/ip"
for name in iptables ip6tables; do
  for flavour in legacy nft; do
    for suffix in "" -save -restore; do
      ln -sf "xtables-$flavour-multi" "$root/usr/sbin/$name-$flavour$suffix"
    done
  done
  for suffix in "" -save -restore; do ln -sf "$name-nft$suffix" "$root/usr/sbin/$name$suffix"; done
done
# iptables loads its match and target modules at run time.
xtables_dir=$(dirname "$(find /usr/lib -name libxt_mark.so -print -quit)")
mkdir -p "$root$xtables_dir"
cp "$xtables_dir"/*.so "$root$xtables_dir/"
# Every shared library any of them needs, at the same path.
for f in "$root"/usr/local/bin/* "${tools[@]}" "$xtables_dir"/*.so; do
  ldd "$f" 2>/dev/null | awk '/=> \// {print $3} /^\s*\/lib/ {print $1}'
done | sort -u | while read -r lib; do
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
done
cp -L /lib64/ld-linux-x86-64.so.2 "$root/lib64/"
cp agent/deploy/Containerfile "$stage/Containerfile"
echo "build-image.sh: $(du -sh "$root" | cut -f1) root tree; building $tag"
podman build --quiet -t "$tag" -f "$stage/Containerfile" "$stage"
echo "build-image.sh: built $tag"
