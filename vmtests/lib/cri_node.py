"""A throwaway Kubernetes node without a kubelet: Debian's containerd (1.6,
with its CRI plugin) in a network namespace the test creates, with its own
root, state, socket, CNI directories and locally built images, driven
through the Container Runtime Interface as the kubelet drives it
(cri_client.py). shunt's agent runs there as the DaemonSet runs it
(daemonset_spec.py); pods run on a bridge + host-local conflist into which
the agent chains shunt-cni.

Facts of this machine the harness works with, each one a node's too:
containerd is started with `nsenter --net=` (`ip netns exec` remounts /sys
and hides the cgroup mounts runc needs); `restrict_oom_score_adj` (no
CAP_SYS_RESOURCE here, so runc cannot lower a sandbox's oom_score_adj);
the DaemonSet's HostToContainer mounts need a shared or slave host mount,
and this machine's /sys/fs/bpf is private: it is made shared for the run
and made private again at the end (a marker under /run says so meanwhile,
for the leftovers check)."""
import itertools
import json
import socket
import os
import shutil
import signal
import subprocess
import tempfile
import uuid

from cri_client import CriClient
from daemonset_spec import CAPABILITY_NUMBERS, AgentPodSpec
from oci_image import write_image
from podman_env import cgroup_mounts, remove_cgroup_tree
from processes import Processes, joining_cgroup
from shunt_env import AGENT, BIN, TEST_MODE, TOOLS, cgroup2_root, run, usable_backends, wait_for

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CNI_PLUGINS = "/usr/lib/cni"
PAUSE_IMAGE = "localhost/shunt-test-pause:1"
APP_IMAGE = "localhost/shunt-test-busybox:1"
AGENT_IMAGES = ("localhost/shunt:cri-test-1", "localhost/shunt:cri-test-2")
BPFFS_MARKER = "/run/shunt-test-bpffs-made-shared"
API_TOKEN = "cri-test-token"
_counter = itertools.count()


def agent_answers(path):
    import socket
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        try:
            s.connect(path)
            return True
        except OSError:
            return False


def mount_propagation(path):
    """shared, slave or private: the propagation of the mount at `path`."""
    r = run(["findmnt", "-n", "-o", "PROPAGATION", "--mountpoint", path], check=False)
    return r.stdout.strip().split(",")[0] if r.returncode == 0 else ""


class Pod:
    def __init__(self, name, namespace, sandbox_id, container_id, config):
        self.name, self.namespace = name, namespace
        self.sandbox_id, self.container_id, self.config = sandbox_id, container_id, config


