"""A throwaway container node for the Kubernetes scenarios: rootful podman
4.3 with its CNI network backend, configured entirely through
CONTAINERS_CONF and CONTAINERS_STORAGE_CONF files in the test's own
directory (runc, cgroupfs, file events, vfs storage), so the machine's
podman configuration is never read or written.

podman runs inside a network namespace the test creates (the "node"), so
the CNI bridge, its /24 and its routes live there and never in the
machine's own namespace; the test servers listen on the bridge's gateway
address in that same namespace. The agent runs on the machine as usual,
with --cni-conf-dir pointing at the test's conflist directory.
"""
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

from processes import Processes, mode_args
from shunt_env import (AGENT, BIN, TEST_MODE, TOOLS, cgroup2_root, run, usable_backends,
                       wait_for)

_counter = itertools.count()
CNI_PLUGINS = "/usr/lib/cni"
IMAGE = "localhost/shunt-test-busybox:1"


def cgroup_mounts():
    """Every cgroup (v1 and v2) mount point: podman's cgroupfs manager
    creates the container's parent in each."""
    mounts = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            parts = line.split()
            dash = parts.index("-")
            if parts[dash + 1] in ("cgroup", "cgroup2"):
                mounts.append(parts[4])
    return mounts


def remove_cgroup_tree(path):
    if not os.path.isdir(path):
        return
    for entry in os.listdir(path):
        child = os.path.join(path, entry)
        if os.path.isdir(child):
            remove_cgroup_tree(child)
    for _ in range(50):
        try:
            os.rmdir(path)
            return
        except OSError:
            time.sleep(0.05)


