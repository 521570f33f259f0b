#!/usr/bin/env python3
"""Measures shunt against direct connections and the proxies users would
pick instead, all set up at once in throwaway namespaces, and runs the
measurements interleaved (each repetition goes through every path before
the next starts), so that the machine's noise hits every path alike.

One client namespace per path, each joined by its own veth to one server
namespace running `shunt-bench server`. Writes JSON (--out) and prints a
summary; bench/report.py turns the JSON into docs/benchmarks.md.
"""
import argparse
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "vmtests", "lib"))
from shunt_env import cgroup2_root, run, wait_for  # noqa: E402

ECHO, SINK, HOLD = 9000, 9001, 9002
TAG = f"bench{os.getpid() % 100000}"

# name, client namespace, how the client reaches the server, what is set up.
PATHS = [
    ("direct", "d", None),
    ("shunt-ebpf", "e", None),
    ("shunt-tproxy", "t", None),
    ("shunt-redirect", "r", None),
    ("haproxy", "h", None),
    ("shunt-socks5", "x", "socks5://127.0.0.1:1080"),
    ("microsocks", "x", "socks5://127.0.0.1:1081"),
    ("dante", "x", "socks5://127.0.0.1:1082"),
    ("shunt-http-connect", "x", "connect://127.0.0.1:3128"),
    ("tinyproxy", "x", "connect://127.0.0.1:8888"),
    # Last in every round: its bulk runs can push the whole machine's TCP
    # memory into pressure (no backpressure), which must not touch the
    # figures of the paths measured after it.
    ("shunt-ebpf-skmsg", "k", None),
]
UNAVAILABLE = {}
# The ebpf paths: their agents attach at sibling cgroups that their proxies
# and clients join (a child cgroup would inherit the other's programs).
EBPF_PATHS = {"shunt-ebpf": [], "shunt-ebpf-skmsg": ["--sk-msg", "on"]}


class TcpMemorySampler:
    """The machine's TCP memory (/proc/net/sockstat, pages, all namespaces)
    at its peak while a measurement runs: how much data sits in socket
    queues. The sk_msg fast path has no backpressure, and this shows it."""

    def __enter__(self):
        self.peak_pages = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.sample, daemon=True)
        self.thread.start()
        return self

    def sample(self):
        while not self.stop.wait(0.05):
            with open("/proc/net/sockstat") as f:
                for line in f:
                    if line.startswith("TCP:"):
                        fields = line.split()
                        pages = int(fields[fields.index("mem") + 1])
                        self.peak_pages = max(self.peak_pages, pages)

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()
        self.peak_mib = self.peak_pages * os.sysconf("SC_PAGE_SIZE") / (1 << 20)


