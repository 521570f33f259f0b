#!/usr/bin/env python3
"""Fails when anything a shunt test or demo creates is still on the machine:
attached shunt programs anywhere under the cgroup2 mount, shunt links,
bpffs pins, test network namespaces, test cgroups, shunt processes, and
shunt's firewall rules or ip rules in the root network namespace, and
what the CRI scenarios' containerd leaves (cri_leftovers)."""
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from shunt_env import cgroup2_root  # noqa: E402


def bpftool(*args):
    r = subprocess.run(["bpftool", "-j", *args], capture_output=True, text=True)
    return json.loads(r.stdout) if r.returncode == 0 and r.stdout.strip() else []


def cri_leftovers():
    """What the CRI scenarios' containerd leaves when a run is cut short:
    its daemon and shims (their arguments name the node's folder), its root
    and state folders, mounts under them, the bpffs propagation it changed,
    and the DaemonSet's /run/shunt."""
    problems = []
    ps = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    for line in ps.splitlines()[1:]:
        pid, args = line.split(None, 1)
        if "shunt-cri-" in args and int(pid) != os.getpid():
            problems.append(f"process of a CRI test node ({pid}): {args[:100]}")
    tmp = tempfile.gettempdir()
    for name in os.listdir(tmp):
        if name.startswith("shunt-cri-"):
            problems.append(f"CRI test node folder {tmp}/{name}")
    with open("/proc/self/mountinfo") as f:
        for line in f:
            if "shunt-cri-" in line:
                problems.append(f"mount {line.split()[4]}")
    if os.path.exists("/run/shunt-test-bpffs-made-shared"):
        problems.append("/sys/fs/bpf was made shared by a CRI test and not made private again")
    for root, _, files in os.walk("/run/shunt"):
        problems += [f"file {os.path.join(root, f)}" for f in files]
    return problems


def main():
    problems = []
    root = cgroup2_root()
    for entry in bpftool("cgroup", "tree", root):
        for prog in entry.get("programs", []):
            if prog.get("name", "").startswith("shunt_"):
                problems.append(f"program {prog['name']} attached at {entry.get('cgroup')}")
    for link in bpftool("link", "show"):
        prog = link.get("prog_id")
        info = bpftool("prog", "show", "id", str(prog)) if prog else {}
        if isinstance(info, dict) and info.get("name", "").startswith("shunt_"):
            problems.append(f"link {link.get('id')} of {info['name']}")
    if os.path.isdir("/sys/fs/bpf"):
        for name in os.listdir("/sys/fs/bpf"):
            if name.startswith("shunt"):
                problems.append(f"bpffs pin /sys/fs/bpf/{name}")
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    for line in netns.splitlines():
        if line.startswith("shunt-"):
            problems.append(f"network namespace {line.split()[0]}")
    for name in os.listdir(root):
        if name.startswith("shunt-"):
            problems.append(f"cgroup {root}/{name}")
    # podman's cgroupfs manager creates a container's parent in every
    # cgroup v1 hierarchy too (the Kubernetes scenarios).
    with open("/proc/self/mountinfo") as f:
        v1 = [l.split()[4] for l in f if " - cgroup " in l]
    for mount in v1:
        for name in os.listdir(mount):
            if name.startswith("shunt-") and os.path.isdir(os.path.join(mount, name)):
                problems.append(f"cgroup {mount}/{name}")
    cache = "/var/lib/cni/results"
    for name in os.listdir(cache) if os.path.isdir(cache) else []:
        if name.startswith("shunt-"):
            problems.append(f"CNI cache entry {cache}/{name}")
    problems += cri_leftovers()
    # The machine's own namespace must never carry shunt's rules or routing.
    nft = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
    if "inet shunt" in nft:
        problems.append("nftables table inet shunt in the root namespace")
    for tool in ("iptables-legacy-save", "ip6tables-legacy-save", "iptables-nft-save",
                 "ip6tables-nft-save"):
        try:
            out = subprocess.run([tool], capture_output=True, text=True).stdout
        except FileNotFoundError:
            continue
        if "SHUNT_" in out:
            problems.append(f"{tool}: shunt chains in the root namespace")
    for family in ("-4", "-6"):
        rules = subprocess.run(["ip", family, "rule"], capture_output=True, text=True).stdout
        if "fwmark 0x1000/0x1000 lookup 15001" in rules:
            problems.append(f"ip {family} rule of shunt in the root namespace")
    ps = subprocess.run(["ps", "-eo", "pid,stat,comm"], capture_output=True, text=True).stdout
    for line in ps.splitlines()[1:]:
        pid, stat, comm = line.split(None, 2)
        # A zombie has ended; only its parent's reaping is left (a proxy
        # orphaned by a killed agent container waits for init's).
        if stat.startswith("Z"):
            continue
        if comm.startswith("shunt-") and int(pid) != os.getpid():
            problems.append(f"process {comm.strip()} ({pid})")
    # The QEMU runner's guests (their 9p share of the host root is tagged).
    ps = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    for line in ps.splitlines()[1:]:
        pid, args = line.split(None, 1)
        if "qemu-system" in args and "mount_tag=hostroot" in args:
            problems.append(f"QEMU guest of the vmtests runner ({pid})")
    if problems:
        print("left behind:\n  " + "\n  ".join(problems))
        return 1
    print("nothing of shunt is left on this machine")
    return 0


if __name__ == "__main__":
    sys.exit(main())
