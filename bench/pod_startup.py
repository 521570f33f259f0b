#!/usr/bin/env python3
"""What a pod costs with shunt's per-pod proxy: the time shunt-cni ADD takes
(the agent starts the pod's proxy, waits for it to listen, enrolls the
namespace) and the memory each proxy holds, against ADD for a pod that is
not injected (the same path without a proxy). With --concurrent N, N ADDs
started at once instead, with the pods' starts one at a time (the agent's
pod-start-workers 0, how the agent worked before) and in parallel (the
default): the ADDs' p50 and p99. Prints figures; asserts nothing. Runs the
agent on namespaces it creates and removes (no traffic).

  bench/pod_startup.py [--pods 20] [--mode ebpf|tproxy] [--bin build/bin]
  bench/pod_startup.py --concurrent 50 [--mode ebpf|tproxy]
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "vmtests", "lib"))


def memory_kib(pid):
    """(RSS, PSS) of a process in KiB."""
    rss = pss = 0
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Rss:"):
                rss = int(line.split()[1])
            elif line.startswith("Pss:"):
                pss = int(line.split()[1])
    return rss, pss


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def concurrent(args, proc, start_agent, stop_agent, add, namespaces):
    """N ADDs at once, against an agent that starts pods one at a time and
    one that starts them in parallel."""
    from concurrent.futures import ThreadPoolExecutor
    print(f"mode {args.mode}, {args.concurrent} ADDs at once, kernel {os.uname().release}")
    current = proc
    try:
        for label, extra in (("one at a time (pod-start-workers 0)", ["--pod-start-workers", "0"]),
                             ("in parallel (pod-start-workers 4)", [])):
            stop_agent(current)
            current = start_agent(*extra)
            began = time.perf_counter()
            with ThreadPoolExecutor(max_workers=args.concurrent) as pool:
                times = list(pool.map(lambda i: add(f"{label[:3]}{i}", namespaces[i], True),
                                      range(args.concurrent)))
            wall = (time.perf_counter() - began) * 1000
            print(f"  {label}: ADD p50 {percentile(times, 50):.0f} ms, p99 "
                  f"{percentile(times, 99):.0f} ms, all {args.concurrent} enrolled in "
                  f"{wall:.0f} ms")
    finally:
        stop_agent(current)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pods", type=int, default=20)
    ap.add_argument("--concurrent", type=int, default=0,
                    help="start this many pods at once, serial against parallel starts")
    ap.add_argument("--mode", default="ebpf", choices=["ebpf", "tproxy"])
    ap.add_argument("--bin", default=os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "build", "bin"))
    args = ap.parse_args()
    os.environ["SHUNT_BIN"] = os.path.abspath(args.bin)
    from shunt_env import cgroup2_root
    agent = os.path.join(args.bin, "shunt-agent")
    tag = f"measure{os.getpid()}"
    tmp = tempfile.mkdtemp(prefix=f"shunt-{tag}-")
    cgroup = os.path.join(cgroup2_root(), f"shunt-{tag}")
    bpffs = f"/sys/fs/bpf/shunt-{tag}"
    sock = os.path.join(tmp, "agent.sock")
    state = os.path.join(tmp, "state")
    if args.concurrent:
        args.pods = args.concurrent
    namespaces = [f"shunt-{tag}-{i}" for i in range(args.pods * 2)]
    proc = None
    try:
        os.makedirs(cgroup)
        for ns in namespaces:
            subprocess.run(["ip", "netns", "add", ns], check=True)
            subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
        def start_agent(*extra):
            p = subprocess.Popen([agent, "run", "--mode", args.mode, "--cgroup", cgroup, "--bpffs",
                                  bpffs, "--socket", sock, "--state-dir", state, "--log-level",
                                  "warn", *extra],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for _ in range(200):
                if subprocess.run([agent, "ready", "--socket", sock],
                                  capture_output=True).returncode == 0:
                    break
                time.sleep(0.05)
            return p

        def stop_agent(p):
            subprocess.run([agent, "uninstall", "--cgroup", cgroup, "--bpffs", bpffs, "--socket",
                            sock, "--state-dir", state], capture_output=True)
            p.wait(timeout=10)

        proc = start_agent()
        conf = {"cniVersion": "1.0.0", "name": "measure", "type": "shunt-cni", "agentSocket": sock,
                "timeoutSeconds": 60,
                "prevResult": {"cniVersion": "1.0.0", "ips": []}}

        def add(i, ns, inject):
            env = {"CNI_COMMAND": "ADD", "CNI_CONTAINERID": f"{tag}-{i}", "CNI_NETNS": f"/run/netns/{ns}",
                   "CNI_IFNAME": "eth0", "CNI_PATH": args.bin, "PATH": os.environ["PATH"],
                   "CNI_ARGS": "" if inject else "SHUNT_INJECT=false"}
            start = time.perf_counter()
            r = subprocess.run([os.path.join(args.bin, "shunt-cni")], input=json.dumps(conf), env=env,
                               capture_output=True, text=True)
            elapsed = (time.perf_counter() - start) * 1000
            if r.returncode != 0:
                raise RuntimeError(r.stdout + r.stderr)
            return elapsed

        if args.concurrent:
            concurrent(args, proc, start_agent, stop_agent, add, namespaces)
            proc = None
            return
        plain = [add(i, namespaces[args.pods + i], False) for i in range(args.pods)]
        injected = [add(i, namespaces[i], True) for i in range(args.pods)]
        pods = json.loads(subprocess.run([agent, "pods", "--json", "--socket", sock],
                                         capture_output=True, text=True).stdout)["pods"]
        mem = [memory_kib(p["proxy_pid"]) for p in pods]
        agent_rss, agent_pss = memory_kib(proc.pid)
        print(f"mode {args.mode}, {args.pods} pods, kernel {os.uname().release}")
        print(f"ADD without a proxy (inject false): median {statistics.median(plain):.1f} ms, "
              f"max {max(plain):.1f} ms")
        print(f"ADD with the pod's proxy:            median {statistics.median(injected):.1f} ms, "
              f"max {max(injected):.1f} ms")
        print(f"  the proxy's share (difference of medians): "
              f"{statistics.median(injected) - statistics.median(plain):.1f} ms")
        print(f"per-pod proxy memory: RSS median {statistics.median(m[0] for m in mem) / 1024:.1f} MiB, "
              f"PSS median {statistics.median(m[1] for m in mem) / 1024:.1f} MiB "
              f"(PSS shares the binary's pages among the {len(mem)} proxies)")
        print(f"agent: RSS {agent_rss / 1024:.1f} MiB")
    finally:
        if proc:
            subprocess.run([agent, "uninstall", "--cgroup", cgroup, "--bpffs", bpffs, "--socket", sock,
                            "--state-dir", state], capture_output=True)
            proc.wait(timeout=10)
        for ns in namespaces:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        if os.path.isdir(cgroup):
            os.rmdir(cgroup)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