class Bench:
    def __init__(self, bin_dir, quick, proxy_args=()):
        self.bin = bin_dir
        self.proxy_args = list(proxy_args)
        self.quick = quick
        self.tmp = tempfile.mkdtemp(prefix=f"shunt-{TAG}-")
        self.cgroup = os.path.join(cgroup2_root(), f"shunt-{TAG}")
        self.bpffs = f"/sys/fs/bpf/shunt-{TAG}"
        self.cgroups = {p: f"{self.cgroup}-{p}" for p in EBPF_PATHS}
        self.bpffs_of = {p: f"{self.bpffs}-{p}" for p in EBPF_PATHS}
        self.procs = {}
        self.namespaces = []
        self.subnet = {}
        self.pid_of = {}  # path name -> proxy pid (CPU and memory)

    # ---- set-up ---------------------------------------------------------
    def ns(self, short):
        return f"shunt-{TAG}-{short}"

    def spawn(self, name, cmd, in_cgroup=None, env=None):
        """in_cgroup: the ebpf path whose cgroup the process joins."""
        procs = os.path.join(self.cgroups.get(in_cgroup, ""), "cgroup.procs")

        def enter():
            if in_cgroup:
                with open(procs, "w") as f:
                    f.write(str(os.getpid()))

        log = open(os.path.join(self.tmp, f"{name}.log"), "w")
        p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, preexec_fn=enter,
                             env=dict(os.environ, **(env or {})))
        log.close()
        self.procs[name] = p
        return p

    def in_ns(self, short, cmd):
        return ["ip", "netns", "exec", self.ns(short), *cmd]

    def log(self, name):
        with open(os.path.join(self.tmp, f"{name}.log")) as f:
            return f.read()

    def network(self):
        for cgroup in self.cgroups.values():
            os.makedirs(cgroup)
        run(["ip", "netns", "add", self.ns("srv")])
        self.namespaces.append(self.ns("srv"))
        run(["ip", "-n", self.ns("srv"), "link", "set", "lo", "up"])
        clients = sorted({c for _, c, _ in PATHS if c})
        for i, c in enumerate(clients, start=1):
            run(["ip", "netns", "add", self.ns(c)])
            self.namespaces.append(self.ns(c))
            run(["ip", "-n", self.ns(c), "link", "set", "lo", "up"])
            a, b = f"b{TAG}{c}a"[-15:], f"b{TAG}{c}b"[-15:]
            run(["ip", "link", "add", a, "netns", self.ns(c), "type", "veth", "peer", "name", b,
                 "netns", self.ns("srv")])
            run(["ip", "-n", self.ns(c), "addr", "add", f"10.202.{i}.1/24", "dev", a])
            run(["ip", "-n", self.ns("srv"), "addr", "add", f"10.202.{i}.2/24", "dev", b])
            run(["ip", "-n", self.ns(c), "link", "set", a, "up"])
            run(["ip", "-n", self.ns("srv"), "link", "set", b, "up"])
            self.subnet[c] = i
        self.spawn("server", self.in_ns("srv", [f"{self.bin}/shunt-bench", "server"]))
        wait_for(lambda: '"ready"' in self.log("server"), what="bench server")

    def shunt_proxy(self, name, short, args, in_cgroup=None):
        threads = [] if "--threads" in self.proxy_args else ["--threads", "2"]
        p = self.spawn(name, self.in_ns(short, [
            f"{self.bin}/shunt-proxy", "--access-log", "off", *threads,
            "--max-connections", "9950", "--max-connections-per-upstream", "9950",
            "--log-level", "warn", "--admin-port", "0", *self.proxy_args, *args]),
            in_cgroup=in_cgroup)
        time.sleep(0.3)
        if p.poll() is not None:
            raise RuntimeError(f"{name}: {self.log(name)}")
        return p.pid

    def agent(self, name, args):
        sock = os.path.join(self.tmp, f"{name}.sock")
        self.spawn(name, [f"{self.bin}/shunt-agent", "run", "--socket", sock, "--state-dir",
                          os.path.join(self.tmp, f"{name}.state"), "--log-level", "warn", *args])
        wait_for(lambda: run([f"{self.bin}/shunt-agent", "status", "--socket", sock],
                             check=False).returncode == 0, what=name)
        return sock

    def enroll(self, sock, short):
        run([f"{self.bin}/shunt-agent", "enroll", "--socket", sock, "--netns",
             f"/run/netns/{self.ns(short)}"])

    def proxies(self):
        # shunt in each capture mode: the proxy in the client namespace.
        for name, short in (("shunt-ebpf", "e"), ("shunt-ebpf-skmsg", "k")):
            sock = self.agent(f"agent-{name}", ["--mode", "ebpf", "--cgroup", self.cgroups[name],
                                                "--bpffs", self.bpffs_of[name],
                                                *EBPF_PATHS[name]])
            self.pid_of[name] = self.shunt_proxy(f"proxy-{name}", short, [], in_cgroup=name)
            self.enroll(sock, short)
        for mode, short in (("tproxy", "t"), ("redirect", "r")):
            sock = self.agent(f"agent-{mode}", ["--mode", mode])
            self.pid_of[f"shunt-{mode}"] = self.shunt_proxy(f"proxy-{mode}", short, [])
            self.enroll(sock, short)
        # HAProxy in the same transparent position: nat REDIRECT to its
        # listener, the original destination from SO_ORIGINAL_DST.
        cfg = os.path.join(self.tmp, "haproxy.cfg")
        with open(cfg, "w") as f:
            f.write("global\n  maxconn 9950\n  nbthread 2\n  uid 65534\n  gid 65534\n"
                    "defaults\n  mode tcp\n  timeout connect 5s\n  timeout client 1h\n"
                    "  timeout server 1h\n"
                    "listen transparent\n  bind 127.0.0.1:15101\n  server original 0.0.0.0\n")
        p = self.spawn("haproxy", self.in_ns("h", ["haproxy", "-db", "-f", cfg]))
        self.pid_of["haproxy"] = p.pid
        run(self.in_ns("h", ["nft", "-f", "-"]), input=(
            "table inet bench {\n  chain output {\n"
            "    type nat hook output priority -100; policy accept;\n"
            "    meta skuid 65534 return\n    ip daddr 127.0.0.0/8 return\n"
            "    meta l4proto tcp redirect to :15101\n  }\n}\n"))
        # The explicit proxies side by side in one namespace.
        self.pid_of["shunt-socks5"] = self.shunt_proxy(
            "proxy-socks5", "x", ["--transparent", "false", "--proxy-type", "forward",
                                  "--proxy-protocol", "socks", "--proxy-out-port", "1080",
                                  "--forward-addresses", "127.0.0.1"])
        self.pid_of["shunt-http-connect"] = self.shunt_proxy(
            "proxy-http", "x", ["--transparent", "false", "--proxy-type", "forward",
                                "--proxy-protocol", "http", "--proxy-out-port", "3128",
                                "--forward-addresses", "127.0.0.1"])
        self.pid_of["microsocks"] = self.spawn(
            "microsocks", self.in_ns("x", ["microsocks", "-i", "127.0.0.1", "-p", "1081"])).pid
        veth = [l.split(":")[1].strip().split("@")[0] for l in
                run(["ip", "-n", self.ns("x"), "-o", "link"]).stdout.splitlines()
                if "veth" in l or f"b{TAG}" in l][0]
        dante = os.path.join(self.tmp, "danted.conf")
        with open(dante, "w") as f:
            f.write(f"logoutput: /dev/null\ninternal: 127.0.0.1 port = 1082\nexternal: {veth}\n"
                    "clientmethod: none\nsocksmethod: none\nuser.privileged: root\n"
                    "user.unprivileged: nobody\n"
                    "client pass {\n  from: 0.0.0.0/0 to: 0.0.0.0/0\n}\n"
                    "socks pass {\n  from: 0.0.0.0/0 to: 0.0.0.0/0\n}\n")
        self.pid_of["dante"] = self.spawn(
            "dante", self.in_ns("x", ["danted", "-f", dante, "-N", "2"])).pid
        tiny = os.path.join(self.tmp, "tinyproxy.conf")
        with open(tiny, "w") as f:
            f.write("Port 8888\nListen 127.0.0.1\nTimeout 600\nMaxClients 9950\n"
                    "Allow 127.0.0.1\nConnectPort 9000\nConnectPort 9001\nConnectPort 9002\n"
                    "LogLevel Critical\n")
        self.pid_of["tinyproxy"] = self.spawn(
            "tinyproxy", self.in_ns("x", ["tinyproxy", "-d", "-c", tiny])).pid
        time.sleep(1)
        for name, p in self.procs.items():
            if p.poll() is not None:
                raise RuntimeError(f"{name} exited: {self.log(name)[-2000:]}")

    # ---- measuring ------------------------------------------------------
    def client_command(self, path, mode, *args):
        """shunt-bench in the path's client namespace, and what to run before
        it (the ebpf path's clients must be under the attach cgroup)."""
        name, short, proxy = path
        host = f"10.202.{self.subnet[short]}.2"
        cmd = self.in_ns(short, [f"{self.bin}/shunt-bench", mode, "--host", host, *args])
        if proxy:
            cmd += ["--proxy", proxy]
        procs = os.path.join(self.cgroups.get(name, ""), "cgroup.procs")

        def enter():
            if name in self.cgroups:
                with open(procs, "w") as f:
                    f.write(str(os.getpid()))

        return cmd, enter

    def client(self, path, mode, *args, timeout=40):
        cmd, enter = self.client_command(path, mode, *args)
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                               preexec_fn=enter)
        except subprocess.TimeoutExpired:
            # A proxy that stalls (microsocks with 64 KiB echoes) is a result,
            # not a reason to lose the run.
            return {"error": f"no answer within {timeout} s"}
        if r.returncode != 0:
            return {"error": r.stderr.strip()[-300:]}
        return json.loads(r.stdout.strip().splitlines()[-1])

    def cpu_seconds(self, pid):
        """utime + stime of the proxy and every process under it (dante and
        tinyproxy work in child processes)."""
        total = 0.0
        for p in [pid] + self.children(pid):
            try:
                with open(f"/proc/{p}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                total += sum(int(x) for x in fields[11:13]) / os.sysconf("SC_CLK_TCK")
            except FileNotFoundError:
                pass
        return total

    def rss_kib(self, pid):
        total = 0
        for p in [pid] + self.children(pid):
            try:
                with open(f"/proc/{p}/status") as f:
                    for line in f:
                        if line.startswith("VmRSS:"):
                            total += int(line.split()[1])
            except FileNotFoundError:
                pass
        return total

    def children(self, pid):
        r = run(["pgrep", "-P", str(pid)], check=False)
        kids = [int(x) for x in r.stdout.split()]
        return kids + [g for k in kids for g in self.children(k)]

    def measure(self, path, metric):
        secs = "1" if self.quick else "5"
        pid = self.pid_of.get(path[0])
        if metric in ("bulk1", "bulk4"):
            before = self.cpu_seconds(pid) if pid else None
            with TcpMemorySampler() as tcp_memory:
                r = self.client(path, "bulk", "--port", str(SINK), "--streams", metric[-1],
                                "--seconds", secs)
            r["tcp_mem_peak_mib"] = tcp_memory.peak_mib
            if pid and r.get("bytes"):
                used = self.cpu_seconds(pid) - before
                r["cpu_s_per_gb"] = used / (r["bytes"] / 1e9)
            return r
        if metric.startswith("rr"):
            size = {"rr64": 64, "rr1k": 1024, "rr64k": 65536}[metric]
            rate = {"rr64": 2000, "rr1k": 2000, "rr64k": 500}[metric]
            return self.client(path, "rr", "--port", str(ECHO), "--size", str(size),
                               "--rate", str(rate), "--seconds", secs)
        if metric == "connect":
            return self.client(path, "connect", "--port", str(ECHO), "--seconds", secs,
                               "--threads", "2")
        raise ValueError(metric)

    def idle_memory(self, path, count):
        name = path[0]
        pid = self.pid_of.get(name)
        if not pid:
            return None
        ready = os.path.join(self.tmp, f"idle-{name}.ready")
        cmd, enter = self.client_command(path, "idle", "--port", str(HOLD), "--count",
                                         str(count), "--ready", ready)
        time.sleep(0.5)
        before = self.rss_kib(pid)
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                             preexec_fn=enter)
        try:
            try:
                wait_for(lambda: os.path.exists(ready) or p.poll() is not None, timeout=90,
                         what=f"{count} idle connections via {name}")
            except TimeoutError:
                return {"error": f"{count} connections not open within 90 s"}
            if not os.path.exists(ready):
                return {"error": p.stderr.read()[-300:]}
            time.sleep(1)
            after = self.rss_kib(pid)
        finally:
            p.send_signal(signal.SIGTERM)
            p.wait(timeout=60)
        time.sleep(1)
        return {"connections": count, "rss_before_kib": before, "rss_after_kib": after,
                "kib_per_connection": (after - before) / count}

    # ---- tear-down ------------------------------------------------------
    def close(self):
        for p in self.procs.values():
            if p.poll() is None:
                p.terminate()
        for p in self.procs.values():
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        for name in EBPF_PATHS:
            run([f"{self.bin}/shunt-agent", "uninstall", "--cgroup", self.cgroups[name],
                 "--bpffs", self.bpffs_of[name], "--state-dir",
                 os.path.join(self.tmp, f"agent-{name}.state")], check=False)
        for mode in ("tproxy", "redirect"):
            # --cgroup: never let uninstall default to the machine's root cgroup.
            run([f"{self.bin}/shunt-agent", "uninstall", "--cgroup", self.cgroups["shunt-ebpf"],
                 "--bpffs", self.bpffs, "--state-dir",
                 os.path.join(self.tmp, f"agent-{mode}.state")], check=False)
        for n in self.namespaces:
            run(["ip", "netns", "del", n], check=False)
        for cgroup in self.cgroups.values():
            if not os.path.isdir(cgroup):
                continue
            for _ in range(50):
                with open(os.path.join(cgroup, "cgroup.procs")) as f:
                    pids = f.read().split()
                if not pids:
                    break
                for pid in pids:
                    try:
                        os.kill(int(pid), signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                time.sleep(0.1)
            os.rmdir(cgroup)
        shutil.rmtree(self.tmp, ignore_errors=True)


def summarize(values):
    nums = [v for v in values if v is not None]
    if not nums:
        return None
    return {"median": statistics.median(nums), "min": min(nums), "max": max(nums), "values": nums}


FIELDS = {"bulk1": "gbit_per_s", "bulk4": "gbit_per_s", "rr64": "p50_us", "rr1k": "p50_us",
          "rr64k": "p50_us", "connect": "per_second"}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "bin"))
    ap.add_argument("--quick", action="store_true", help="short run (under two minutes)")
    ap.add_argument("--repetitions", type=int, default=None)
    ap.add_argument("--idle-connections", type=int, default=None)
    ap.add_argument("--paths", default=None, help="comma-separated subset of paths")
    ap.add_argument("--proxy-args", default="",
                    help="extra shunt-proxy flags for every shunt path (relay experiments)")
    ap.add_argument("--metrics", default=None,
                    help="comma-separated subset of bulk1,bulk4,rr64,rr1k,rr64k,connect,idle")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "latest.json"))
    args = ap.parse_args()
    reps = args.repetitions or (1 if args.quick else 3)
    # 10,000 would need more than 20,000 descriptors in the proxy (two per
    # connection), and this machine's hard limit is 20,000 without
    # CAP_SYS_RESOURCE to raise it.
    idle = args.idle_connections or (500 if args.quick else 9000)
    metrics = ["bulk1", "bulk4", "rr64", "connect"] if args.quick else \
        ["bulk1", "bulk4", "rr64", "rr1k", "rr64k", "connect"]
    only = set(args.metrics.split(",")) if args.metrics else None
    if only is not None:
        metrics = [m for m in ["bulk1", "bulk4", "rr64", "rr1k", "rr64k", "connect"] if m in only]
    wanted = set(args.paths.split(",")) if args.paths else None
    paths = [p for p in PATHS if p[1] and (wanted is None or p[0] in wanted or p[0] == "direct")]

    bench = Bench(args.bin, args.quick, args.proxy_args.split())
    raw = {p[0]: {m: [] for m in metrics} for p in paths}
    extra = {p[0]: {"cpu_s_per_gb": [], "p99_us": {}, "p999_us": {}, "errors": [],
                    "tcp_mem_peak_mib": []} for p in paths}
    memory = {}
    started = time.time()
    try:
        bench.network()
        bench.proxies()
        for rep in range(reps):
            for m in metrics:
                for p in paths:  # interleaved: every path once, then again
                    r = bench.measure(p, m)
                    name = p[0]
                    if "tcp_mem_peak_mib" in r:
                        extra[name]["tcp_mem_peak_mib"].append(r["tcp_mem_peak_mib"])
                    if "error" in r:
                        extra[name]["errors"].append(f"{m}: {r['error']}")
                        raw[name][m].append(None)
                        continue
                    raw[name][m].append(r[FIELDS[m]])
                    if m == "bulk4" and r.get("cpu_s_per_gb") is not None:
                        extra[name]["cpu_s_per_gb"].append(r["cpu_s_per_gb"])
                    if m.startswith("rr"):
                        extra[name]["p99_us"].setdefault(m, []).append(r["p99_us"])
                        extra[name]["p999_us"].setdefault(m, []).append(r["p999_us"])
                    print(f"rep {rep + 1}/{reps} {m:8} {name:20} {r[FIELDS[m]]:.3f}", flush=True)
        for p in paths:
            if p[0] != "direct" and (only is None or "idle" in only):
                memory[p[0]] = bench.idle_memory(p, idle)
                print(f"idle {p[0]:20} {memory[p[0]]}", flush=True)
    finally:
        bench.close()
        write_results(args, paths, metrics, raw, extra, memory, reps, idle, started)