class PodmanNode(Processes):
    def __init__(self, name, mode=None, agent_args=()):
        self.mode, _, self.backend = (mode or TEST_MODE).partition("/")
        self.tag = f"{name[:4]}{os.getpid() % 10000}{next(_counter)}"
        self.tmp = tempfile.mkdtemp(prefix=f"shunt-k8s-{self.tag}-")
        os.chmod(self.tmp, 0o755)
        self.node_ns = f"shunt-k8s-{self.tag}"
        self.node_ns_path = f"/run/netns/{self.node_ns}"
        self.network = f"shunt-{self.tag}"
        self.bridge = f"shb{self.tag}"[:15]
        octet = (os.getpid() + next(_counter) * 7) % 200 + 20
        self.subnet4 = f"10.252.{octet}"
        self.subnet6 = f"fd00:252:{octet:x}"
        self.gateway4 = f"{self.subnet4}.1"
        self.gateway6 = f"{self.subnet6}::1"
        self.cgroup_name = f"shunt-test-{self.tag}"
        self.cgroup = os.path.join(cgroup2_root(), self.cgroup_name)
        self.bpffs = f"/sys/fs/bpf/shunt-test-{self.tag}"
        self.socket = os.path.join(self.tmp, "agent.sock")
        self.state_dir = os.path.join(self.tmp, "state")
        self.conf_dir = os.path.join(self.tmp, "net.d")
        self.bin_dir = os.path.join(self.tmp, "cni-bin")
        self.agent_args = list(agent_args)
        self.procs = {}
        self.env = dict(os.environ, CONTAINERS_CONF=os.path.join(self.tmp, "containers.conf"),
                        CONTAINERS_STORAGE_CONF=os.path.join(self.tmp, "storage.conf"))
        self.problems = []

    # ---- set-up -------------------------------------------------------
    def supported(self):
        if shutil.which("podman") is None or not os.path.exists(f"{CNI_PLUGINS}/bridge"):
            return "podman or the CNI plugins are not installed (scripts/setup.sh installs them)"
        if self.mode != "ebpf" and self.backend and self.backend not in usable_backends(self.mode):
            return f"{self.mode} with {self.backend} is not possible here"
        return None

    def start(self, agent=True):
        os.makedirs(self.cgroup)
        run(["ip", "netns", "add", self.node_ns])
        run(["ip", "-n", self.node_ns, "link", "set", "lo", "up"])
        self._write_podman_config()
        self.write_conflist()
        self._import_image()
        self._start_servers()
        if agent:
            self.start_agent()
        return self

    def _write_podman_config(self):
        t = self.tmp
        os.makedirs(self.bin_dir)
        for plugin in ("bridge", "host-local", "loopback"):
            shutil.copy(f"{CNI_PLUGINS}/{plugin}", self.bin_dir)
        # This machine's root has no CAP_SYS_RESOURCE: podman must not try
        # to raise the limits above the current hard ones.
        with open(os.path.join(t, "containers.conf"), "w") as f:
            f.write(f"""[containers]
log_driver = "k8s-file"
default_ulimits = ["nofile=4096:4096", "nproc=4096:4096"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "{t}/events.log"
tmp_dir = "{t}/podman-tmp"
static_dir = "{t}/storage/libpod"
volume_path = "{t}/storage/volumes"
[network]
network_backend = "cni"
cni_plugin_dirs = ["{self.bin_dir}"]
network_config_dir = "{self.conf_dir}"
default_network = "{self.network}"
""")
        with open(os.path.join(t, "storage.conf"), "w") as f:
            f.write(f"""[storage]
driver = "vfs"
graphroot = "{t}/storage"
runroot = "{t}/run"
""")

    def conflist(self):
        """bridge + host-local: what a cluster's network plugin would write."""
        return {"cniVersion": "1.0.0", "name": self.network, "plugins": [{
            "type": "bridge", "bridge": self.bridge, "isGateway": True, "ipMasq": False,
            "ipam": {"type": "host-local", "dataDir": os.path.join(self.tmp, "ipam"),
                     "ranges": [[{"subnet": f"{self.subnet4}.0/24"}],
                                [{"subnet": f"{self.subnet6}::/64"}]]}}]}

    def conflist_path(self):
        return os.path.join(self.conf_dir, "10-node.conflist")

    def write_conflist(self, doc=None):
        os.makedirs(self.conf_dir, exist_ok=True)
        tmp = self.conflist_path() + ".new"
        with open(tmp, "w") as f:
            json.dump(doc or self.conflist(), f, indent=1)
        os.rename(tmp, self.conflist_path())

    def read_conflist(self):
        with open(self.conflist_path()) as f:
            return json.load(f)

    def _import_image(self):
        root = os.path.join(self.tmp, "image")
        os.makedirs(os.path.join(root, "bin"))
        shutil.copy("/bin/busybox", os.path.join(root, "bin", "busybox"))
        for tool in ("sh", "sleep", "nc", "cat", "echo", "netstat", "ip", "wget", "true"):
            os.symlink("busybox", os.path.join(root, "bin", tool))
        tar = os.path.join(self.tmp, "image.tar")
        run(["tar", "-C", root, "-cf", tar, "."])
        self.podman("import", tar, IMAGE)

    def _start_servers(self):
        self.server_report = os.path.join(self.tmp, "server.jsonl")
        for port in (7000, 7001):
            ready = os.path.join(self.tmp, f"server{port}.ready")
            self.spawn(f"server{port}", ["ip", "netns", "exec", self.node_ns, "python3",
                                         os.path.join(TOOLS, "echo_server.py"), "--port",
                                         str(port), "--report", self.server_report,
                                         "--ready", ready])
            wait_for(lambda: os.path.exists(ready), what="echo server")

    # ---- processes ------------------------------------------------------
    def spawn(self, name, cmd, env=None):
        return Processes.spawn(self, name, cmd, env=dict(os.environ, **(env or {})),
                               new_session=True)

    def mode_args(self):
        return mode_args(self.mode, self.backend, probe_chooses_ebpf=False)

    @property
    def metrics_port(self):
        """The agent's metrics page (one loopback port per node, kept
        across the agent's restarts, as the DaemonSet's is)."""
        if not hasattr(self, "_metrics_port"):
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                self._metrics_port = s.getsockname()[1]
        return self._metrics_port

    def start_agent(self, extra=(), wait_ready=True, env=None):
        if env is not None:
            self.agent_env = env
        self.spawn("agent", [AGENT, "run", "--cgroup", self.cgroup, "--bpffs", self.bpffs,
                             "--socket", self.socket, "--state-dir", self.state_dir,
                             "--cni-conf-dir", self.conf_dir, "--cni-bin-dir", self.bin_dir,
                             "--metrics-address", f"127.0.0.1:{self.metrics_port}"]
                   + self.mode_args() + self.agent_args + list(extra),
                   env=getattr(self, "agent_env", None))
        if wait_ready:
            wait_for(lambda: self.agent_cli("ready").returncode == 0
                     or self.procs["agent"].poll() is not None, timeout=20, what="agent ready")
            if self.procs["agent"].poll() is not None:
                raise RuntimeError("agent exited: " + self.log_text("agent"))

    def stop_agent(self, sig=signal.SIGTERM):
        p = self.procs.pop("agent", None)
        if p is None:
            return
        p.send_signal(sig)
        p.wait(timeout=10)

    def agent_cli(self, *args):
        return run([AGENT, *args, "--socket", self.socket], check=False)

    def pods(self):
        r = self.agent_cli("pods", "--json")
        if r.returncode != 0:
            raise RuntimeError(r.stderr)
        return json.loads(r.stdout)["pods"]

    def status(self):
        return json.loads(self.agent_cli("status", "--json").stdout)

    # ---- podman -------------------------------------------------------
    def podman(self, *args, check=True, env=None, timeout=120):
        """podman inside the node namespace (nsenter, not `ip netns exec`:
        that remounts /sys and hides the cgroup mounts runc needs)."""
        cmd = ["nsenter", f"--net={self.node_ns_path}", "podman", *args]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                           env=dict(self.env, **(env or {})))
        if check and r.returncode != 0:
            raise RuntimeError(f"podman {' '.join(args)} failed ({r.returncode}): "
                               f"{r.stderr.strip()}")
        return r

    def run_container(self, name, *command, cni_args=None, detach=True, check=True):
        extra = ["--cgroup-parent", f"/{self.cgroup_name}"]
        env = {"CNI_ARGS": cni_args} if cni_args else None
        args = ["run", "--name", name, "--network", self.network] + extra
        args += ["-d"] if detach else ["--rm"]
        return self.podman(*args, IMAGE, *command, env=env, check=check)

    def exec(self, name, script, check=True):
        return self.podman("exec", name, "sh", "-c", script, check=check)

    def container_pid(self, name):
        return int(self.podman("inspect", "--format", "{{.State.Pid}}", name).stdout.strip())

    def container_ips(self, name):
        out = self.exec(name, "ip -o addr show eth0").stdout
        return [w.split("/")[0] for line in out.splitlines() for w in line.split()
                if "/" in w and not w.startswith("fe80")]

    def echo(self, name, host, port=7000, text="ping"):
        """One connection from the container; the echo server's answer."""
        r = self.exec(name, f"echo {text} | nc -w 3 {host} {port}", check=False)
        return r.stdout.strip()

    def access_log(self, container_id):
        path = os.path.join(self.state_dir, "pods", container_id, "access.log")
        try:
            with open(path) as f:
                return [json.loads(l) for l in f if l.strip()]
        except FileNotFoundError:
            return []

    def server_seen(self):
        try:
            with open(self.server_report) as f:
                return [json.loads(l) for l in f if l.strip()]
        except FileNotFoundError:
            return []

    def container_id(self, name):
        return self.podman("inspect", "--format", "{{.Id}}", name).stdout.strip()

    # ---- clean-up -----------------------------------------------------
    def close(self):
        self.podman("rm", "-a", "-f", "-t", "0", check=False)
        self.stop_agent()
        run([AGENT, "uninstall", "--cgroup", self.cgroup, "--bpffs", self.bpffs, "--socket",
             self.socket, "--state-dir", self.state_dir, "--cni-conf-dir", self.conf_dir,
             "--cni-bin-dir", self.bin_dir], check=False)
        for name, p in list(self.procs.items()):
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        for text_name in ("agent",):
            text = self.log_text(text_name)
            if "AddressSanitizer" in text or "runtime error:" in text:
                self.problems.append(f"sanitizer report in the {text_name} log:\n{text[-4000:]}")
        self.podman("rmi", "-a", "-f", check=False)
        run(["ip", "netns", "del", self.node_ns], check=False)
        for mount in cgroup_mounts():
            remove_cgroup_tree(os.path.join(mount, self.cgroup_name))
        if os.path.isdir(self.cgroup):
            self.problems.append(f"cgroup {self.cgroup} left")
        if os.path.exists(self.bpffs):
            self.problems.append(f"bpffs dir {self.bpffs} left after uninstall")
        left = [f for f in os.listdir("/var/lib/cni/results")
                if f.startswith(self.network + "-")] if os.path.isdir("/var/lib/cni/results") else []
        for f in left:
            self.problems.append(f"CNI cache entry {f} left")
            os.unlink(os.path.join("/var/lib/cni/results", f))
        shutil.rmtree(self.tmp, ignore_errors=True)
        problems, self.problems = self.problems, []
        if problems:
            raise AssertionError("; ".join(problems))
