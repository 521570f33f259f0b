#!/usr/bin/env python3
"""What observing shunt costs (issue 21; docs/benchmarks.md, "Observing"):
new connections per second through an enrolled namespace in the ebpf mode
with no trace running and with `shunt-agent trace` reading every decision,
alternated in one run; then the time `shunt-agent connections` and the
metrics page take with 10,000 connections open through the pod's proxy.
Runs in throwaway namespaces (vmtests/lib's Topology). Prints figures;
asserts nothing. Needs root and a build (--bin).

  bench/observe_bench.py [--bin build/bin] [--seconds 3] [--repetitions 3] [--idle 10000]
"""
import argparse
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "bin"))
    ap.add_argument("--seconds", type=float, default=3)
    ap.add_argument("--repetitions", type=int, default=3)
    ap.add_argument("--idle", type=int, default=10000)
    args = ap.parse_args()
    os.environ["SHUNT_BIN"] = os.path.abspath(args.bin)
    os.environ.setdefault("SHUNT_TEST_MODE", "ebpf")
    sys.path.insert(0, os.path.join(ROOT, "vmtests", "lib"))
    from shunt_env import Topology, wait_for  # noqa: E402 - needs SHUNT_BIN first

    # The proxy holds two descriptors per connection: as many as the hard
    # limit allows (a machine whose hard limit is 20,000 holds 9,900).
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard != resource.RLIM_INFINITY and args.idle * 2 + 200 > hard:
        args.idle = (hard - 200) // 2
        print(f"(the descriptor limit {hard} allows {args.idle} idle connections)")
    port = free_port()
    t = Topology("obench", with_other=True, agent_args=["--metrics-address", f"127.0.0.1:{port}"],
                 proxy_args=["--max-connections", str(args.idle * 2)])
    bench = os.path.join(args.bin, "shunt-bench")
    agent = os.path.join(args.bin, "shunt-agent")
    try:
        t.start()
        # Thousands of connections a second: reuse TIME_WAIT ports (in the
        # run's own namespaces), or the later runs measure port exhaustion.
        for role in ("pod", "srv"):
            subprocess.run(["ip", "netns", "exec", t.ns[role], "sysctl", "-qw",
                            "net.ipv4.tcp_tw_reuse=1"], check=True)
        t.spawn("bench-server", ["ip", "netns", "exec", t.ns["srv"], bench, "server"])
        time.sleep(1)

        def rate():
            r = t.in_ns("pod", [bench, "connect", "--host", "10.201.0.2", "--seconds",
                                str(args.seconds), "--threads", "2"], timeout=120)
            try:
                return float(json.loads(r.stdout.strip().splitlines()[-1])["per_second"])
            except (ValueError, IndexError, KeyError):
                print(f"shunt-bench connect: {r.stdout} {r.stderr}", file=sys.stderr)
                return float("nan")

        t.enroll("oth")  # a namespace to trace that makes no connections

        def traced(*trace_args):
            tracer = subprocess.Popen([agent, "trace", "--socket", t.socket, "--json", "--rate",
                                       "100000000", *trace_args], stdout=subprocess.DEVNULL,
                                      stderr=subprocess.PIPE, text=True)
            time.sleep(1)
            figure = rate()
            tracer.terminate()
            _, err = tracer.communicate(timeout=30)
            return figure, err.strip().splitlines()[-1] if err.strip() else "-"

        off, other, on = [], [], []
        for _ in range(args.repetitions):
            off.append(rate())
            other.append(traced("--netns", f"/run/netns/{t.ns['oth']}")[0])
            figure, said = traced()
            on.append(figure)
        base = statistics.median(off)
        for name, figures in (("no trace running", off),
                              ("trace of another namespace", other),
                              ("trace reading every decision", on)):
            print(f"connects/s, {name + ':':32} {statistics.median(figures):8.0f} "
                  f"({statistics.median(figures) / base:.3f} of no trace)  "
                  f"{[round(f) for f in figures]}")
        print(f"  the last full trace said: {said}")

        ready = os.path.join(t.tmp, "idle.ready")
        t.spawn("idle", ["ip", "netns", "exec", t.ns["pod"], bench, "idle", "--host",
                         "10.201.0.2", "--port", "9002", "--count", str(args.idle),
                         "--ready", ready], in_cgroup=True)
        wait_for(lambda: os.path.exists(ready), timeout=300, what="idle connections")
        listing = []
        for _ in range(args.repetitions):
            started = time.monotonic()
            r = subprocess.run([agent, "connections", "--socket", t.socket, "--json"],
                               capture_output=True, text=True, timeout=60)
            listing.append(time.monotonic() - started)
            listed = sum(len(ns.get("connections", [])) for ns in json.loads(r.stdout)["namespaces"])
        print(f"`connections` with {listed} open:  median {statistics.median(listing):.3f} s "
              f"{[round(x, 3) for x in listing]}")
        pages = []
        for _ in range(args.repetitions):
            started = time.monotonic()
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=60) as page:
                size = len(page.read())
            pages.append(time.monotonic() - started)
        print(f"metrics page ({size} bytes):        median {statistics.median(pages):.3f} s")
    finally:
        t.close()


if __name__ == "__main__":
    main()
