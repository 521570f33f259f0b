"""Throwaway topologies for shunt's scenario tests.

A Topology is two or three network namespaces joined by veth ("pod",
"srv", optionally "oth"), a cgroup v2 directory created for the test, a
bpffs directory, an agent attached at that cgroup and a proxy in the pod
namespace (sidecar placement). Nothing is attached at the machine's cgroup
root and no rule of the root network namespace is touched; close() removes
everything, and is registered as a cleanup before anything is created.
"""
import itertools
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

from processes import Processes, joining_cgroup, mode_args, world_readable

HERE = os.path.dirname(os.path.abspath(__file__))
TOOLS = os.path.join(os.path.dirname(HERE), "tools")
BIN = os.environ.get("SHUNT_BIN", os.path.join(os.path.dirname(os.path.dirname(HERE)), "build", "bin"))
AGENT = os.path.join(BIN, "shunt-agent")
PROXY = os.path.join(BIN, "shunt-proxy")
TEST_PREFIX = "shunt-t"
ECHO_PORT = 7000
_counter = itertools.count()

# The mode (and firewall backend) the mode-parameterised scenarios run in:
# "ebpf", "ebpf+sk-msg" (the sk_msg fast path on), or "tproxy/nft",
# "redirect/iptables-legacy", ... (ctest sets it).
TEST_MODE = os.environ.get("SHUNT_TEST_MODE", "ebpf")

# What differs for a user between modes (docs/modes.md); the scenarios
# assert the same things everywhere except these.
MODE_TRAITS = {
    # ebpf: per-namespace counters, pinned programs.
    "ebpf": {"counters": True, "pins": True, "established_survive_unenroll": True,
             "connect_sees_unroutable": False},
    # tproxy: the application's packets are routed through lo for the whole
    # connection, so removing the rules cuts connections in flight.
    "tproxy": {"counters": False, "pins": False, "established_survive_unenroll": False,
               "connect_sees_unroutable": True},
    # redirect: removing the last rule that needs conntrack unregisters the
    # namespace's conntrack and NAT hooks, so connections in flight lose
    # their translation (unless other rules there keep conntrack in use).
    "redirect": {"counters": False, "pins": False, "established_survive_unenroll": False,
                 "connect_sees_unroutable": True},
}
ROUTE_MARK = "0x1000"
ROUTE_TABLE = "15001"
_probe_cache = {}


def usable_backends(mode):
    """The backends `shunt-agent probe` says can do a firewall mode here."""
    if mode not in _probe_cache:
        r = run([AGENT, "probe", "--mode", mode, "--json"], check=False)
        _probe_cache[mode] = json.loads(r.stdout).get("backends", []) if r.stdout else []
    return _probe_cache[mode]


def normalized_iptables(text):
    """iptables-save output without comments and counters."""
    import re
    return [re.sub(r"\[\d+:\d+\]", "[0:0]", l) for l in text.splitlines()
            if l and not l.startswith("#")]


def cgroup2_root():
    with open("/proc/self/mountinfo") as f:
        for line in f:
            parts = line.split()
            dash = parts.index("-")
            if parts[dash + 1] == "cgroup2":
                return parts[4]
    raise RuntimeError("no cgroup2 mount")


