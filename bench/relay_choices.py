#!/usr/bin/env python3
"""Measures the relay's design choices one against another: the largest
buffer size, splice(2) against copying, and the number of threads. Each
variant is one run_bench.py run of the shunt-ebpf path (with direct beside
it, so ratios compare across variants); results go to
bench/results/relay_choices.json, which report.py turns into the "Relay
choices" section of docs/benchmarks.md."""
import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

VARIANTS = [
    ("largest buffer 16 KiB", "--buffer-size 16384"),
    ("largest buffer 64 KiB", "--buffer-size 65536"),
    ("largest buffer 256 KiB (default)", ""),
    ("splice(2) through a pipe", "--splice true"),
    ("without TCP_NODELAY", "--tcp-nodelay false"),
    ("1 thread", "--threads 1"),
    ("2 threads (as in the main benchmark)", "--threads 2"),
    ("4 threads", "--threads 4"),
]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "bin"))
    ap.add_argument("--repetitions", type=int, default=2)
    ap.add_argument("--idle-connections", type=int, default=1000)
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "relay_choices.json"))
    ap.add_argument("--only", default=None,
                    help="measure only variants whose label contains this; the others keep "
                         "their figures from --out")
    args = ap.parse_args()
    previous = {}
    if args.only and os.path.exists(args.out):
        with open(args.out) as f:
            previous = {v["label"]: v for v in json.load(f)["variants"]}
    results = {"date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
               "repetitions": args.repetitions, "idle_connections": args.idle_connections,
               "command": "python3 bench/relay_choices.py", "variants": []}
    for label, proxy_args in VARIANTS:
        if args.only and args.only not in label:
            if label in previous:
                results["variants"].append(previous[label])
            continue
        out = f"/tmp/shunt-relay-choice-{os.getpid()}.json"
        cmd = [sys.executable, os.path.join(HERE, "run_bench.py"), "--bin", args.bin,
               "--paths", "shunt-ebpf", "--repetitions", str(args.repetitions),
               "--metrics", "bulk1,bulk4,rr64,connect,idle",
               "--idle-connections", str(args.idle_connections), "--proxy-args", proxy_args,
               "--out", out]
        print(f"== {label}", flush=True)
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        with open(out) as f:
            run = json.load(f)
        os.unlink(out)
        results["variants"].append({"label": label, "proxy_args": proxy_args,
                                    "paths": run["paths"]})
        shunt = run["paths"]["shunt-ebpf"]
        print({m: (shunt.get(m) or {}).get("median") for m in ("bulk1", "bulk4", "rr64",
                                                              "connect")}, flush=True)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(results, f, indent=1)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
