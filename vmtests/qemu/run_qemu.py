#!/usr/bin/env python3
"""Runs shunt's scenario suite inside QEMU guests booted with Debian kernels:
one kernel (--kernel 6.1) or the whole matrix (--kernel all). The guest sees
the host's root read-only over 9p with a tmpfs overlay, so it runs this
tree's built binaries and tests with nothing copied; results and the guest's
console log come back through a second 9p share. Prints the kernel x mode
table at the end and writes it to OUT/matrix.json (and, with
--update-docs, to docs/vmtests.md).

Exit status: 0 when every scenario that ran passed, 1 otherwise."""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import initramfs  # noqa: E402
from kernels import KERNELS, ORDER, KernelCache  # noqa: E402

MODES = ["auto", "ebpf", "tproxy", "redirect"]
DEFAULT_SCENARIOS = ["redirect", "lifecycle", "failures", "policy", "inbound"]


def qemu_command(kernel, initrd, results, console, memory, cpus):
    append = "console=ttyS0 panic=-1 quiet loglevel=4 rdinit=/init"
    return ["qemu-system-x86_64", "-machine", "q35,accel=tcg", "-cpu", "max", "-m", str(memory),
            "-smp", str(cpus), "-display", "none", "-monitor", "none", "-no-reboot",
            "-nodefaults",
            "-kernel", kernel.boot_image(), "-initrd", initrd, "-append", append,
            "-serial", f"file:{console}",
            "-virtfs", "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,"
                       "multidevs=remap",
            "-virtfs", f"local,path={results},mount_tag=results,security_model=none",
            "-virtfs", f"local,path={kernel.root},mount_tag=kernel,security_model=none,"
                       "readonly=on"]


def guest_script(bin_dir, scale, test_timeout, inject="", tests=""):
    with open(os.path.join(HERE, "guest.sh.in")) as f:
        text = f.read()
    path = os.path.dirname(sys.executable) + ":/usr/local/sbin:/usr/local/bin:/usr/sbin:" \
                                             "/usr/bin:/sbin:/bin"
    for key, value in (("PATH", path), ("BIN", bin_dir), ("SCALE", str(scale)),
                       ("TEST_TIMEOUT", str(test_timeout)), ("REPO", REPO),
                       ("INJECT", inject), ("TESTS", tests)):
        text = text.replace(f"@{key}@", value)
    return text


def read(path, default=""):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return default


