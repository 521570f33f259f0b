"""The DaemonSet as the kubelet drives it (docs/kubernetes.md, "What was
verified without a cluster"): containerd's CRI plugin runs shunt's agent
from the image scripts/build-image.sh builds, with the security context,
host mounts, network and configuration of agent/deploy/, and runs pods
whose CNI chain the agent extends. One node's life, in order: the agent
starts and chains shunt-cni; pods are enrolled under the names the kubelet
gives and proxied (IPv4, IPv6), with settings from annotations the API
server answers; a deleted pod leaves nothing; a pod made while no agent
runs is refused, or started unredirected with allowUnredirected and enrolled
when the agent is back; a rollout to a newer image keeps the pods
redirected and serves new ones; uninstall from the image leaves the pods
running unredirected and nothing of shunt on the node. Runs in the ebpf
mode and the tproxy fallback (SHUNT_TEST_MODE)."""
import json
import os
import sys
import time
import unittest

try:
    import grpc  # noqa: F401 - the CRI client's; Debian's python3-grpcio
except ImportError:
    # Debian's interpreter has it where another python3 comes first in PATH.
    if sys.executable != "/usr/bin/python3" and os.path.exists("/usr/bin/python3"):
        os.execv("/usr/bin/python3", ["/usr/bin/python3", "-W", "error::ResourceWarning",
                                      *sys.argv])

from cri_client import CriError  # noqa: E402
from cri_node import AGENT_IMAGES, CriNode  # noqa: E402
from processes import world_readable  # noqa: E402
from shunt_env import TOOLS, wait_for  # noqa: E402


class CriNodeLifeTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.node = CriNode("cri")
        why = cls.node.supported()
        if why:
            print(f"SHUNT-MODE-UNSUPPORTED: {why}", flush=True)
            raise unittest.SkipTest(why)
        cls.addClassCleanup(cls.node.close)
        cls.node.start()
        cls.node.start_agent()
        if cls.node.left_out:
            print("left out of the DaemonSet's spec on this machine: "
                  + "; ".join(cls.node.left_out), flush=True)

    def tearDown(self):
        for pod in list(self.node.pods.values()):
            self.node.remove_pod(pod)
        if self.node.agent is not None and self.node.agent_running():
            wait_for(lambda: self.node.enrolled_pods() == [], what="no pod left enrolled")

    # ---- helpers ------------------------------------------------------
    def assert_proxied(self, pod, host, port=7000):
        before = len(self.node.access_log(pod))
        self.assertEqual(self.node.echo(pod, host, port), "ping")
        wait_for(lambda: len(self.node.access_log(pod)) > before, what="access log line")
        entry = self.node.access_log(pod)[-1]
        self.assertEqual(entry["result"], "ok", entry)
        self.assertEqual(entry["original_dst"], f"[{host}]:{port}" if ":" in host
                         else f"{host}:{port}", entry)

    def assert_unproxied(self, pod, host, port=7000):
        before = len(self.node.access_log(pod))
        self.assertEqual(self.node.echo(pod, host, port), "ping")
        time.sleep(0.2)
        self.assertEqual(len(self.node.access_log(pod)), before)

    def enrolled(self, pod):
        return [p for p in self.node.enrolled_pods() if p["container_id"] == pod.sandbox_id]

    # ---- the agent's container ----------------------------------------
    def test_1_agent_runs_with_the_daemonsets_security_context(self):
        r = self.node.agent_cli("status", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        doc = json.loads(r.stdout)
        self.assertEqual(doc["mode"], self.node.mode)
        caps = self.node.agent_process_caps()
        expected = {"BPF", "PERFMON", "NET_ADMIN", "SYS_ADMIN", "SYS_PTRACE", "SYS_RESOURCE"}
        expected -= {c.split()[1] for c in self.node.left_out if c.startswith("capability")}
        self.assertEqual(caps["effective"], expected)
        self.assertTrue(caps["no_new_privs"])
        # Read-only root: the agent cannot write outside its volumes.
        r = self.node.agent_exec("/usr/local/bin/shunt-agent", "run", "--config",
                                 "/etc/shunt/config.yaml", "--check")
        self.assertEqual(r.returncode, 0, r.stderr)
        doc = self.node.read_conflist()
        self.assertEqual([p["type"] for p in doc["plugins"]], ["bridge", "shunt-cni"])
        self.assertEqual(doc["plugins"][1]["agentSocket"], "/run/shunt/agent.sock")
        self.assertTrue(os.access(os.path.join(self.node.bin_dir, "shunt-cni"), os.X_OK))

    def test_2_pods_are_enrolled_under_their_kubelet_names_and_proxied(self):
        pod = self.node.run_pod("web", "shop")
        (record,) = self.enrolled(pod)
        self.assertEqual((record["pod_namespace"], record["pod_name"]), ("shop", "web"))
        self.assertTrue(record["proxy_alive"])
        self.assertTrue(record["netns"].startswith("/var/run/netns/cni-"), record)
        ips = self.node.pod_ips(pod)
        self.assertEqual(sorted(a.split("/")[0] for a in record["ips"]), sorted(ips))
        for host in (self.node.gateway4, self.node.gateway6):
            self.assert_proxied(pod, host)
        # The default of the ConfigMap's cni-defaults: port 22 is never redirected.
        self.assertEqual(record["settings"], {"conflist defaults.exclude-outbound-ports": "22",
                                              "conflist defaults.inject": "true"})

    def test_3_annotations_from_the_api_server_keyed_by_the_kubelets_names(self):
        # Its application runs as an unprivileged user: captured all the same.
        pod = self.node.run_pod("cart", "shop", user=1000,
                                annotations={"shunt.io/exclude-outbound-ports": "7000"})
        self.assertIn("Uid:\t1000\t", self.node.exec(pod, "cat /proc/self/status").stdout)
        (record,) = self.enrolled(pod)
        self.assertEqual(record["settings"]["annotation shunt.io/exclude-outbound-ports"], "7000")
        self.assert_unproxied(pod, self.node.gateway4, 7000)
        self.assert_proxied(pod, self.node.gateway4, 7001)
        with open(self.node.api_report) as f:
            paths = [json.loads(line)["path"] for line in f]
        self.assertIn("/api/v1/namespaces/shop/pods/cart", paths)

    def test_4_deleting_a_pod_removes_everything_of_it(self):
        pod = self.node.run_pod("gone")
        (record,) = self.enrolled(pod)
        self.assert_proxied(pod, self.node.gateway4)
        self.node.remove_pod(pod)
        self.assertEqual(self.enrolled(pod), [])
        status = json.loads(self.node.agent_cli("status", "--json").stdout)
        self.assertEqual(status["enrolled"], [])
        self.assertEqual(self.node.cni_cache_entries(), [])
        self.assertFalse(os.path.exists(record["netns"].replace("/var/run", "/run")))
        self.assertFalse(os.path.exists(os.path.join("/run/shunt/state/pods", pod.sandbox_id)))

    def test_5_pods_made_while_no_agent_runs(self):
        """Refused (the kubelet retries) by default; with allowUnredirected
        started unredirected and enrolled when the agent is back."""
        self.node.stop_agent()
        with self.assertRaises(CriError) as refused:
            self.node.run_pod("early")
        self.assertIn("cannot reach shunt-agent", str(refused.exception))
        self.node.pods.clear()  # the sandbox was never made
        self.node.start_agent(config={"cni-allow-unredirected": True})
        self.assertTrue(self.node.read_conflist()["plugins"][1]["allowUnredirected"])
        self.node.stop_agent()
        pod = self.node.run_pod("early")
        self.assert_unproxied(pod, self.node.gateway4)
        self.node.start_agent()
        wait_for(lambda: self.enrolled(pod) != [], what="the early pod enrolled")
        self.assert_proxied(pod, self.node.gateway4)

    def test_6_rollout_to_a_newer_image_keeps_pods_redirected(self):
        """The agent's pod stopped as the kubelet stops it, then one of a
        newer image: the pods' proxies outlive the agent's container (the
        DaemonSet's hostPID, their own cgroup and session), so the pods stay
        proxied in between; the new agent's shunt-proxy is another binary,
        so it hands each pod's proxy over to a new process."""
        old = self.node.run_pod("steady")
        self.assert_proxied(old, self.node.gateway4)
        (before,) = self.enrolled(old)
        self.node.stop_agent()
        # No agent: the pod's proxy still serves it.
        self.assert_proxied(old, self.node.gateway4)
        self.assert_proxied(old, self.node.gateway6)
        self.node.start_agent(AGENT_IMAGES[1])
        self.assertEqual(self.node.agent_image(), AGENT_IMAGES[1])
        (after,) = self.enrolled(old)
        self.assertNotEqual(after["proxy_version"], before["proxy_version"])
        self.assertNotEqual(after["proxy_pid"], before["proxy_pid"])
        self.assertEqual(after["proxy_restarts"], before["proxy_restarts"])
        self.assertTrue(after["proxy_alive"])
        self.assertIn("reason=ProxyHandedOver pod=default/steady", self.node.agent_log())
        self.assertIn(f"proxy pid {after['proxy_pid']} {after['proxy_version']}",
                      self.node.agent_cli("pods").stdout)
        self.assert_proxied(old, self.node.gateway4)
        new = self.node.run_pod("fresh")
        self.assert_proxied(new, self.node.gateway6)
        self.assertEqual(sorted(p["pod_name"] for p in self.node.enrolled_pods()),
                         ["fresh", "steady"])
        # A restart on the same image keeps the proxies as they are.
        (kept,) = self.enrolled(new)
        self.node.stop_agent()
        self.node.start_agent(AGENT_IMAGES[1])
        self.assertEqual(self.enrolled(new)[0]["proxy_pid"], kept["proxy_pid"])

    def test_7_agent_replaced_three_times_under_load(self):
        """Issue 19: a stream of data and 200 connects per second through a
        pod's proxy while the agent is killed (SIGKILL), stopped (preStop,
        SIGTERM) and rolled out to a newer image (whose proxy takes the
        pod's over): no byte lost, no connect failed, each connection logged
        once."""
        pod = self.node.run_pod("busy")
        (before,) = self.enrolled(pod)
        tool = lambda name: world_readable(os.path.join(TOOLS, name))  # noqa: E731
        host = self.node.gateway4
        stream = self.node.in_pod_background(pod, [
            "python3", tool("echo_stream.py"), "--host", host, "--port", "7000",
            "--seconds", "12", "--rate", "500000"])
        connects = self.node.in_pod_background(pod, [
            "python3", tool("connects.py"), "--host", host, "--port", "7000",
            "--count", "2400", "--rate", "200"])
        try:
            time.sleep(1)
            self.node.kill_agent()
            self.node.start_agent()
            time.sleep(1)
            self.node.stop_agent()
            self.node.start_agent()
            time.sleep(1)
            self.node.stop_agent()
            self.node.start_agent(AGENT_IMAGES[1])
        finally:
            streamed, stream_err = stream.communicate(timeout=120)
            counted, connects_err = connects.communicate(timeout=120)
        self.assertEqual(stream.returncode, 0, stream_err)
        self.assertEqual(connects.returncode, 0, connects_err)
        streamed, counted = json.loads(streamed), json.loads(counted)
        self.assertTrue(streamed["matched"], streamed)
        self.assertEqual(counted["outcomes"], {"ok": 2400}, counted)
        (after,) = self.enrolled(pod)
        self.assertEqual(after["proxy_restarts"], before["proxy_restarts"])
        self.assertNotEqual(after["proxy_pid"], before["proxy_pid"])  # handed over
        # The old proxy drains the stream, then exits.
        wait_for(lambda: not os.path.exists(f"/proc/{before['proxy_pid']}/ns"), timeout=30,
                 what="the old proxy to drain and exit")
        proxied = [e for e in self.node.access_log(pod) if e["original_dst"] == f"{host}:7000"]
        self.assertEqual(len(proxied), 2401)
        print(f"{self.node.mode}: 2400 connects and a {streamed['sent']}-byte stream through three "
              "agent replacements, none lost", flush=True)

    def test_8_node_requirements_are_checked_in_the_container(self):
        """What the manifest implies of the node, checked by the agent at
        start: a missing capability or bpffs is refused by name; a netns
        volume without propagation is said, with what it breaks."""
        self.node.stop_agent()
        spec = self.node.agent_spec()
        caps = spec.container["securityContext"]["capabilities"]
        caps["add"] = [c for c in caps["add"] if c != "NET_ADMIN"]
        code, output = self.node.run_to_completion(AGENT_IMAGES[0], spec)
        self.assertNotEqual(code, 0)
        self.assertIn("CAP_NET_ADMIN is missing", output)
        if self.node.mode == "ebpf":
            spec = self.node.agent_spec()
            spec.container["volumeMounts"] = [m for m in spec.container["volumeMounts"]
                                              if m["name"] != "bpffs"]
            code, output = self.node.run_to_completion(AGENT_IMAGES[0], spec)
            self.assertNotEqual(code, 0)
            self.assertIn("bpffs /sys/fs/bpf is missing: it is not a bpf filesystem", output)
        spec = self.node.agent_spec()
        for m in spec.container["volumeMounts"]:
            m.pop("mountPropagation", None)
        self.node.start_agent(spec=spec)
        self.assertRegex(self.node.agent_log(), r"node check: netns directory /var/run/netns: its "
                         r"mount \(\S+\) receives no mounts from the node")
        with self.assertRaises(CriError) as refused:
            self.node.run_pod("unseen")
        self.node.pods.clear()
        self.assertIn("is not a network namespace here but an empty file: the runtime's mount of "
                      "it does not reach the agent", str(refused.exception))
        self.node.stop_agent()
        self.node.start_agent()

    def test_9_uninstall_from_the_image_leaves_pods_running_unredirected(self):
        pod = self.node.run_pod("stays")
        self.assert_proxied(pod, self.node.gateway4)
        (code, output), (held, again) = self.node.uninstall_from_image()
        self.assertEqual(code, 0, output)
        self.assertIn("removed shunt-cni from /host/etc/cni/net.d/10-node.conflist", output)
        # The pod's container: the node found clean, held, ended by SIGTERM.
        self.assertEqual(held, 0, again)
        self.assertIn("nothing of shunt is installed", again)
        self.assert_unproxied(pod, self.node.gateway4)
        self.assertEqual([p["type"] for p in self.node.read_conflist()["plugins"]], ["bridge"])
        self.assertFalse(os.path.exists(os.path.join(self.node.bin_dir, "shunt-cni")))
        self.assertFalse(os.path.exists(self.node.bpffs))
        self.assertFalse(os.path.exists(os.path.join(self.node.cgroup, "shunt-proxies")))
        left = [os.path.join(r, f) for r, _, fs in os.walk("/run/shunt") for f in fs]
        self.assertEqual(left, [])
        # The pod is deleted afterwards as any pod: DEL without shunt-cni.
        self.node.remove_pod(pod)
        self.assertEqual(self.node.cni_cache_entries(), [])


if __name__ == "__main__":
    unittest.main(verbosity=2)