def run(cmd, check=True, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({r.returncode}): {r.stderr.strip()}")
    return r


# Under software emulation (the QEMU runner) everything is about ten times
# slower: the runner sets this and every wait scales with it.
TIMEOUT_SCALE = float(os.environ.get("SHUNT_TIMEOUT_SCALE", "1"))


def wait_for(predicate, timeout=10.0, what="condition"):
    deadline = time.monotonic() + timeout * TIMEOUT_SCALE
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise TimeoutError(f"timed out waiting for {what}")


class Topology(Processes):
    def __init__(self, name, agent_args=(), proxy_args=(), proxy_uid=None, with_other=False,
                 mode=None):
        self.mode, _, self.backend = (mode or TEST_MODE).partition("/")
        self.sk_msg = self.mode == "ebpf+sk-msg"
        if self.sk_msg:
            self.mode = "ebpf"
        self.traits = MODE_TRAITS[self.mode]
        self.tag = f"{name[:5]}{os.getpid() % 10000}{next(_counter)}"
        self.tmp = tempfile.mkdtemp(prefix=f"shunt-test-{self.tag}-")
        self.ns = {r: f"{TEST_PREFIX}-{self.tag}-{r}" for r in ("pod", "srv", "oth")}
        self.cgroup = os.path.join(cgroup2_root(), f"shunt-test-{self.tag}")
        self.bpffs = f"/sys/fs/bpf/shunt-test-{self.tag}"
        self.socket = os.path.join(self.tmp, "agent.sock")
        self.state_dir = os.path.join(self.tmp, "state")
        self.access_log_path = os.path.join(self.tmp, "access.log")
        self.server_report = os.path.join(self.tmp, "server.jsonl")
        self.agent_args = list(agent_args)
        self.proxy_args = list(proxy_args)
        self.proxy_uid = proxy_uid
        # A proxy the agent does not exempt: in the attach cgroup, like any
        # process of the pod.
        self.proxy_in_attach_cgroup = False
        self.with_other = with_other
        self.procs = {}
        self.problems = []
        self.created_ns = []
        self.etc_netns = []

    # ---- set-up -------------------------------------------------------
    def require_mode(self):
        """Skips (unittest) when this machine cannot run the mode/backend."""
        if self.mode != "ebpf" and self.backend != "auto" and \
                self.backend not in usable_backends(self.mode):
            print(f"SHUNT-MODE-UNSUPPORTED: {self.mode} with {self.backend}", flush=True)
            raise unittest.SkipTest(f"{self.mode} with {self.backend} is not possible here")

    def start(self, agent=True):
        self.require_mode()
        os.makedirs(self.cgroup)
        self._network()
        self._server()
        self._warm_up_ipv6()
        if agent:
            self.start_agent()
            self.start_proxy()
            self.enroll("pod")
        return self

    def start_helper(self, name, role, tool, *args):
        """A test server from tools/ in a namespace, waited for."""
        ready = os.path.join(self.tmp, f"{name}.ready")
        self.spawn(name, ["ip", "netns", "exec", self.ns[role], "python3",
                          os.path.join(TOOLS, tool), *args, "--ready", ready])
        wait_for(lambda: os.path.exists(ready), what=name)

    def hosts_file(self, role, lines):
        """/etc/hosts as seen by `ip netns exec` in that namespace."""
        d = f"/etc/netns/{self.ns[role]}"
        os.makedirs(d, exist_ok=True)
        self.etc_netns.append(d)
        with open(os.path.join(d, "hosts"), "w") as f:
            f.write("127.0.0.1 localhost\n::1 localhost\n" + "".join(l + "\n" for l in lines))

    def resolv_conf(self, role, lines):
        """/etc/resolv.conf as seen by `ip netns exec` in that namespace."""
        d = f"/etc/netns/{self.ns[role]}"
        os.makedirs(d, exist_ok=True)
        if d not in self.etc_netns:
            self.etc_netns.append(d)
        with open(os.path.join(d, "resolv.conf"), "w") as f:
            f.write("".join(l + "\n" for l in lines))

    def start_named_proxy(self, name, args, role="pod"):
        """An extra shunt-proxy (explicit modes) with its own access log."""
        log = os.path.join(self.tmp, f"{name}.access.log")
        self.spawn(name, ["ip", "netns", "exec", self.ns[role], PROXY, "--access-log", log, *args])
        wait_for(lambda: "] ready" in self.log_text(name) or self.procs[name].poll() is not None,
                 what=name)
        if self.procs[name].poll() is not None:
            raise RuntimeError(f"{name} exited: " + self.log_text(name))
        return log

    def _network(self):
        names = ["pod", "srv"] + (["oth"] if self.with_other else [])
        for role in names:
            run(["ip", "netns", "add", self.ns[role]])
            self.created_ns.append(self.ns[role])
            run(["ip", "-n", self.ns[role], "link", "set", "lo", "up"])
        self._link("pod", "srv", 0)
        if self.with_other:
            self._link("oth", "srv", 1)

    def _warm_up_ipv6(self):
        # The first IPv6 packet on a new link can wait a second for neighbour
        # discovery; do that wait here, not inside a test with a timeout.
        code = ("import socket,time\nfor _ in range(50):\n  try:\n"
                "    socket.create_connection(('fd00:201::2', %d), 3).close(); break\n"
                "  except OSError: time.sleep(0.1)\n") % ECHO_PORT
        for role in ("pod", "oth") if self.with_other else ("pod",):
            subnet = 0 if role == "pod" else 1
            run(["ip", "netns", "exec", self.ns[role], "python3", "-c",
                 code.replace("fd00:201::2", f"fd00:201:{subnet}::2")], check=False)

    def _link(self, a, b, subnet):
        ia, ib = f"s{self.tag}{subnet}a"[:15], f"s{self.tag}{subnet}b"[:15]
        run(["ip", "link", "add", ia, "netns", self.ns[a], "type", "veth", "peer", "name", ib,
             "netns", self.ns[b]])
        for role, ifname, host in ((a, ia, 1), (b, ib, 2)):
            n = self.ns[role]
            run(["ip", "-n", n, "addr", "add", f"10.201.{subnet}.{host}/24", "dev", ifname])
            run(["ip", "-n", n, "addr", "add", f"fd00:201:{subnet}::{host}/64", "dev", ifname, "nodad"])
            run(["ip", "-n", n, "link", "set", ifname, "up"])

    def _server(self):
        ready = os.path.join(self.tmp, "server.ready")
        self.spawn("server", ["ip", "netns", "exec", self.ns["srv"], "python3",
                              os.path.join(TOOLS, "echo_server.py"), "--port", str(ECHO_PORT),
                              "--report", self.server_report, "--ready", ready])
        wait_for(lambda: os.path.exists(ready), what="echo server")

    @property
    def proxy_cgroup(self):
        """The proxies' cgroup the agent creates under the attach cgroup:
        a proxy started by hand goes there (docs/policy.md), or its own
        connections are captured like any pod process's."""
        return os.path.join(self.cgroup, "shunt-proxies")

    def spawn(self, name, cmd, in_cgroup=False, env=None):
        """in_cgroup: True for the attach cgroup, or a cgroup directory."""
        cgroup = in_cgroup if isinstance(in_cgroup, str) else self.cgroup
        procs_file = os.path.join(cgroup, "cgroup.procs")

        def enter():
            if in_cgroup:
                with open(procs_file, "w") as f:
                    f.write(str(os.getpid()))

        env = dict(os.environ, **(env or {}))
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
        return Processes.spawn(self, name, cmd, env=env, preexec_fn=enter)

    def mode_args(self):
        return mode_args(self.mode, self.backend, sk_msg=self.sk_msg)

    def agent_command(self, extra=(), binary=AGENT):
        return ([binary, "run", "--cgroup", self.cgroup, "--bpffs", self.bpffs, "--socket",
                 self.socket, "--state-dir", self.state_dir]
                + self.mode_args() + self.agent_args + list(extra))

    def start_agent(self, extra=(), env=None, binary=AGENT):
        """shunt-agent run, or another build of it (`binary`), waited for."""
        self.spawn("agent", self.agent_command(extra, binary), env=env)
        wait_for(lambda: self.agent_cli("status", check=False).returncode == 0
                 or self.procs["agent"].poll() is not None, what="agent control socket")
        if self.procs["agent"].poll() is not None:
            raise RuntimeError("agent exited: " + self.log_text("agent"))

    def start_proxy(self):
        before = self.log_text("proxy").count("outbound listener on")
        drop = []
        if self.proxy_uid is not None:
            # The proxy runs as its own user; the log must be writable by it.
            os.chmod(self.tmp, 0o711)
            open(self.access_log_path, "a").close()
            os.chown(self.access_log_path, self.proxy_uid, self.proxy_uid)
            # CAP_NET_ADMIN stays: IP_TRANSPARENT (tproxy) needs it.
            drop = ["setpriv", f"--reuid={self.proxy_uid}", f"--regid={self.proxy_uid}",
                    "--clear-groups", "--inh-caps=+net_admin", "--ambient-caps=+net_admin"]
        # Run as another user, the binary must be readable wherever the
        # checkout is.
        proxy = world_readable(PROXY) if drop else PROXY
        cgroup = True if self.proxy_in_attach_cgroup else self.proxy_cgroup
        os.makedirs(self.proxy_cgroup, exist_ok=True)  # made by the agent, when one runs
        self.spawn("proxy", ["ip", "netns", "exec", self.ns["pod"], *drop, proxy,
                             "--access-log", self.access_log_path] + self.proxy_args,
                   in_cgroup=cgroup)
        wait_for(lambda: self.log_text("proxy").count("outbound listener on") > before
                 or self.procs["proxy"].poll() is not None, what="proxy listener")
        if self.procs["proxy"].poll() is not None:
            raise RuntimeError("proxy exited: " + self.log_text("proxy"))

    # ---- actions ------------------------------------------------------
    def agent_cli(self, *args, check=False):
        return run([AGENT, *args, "--socket", self.socket], check=check)

    def enroll(self, role):
        return self.agent_cli("enroll", "--netns", f"/run/netns/{self.ns[role]}", check=True)

    def unenroll(self, role):
        return self.agent_cli("unenroll", "--netns", f"/run/netns/{self.ns[role]}", check=True)

    def map_entries(self, name):
        """The entries of one of the agent's pinned maps (bpftool)."""
        r = run(["bpftool", "-j", "map", "dump", "pinned", os.path.join(self.bpffs, name)])
        return json.loads(r.stdout)

    def status(self):
        return json.loads(self.agent_cli("status", "--json", check=True).stdout)

    def in_ns(self, role, cmd, in_cgroup=True, timeout=60):
        return subprocess.run(["ip", "netns", "exec", self.ns[role], *cmd], capture_output=True,
                              text=True, timeout=timeout * TIMEOUT_SCALE,
                              preexec_fn=joining_cgroup(self.cgroup) if in_cgroup else None)

    def tool_in_background(self, role, tool, *args):
        """A tool of tools/ in a namespace and the attach cgroup, running on
        while the test acts; its output is read with communicate()."""
        return subprocess.Popen(["ip", "netns", "exec", self.ns[role], "python3",
                                 world_readable(os.path.join(TOOLS, tool)), *args],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                preexec_fn=joining_cgroup(self.cgroup))

    def client(self, host, port=ECHO_PORT, role="pod", **options):
        cmd = ["python3", os.path.join(TOOLS, "client.py"), "--host", host, "--port", str(port)]
        for k, v in options.items():
            flag = "--" + k.replace("_", "-")
            cmd += [flag] if v is True else [flag, str(v)]
        r = self.in_ns(role, cmd)
        if r.returncode != 0:
            raise RuntimeError(f"client failed: {r.stderr}")
        return json.loads(r.stdout)

    def client_async(self, host, port=ECHO_PORT, role="pod", **options):
        cmd = ["python3", os.path.join(TOOLS, "client.py"), "--host", host, "--port", str(port)]
        for k, v in options.items():
            cmd += ["--" + k.replace("_", "-"), str(v)]
        procs_file = os.path.join(self.cgroup, "cgroup.procs")

        def enter():
            with open(procs_file, "w") as f:
                f.write(str(os.getpid()))

        return subprocess.Popen(["ip", "netns", "exec", self.ns[role], *cmd], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, preexec_fn=enter)

    def access_log(self):
        try:
            with open(self.access_log_path) as f:
                return [json.loads(line) for line in f if line.strip()]
        except FileNotFoundError:
            return []

    def wait_access_log(self, count, timeout=10):
        wait_for(lambda: len(self.access_log()) >= count, timeout, f"{count} access-log lines")
        return self.access_log()

    def server_seen(self):
        try:
            with open(self.server_report) as f:
                return [json.loads(line) for line in f if line.strip()]
        except FileNotFoundError:
            return []

    def stop(self, name, sig=signal.SIGTERM, expect_clean=True):
        p = self.procs.pop(name, None)
        if p is None or p.poll() is not None:
            return None
        p.send_signal(sig)
        try:
            rc = p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            rc = p.wait()
            self.problems.append(f"{name} did not stop on {sig!r}")
        if expect_clean and rc != 0:
            self.problems.append(f"{name} exited with {rc}: {self.log_text(name)[-2000:]}")
        return rc

    # ---- firewall state -------------------------------------------------
    def netns_run(self, role, cmd):
        return run(["ip", "netns", "exec", self.ns[role], *cmd], check=False)

    def firewall_footprint(self, role="pod"):
        """Everything of shunt's in a namespace's firewall and routing, in
        every backend: empty when nothing is there, equal when unchanged."""
        out = []
        r = self.netns_run(role, ["nft", "list", "table", "inet", "shunt"])
        if r.returncode == 0:
            out += r.stdout.splitlines()
        for tool in ("iptables-legacy-save", "ip6tables-legacy-save", "iptables-nft-save",
                     "ip6tables-nft-save"):
            lines = normalized_iptables(self.netns_run(role, [tool]).stdout)
            out += [f"{tool}: {l}" for l in lines if "SHUNT" in l]
        for family in ("-4", "-6"):
            rules = run(["ip", "-n", self.ns[role], family, "rule"], check=False).stdout
            out += [l for l in rules.splitlines() if f"fwmark {ROUTE_MARK}" in l]
            routes = run(["ip", "-n", self.ns[role], family, "route", "show", "table",
                          ROUTE_TABLE], check=False).stdout
            out += routes.splitlines()
        return out

    def firewall_dump(self, role="pod"):
        """The whole firewall and routing state of a namespace, normalized."""
        import re
        nft = self.netns_run(role, ["nft", "list", "ruleset"]).stdout
        dump = {"nft": re.sub(r"counter packets \d+ bytes \d+", "counter", nft)}
        for tool in ("iptables-legacy-save", "ip6tables-legacy-save", "iptables-nft-save",
                     "ip6tables-nft-save"):
            dump[tool] = normalized_iptables(self.netns_run(role, [tool]).stdout)
        for family in ("-4", "-6"):
            dump[f"rules{family}"] = run(["ip", "-n", self.ns[role], family, "rule"]).stdout
            # Without what the kernel adds by itself, possibly later (local
            # addresses, IPv6 link-local and multicast routes).
            routes = run(["ip", "-n", self.ns[role], family, "route", "show", "table",
                          "all"]).stdout.splitlines()
            dump[f"routes{family}"] = [l for l in routes if "table local" not in l
                                       and "fe80::" not in l and "ff00::" not in l]
        return dump

    # ---- tear-down ----------------------------------------------------
    def close(self):
        for name in ["proxy", "agent"] + [n for n in self.procs if n.startswith("xproxy")]:
            self.stop(name)
        for name in list(self.procs):
            self.stop(name, expect_clean=False)
        for name in ["agent", "proxy"] + [n for n in os.listdir(self.tmp)
                                          if n.startswith("xproxy") and n.endswith(".log")
                                          and not n.endswith("access.log")]:
            name = name[:-4] if name.endswith(".log") else name
            text = self.log_text(name)
            if "AddressSanitizer" in text or "runtime error:" in text or "LeakSanitizer" in text:
                self.problems.append(f"sanitizer report in {name} log:\n{text[-4000:]}")
        run([AGENT, "uninstall", "--cgroup", self.cgroup, "--bpffs", self.bpffs, "--socket",
             self.socket, "--state-dir", self.state_dir], check=False)
        if self.created_ns and self.mode != "ebpf" and self.firewall_footprint():
            self.problems.append(f"firewall rules left after uninstall: {self.firewall_footprint()}")
        for ns in self.created_ns:
            run(["ip", "netns", "del", ns], check=False)
        for d in self.etc_netns:
            shutil.rmtree(d, ignore_errors=True)
        if os.path.isdir(self.cgroup):
            for child in sorted(os.listdir(self.cgroup)):
                path = os.path.join(self.cgroup, child)
                if os.path.isdir(path):
                    self._empty_cgroup(path)
                    try:
                        os.rmdir(path)
                    except OSError as e:
                        self.problems.append(f"cannot remove cgroup {path}: {e}")
            self._empty_cgroup()
            try:
                os.rmdir(self.cgroup)
            except OSError as e:
                self.problems.append(f"cannot remove cgroup {self.cgroup}: {e}")
        if os.path.exists(self.bpffs):
            self.problems.append(f"bpffs dir {self.bpffs} left after uninstall")
        shutil.rmtree(self.tmp, ignore_errors=True)
        problems, self.problems = self.problems, []
        if problems:
            raise AssertionError("; ".join(problems))

    def _empty_cgroup(self, cgroup=None):
        procs = os.path.join(cgroup or self.cgroup, "cgroup.procs")
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with open(procs) as f:
                pids = [int(x) for x in f.read().split()]
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.05)


def bpftool_json(*args):
    r = run(["bpftool", "-j", *args], check=False)
    if r.returncode != 0 or not r.stdout.strip():
        return []
    return json.loads(r.stdout)


def attached_programs(cgroup):
    return [p.get("name", "") for p in bpftool_json("cgroup", "show", cgroup)]
