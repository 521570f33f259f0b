"""Pods started at once (issue 19, item 5; docs/kubernetes.md, "Pods
started at once"): 50 shunt-cni ADDs at the same moment, as a node starting
a deployment's replicas sends them. Every one succeeds, every pod is
enrolled exactly once with its own proxy, a DEL racing its own ADD is
ordered after it, and 50 DELs at once leave nothing. Runs per mode
(SHUNT_TEST_MODE)."""
import json
import os
import subprocess
import unittest
from concurrent.futures import ThreadPoolExecutor

from shunt_env import BIN, Topology, run

PODS = 50


class PodStartsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.t = Topology("starts")
        cls.addClassCleanup(cls.t.close)
        cls.t.start(agent=False)
        cls.t.start_agent()
        cls.namespaces = [f"{cls.t.ns['pod']}-{i}" for i in range(PODS)]
        for ns in cls.namespaces:
            run(["ip", "netns", "add", ns])
            cls.t.created_ns.append(ns)
            run(["ip", "-n", ns, "link", "set", "lo", "up"])

    def cni(self, command, i, ns=None):
        conf = {"cniVersion": "1.0.0", "name": "starts", "type": "shunt-cni",
                "agentSocket": self.t.socket, "timeoutSeconds": 60,
                "prevResult": {"cniVersion": "1.0.0", "ips": []}}
        env = {"CNI_COMMAND": command, "CNI_CONTAINERID": f"starts-{i}",
               "CNI_NETNS": f"/run/netns/{ns or self.namespaces[i]}", "CNI_IFNAME": "eth0",
               "CNI_PATH": BIN, "PATH": os.environ["PATH"],
               "CNI_ARGS": f"K8S_POD_NAMESPACE=default;K8S_POD_NAME=pod-{i}"}
        return subprocess.run([os.path.join(BIN, "shunt-cni")], input=json.dumps(conf), env=env,
                              capture_output=True, text=True, timeout=120)

    def pods(self):
        r = self.t.agent_cli("pods", "--json")
        return json.loads(r.stdout)["pods"]

    def test_fifty_adds_at_once_then_fifty_dels(self):
        with ThreadPoolExecutor(max_workers=PODS) as pool:
            added = list(pool.map(lambda i: self.cni("ADD", i), range(PODS)))
        failed = [(i, r.stdout + r.stderr) for i, r in enumerate(added) if r.returncode != 0]
        self.assertEqual(failed, [])
        pods = self.pods()
        self.assertEqual(sorted(p["container_id"] for p in pods),
                         sorted(f"starts-{i}" for i in range(PODS)))
        self.assertEqual(len({p["proxy_pid"] for p in pods}), PODS)
        self.assertTrue(all(p["proxy_alive"] for p in pods))
        enrolled = self.t.status()["enrolled"]
        self.assertEqual(len(enrolled), PODS)
        self.assertEqual(len({e["netns"] for e in enrolled}), PODS)
        with ThreadPoolExecutor(max_workers=PODS) as pool:
            deleted = list(pool.map(lambda i: self.cni("DEL", i), range(PODS)))
        self.assertEqual([r.returncode for r in deleted], [0] * PODS)
        self.assertEqual(self.pods(), [])
        self.assertEqual(self.t.status()["enrolled"], [])

    def test_a_del_racing_its_add_comes_after_it(self):
        with ThreadPoolExecutor(max_workers=2) as pool:
            add = pool.submit(self.cni, "ADD", 0)
            delete = pool.submit(self.cni, "DEL", 0)
            self.assertEqual(add.result().returncode, 0, add.result().stdout)
            self.assertEqual(delete.result().returncode, 0, delete.result().stdout)
        # Either order is the runtime's; the agent's answer matches its own
        # order: a DEL that came first removed nothing and the ADD stands, or
        # the DEL removed the pod the ADD made.
        pods = self.pods()
        self.assertIn(len(pods), (0, 1))
        if pods:
            self.assertEqual(self.cni("DEL", 0).returncode, 0)
        self.assertEqual(self.pods(), [])
        self.assertEqual(self.t.status()["enrolled"], [])


if __name__ == "__main__":
    unittest.main(verbosity=2)
