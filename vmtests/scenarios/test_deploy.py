"""agent/deploy: the Kubernetes manifests hold what the DaemonSet needs and
nothing more (no cluster can run here, so their content is checked), the
ConfigMap's configuration is one the agent accepts, and the Containerfile
builds an image with podman, without a registry, whose binaries and tools
run."""
import json
import re
import os
import shutil
import subprocess
import tempfile
import unittest

import yaml

from shunt_env import AGENT, BIN

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEPLOY = os.path.join(REPO, "agent", "deploy")


def documents():
    docs = []
    for name in sorted(os.listdir(DEPLOY)):
        if name.endswith(".yaml") and name != "kustomization.yaml":
            with open(os.path.join(DEPLOY, name)) as f:
                docs += [(name, d) for d in yaml.safe_load_all(f) if d]
    return docs


class ManifestTest(unittest.TestCase):
    def setUp(self):
        self.docs = documents()
        self.by_kind = {d["kind"]: d for _, d in self.docs}

    def test_every_object_is_there_and_listed(self):
        self.assertEqual(sorted(self.by_kind), ["ClusterRole", "ClusterRoleBinding", "ConfigMap",
                                                "DaemonSet", "Namespace", "ServiceAccount"])
        with open(os.path.join(DEPLOY, "kustomization.yaml")) as f:
            listed = yaml.safe_load(f)["resources"]
        self.assertEqual(sorted(listed), sorted({n for n, _ in self.docs}))

    def test_rbac_reads_pods_and_creates_events_only(self):
        rules = self.by_kind["ClusterRole"]["rules"]
        self.assertEqual(rules, [{"apiGroups": [""], "resources": ["pods"],
                                  "verbs": ["get", "list", "watch"]},
                                 {"apiGroups": [""], "resources": ["events"],
                                  "verbs": ["create"]}])
        subject = self.by_kind["ClusterRoleBinding"]["subjects"][0]
        self.assertEqual(subject["name"], self.by_kind["ServiceAccount"]["metadata"]["name"])

    def test_daemonset(self):
        ds = self.by_kind["DaemonSet"]
        self.assertEqual(ds["spec"]["updateStrategy"]["type"], "RollingUpdate")
        pod = ds["spec"]["template"]["spec"]
        self.assertEqual(pod["serviceAccountName"], "shunt-agent")
        self.assertTrue(pod["hostNetwork"])  # it must not wait for the CNI chain it installs
        self.assertTrue(pod["hostPID"])  # the pods' proxies outlive the agent's container
        (c,) = pod["containers"]
        sc = c["securityContext"]
        self.assertFalse(sc["privileged"])
        self.assertEqual(sc["capabilities"]["drop"], ["ALL"])
        self.assertEqual(sorted(sc["capabilities"]["add"]),
                         ["BPF", "NET_ADMIN", "PERFMON", "SYS_ADMIN", "SYS_PTRACE", "SYS_RESOURCE"])
        self.assertEqual(c["readinessProbe"]["exec"]["command"][1:], ["ready"])
        self.assertEqual(c["livenessProbe"]["exec"]["command"][1:], ["status"])
        self.assertEqual(c["lifecycle"]["preStop"]["exec"]["command"][1:], ["stop"])
        host_paths = {v["hostPath"]["path"] for v in pod["volumes"] if "hostPath" in v}
        for path in ("/sys/fs/bpf", "/sys/fs/cgroup", "/etc/cni/net.d", "/opt/cni/bin",
                     "/var/run/netns", "/run/shunt", "/var/lib/cni"):
            self.assertIn(path, host_paths)
        mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
        self.assertEqual(mounts["/var/run/netns"]["mountPropagation"], "HostToContainer")
        # The socket and the state live on the host, where shunt-cni runs.
        self.assertIn("/run/shunt", mounts)

    def test_uninstall_daemonset_has_the_agents_mounts_and_rights(self):
        """agent/deploy/uninstall/ runs `shunt-agent uninstall` where the agent
        ran: the same volumes, mounts, security context and configuration;
        test_cri runs it through containerd."""
        with open(os.path.join(DEPLOY, "uninstall", "daemonset.yaml")) as f:
            (ds,) = [d for d in yaml.safe_load_all(f) if d]
        agent = self.by_kind["DaemonSet"]["spec"]["template"]["spec"]
        pod = ds["spec"]["template"]["spec"]
        self.assertEqual(ds["metadata"]["namespace"], self.by_kind["Namespace"]["metadata"]["name"])
        self.assertEqual(pod["volumes"], agent["volumes"])
        self.assertTrue(pod["hostNetwork"])
        self.assertEqual(pod["hostPID"], agent["hostPID"])
        (agent_container,) = agent["containers"]
        (init,) = pod["initContainers"]
        (hold,) = pod["containers"]
        config = agent_container["command"][agent_container["command"].index("--config") + 1]
        self.assertEqual(init["command"][1:], ["uninstall", "--config", config])
        self.assertEqual(hold["command"][1:], ["uninstall", "--config", config, "--hold"])
        for c in (init, hold):
            self.assertEqual(c["volumeMounts"], agent_container["volumeMounts"])
            self.assertEqual(c["securityContext"], agent_container["securityContext"])
            self.assertEqual(c["image"], agent_container["image"])

    def test_uninstall_can_rewrite_libcnis_cache(self):
        """uninstall takes shunt-cni out of the chains libcni recorded (found
        by test_cri: a read-only cache volume made it fail)."""
        (c,) = self.by_kind["DaemonSet"]["spec"]["template"]["spec"]["containers"]
        mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
        self.assertFalse(mounts["/var/lib/cni"].get("readOnly", False))
        self.assertEqual(mounts["/sys/fs/bpf"]["mountPropagation"], "HostToContainer")

    def test_metrics_port_is_the_one_scraped(self):
        config = yaml.safe_load(self.by_kind["ConfigMap"]["data"]["config.yaml"])
        port = config["metrics-address"].rpartition(":")[2]
        template = self.by_kind["DaemonSet"]["spec"]["template"]
        self.assertEqual(template["metadata"]["annotations"]["prometheus.io/port"], port)
        self.assertEqual(template["metadata"]["annotations"]["prometheus.io/scrape"], "true")
        (c,) = template["spec"]["containers"]
        self.assertIn({"name": "metrics", "containerPort": int(port), "protocol": "TCP"},
                      c["ports"])
        env = {e["name"]: e for e in c["env"]}
        self.assertEqual(env["NODE_NAME"]["valueFrom"]["fieldRef"]["fieldPath"], "spec.nodeName")
        with open(os.path.join(DEPLOY, "monitoring", "podmonitor.yaml")) as f:
            monitor = yaml.safe_load(f)
        self.assertEqual(monitor["kind"], "PodMonitor")
        self.assertEqual(monitor["spec"]["podMetricsEndpoints"][0]["port"], "metrics")
        self.assertEqual(monitor["spec"]["selector"]["matchLabels"],
                         template["metadata"]["labels"])
        with open(os.path.join(DEPLOY, "monitoring", "grafana-dashboard.json")) as f:
            dashboard = json.load(f)
        exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
        self.assertTrue(exprs)
        # Every metric a panel asks for is one the agent serves (docs list).
        with open(os.path.join(os.path.dirname(DEPLOY), "..", "docs", "operations.md")) as f:
            documented = f.read()
        for expr in exprs:
            for name in re.findall(r"\b(shunt_[a-z_]+?)(?:_bucket|_sum|_count)?\b[{\[()]", expr):
                self.assertIn(f"`{name}", documented, f"{name} of {expr!r} is not documented")

    def test_configmap_is_accepted_by_the_agent(self):
        config = self.by_kind["ConfigMap"]["data"]["config.yaml"]
        with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
            f.write(config)
            f.flush()
            r = subprocess.run([AGENT, "run", "--config", f.name, "--check"],
                               capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        parsed = yaml.safe_load(config)
        self.assertEqual(parsed["socket"], "/run/shunt/agent.sock")
        # A bad value is refused with the key named.
        with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
            f.write(config.replace('exclude-outbound-ports: "22"', 'proxy-port: "99999"'))
            f.flush()
            r = subprocess.run([AGENT, "run", "--config", f.name, "--check"],
                               capture_output=True, text=True)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("cni-defaults", r.stderr)


class ImageTest(unittest.TestCase):
    """scripts/build-image.sh with podman configured in a throwaway directory."""

    @classmethod
    def setUpClass(cls):
        if shutil.which("podman") is None:
            raise unittest.SkipTest("podman is not installed (scripts/setup.sh installs it)")
        cls.tmp = tempfile.mkdtemp(prefix="shunt-image-test-")
        cls.addClassCleanup(shutil.rmtree, cls.tmp, True)
        with open(os.path.join(cls.tmp, "storage.conf"), "w") as f:
            f.write(f'[storage]\ndriver = "vfs"\ngraphroot = "{cls.tmp}/storage"\n'
                    f'runroot = "{cls.tmp}/run"\n')
        with open(os.path.join(cls.tmp, "containers.conf"), "w") as f:
            f.write('[containers]\ndefault_ulimits = ["nofile=4096:4096", "nproc=4096:4096"]\n'
                    '[engine]\nruntime = "runc"\ncgroup_manager = "cgroupfs"\n'
                    f'events_logger = "file"\nevents_logfile_path = "{cls.tmp}/events.log"\n'
                    f'tmp_dir = "{cls.tmp}/tmp"\n[network]\nnetwork_backend = "cni"\n')
        cls.env = dict(os.environ, CONTAINERS_CONF=os.path.join(cls.tmp, "containers.conf"),
                       CONTAINERS_STORAGE_CONF=os.path.join(cls.tmp, "storage.conf"),
                       SHUNT_BIN=BIN)
        cls.addClassCleanup(cls.podman, "rmi", "-a", "-f")
        r = subprocess.run([os.path.join(REPO, "scripts", "build-image.sh"), "localhost/shunt:test"],
                           capture_output=True, text=True, env=cls.env)
        if r.returncode != 0:
            raise AssertionError("build-image.sh failed: " + r.stdout + r.stderr)

    @classmethod
    def podman(cls, *args, stdin=None):
        return subprocess.run(["podman", *args], capture_output=True, text=True, env=cls.env,
                              input=stdin)

    def run_in_image(self, entrypoint, *args, stdin=None, env=()):
        extra = [a for e in env for a in ("-e", e)]
        return self.podman("run", "--rm", "-i", "--network", "none", *extra, "--entrypoint",
                           entrypoint, "localhost/shunt:test", *args, stdin=stdin)

    def test_binaries_and_tools_run(self):
        for binary in ("shunt-agent", "shunt-proxy", "shunt-cni"):
            r = self.run_in_image(f"/usr/local/bin/{binary}", "--help")
            self.assertEqual(r.returncode, 0, r.stderr)
        for tool in ("iptables-legacy-save", "ip6tables-nft-restore", "nft", "ip"):
            r = self.run_in_image(f"/usr/sbin/{tool}" if tool != "ip" else "/usr/bin/ip",
                                  "--version" if tool != "ip" else "-V")
            self.assertEqual(r.returncode, 0, tool + ": " + r.stderr)
        r = self.run_in_image("/usr/local/bin/shunt-cni", stdin='{"cniVersion":"1.0.0"}',
                              env=["CNI_COMMAND=VERSION"])
        self.assertIn('"supportedVersions"', r.stdout)

    def test_default_command_is_the_agent_with_the_configmaps_path(self):
        inspect = self.podman("image", "inspect", "--format", "{{json .Config.Entrypoint}} "
                              "{{json .Config.Cmd}}", "localhost/shunt:test")
        self.assertEqual(inspect.stdout.strip(), '["/usr/local/bin/shunt-agent"] '
                         '["run","--config","/etc/shunt/config.yaml"]')


if __name__ == "__main__":
    unittest.main(verbosity=2)