class CriNode(Processes):
    def __init__(self, name, mode=None):
        self.mode, _, self.backend = (mode or TEST_MODE).partition("/")
        self.tag = f"{name[:4]}{os.getpid() % 10000}{next(_counter)}"
        self.tmp = tempfile.mkdtemp(prefix=f"shunt-cri-{self.tag}-")
        os.chmod(self.tmp, 0o755)
        self.node_ns = f"shunt-cri-{self.tag}"
        self.node_ns_path = f"/run/netns/{self.node_ns}"
        self.network = f"shunt-cri-{self.tag}"
        self.bridge = f"shc{self.tag}"[:15]
        octet = (os.getpid() + next(_counter) * 7) % 200 + 20
        self.subnet4, self.subnet6 = f"10.253.{octet}", f"fd00:253:{octet:x}"
        self.gateway4, self.gateway6 = f"{self.subnet4}.1", f"{self.subnet6}::1"
        self.cgroup_name = f"shunt-test-{self.tag}"
        self.cgroup = os.path.join(cgroup2_root(), self.cgroup_name)
        self.bpffs = f"/sys/fs/bpf/shunt-test-{self.tag}"
        self.socket = os.path.join(self.tmp, "containerd.sock")
        self.conf_dir = os.path.join(self.tmp, "net.d")
        self.bin_dir = os.path.join(self.tmp, "cni-bin")
        self.procs = {}
        self.problems = []
        self.cri = None
        self.agent = None  # (sandbox id, container id, image)
        self.pods = {}
        self.netns_before = set()
        self.created_run_shunt = False

    # ---- what this machine can do -------------------------------------
    def supported(self):
        for tool in ("containerd", "ctr", "runc", "protoc", "podman"):
            if shutil.which(tool) is None:
                return f"{tool} is not installed (scripts/setup.sh installs it)"
        if not os.path.exists(f"{CNI_PLUGINS}/bridge"):
            return "the CNI plugins are not installed (scripts/setup.sh installs them)"
        if self.mode != "ebpf" and self.backend and self.backend not in usable_backends(self.mode):
            return f"{self.mode} with {self.backend} is not possible here"
        try:
            import grpc  # noqa: F401 - Debian's python3-grpcio
            import google.protobuf  # noqa: F401
        except ImportError:
            return "python3-grpcio or python3-protobuf is not installed for this python3"
        if agent_answers("/run/shunt/agent.sock"):
            return "an agent serves /run/shunt/agent.sock on this machine: the DaemonSet's paths"
        return None

    # ---- set-up -------------------------------------------------------
    def start(self):
        self.netns_before = set(os.listdir("/run/netns")) if os.path.isdir("/run/netns") else set()
        os.makedirs(self.cgroup)
        run(["ip", "netns", "add", self.node_ns])
        run(["ip", "-n", self.node_ns, "link", "set", "lo", "up"])
        self._share_bpffs()
        os.makedirs(self.bin_dir)
        for plugin in ("bridge", "host-local", "loopback"):
            shutil.copy(f"{CNI_PLUGINS}/{plugin}", self.bin_dir)
        self.write_conflist()
        self._start_containerd()
        self._import_images()
        self._start_servers()
        return self

    def _share_bpffs(self):
        if mount_propagation("/sys/fs/bpf") == "private":
            with open(BPFFS_MARKER, "w") as f:
                f.write("/sys/fs/bpf was private before a CRI test made it shared: "
                        "mount --make-private /sys/fs/bpf\n")
            run(["mount", "--make-shared", "/sys/fs/bpf"])

    def _restore_bpffs(self):
        if os.path.exists(BPFFS_MARKER):
            run(["mount", "--make-private", "/sys/fs/bpf"], check=False)
            os.unlink(BPFFS_MARKER)

    def conflist(self):
        return {"cniVersion": "1.0.0", "name": self.network, "plugins": [{
            "type": "bridge", "bridge": self.bridge, "isGateway": True, "ipMasq": False,
            "ipam": {"type": "host-local", "dataDir": os.path.join(self.tmp, "ipam"),
                     "ranges": [[{"subnet": f"{self.subnet4}.0/24"}],
                                [{"subnet": f"{self.subnet6}::/64"}]]}}]}

    def conflist_path(self):
        return os.path.join(self.conf_dir, "10-node.conflist")

    def write_conflist(self):
        os.makedirs(self.conf_dir, exist_ok=True)
        with open(self.conflist_path() + ".new", "w") as f:
            json.dump(self.conflist(), f, indent=1)
        os.rename(self.conflist_path() + ".new", self.conflist_path())

    def read_conflist(self):
        with open(self.conflist_path()) as f:
            return json.load(f)

    def _start_containerd(self):
        t = self.tmp
        cri = 'plugins."io.containerd.grpc.v1.cri"'
        with open(os.path.join(t, "containerd.toml"), "w") as f:
            f.write(f"""version = 2
root = "{t}/root"
state = "{t}/state"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs",
  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]
[grpc]
  address = "{self.socket}"
[ttrpc]
  address = "{self.socket}.ttrpc"
[{cri}]
  sandbox_image = "{PAUSE_IMAGE}"
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [{cri}.cni]
    bin_dir = "{self.bin_dir}"
    conf_dir = "{self.conf_dir}"
    max_conf_num = 1
  [{cri}.containerd]
    snapshotter = "native"
    default_runtime_name = "runc"
    [{cri}.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [{cri}.containerd.runtimes.runc.options]
        SystemdCgroup = false
""")
        self.spawn("containerd", ["nsenter", f"--net={self.node_ns_path}", "containerd",
                                  "--config", os.path.join(t, "containerd.toml")],
                   new_session=True)
        wait_for(lambda: os.path.exists(self.socket) or self.procs["containerd"].poll() is not None,
                 timeout=20, what="containerd's socket")
        if self.procs["containerd"].poll() is not None:
            raise RuntimeError("containerd exited: " + self.log_text("containerd")[-2000:])
        self.cri = CriClient(self.socket)
        wait_for(lambda: self._cri_answers(), timeout=20, what="containerd's CRI")

    def _cri_answers(self):
        try:
            return self.cri.Version(version="v1").runtime_name == "containerd"
        except Exception:  # noqa: BLE001 - not up yet
            return False

    def ctr(self, *args):
        return run(["ctr", "-a", self.socket, "-n", "k8s.io", *args])

    def _import_images(self):
        images = os.path.join(self.tmp, "images")
        pause_root = os.path.join(images, "pause")
        os.makedirs(pause_root)
        run(["cc", "-static", "-O2", "-o", os.path.join(pause_root, "pause"),
             os.path.join(TOOLS, "pause.c")])
        write_image(pause_root, PAUSE_IMAGE, os.path.join(images, "pause.tar"), ["/pause"])
        app_root = os.path.join(images, "app")
        os.makedirs(os.path.join(app_root, "bin"))
        shutil.copy("/bin/busybox", os.path.join(app_root, "bin", "busybox"))
        for tool in ("sh", "sleep", "nc", "cat", "echo", "netstat", "ip", "wget", "true"):
            os.symlink("busybox", os.path.join(app_root, "bin", tool))
        write_image(app_root, APP_IMAGE, os.path.join(images, "app.tar"), ["/bin/sh"])
        for tar in ("pause.tar", "app.tar"):
            self.ctr("images", "import", os.path.join(images, tar))
        self._import_agent_images(images)

    def _import_agent_images(self, images):
        """scripts/build-image.sh's image, and a newer one (a rollout's): the
        same agent, another shunt-proxy binary."""
        podman_dir = os.path.join(images, "podman")
        os.makedirs(podman_dir)
        with open(os.path.join(podman_dir, "storage.conf"), "w") as f:
            f.write(f'[storage]\ndriver = "vfs"\ngraphroot = "{podman_dir}/storage"\n'
                    f'runroot = "{podman_dir}/run"\n')
        with open(os.path.join(podman_dir, "containers.conf"), "w") as f:
            f.write(f'[engine]\nruntime = "runc"\ncgroup_manager = "cgroupfs"\n'
                    f'events_logger = "file"\nevents_logfile_path = "{podman_dir}/events.log"\n'
                    f'tmp_dir = "{podman_dir}/tmp"\n')
        env = dict(os.environ, CONTAINERS_CONF=os.path.join(podman_dir, "containers.conf"),
                   CONTAINERS_STORAGE_CONF=os.path.join(podman_dir, "storage.conf"), SHUNT_BIN=BIN)
        first, newer = AGENT_IMAGES
        try:
            run([os.path.join(REPO, "scripts", "build-image.sh"), first], env=env)
            # The newer image's shunt-proxy is another binary (a few bytes
            # appended), so a rollout hands the pods' proxies over.
            proxy = os.path.join(podman_dir, "shunt-proxy")
            run(["strip", "-o", proxy, os.path.join(BIN, "shunt-proxy")])
            with open(proxy, "ab") as f:
                f.write(b"\nshunt test: the newer image's proxy\n")
            with open(os.path.join(podman_dir, "Containerfile"), "w") as f:
                f.write(f"FROM {first}\nCOPY shunt-proxy /usr/local/bin/shunt-proxy\n"
                        "LABEL io.shunt.test.generation=2\n")
            run(["podman", "build", "--quiet", "-t", newer, "-f",
                 os.path.join(podman_dir, "Containerfile"), podman_dir], env=env)
            for image in AGENT_IMAGES:
                tar = os.path.join(images, image.rsplit(":", 1)[1] + ".tar")
                run(["podman", "save", "--quiet", "--format", "oci-archive", "-o", tar, image],
                    env=env)
                self.ctr("images", "import", tar)
        finally:
            run(["podman", "rmi", "-a", "-f"], check=False, env=env)
            shutil.rmtree(os.path.join(podman_dir, "storage"), ignore_errors=True)

    def _start_servers(self):
        self.server_report = os.path.join(self.tmp, "server.jsonl")
        for port in (7000, 7001):
            ready = os.path.join(self.tmp, f"server{port}.ready")
            self.spawn(f"server{port}", ["nsenter", f"--net={self.node_ns_path}", "python3",
                                         os.path.join(TOOLS, "echo_server.py"), "--port",
                                         str(port), "--report", self.server_report,
                                         "--ready", ready], new_session=True)
            wait_for(lambda: os.path.exists(ready), what="echo server")
        self._start_api_server()

    def _start_api_server(self):
        """The Kubernetes API's stand-in (fake_kube_api.py) on the node's
        127.0.0.1, and the service account's token and CA as the kubelet
        mounts them."""
        t = self.tmp
        self.token_dir = os.path.join(t, "serviceaccount")
        os.makedirs(self.token_dir)
        cert, key = os.path.join(self.token_dir, "ca.crt"), os.path.join(t, "api.key")
        run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
             "-keyout", key, "-out", cert, "-subj", "/CN=kubernetes",
             "-addext", "subjectAltName=IP:127.0.0.1"])
        with open(os.path.join(self.token_dir, "token"), "w") as f:
            f.write(API_TOKEN + "\n")
        self.api_pods = os.path.join(t, "api-pods.json")
        self.api_objects = {}
        self._write_api_pods()
        self.api_report = os.path.join(t, "api.jsonl")
        ready = os.path.join(t, "api.port")
        self.spawn("api", ["nsenter", f"--net={self.node_ns_path}", "python3",
                           os.path.join(TOOLS, "fake_kube_api.py"), "--cert", cert, "--key", key,
                           "--token", API_TOKEN, "--pods", self.api_pods, "--report",
                           self.api_report, "--ready", ready], new_session=True)
        wait_for(lambda: os.path.exists(ready), what="fake API server")
        with open(ready) as f:
            self.api_port = f.read().strip()

    def _write_api_pods(self):
        with open(self.api_pods + ".new", "w") as f:
            json.dump(self.api_objects, f)
        os.rename(self.api_pods + ".new", self.api_pods)

    def set_annotations(self, namespace, name, annotations):
        """The pod's annotations as the API server answers them (every pod
        the test runs exists there, as it would in a cluster)."""
        self.api_objects[f"{namespace}/{name}"] = dict(annotations)
        self._write_api_pods()

    # ---- the agent, as the DaemonSet runs it ----------------------------
    def agent_spec(self, config=None, **which):
        config = dict(config or {}, mode=self.mode, cgroup=self.cgroup, bpffs=self.bpffs)
        # The ConfigMap's 0.0.0.0:15090 is the node's; the test's agent
        # serves its page on a loopback port of its own.
        if not hasattr(self, "metrics_port"):
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                self.metrics_port = s.getsockname()[1]
        config.setdefault("metrics-address", f"127.0.0.1:{self.metrics_port}")
        if self.backend:
            config["backend"] = self.backend
        return AgentPodSpec({"/etc/cni/net.d": self.conf_dir, "/opt/cni/bin": self.bin_dir,
                             "/var/run/netns": os.path.realpath("/var/run/netns")}, config,
                            **which)

    def start_agent(self, image=AGENT_IMAGES[0], wait_ready=True, command=None, config=None,
                    spec=None):
        """The DaemonSet's pod on this node (or `spec`'s); `config` adds to
        the ConfigMap's configuration (as an operator's edit would)."""
        if not os.path.isdir("/run/shunt"):
            self.created_run_shunt = True
        spec = spec or self.agent_spec(config)
        uid = str(uuid.uuid4())
        name = f"shunt-agent-{uid[:5]}"
        config_dir = os.path.join(self.tmp, f"configmap-{uid[:8]}")
        os.makedirs(config_dir)
        sandbox = spec.sandbox_config(name, uid, f"/{self.cgroup_name}/pod{uid}",
                                      os.path.join(self.tmp, "logs", name))
        env = {"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": self.api_port}
        container = spec.container_config(image, config_dir, self.token_dir, env)
        if command is not None:
            container["command"] = list(command)
        self.left_out = spec.left_out
        sandbox_id = self.cri.RunPodSandbox(config=sandbox).pod_sandbox_id
        container_id = self.cri.CreateContainer(pod_sandbox_id=sandbox_id, config=container,
                                                sandbox_config=sandbox).container_id
        self.cri.StartContainer(container_id=container_id)
        self.agent = (sandbox_id, container_id, image, spec)
        self.agent_is_job = command is not None
        if wait_ready:
            wait_for(lambda: self.agent_ready() or not self.agent_running(), timeout=30,
                     what="the agent's readiness probe")
            if not self.agent_running():
                raise RuntimeError("agent container exited: " + self.agent_log()[-3000:])
        return container_id

    def agent_exec(self, *cmd, timeout=20):
        r = self.cri.ExecSync(container_id=self.agent[1], cmd=list(cmd), timeout=timeout)
        return subprocess.CompletedProcess(cmd, r.exit_code, r.stdout.decode(), r.stderr.decode())

    def agent_ready(self):
        return self.agent_exec(*self.agent[3].command("readinessProbe")).returncode == 0

    def agent_running(self):
        status = self.cri.ContainerStatus(container_id=self.agent[1]).status
        return status.state == self.cri.pb.CONTAINER_RUNNING

    def agent_log(self):
        """The container's output (CRI log lines: time, stream, tag, text)."""
        path = self.cri.ContainerStatus(container_id=self.agent[1]).status.log_path
        try:
            with open(path) as f:
                return "".join(line.split(" ", 3)[-1] for line in f)
        except OSError:
            return ""

    def agent_image(self):
        return self.cri.ContainerStatus(container_id=self.agent[1]).status.image.image

    def agent_process_caps(self):
        """The agent process's effective capabilities (names) and no_new_privs,
        read on the node from its pid."""
        info = self.cri.ContainerStatus(container_id=self.agent[1], verbose=True).info["info"]
        pid = json.loads(info)["pid"]
        with open(f"/proc/{pid}/status") as f:
            fields = dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)
        names = {number: name for name, number in CAPABILITY_NUMBERS.items()}
        effective = int(fields["CapEff"], 16)
        unknown = [n for n in range(64) if effective >> n & 1 and n not in names]
        return {"effective": {names[n] for n in names if effective >> n & 1} |
                {f"cap{n}" for n in unknown},
                "no_new_privs": fields["NoNewPrivs"].strip() == "1"}

    def uninstall_from_image(self, image=AGENT_IMAGES[1]):
        """docs/kubernetes.md's uninstall: the agent's DaemonSet deleted (its
        pod's preStop, then SIGTERM), then agent/deploy/uninstall/'s pod: its
        init container to completion, then its container, which finds the
        node clean and holds until it is deleted. (exit code, output) of
        each, in that order."""
        self.stop_agent()
        results = [self.run_to_completion(image, self.agent_spec(
            daemonset="uninstall/daemonset.yaml", container="uninstall"))]
        spec = self.agent_spec(daemonset="uninstall/daemonset.yaml", container="done")
        self.start_agent(image, wait_ready=False, spec=spec)
        self.agent_is_job = True
        wait_for(lambda: "holding until SIGTERM" in self.agent_log(), what="uninstall --hold")
        self.cri.StopContainer(container_id=self.agent[1], timeout=spec.grace_seconds())
        code = self.cri.ContainerStatus(container_id=self.agent[1]).status.exit_code
        results.append((code, self.agent_log()))
        self.stop_agent()
        return results

    def server_seen(self):
        try:
            with open(self.server_report) as f:
                return [json.loads(line) for line in f if line.strip()]
        except FileNotFoundError:
            return []

    def agent_cli(self, *args):
        return self.agent_exec("/usr/local/bin/shunt-agent", *args)

    def enrolled_pods(self):
        r = self.agent_cli("pods", "--json")
        if r.returncode != 0:
            raise RuntimeError(r.stderr)
        return json.loads(r.stdout)["pods"]

    def stop_agent(self):
        """What the kubelet does when the DaemonSet's pod goes: preStop,
        then SIGTERM with the grace period, then the sandbox."""
        if self.agent is None:
            return ""
        sandbox_id, container_id, _, spec = self.agent
        prestop = spec.container.get("lifecycle", {}).get("preStop", {}).get("exec", {})
        if prestop and self.agent_running() and not self.agent_is_job:
            self.agent_exec(*prestop["command"])
        self.cri.StopContainer(container_id=container_id, timeout=spec.grace_seconds())
        log = self.agent_log()
        self.cri.RemoveContainer(container_id=container_id)
        self.cri.StopPodSandbox(pod_sandbox_id=sandbox_id)
        self.cri.RemovePodSandbox(pod_sandbox_id=sandbox_id)
        self.agent = None
        with open(os.path.join(self.tmp, "agent-containers.log"), "a") as f:
            f.write(log)
        return log

    def kill_agent(self):
        """The agent's process killed (SIGKILL, a crash or an OOM kill): the
        container exits, and the kubelet replaces it (here: removes it, as
        a restart of the DaemonSet's pod would)."""
        info = self.cri.ContainerStatus(container_id=self.agent[1], verbose=True).info["info"]
        os.kill(json.loads(info)["pid"], signal.SIGKILL)
        wait_for(lambda: not self.agent_running(), what="the killed agent's container to exit")
        self.agent_is_job = True  # no preStop for a dead container
        self.stop_agent()

    def pod_netns(self, pod):
        """The pod's network namespace as `ip netns` names it."""
        info = self.cri.PodSandboxStatus(pod_sandbox_id=pod.sandbox_id, verbose=True).info["info"]
        for ns in json.loads(info)["runtimeSpec"]["linux"]["namespaces"]:
            if ns["type"] == "network":
                return os.path.basename(ns["path"])
        raise RuntimeError("the pod has no network namespace")

    def in_pod_background(self, pod, cmd):
        """A host program in the pod's network namespace and cgroup (so its
        connections are the pod's), in the background."""
        return subprocess.Popen(["ip", "netns", "exec", self.pod_netns(pod), *cmd],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                preexec_fn=joining_cgroup(self.cgroup))

    def run_to_completion(self, image, spec, timeout=60):
        """A container that ends by itself (an init container, a Job's):
        (exit code, output)."""
        self.start_agent(image, wait_ready=False, spec=spec)
        self.agent_is_job = True
        wait_for(lambda: not self.agent_running(), timeout=timeout,
                 what=" ".join(spec.container["command"]))
        status = self.cri.ContainerStatus(container_id=self.agent[1]).status
        output = self.agent_log()
        self.stop_agent()
        return status.exit_code, output

    # ---- pods ---------------------------------------------------------
    def run_pod(self, name, namespace="default", command=("sleep", "600"), annotations=None,
                user=None):
        """What the kubelet does for a pod: its sandbox (the CNI chain runs
        there; the pod's annotations go with it, as the kubelet sends them),
        then its container (as `user`, a uid, when given)."""
        if annotations is not None or f"{namespace}/{name}" not in self.api_objects:
            self.set_annotations(namespace, name, annotations or {})
        uid = str(uuid.uuid4())
        config = {"metadata": {"name": name, "namespace": namespace, "uid": uid},
                  "hostname": name, "log_directory": os.path.join(self.tmp, "logs", name),
                  "labels": {"io.kubernetes.pod.name": name,
                             "io.kubernetes.pod.namespace": namespace},
                  "annotations": self.api_objects[f"{namespace}/{name}"],
                  "linux": {"cgroup_parent": f"/{self.cgroup_name}/pod{uid}",
                            "security_context": {"namespace_options": {"pid": 1}}}}
        sandbox_id = self.cri.RunPodSandbox(config=config).pod_sandbox_id
        pod = Pod(name, namespace, sandbox_id, None, config)
        self.pods[sandbox_id] = pod
        container = {"metadata": {"name": "app"}, "image": {"image": APP_IMAGE},
                     "command": list(command), "log_path": "app/0.log"}
        if user is not None:
            container["linux"] = {"security_context": {"run_as_user": {"value": user}}}
        pod.container_id = self.cri.CreateContainer(
            pod_sandbox_id=sandbox_id, sandbox_config=config, config=container).container_id
        self.cri.StartContainer(container_id=pod.container_id)
        return pod

    def remove_pod(self, pod):
        self.cri.StopPodSandbox(pod_sandbox_id=pod.sandbox_id)
        self.cri.RemovePodSandbox(pod_sandbox_id=pod.sandbox_id)
        self.pods.pop(pod.sandbox_id, None)

    def pod_ips(self, pod):
        network = self.cri.PodSandboxStatus(pod_sandbox_id=pod.sandbox_id).status.network
        return [network.ip] + [a.ip for a in network.additional_ips]

    def exec(self, pod, script, timeout=20):
        r = self.cri.ExecSync(container_id=pod.container_id, cmd=["sh", "-c", script],
                              timeout=timeout)
        return subprocess.CompletedProcess(script, r.exit_code, r.stdout.decode(),
                                           r.stderr.decode())

    def echo(self, pod, host, port=7000, text="ping"):
        return self.exec(pod, f"echo {text} | nc -w 3 {host} {port}").stdout.strip()

    def access_log(self, pod):
        path = os.path.join("/run/shunt/state", "pods", pod.sandbox_id, "access.log")
        try:
            with open(path) as f:
                return [json.loads(line) for line in f if line.strip()]
        except FileNotFoundError:
            return []

    def cni_cache_entries(self):
        cache = "/var/lib/cni/results"
        return [f for f in os.listdir(cache) if f.startswith(self.network + "-")] \
            if os.path.isdir(cache) else []

    # ---- clean-up -----------------------------------------------------
    def close(self):
        try:
            self._remove_containers()
        finally:
            self._stop_processes()
            self._remove_node_state()
        problems, self.problems = self.problems, []
        if problems:
            raise AssertionError("; ".join(problems))

    def _remove_containers(self):
        if self.cri is None:
            return
        steps = [(f"pod {pod.name}", lambda pod=pod: self.remove_pod(pod))
                 for pod in list(self.pods.values())]
        steps.append(("the agent's pod", self.stop_agent))
        steps.append(("uninstall", self._uninstall_leftovers))
        steps.append(("the remaining sandboxes", self._remove_all_sandboxes))
        for what, step in steps:
            try:
                step()
            except Exception as e:  # noqa: BLE001 - clean up the rest, then say it
                self.problems.append(f"removing {what}: {e}")
        self.cri.close()

    def _uninstall_leftovers(self):
        """Whatever a failed test left of shunt: the build's uninstall."""
        if os.path.exists(self.bpffs) or os.path.exists("/run/shunt/agent.sock"):
            run([AGENT, "uninstall", "--cgroup", self.cgroup, "--bpffs", self.bpffs,
                 "--socket", "/run/shunt/agent.sock", "--state-dir", "/run/shunt/state",
                 "--cni-conf-dir", self.conf_dir, "--cni-bin-dir", self.bin_dir], check=False)

    def _remove_all_sandboxes(self):
        for sandbox in self.cri.ListPodSandbox().items:
            self.cri.StopPodSandbox(pod_sandbox_id=sandbox.id)
            self.cri.RemovePodSandbox(pod_sandbox_id=sandbox.id)

    def _kill_cgroup_processes(self):
        """Processes still in the node's cgroups (a container whose shim
        went): killed, and said."""
        for root, _, _ in os.walk(self.cgroup, topdown=False):
            try:
                with open(os.path.join(root, "cgroup.procs")) as f:
                    pids = [int(p) for p in f.read().split()]
            except OSError:
                continue
            for pid in pids:
                self.problems.append(f"process {pid} left in {root}")
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def _stop_processes(self):
        containerd = self.procs.get("containerd")
        if containerd is not None and containerd.poll() is None:
            containerd.send_signal(signal.SIGTERM)
            try:
                containerd.wait(timeout=15)
            except subprocess.TimeoutExpired:
                pass
        for name, p in list(self.procs.items()):
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        # The shims outlive containerd by design: those of this node go too.
        ps = run(["ps", "-eo", "pid,args"], check=False).stdout.splitlines()[1:]
        for line in ps:
            pid, args = line.split(None, 1)
            if "containerd-shim" in args and self.tmp in args:
                self.problems.append(f"containerd shim left: {args[:120]}")
                os.kill(int(pid), signal.SIGKILL)

    def _remove_node_state(self):
        with open("/proc/self/mountinfo") as f:
            mounts = [line.split()[4] for line in f if self.tmp in line]
        for mount in reversed(mounts):
            self.problems.append(f"mount {mount} left")
            run(["umount", "-l", mount], check=False)
        now = set(os.listdir("/run/netns")) if os.path.isdir("/run/netns") else set()
        for ns in now - self.netns_before:
            if ns.startswith("cni-"):
                self.problems.append(f"network namespace {ns} left")
                run(["ip", "netns", "del", ns], check=False)
        run(["ip", "netns", "del", self.node_ns], check=False)
        for f in self.cni_cache_entries():
            self.problems.append(f"CNI cache entry {f} left")
            os.unlink(os.path.join("/var/lib/cni/results", f))
        self._kill_cgroup_processes()
        for mount in cgroup_mounts():
            remove_cgroup_tree(os.path.join(mount, self.cgroup_name))
        if os.path.isdir(self.cgroup):
            self.problems.append(f"cgroup {self.cgroup} left")
        if os.path.exists(self.bpffs):
            self.problems.append(f"bpffs dir {self.bpffs} left")
        self._restore_bpffs()
        if self.created_run_shunt:
            left = [os.path.join(r, f) for r, _, fs in os.walk("/run/shunt") for f in fs]
            if left:
                self.problems.append(f"/run/shunt holds {left}")
            shutil.rmtree("/run/shunt", ignore_errors=True)
        shutil.rmtree(self.tmp, ignore_errors=True)