def run_kernel(cache, line, args):
    kernel = cache.fetch(line)
    initrd = os.path.join(cache.root, "kernels", line, "initramfs.gz")
    if not os.path.exists(initrd):
        initramfs.build(kernel, initrd)
    results = os.path.abspath(os.path.join(args.out, line))
    shutil.rmtree(results, ignore_errors=True)
    os.makedirs(results)
    with open(os.path.join(results, "guest.sh"), "w") as f:
        f.write(guest_script(os.path.abspath(args.bin), args.timeout_scale, args.test_timeout,
                             args.inject, args.tests))
    plan = [(s, m) for s in args.scenarios for m in args.modes]
    with open(os.path.join(results, "plan"), "w") as f:
        f.writelines(f"{s} {m}\n" for s, m in plan)
    console = os.path.join(results, "console.log")
    cmd = qemu_command(kernel, initrd, results, console, args.memory, args.cpus)
    print(f"== kernel {line} ({kernel.version}): booting, {len(plan)} scenario run(s)",
          flush=True)
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True)
    timed_out = False
    try:
        _, err = proc.communicate(timeout=args.guest_timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        os.killpg(proc.pid, signal.SIGKILL)
        _, err = proc.communicate()
    elapsed = time.monotonic() - start
    row = {"kernel": line, "version": kernel.version, "package": kernel.package,
           "seconds": round(elapsed), "timed_out": timed_out,
           "qemu_error": err.decode(errors="replace").strip()[-500:] if proc.returncode else "",
           "console": console, "results": results, "runs": []}
    probe = {}
    for mode in MODES:
        try:
            probe[mode] = json.loads(read(os.path.join(results, f"probe.{mode}.json"), "{}"))
        except ValueError:
            probe[mode] = {}
    row["auto_mode"] = probe["auto"].get("mode", "?")
    row["guest_error"] = read(os.path.join(results, "guest.error"))
    if not probe["auto"] and not row["guest_error"]:
        row["guest_error"] = "the guest did not run the probe: " + \
            " / ".join(read(console).splitlines()[-5:])
    row["passed_over"] = probe["auto"].get("passed_over", [])
    # Which exemption of the proxies' sockets auto would use (issue 17).
    row["exemption"] = probe["auto"].get("exemption", "")
    for scenario, mode in plan:
        name = f"{scenario}.{mode}"
        rc_text = read(os.path.join(results, f"{name}.rc"))
        resolved = read(os.path.join(results, f"{name}.mode"), "?")
        run = {"scenario": scenario, "mode": mode, "resolved": resolved}
        if not rc_text:
            run["result"] = "not run"
        elif rc_text.startswith("skip"):
            run["result"] = "not possible"
            run["why"] = probe.get(mode, {}).get("reason", "")
        else:
            rc, secs = rc_text.split()
            run["result"] = "pass" if rc == "0" else "FAIL"
            run["seconds"] = int(secs)
            if rc != "0":
                run["failures"] = failures(os.path.join(results, f"{name}.log"))
        row["runs"].append(run)
    row["leftovers"] = read(os.path.join(results, "leftovers.rc"), "?")
    return row


def failures(log):
    """The failing tests of a unittest log and the last line of each reason."""
    out = []
    text = read(log)
    blocks = text.split("=" * 70)
    for block in blocks[1:]:
        # "FAIL: name", a line of dashes, the traceback, and (after the last
        # block) another line of dashes and the summary.
        parts = block.strip().split("-" * 70)
        header = parts[0].strip()
        if not header.startswith(("FAIL:", "ERROR:")) or len(parts) < 2:
            continue
        trace = [l for l in parts[1].strip().splitlines() if l.strip()]
        out.append(f"{header} -- {(trace[-1] if trace else '').strip()[:300]}")
    if not out and text:
        out.append(text.strip().splitlines()[-1][:300])
    return out


def table(rows, modes):
    lines = ["| kernel | auto chose | " + " | ".join(modes) + " | time |",
             "|" + " --- |" * (len(modes) + 3)]
    for r in rows:
        cells = []
        for mode in modes:
            runs = [x for x in r["runs"] if x["mode"] == mode]
            if not runs:
                cells.append("—")
            elif r.get("guest_error"):
                cells.append("guest error")
            elif all(x["result"] == "not possible" for x in runs):
                cells.append("not possible: " + runs[0].get("why", "").replace("|", "/"))
            else:
                cells.append(", ".join(f"{x['scenario']} {x['result']}" for x in runs))
        status = " (timed out)" if r["timed_out"] else ""
        lines.append(f"| {r['kernel']} ({r['version']}) | {r['auto_mode']} | " +
                     " | ".join(cells) + f" | {r['seconds']} s{status} |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kernel", default="all",
                    help=f"kernel line ({', '.join(ORDER)}), a comma list, 'ci' "
                         "(oldest and newest) or 'all'")
    ap.add_argument("--modes", default="auto,ebpf,tproxy,redirect",
                    help="comma list of auto, ebpf, tproxy, redirect")
    ap.add_argument("--scenarios", default=",".join(DEFAULT_SCENARIOS),
                    help="scenario files (vmtests/scenarios/test_NAME.py) to run")
    ap.add_argument("--bin", default=os.path.join(REPO, "build", "bin"))
    ap.add_argument("--cache", default=os.environ.get(
        "SHUNT_VM_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "shunt-vmtests")))
    ap.add_argument("--out", default=os.path.join(REPO, "build", "vmtests"))
    ap.add_argument("--memory", type=int, default=2048, help="guest memory, MiB")
    ap.add_argument("--cpus", type=int, default=2)
    ap.add_argument("--guest-timeout", type=int, default=1500, help="seconds per guest")
    ap.add_argument("--test-timeout", type=int, default=900, help="seconds per scenario file")
    ap.add_argument("--timeout-scale", type=float, default=10,
                    help="multiplies the scenarios' waits (software emulation is slow)")
    ap.add_argument("--inject", default="", metavar="FAULT",
                    help="a deliberately broken build: SHUNT_FAULT_INJECT in the guest, for "
                         "example skip-attach:shunt_getsockopt")
    ap.add_argument("--tests", default="", metavar="PATTERN",
                    help="only the tests whose names contain PATTERN (unittest -k)")
    ap.add_argument("--update-docs", action="store_true",
                    help="write the table to docs/vmtests.md")
    ap.add_argument("--docs-section", default="matrix",
                    help="which table of docs/vmtests.md --update-docs replaces")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("run_qemu: must run as root (the guest suite loads BPF programs)", file=sys.stderr)
        return 2
    if args.kernel == "all":
        lines = ORDER
    elif args.kernel == "ci":
        lines = [ORDER[0], ORDER[-1]]
    else:
        lines = args.kernel.split(",")
    unknown = [l for l in lines if l not in KERNELS]
    if unknown:
        print(f"run_qemu: unknown kernel {', '.join(unknown)} (known: {', '.join(ORDER)})",
              file=sys.stderr)
        return 2
    args.modes = args.modes.split(",")
    bad = [m for m in args.modes if m not in MODES]
    if bad:
        print(f"run_qemu: unknown mode {', '.join(bad)}", file=sys.stderr)
        return 2
    args.scenarios = args.scenarios.split(",")
    for s in args.scenarios:
        if not os.path.exists(os.path.join(REPO, "vmtests", "scenarios", f"test_{s}.py")):
            print(f"run_qemu: no scenario file test_{s}.py", file=sys.stderr)
            return 2
    if not os.path.exists(os.path.join(args.bin, "shunt-agent")):
        print(f"run_qemu: no shunt-agent in {args.bin} (scripts/build.sh first)", file=sys.stderr)
        return 2
    cache = KernelCache(args.cache)
    rows = [run_kernel(cache, line, args) for line in lines]
    print()
    print(table(rows, args.modes))
    ok = True
    for r in rows:
        if r["guest_error"]:
            ok = False
            print(f"kernel {r['kernel']}: {r['guest_error']}; console log {r['console']}")
        if r["timed_out"] or r["qemu_error"]:
            ok = False
            print(f"kernel {r['kernel']}: guest " +
                  ("timed out" if r["timed_out"] else "failed: " + r["qemu_error"]) +
                  f"; console log {r['console']}")
        for run in r["runs"]:
            if run["result"] in ("FAIL", "not run") and not r["guest_error"]:
                ok = False
                print(f"kernel {r['kernel']}: {run['scenario']} in {run['mode']} "
                      f"({run['resolved']}): {run['result']}; log "
                      f"{os.path.join(r['results'], run['scenario'] + '.' + run['mode'] + '.log')}"
                      f", console log {r['console']}")
                for f in run.get("failures", []):
                    print(f"    {f}")
        if r["leftovers"] != "0" and not r["guest_error"]:
            ok = False
            print(f"kernel {r['kernel']}: something of shunt was left in the guest "
                  f"({os.path.join(r['results'], 'leftovers.log')})")
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "matrix.json"), "w") as f:
        json.dump(rows, f, indent=1)
    if args.update_docs:
        write_docs(rows, args)
    return 0 if ok else 1


def write_docs(rows, args):
    path = os.path.join(REPO, "docs", "vmtests.md")
    with open(path) as f:
        text = f.read()
    start, end = f"<!-- {args.docs_section}:start -->", f"<!-- {args.docs_section}:end -->"
    body = (f"{start}\nLast run: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
            f"scenarios {', '.join(args.scenarios)}, "
            f"`vmtests/qemu/run_qemu.py --kernel {args.kernel}`.\n\n" + table(rows, args.modes) +
            "\n\n" + "\n".join(f"- {r['kernel']}: auto passed over " +
                               "; ".join(f"{p['mode']} ({p['missing']})" for p in r["passed_over"])
                               for r in rows if r["passed_over"]) +
            "".join(f"\n- {r['kernel']}: the proxies' exemption with auto: {r['exemption']}"
                    for r in rows if r.get("exemption")) + f"\n{end}")
    if start in text:
        text = text[:text.index(start)] + body + text[text.index(end) + len(end):]
    else:
        text += "\n" + body + "\n"
    with open(path, "w") as f:
        f.write(text)


if __name__ == "__main__":
    sys.exit(main())