def write_results(args, paths, metrics, raw, extra, memory, reps, idle, started):

    result = {
        "kernel": platform.release(),
        "cpus": os.cpu_count(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "quick": args.quick,
        "repetitions": reps,
        "idle_connections": idle,
        "seconds": round(time.time() - started, 1),
        "command": "scripts/bench.sh" + (" --quick" if args.quick else ""),
        "commit": subprocess.run(["git", "-C", ROOT, "describe", "--always", "--dirty"],
                                 capture_output=True, text=True).stdout.strip(),
        "unavailable": UNAVAILABLE,
        "paths": {},
    }
    for p in paths:
        name = p[0]
        entry = {m: summarize(raw[name][m]) for m in metrics}
        entry["cpu_s_per_gb"] = summarize(extra[name]["cpu_s_per_gb"])
        entry["p99_us"] = {m: summarize(v) for m, v in extra[name]["p99_us"].items()}
        entry["p999_us"] = {m: summarize(v) for m, v in extra[name]["p999_us"].items()}
        entry["idle_memory"] = memory.get(name)
        entry["errors"] = extra[name]["errors"]
        entry["tcp_mem_peak_mib"] = summarize(extra[name]["tcp_mem_peak_mib"])
        mem = memory.get(name)
        if mem and "error" in mem:
            entry["errors"].append(f"idle: {mem['error']}")
            entry["idle_memory"] = None
        result["paths"][name] = entry
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
    print(f"wrote {args.out} in {result['seconds']} s")


if __name__ == "__main__":
    main()
