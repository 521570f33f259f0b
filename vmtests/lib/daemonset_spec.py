"""The agent's pod as the kubelet would hand it to the container runtime,
made from agent/deploy/ (the DaemonSet and the ConfigMap), so a CRI
scenario breaks when the manifests and what works drift apart.

What the test changes is listed here and nowhere else:
- NODE_PATH_OVERRIDES: host paths the test's own containerd uses instead
  of the node's (its CNI directories), and /var/run/netns by its real path
  (containerd checks the propagation of the mount holding the path as
  written, without resolving the /var/run link; /run/netns is the shared
  mount on a node whose / is private).
- CONFIG_OVERRIDES: the mode, the cgroup (the test's own, never the
  machine's root) and the bpffs directory.
- capabilities the machine's bounding set lacks are left out and reported
  (this machine has no CAP_SYS_RESOURCE; the kubelet would fail the pod).
Everything else (command, security context, volumes, mount propagation,
probes, preStop, grace period, configuration) is the manifests'."""
import os

import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEPLOY = os.path.join(REPO, "agent", "deploy")

PROPAGATION = {None: 0, "None": 0, "HostToContainer": 1, "Bidirectional": 2}
# The kubelet's defaults for a container that is not privileged (procMount Default).
MASKED_PATHS = ["/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
                "/sys/firmware"]
READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
CAPABILITY_NUMBERS = {"CHOWN": 0, "DAC_OVERRIDE": 1, "NET_ADMIN": 12, "NET_RAW": 13,
                      "SYS_PTRACE": 19, "SYS_ADMIN": 21, "SYS_RESOURCE": 24, "PERFMON": 38,
                      "BPF": 39}


def manifest(name, kind):
    """The object of `kind` in agent/deploy/`name`."""
    with open(os.path.join(DEPLOY, name)) as f:
        (doc,) = [d for d in yaml.safe_load_all(f) if d and d["kind"] == kind]
    return doc


def pod_containers(daemonset):
    pod = daemonset["spec"]["template"]["spec"]
    return {c["name"]: c for c in pod.get("initContainers", []) + pod["containers"]}


def bounding_set():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("CapBnd:"):
                return int(line.split()[1], 16)
    return 0


class AgentPodSpec:
    """A DaemonSet's pod (agent/deploy/daemonset.yaml unless told), one of
    its containers (the first unless told), for one node of the test."""

    def __init__(self, node_path_overrides, config_overrides, daemonset="daemonset.yaml",
                 container=None):
        self.daemonset = manifest(daemonset, "DaemonSet")
        self.configmap = manifest("configmap.yaml", "ConfigMap")
        self.pod = self.daemonset["spec"]["template"]["spec"]
        containers = pod_containers(self.daemonset)
        self.container = containers[container] if container else self.pod["containers"][0]
        self.node_paths = dict(node_path_overrides)
        self.config_overrides = dict(config_overrides)
        self.left_out = []

    # ---- the pieces ---------------------------------------------------
    def node_path(self, host_path):
        for prefix, replacement in self.node_paths.items():
            if host_path == prefix or host_path.startswith(prefix + "/"):
                return replacement + host_path[len(prefix):]
        return host_path

    def config_yaml(self):
        config = yaml.safe_load(self.configmap["data"]["config.yaml"])
        config.update(self.config_overrides)
        return yaml.safe_dump(config, sort_keys=False)

    def command(self, probe):
        return self.container[probe]["exec"]["command"]

    def pid_namespace(self):
        """NODE with hostPID, else CONTAINER (the kubelet's default)."""
        return 2 if self.pod.get("hostPID") else 1

    def grace_seconds(self):
        return int(self.pod.get("terminationGracePeriodSeconds", 30))

    def capabilities(self):
        caps = self.container["securityContext"]["capabilities"]
        have = bounding_set()
        add = []
        for cap in caps.get("add", []):
            number = CAPABILITY_NUMBERS.get(cap)
            if number is not None and not have >> number & 1:
                self.left_out.append(f"capability {cap} (not in this machine's bounding set)")
                continue
            add.append(cap)
        return {"add_capabilities": add, "drop_capabilities": caps.get("drop", [])}

    def mounts(self, config_dir, token_dir):
        """The container's mounts: its volumes (hostPath through the node's
        overrides, the ConfigMap as a directory of its keys) and the service
        account's token, as the kubelet adds it."""
        volumes = {v["name"]: v for v in self.pod["volumes"]}
        out = []
        for m in self.container["volumeMounts"]:
            volume = volumes[m["name"]]
            if "configMap" in volume:
                host = config_dir
            else:
                host = self.node_path(volume["hostPath"]["path"])
                kind = volume["hostPath"].get("type", "")
                if kind == "DirectoryOrCreate":
                    os.makedirs(host, exist_ok=True)
                elif kind == "FileOrCreate" and not os.path.exists(host):
                    open(host, "a").close()
            out.append({"container_path": m["mountPath"], "host_path": host,
                        "readonly": bool(m.get("readOnly", False)),
                        "propagation": PROPAGATION[m.get("mountPropagation")]})
        if self.pod.get("automountServiceAccountToken", True):
            out.append({"container_path": SERVICE_ACCOUNT_DIR, "host_path": token_dir,
                        "readonly": True})
        return out

    # ---- what the kubelet sends ---------------------------------------
    def sandbox_config(self, name, uid, cgroup_parent, log_dir):
        meta = self.daemonset["metadata"]
        template = self.daemonset["spec"]["template"]["metadata"]
        network = 2 if self.pod.get("hostNetwork") else 0
        return {"metadata": {"name": name, "namespace": meta["namespace"], "uid": uid},
                # The kubelet sends no hostname for a pod on the node's network.
                "hostname": "" if network == 2 else name,
                "log_directory": log_dir,
                "labels": dict(template.get("labels", {}), **{
                    "io.kubernetes.pod.name": name,
                    "io.kubernetes.pod.namespace": meta["namespace"],
                    "io.kubernetes.pod.uid": uid}),
                "annotations": dict(template.get("annotations", {})),
                "linux": {"cgroup_parent": cgroup_parent,
                          "security_context": {"namespace_options": {
                              "network": network, "pid": self.pid_namespace()}}}}

    def container_config(self, image, config_dir, token_dir, env):
        sc = self.container["securityContext"]
        security = {"capabilities": self.capabilities(),
                    "privileged": bool(sc.get("privileged", False)),
                    "readonly_rootfs": bool(sc.get("readOnlyRootFilesystem", False)),
                    "no_new_privs": not sc.get("allowPrivilegeEscalation", True),
                    "namespace_options": {"network": 2 if self.pod.get("hostNetwork") else 0,
                                          "pid": self.pid_namespace()},
                    "masked_paths": MASKED_PATHS, "readonly_paths": READONLY_PATHS}
        if "runAsUser" in sc:
            security["run_as_user"] = {"value": int(sc["runAsUser"])}
        with open(os.path.join(config_dir, "config.yaml"), "w") as f:
            f.write(self.config_yaml())
        return {"metadata": {"name": self.container["name"]},
                "image": {"image": image},
                "command": self.container.get("command", []),
                "args": self.container.get("args", []),
                "envs": [{"key": k, "value": v} for k, v in env.items()],
                "mounts": self.mounts(config_dir, token_dir),
                "log_path": f"{self.container['name']}/0.log",
                "linux": {"security_context": security}}
