"""The Kubernetes path under a real container runtime (docs/kubernetes.md):
rootful podman with its CNI backend runs containers on a conflist of
bridge + host-local, into which the agent chains shunt-cni. Containers'
connections go through their own per-pod proxy (the access log has the
original destinations); exit runs DEL; a network reload keeps the pod
enrolled; an agent that is down makes ADD fail (or lets the pod start
unredirected when so configured, and enrolls it once it is back); an agent
restart keeps the pods. Runs in the ebpf mode and in the tproxy fallback
(SHUNT_TEST_MODE)."""
import json
import os
import signal
import time
import unittest
import urllib.request

from control import control_request
from podman_env import PodmanNode
from shunt_env import AGENT, TOOLS, run, wait_for


class KubernetesTest(unittest.TestCase):
    agent_args = ["--cni-defaults", "exclude-outbound-ports=7001"]

    @classmethod
    def setUpClass(cls):
        cls.node = PodmanNode("k8s", agent_args=cls.agent_args)
        why = cls.node.supported()
        if why:
            print(f"SHUNT-MODE-UNSUPPORTED: {why}", flush=True)
            raise unittest.SkipTest(why)
        cls.addClassCleanup(cls.node.close)
        cls.node.start()

    def tearDown(self):
        self.node.podman("rm", "-a", "-f", "-t", "0", check=False)
        if "agent" not in self.node.procs or self.node.procs["agent"].poll() is not None:
            self.node.start_agent()
        wait_for(lambda: self.node.pods() == [], what="no pod left enrolled")

    def container(self, name, **kw):
        self.node.run_container(name, "sleep", "600", **kw)
        return self.node.container_id(name)

    def assert_proxied(self, cid, name, host, port=7000):
        before = len(self.node.access_log(cid))
        self.assertEqual(self.node.echo(name, host, port), "ping")
        wait_for(lambda: len(self.node.access_log(cid)) > before, what="access log line")
        entry = self.node.access_log(cid)[-1]
        bracketed = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        self.assertEqual(entry["result"], "ok", entry)
        self.assertEqual(entry["original_dst"], bracketed, entry)
        return entry

    def assert_not_proxied(self, cid, name, host, port):
        before = len(self.node.access_log(cid))
        self.assertEqual(self.node.echo(name, host, port), "ping")
        time.sleep(0.2)
        self.assertEqual(len(self.node.access_log(cid)), before)

    # ---- the conflist and the pod's traffic ---------------------------
    def test_conflist_is_chained_in_place(self):
        doc = self.node.read_conflist()
        self.assertEqual([p["type"] for p in doc["plugins"]], ["bridge", "shunt-cni"])
        self.assertEqual(doc["plugins"][0], self.node.conflist()["plugins"][0])
        self.assertEqual(doc["plugins"][1]["agentSocket"], self.node.socket)
        self.assertEqual(doc["plugins"][1]["defaults"], {"exclude-outbound-ports": "7001"})
        self.assertTrue(os.access(os.path.join(self.node.bin_dir, "shunt-cni"), os.X_OK))

    def test_rewritten_conflist_gets_shunt_back(self):
        self.node.write_conflist()  # what a network plugin does on upgrade
        wait_for(lambda: [p["type"] for p in self.node.read_conflist()["plugins"]]
                 == ["bridge", "shunt-cni"], timeout=5, what="shunt-cni back in the conflist")

    def test_ipv4_and_ipv6_through_the_pods_proxy(self):
        cid = self.container("c-traffic")
        pods = self.node.pods()
        self.assertEqual([p["container_id"] for p in pods], [cid])
        self.assertTrue(pods[0]["proxy_alive"])
        ips = self.node.container_ips("c-traffic")
        self.assertEqual(sorted(pods[0]["ips"]), sorted(
            a for a in (f"{ip}/24" if "." in ip else f"{ip}/64" for ip in ips)))
        for host in (self.node.gateway4, self.node.gateway6):
            entry = self.assert_proxied(cid, "c-traffic", host)
            self.assertEqual(entry["listener"], "outbound")
        # The server saw the pod's own address: the proxy runs in the pod's namespace.
        self.assertIn(self.node.server_seen()[-1]["peer"][0], ips)

    def test_pod_starts_while_the_control_socket_is_flooded(self):
        """Issue 15.2: one silent client used to hold the control socket, and
        every CNI ADD queued behind it until the runtime gave up."""
        import socket as so
        clients = []

        def connect(data=b""):
            s = so.socket(so.AF_UNIX, so.SOCK_STREAM)
            s.connect(self.node.socket)
            if data:
                s.sendall(data)
            clients.append(s)

        try:
            for _ in range(300):
                connect()
            for _ in range(50):
                connect(b'{"op":"cni_a')
            for _ in range(50):
                connect(b"\xff\xfe garbage\n")
            began = time.monotonic()
            cid = self.container("flooded")
            self.assertLess(time.monotonic() - began, 30)
            self.assert_proxied(cid, "flooded", self.node.gateway4)
        finally:
            for s in clients:
                s.close()

    def test_conflist_default_excludes_a_port(self):
        cid = self.container("c-default")
        self.assert_not_proxied(cid, "c-default", self.node.gateway4, 7001)
        self.assert_proxied(cid, "c-default", self.node.gateway4, 7000)
        pod = self.node.pods()[0]
        self.assertEqual(pod["settings"], {"conflist defaults.exclude-outbound-ports": "7001"})

    def test_per_container_overrides(self):
        cid = self.container("c-override", cni_args="SHUNT_EXCLUDE_OUTBOUND_PORTS=7000;"
                             "SHUNT_PROXY_TYPE=forward;SHUNT_PROXY_PROTOCOL=http")
        self.assert_not_proxied(cid, "c-override", self.node.gateway4, 7000)
        self.assert_proxied(cid, "c-override", self.node.gateway4, 7001)
        # The forward HTTP proxy the override asked for listens in the pod.
        out = self.node.exec("c-override", "netstat -ltn").stdout
        self.assertIn(":4140", out)
        settings = self.node.pods()[0]["settings"]
        self.assertEqual(settings["CNI_ARGS SHUNT_PROXY_TYPE"], "forward")

    def test_proxy_down_and_the_guard_per_pod(self):
        """Issue 17: the pod's proxy-down policy and guard from CNI_ARGS reach
        its enrolment; its proxy runs in the proxies' cgroup, so its own
        connections are exempt and the pod's are proxied."""
        cid = self.container("c-pdown", cni_args="SHUNT_PROXY_DOWN=open;SHUNT_GUARD_SOCKOPTS=false")
        self.assert_proxied(cid, "c-pdown", self.node.gateway4)
        entries = self.node.status()["enrolled"]
        self.assertEqual(len(entries), 1, entries)
        self.assertEqual(entries[0]["policy"]["proxy_down"], "open")
        self.assertFalse(entries[0]["policy"]["guard_sockopts"])
        wait_for(lambda: self.node.status()["enrolled"][0]["proxy"] == "up", what="proxy up")
        self.assertTrue(self.node.status()["exemption"].startswith("cgroup ("))

    def test_inject_false_runs_unredirected(self):
        self.container("c-noinject", cni_args="SHUNT_INJECT=false")
        self.assertEqual(self.node.pods(), [])
        self.assertEqual(self.node.echo("c-noinject", self.node.gateway4), "ping")
        self.assertIn(self.node.server_seen()[-1]["peer"][0], self.node.container_ips("c-noinject"))

    def test_invalid_override_is_refused_and_nothing_is_left(self):
        r = self.node.run_container("c-bad", "sleep", "600", cni_args="SHUNT_PROXY_PORT=99999",
                                    check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("CNI_ARGS SHUNT_PROXY_PORT", r.stderr)
        self.assertEqual(self.node.pods(), [])
        self.assertEqual(self.node.status()["enrolled"], [])
        r = self.node.run_container("c-bad2", "sleep", "600",
                                    cni_args="SHUNT_PROXY_TYPE=forward;SHUNT_PROXY_PROTOCOL=tcp",
                                    check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("tcp applies only to reverse proxies", r.stderr)
        self.assertIn("reason=InvalidSettings", self.node.log_text("agent"))
        self.assertEqual(self.node.pods(), [])

    # ---- the pod's life ---------------------------------------------------
    def test_exit_runs_del_and_leaves_nothing(self):
        r = self.node.run_container("c-exit", "sh", "-c",
                                    f"echo ping | nc -w 3 {self.node.gateway4} 7000", detach=False)
        self.assertEqual(r.stdout.strip(), "ping")
        self.assertEqual(self.node.pods(), [])
        self.assertEqual(self.node.status()["enrolled"], [])
        self.assertEqual(os.listdir(os.path.join(self.node.state_dir, "pods")), [])
        self.assertFalse(self.proxy_processes())

    def proxy_processes(self):
        found = []
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    args = f.read().split(b"\0")
            except OSError:
                continue
            if args and args[0] == b"shunt-proxy" and self.node.state_dir.encode() in b" ".join(args):
                found.append(int(pid))
        return found

    def test_network_reload_keeps_the_pod_enrolled(self):
        cid = self.container("c-reload")
        before = self.node.pods()[0]["proxy_pid"]
        self.node.podman("network", "reload", "c-reload")
        pods = self.node.pods()
        self.assertEqual([p["container_id"] for p in pods], [cid])
        self.assertNotEqual(pods[0]["proxy_pid"], before)
        self.assertEqual(len(self.node.status()["enrolled"]), 1)
        self.assert_proxied(cid, "c-reload", self.node.gateway4)
        self.assertEqual(len(self.proxy_processes()), 1)

    def test_check_verifies_the_enrolment(self):
        cid = self.container("c-check")
        pod = self.node.pods()[0]
        request = {"op": "cni_check", "container_id": cid, "netns": pod["netns"]}
        self.assertTrue(self.agent_call(request)["ok"])
        os.kill(pod["proxy_pid"], signal.SIGKILL)
        # The agent starts the proxy again; CHECK passes once it listens.
        wait_for(lambda: self.node.pods()[0]["proxy_restarts"] == 1
                 and self.node.pods()[0]["proxy_alive"], what="proxy restarted")
        self.assertTrue(self.agent_call(request)["ok"])
        self.assert_proxied(cid, "c-check", self.node.gateway4)
        self.assertIn("reason=ProxyExited", self.node.log_text("agent"))

    def plugin(self, command, conf, netns="", container_id="", args=""):
        """The installed shunt-cni, run the way a runtime runs it."""
        import subprocess
        env = {"CNI_COMMAND": command, "CNI_PATH": self.node.bin_dir, "CNI_IFNAME": "eth0",
               "CNI_NETNS": netns, "CNI_CONTAINERID": container_id, "CNI_ARGS": args,
               "PATH": os.environ["PATH"]}
        return subprocess.run([os.path.join(self.node.bin_dir, "shunt-cni")], env=env,
                              input=conf if isinstance(conf, str) else json.dumps(conf),
                              capture_output=True, text=True, timeout=30)

    def test_plugin_binary_speaks_cni(self):
        r = self.plugin("VERSION", {"cniVersion": "1.0.0"})
        self.assertEqual(r.returncode, 0)
        self.assertIn("1.0.0", json.loads(r.stdout)["supportedVersions"])
        entry = self.node.read_conflist()["plugins"][1]
        conf = dict(entry, cniVersion="1.0.0", name=self.node.network)
        for bad, code in (("{oops", 6), (dict(conf, cniVersion="0.2.0"), 1)):
            r = self.plugin("ADD", bad, netns="/run/netns/x", container_id="c")
            self.assertEqual(r.returncode, 1)
            self.assertEqual(json.loads(r.stdout)["code"], code, r.stdout)
        r = self.plugin("ADD", conf, netns="", container_id="c")  # no CNI_NETNS
        self.assertEqual(json.loads(r.stdout)["code"], 4)
        r = self.plugin("ADD", conf, netns="/run/netns/x", container_id="c")  # no prevResult
        self.assertEqual(json.loads(r.stdout)["code"], 7)
        self.assertEqual(self.node.pods(), [])
        r = self.plugin("STATUS", conf)
        self.assertEqual(r.returncode, 0, r.stdout)
        # CHECK on a running container; DEL of an unknown one succeeds.
        cid = self.container("c-plugin")
        pod = self.node.pods()[0]
        prev = {"cniVersion": "1.0.0", "ips": [{"address": a} for a in pod["ips"]]}
        r = self.plugin("CHECK", dict(conf, prevResult=prev), netns=pod["netns"], container_id=cid)
        self.assertEqual((r.returncode, r.stdout), (0, ""))
        r = self.plugin("CHECK", dict(conf, prevResult=prev), netns=pod["netns"], container_id="nope")
        self.assertEqual(json.loads(r.stdout)["code"], 101)
        r = self.plugin("DEL", conf, container_id="never-added")
        self.assertEqual((r.returncode, r.stdout), (0, ""))
        # GC (CNI 1.1) keeps the attachments the runtime still lists.
        gc = dict(conf, cniVersion="1.1.0")
        gc["cni.dev/valid-attachments"] = [{"containerID": cid, "ifname": "eth0"}]
        r = self.plugin("GC", gc)
        self.assertEqual((r.returncode, r.stdout), (0, ""), r.stderr)
        self.assertEqual([p["container_id"] for p in self.node.pods()], [cid])
        gc["cni.dev/valid-attachments"] = []
        self.assertEqual(self.plugin("GC", gc).returncode, 0)
        self.assertEqual(self.node.pods(), [])

    def agent_call(self, request):
        return control_request(self.node.socket, request)

    def test_uninstall_removes_shunt_and_leaves_pods_running(self):
        cid = self.container("c-uninstall")
        self.assert_proxied(cid, "c-uninstall", self.node.gateway4)
        n = self.node
        r = run([AGENT, "uninstall", "--cgroup", n.cgroup, "--bpffs", n.bpffs, "--socket",
                 n.socket, "--state-dir", n.state_dir, "--cni-conf-dir", n.conf_dir,
                 "--cni-bin-dir", n.bin_dir])
        self.assertIn("removed shunt-cni from 1 CNI cache entries", r.stdout)
        self.assertEqual(n.read_conflist(), n.conflist())
        self.assertFalse(os.path.exists(os.path.join(n.bin_dir, "shunt-cni")))
        self.assertFalse(os.path.exists(os.path.join(n.state_dir, "pods.json")))
        self.assertEqual(self.proxy_processes(), [])
        n.procs["agent"].wait(timeout=10)
        # The pod keeps running, unredirected: the server sees its own address.
        self.assertEqual(n.echo("c-uninstall", n.gateway4), "ping")
        self.assertIn(n.server_seen()[-1]["peer"][0], n.container_ips("c-uninstall"))
        # Uninstall again: nothing left to do, still success.
        r = run([AGENT, "uninstall", "--cgroup", n.cgroup, "--bpffs", n.bpffs, "--socket",
                 n.socket, "--state-dir", n.state_dir, "--cni-conf-dir", n.conf_dir,
                 "--cni-bin-dir", n.bin_dir])
        self.assertNotIn("removed shunt-cni", r.stdout)
        n.procs.pop("agent")
        n.podman("rm", "-f", "-t", "0", "c-uninstall")

    # ---- the agent's life -------------------------------------------------
    def test_agent_restart_keeps_the_pods(self):
        cid = self.container("c-restart")
        pid = self.node.pods()[0]["proxy_pid"]
        self.node.stop_agent(signal.SIGKILL)
        # Redirection does not depend on the agent process.
        self.assert_proxied(cid, "c-restart", self.node.gateway4)
        self.node.start_agent()
        pods = self.node.pods()
        self.assertEqual([(p["container_id"], p["proxy_pid"]) for p in pods], [(cid, pid)])
        self.assert_proxied(cid, "c-restart", self.node.gateway6)
        self.assertIn(f"proxy pid {pid} kept", self.node.log_text("agent"))
        # The pods' proxies hold nothing of the agent's: its metrics port
        # was free for the new agent, which serves the page with the pod.
        with urllib.request.urlopen(f"http://127.0.0.1:{self.node.metrics_port}/metrics",
                                    timeout=20) as page:
            text = page.read().decode()
        self.assertRegex(text, r'shunt_proxy_up\{netns="[^"]+",namespace="default",'
                               r'pod="c-restart"\} 1')

    def test_agent_down_at_add_fails_the_pod(self):
        self.node.stop_agent()
        r = self.node.run_container("c-down", "sleep", "600", check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("cannot reach shunt-agent", r.stderr)
        self.assertIn("allowUnredirected", r.stderr)
        self.node.podman("rm", "-f", "c-down", check=False)
        self.node.start_agent()
        self.assertEqual(self.node.pods(), [])
        self.assertEqual(self.node.status()["enrolled"], [])

    def test_agent_down_with_allow_unredirected_then_enrolled_at_start(self):
        self.node.stop_agent()
        self.node.start_agent(["--cni-allow-unredirected", "true"])
        self.assertTrue(self.node.read_conflist()["plugins"][1]["allowUnredirected"])
        self.node.stop_agent()
        cid = self.container("c-unprotected")
        self.assertEqual(self.node.echo("c-unprotected", self.node.gateway4), "ping")
        self.assertEqual(self.node.access_log(cid), [])
        # The agent finds the running pod (libcni's cache names its
        # namespace) and enrolls it before it says ready.
        self.node.start_agent()
        self.assertEqual([p["container_id"] for p in self.node.pods()], [cid])
        self.assertIn("pod running before the agent", self.node.log_text("agent"))
        self.assert_proxied(cid, "c-unprotected", self.node.gateway4)
        self.assertFalse(self.node.read_conflist()["plugins"][1]["allowUnredirected"])


class AnnotationTest(unittest.TestCase):
    """Per-pod settings from annotations, read from an HTTPS server that
    answers like the Kubernetes API (no API server can run here)."""

    @classmethod
    def setUpClass(cls):
        cls.node = PodmanNode("kapi")
        why = cls.node.supported()
        if why:
            print(f"SHUNT-MODE-UNSUPPORTED: {why}", flush=True)
            raise unittest.SkipTest(why)
        cls.addClassCleanup(cls.node.close)
        cls.node.start(agent=False)
        t = cls.node.tmp
        cls.cert, key = os.path.join(t, "api.crt"), os.path.join(t, "api.key")
        run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
             "-keyout", key, "-out", cls.cert, "-subj", "/CN=kubernetes",
             "-addext", "subjectAltName=IP:127.0.0.1"])
        cls.token = os.path.join(t, "token")
        with open(cls.token, "w") as f:
            f.write("test-token-123\n")
        cls.pods_file = os.path.join(t, "pods.json")
        cls.set_pods({})
        cls.report = os.path.join(t, "api.jsonl")
        ready = os.path.join(t, "api.port")
        cls.node.spawn("api", ["python3", os.path.join(TOOLS, "fake_kube_api.py"), "--cert",
                               cls.cert, "--key", key, "--token", "test-token-123", "--pods",
                               cls.pods_file, "--report", cls.report, "--ready", ready])
        wait_for(lambda: os.path.exists(ready), what="fake API server")
        with open(ready) as f:
            cls.port = f.read().strip()
        # The in-cluster configuration: the address from the environment.
        cls.node.start_agent(["--kube-token-file", cls.token, "--kube-ca-file", cls.cert],
                             env={"KUBERNETES_SERVICE_HOST": "127.0.0.1",
                                  "KUBERNETES_SERVICE_PORT": cls.port})

    @classmethod
    def set_pods(cls, pods):
        with open(cls.pods_file, "w") as f:
            json.dump(pods, f)

    def tearDown(self):
        self.node.podman("rm", "-a", "-f", "-t", "0", check=False)
        wait_for(lambda: self.node.pods() == [], what="no pod left enrolled")

    def test_annotations_set_the_pods_settings(self):
        self.set_pods({"default/web": {"shunt.io/exclude-outbound-ports": "7000",
                                       "shunt.io/proxy-type": "reverse",
                                       "shunt.io/proxy-port": "8080",
                                       "other.io/ignored": "x"}})
        self.node.run_container("web", "sleep", "600")
        cid = self.node.container_id("web")
        settings = self.node.pods()[0]["settings"]
        self.assertEqual(settings, {"annotation shunt.io/exclude-outbound-ports": "7000",
                                    "annotation shunt.io/proxy-type": "reverse",
                                    "annotation shunt.io/proxy-port": "8080"})
        self.assertEqual(self.node.echo("web", self.node.gateway4, 7000), "ping")
        self.assertEqual(self.node.access_log(cid), [])
        self.assertEqual(self.node.echo("web", self.node.gateway4, 7001), "ping")
        wait_for(lambda: len(self.node.access_log(cid)) == 1, what="access log line")
        self.assertIn(":4143", self.node.exec("web", "netstat -ltn").stdout)
        with open(self.report) as f:
            requests = [json.loads(l) for l in f]
        self.assertIn({"path": "/api/v1/namespaces/default/pods/web",
                       "authorization": "Bearer test-token-123"}, requests)

    def test_annotation_overrides_cni_args(self):
        self.set_pods({"default/quiet": {"shunt.io/inject": "false"}})
        self.node.run_container("quiet", "sleep", "600", cni_args="SHUNT_INJECT=true")
        self.assertEqual(self.node.pods(), [])
        self.assertIn("reason=NotInjected pod=default/quiet", self.node.log_text("agent"))

    def events(self, name, reason):
        """The Events the agent posted on pod default/NAME with `reason`."""
        with open(self.report) as f:
            requests = [json.loads(l) for l in f]
        return [r["body"] for r in requests
                if r.get("method") == "POST" and r["path"] == "/api/v1/namespaces/default/events"
                and r["body"]["involvedObject"]["name"] == name and r["body"]["reason"] == reason]

    def test_invalid_annotation_is_refused_with_an_event(self):
        self.set_pods({"default/bad": {"shunt.io/proxy-in-port": "http"}})
        r = self.node.run_container("bad", "sleep", "600", check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("annotation shunt.io/proxy-in-port", r.stderr)
        log = self.node.log_text("agent")
        self.assertRegex(log, r"event type=Warning reason=InvalidSettings pod=default/bad "
                              r"container=\w+ message=\"annotation shunt.io/proxy-in-port: ")
        # The same reason as a Kubernetes Event on the pod, with RBAC's token.
        wait_for(lambda: self.events("bad", "InvalidSettings"), what="the InvalidSettings Event")
        event = self.events("bad", "InvalidSettings")[0]
        self.assertEqual(event["type"], "Warning")
        self.assertEqual(event["involvedObject"]["kind"], "Pod")
        self.assertEqual(event["involvedObject"]["namespace"], "default")
        self.assertIn("annotation shunt.io/proxy-in-port", event["message"])
        self.assertEqual(event["source"]["component"], "shunt-agent")
        # Refused again at once: the log says so, the Event is not repeated
        # (rate-limited per pod and reason).
        self.node.podman("rm", "-f", "-t", "0", "bad", check=False)
        r = self.node.run_container("bad", "sleep", "600", check=False)
        self.assertNotEqual(r.returncode, 0)
        time.sleep(1)
        self.assertEqual(len(self.events("bad", "InvalidSettings")), 1)
        self.assertEqual(self.node.pods(), [])
        self.assertEqual(self.node.status()["enrolled"], [])
        self.set_pods({"default/typo": {"shunt.io/proxy-tpye": "forward"}})
        r = self.node.run_container("typo", "sleep", "600", check=False)
        self.assertIn("annotation shunt.io/proxy-tpye: unknown shunt setting", r.stderr)

    def test_proxy_exit_is_an_event_on_the_pod(self):
        self.set_pods({"default/crash": {}})
        self.node.run_container("crash", "sleep", "600")
        pid = self.node.pods()[0]["proxy_pid"]
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: self.events("crash", "ProxyExited"), what="the ProxyExited Event")
        self.assertIn(f"pid {pid} exited", self.events("crash", "ProxyExited")[0]["message"])
        wait_for(lambda: self.node.pods()[0]["proxy_restarts"] == 1, what="proxy restarted")

    def test_connections_and_trace_find_the_pod(self):
        self.set_pods({"default/listed": {}})
        self.node.run_container("listed", "sleep", "600")
        r = run([AGENT, "connections", "--socket", self.node.socket, "--pod", "default/listed",
                 "--json"], check=False)
        self.assertEqual(r.returncode, 0, r.stderr)
        (entry,) = json.loads(r.stdout)["namespaces"]
        self.assertEqual((entry["namespace"], entry["pod"]), ("default", "listed"))
        self.assertTrue(entry["ok"], entry)
        self.assertEqual(json.loads(run([AGENT, "connections", "--socket", self.node.socket,
                                         "--pod", "default/nobody", "--json"]).stdout)
                         ["namespaces"], [])
        r = run([AGENT, "trace", "--socket", self.node.socket, "--pod", "default/nobody",
                 "--duration", "1"], check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("no pod default/nobody", r.stderr)
        r = run([AGENT, "trace", "--socket", self.node.socket, "--pod", "default/listed",
                 "--duration", "1"], check=False)
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_unknown_pod_or_refused_token_fails_the_pod(self):
        self.set_pods({})
        r = self.node.run_container("ghost", "sleep", "600", check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("pod default/ghost not found", r.stderr)
        with open(self.token, "w") as f:
            f.write("wrong-token\n")
        try:
            self.set_pods({"default/denied": {}})
            r = self.node.run_container("denied", "sleep", "600", check=False)
            self.assertIn("answered 401", r.stderr)
        finally:
            with open(self.token, "w") as f:
                f.write("test-token-123\n")
        self.assertEqual(self.node.pods(), [])


if __name__ == "__main__":
    unittest.main(verbosity=2)
