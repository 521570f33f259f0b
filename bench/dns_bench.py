#!/usr/bin/env python3
"""The proxy's DNS listener against dnsmasq as a caching forwarder and
against the resolver asked directly (issue 20; docs/benchmarks.md, "DNS").
Everything runs in one network namespace made for the run, on loopback:
the test zone's server (vmtests/tools/dns_server.py, Python: slow, as a
real resolver is slower than a cache) on 127.0.0.53, shunt-proxy's DNS
listener (access log off, as dnsmasq logs nothing) and dnsmasq, both
forwarding to it. For each: queries per second (dnsperf, 8 clients, 5 s)
and p50/p99 latency of 2,000 queries one after another, for cache hits
(the same name) and misses (a new name each time: NXDOMAIN from the
server). Prints figures; asserts nothing. Needs root, dnsperf and dnsmasq
(scripts/setup.sh installs them).

  bench/dns_bench.py [--bin build/bin] [--seconds 5]
"""
import argparse
import os
import re
import signal
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
UPSTREAM = "127.0.0.53"


def query(name, qid):
    q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.split("."):
        q += bytes([len(label)]) + label.encode()
    return q + b"\0" + struct.pack(">HH", 1, 1)


def in_ns(ns, cmd, **kw):
    return subprocess.Popen(["ip", "netns", "exec", ns, *cmd], **kw)


def latencies(ns, address, port, names):
    """p50 and p99 in microseconds of one query after another."""
    code = f"""
import socket, struct, time
names = {names!r}
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)
out = []
for i, name in enumerate(names):
    q = struct.pack(">HHHHHH", i & 0xffff, 0x0100, 1, 0, 0, 0)
    for label in name.split("."):
        q += bytes([len(label)]) + label.encode()
    q += b"\\0" + struct.pack(">HH", 1, 1)
    t = time.perf_counter()
    s.sendto(q, ("{address}", {port}))
    try:
        s.recv(4096)
    except OSError:
        if not out and i > 20:
            break
        continue
    out.append((time.perf_counter() - t) * 1e6)
out.sort()
print(out[len(out) // 2], out[int(len(out) * 0.99) - 1], len(out))
"""
    r = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", code],
                       capture_output=True, text=True, check=True)
    p50, p99, n = r.stdout.split()
    return float(p50), float(p99), int(n)


def throughput(ns, address, port, file, seconds):
    r = subprocess.run(["ip", "netns", "exec", ns, "dnsperf", "-s", address, "-p", str(port),
                        "-d", file, "-l", str(seconds), "-c", "8", "-q", "200"],
                       capture_output=True, text=True)
    m = re.search(r"Queries per second:\s+([\d.]+)", r.stdout)
    lost = re.search(r"Queries lost:\s+(\d+)", r.stdout)
    return (float(m.group(1)) if m else 0.0), (int(lost.group(1)) if lost else -1)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "bin"))
    ap.add_argument("--seconds", type=int, default=5)
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    ns = f"shunt-t-dnsbench-{os.getpid()}"
    tmp = tempfile.mkdtemp(prefix="shunt-dnsbench-")
    procs = []
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
        procs.append(in_ns(ns, [sys.executable, os.path.join(ROOT, "vmtests", "tools",
                                                             "dns_server.py"),
                                "--address", UPSTREAM, "--a", "10.0.0.1",
                                "--log", os.devnull, "--ready", f"{tmp}/up"]))
        procs.append(in_ns(ns, [os.path.join(args.bin, "shunt-proxy"), "--outbound-port", "25001",
                                "--admin-port", "0", "--access-log", "off", "--dns", "true",
                                "--dns-upstreams", UPSTREAM, "--log-level", "warn"]))
        procs.append(in_ns(ns, ["dnsmasq", "--keep-in-foreground", "--port=5300",
                                "--listen-address=127.0.0.1", "--bind-interfaces",
                                "--no-resolv", "--no-hosts", f"--server={UPSTREAM}",
                                "--cache-size=10000", "--user=root",
                                f"--pid-file={tmp}/dnsmasq.pid"],
                           stderr=subprocess.DEVNULL))
        deadline = time.time() + 10
        while not os.path.exists(f"{tmp}/up") and time.time() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)
        hits = f"{tmp}/hits.txt"
        with open(hits, "w") as f:
            f.write("srv.test A\n")
        misses = f"{tmp}/misses.txt"
        with open(misses, "w") as f:
            f.writelines(f"m{i}.test A\n" for i in range(200000))
        print(f"DNS over UDP on loopback, kernel {os.uname().release}, {os.cpu_count()} cores")
        targets = (("the resolver directly (no cache)", UPSTREAM, 53),
                   ("dnsmasq", "127.0.0.1", 5300), ("shunt-proxy", "127.0.0.1", 15053))
        for label, address, port in targets:
            hit = latencies(ns, address, port, ["srv.test"] * 2000)
            miss = latencies(ns, address, port, [f"l{port}-{i}.test" for i in range(2000)])
            qps_hit, lost_hit = throughput(ns, address, port, hits, args.seconds)
            qps_miss, lost_miss = throughput(ns, address, port, misses, args.seconds)
            print(f"  {label}: same name {qps_hit:,.0f} q/s (lost {lost_hit}), p50 {hit[0]:.0f} us,"
                  f" p99 {hit[1]:.0f} us; new names {qps_miss:,.0f} q/s (lost {lost_miss}),"
                  f" p50 {miss[0]:.0f} us, p99 {miss[1]:.0f} us", flush=True)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        subprocess.run(["rm", "-rf", tmp])


if __name__ == "__main__":
    main()
