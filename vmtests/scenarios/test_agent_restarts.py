"""The agent replaced under load (issue 19, items 1 and 4): a stream of data
and 200 connects per second through the pod's proxy while the agent is
killed (SIGKILL) and started again, stopped (SIGTERM) and started again,
and started with another configuration: one more proxy cgroup, which the
namespace's rules converge to, and (tproxy) another route mark, table and
rule priority, which the enrolled namespace does not take (its
connections' conntrack marks are the old route mark; docs/operations.md). At every start the agent converges
the recorded namespaces (the firewall modes re-apply each namespace's rules
in one transaction; the ebpf mode updates its pinned links in place): no
byte of the stream is lost and no connect fails or escapes the proxy. Runs
per mode (SHUNT_TEST_MODE); the DaemonSet's version of this, with the
agent's container replaced, is test_cri.py's."""
import json
import os
import signal
import time
import unittest

from shunt_env import ECHO_PORT, TIMEOUT_SCALE, Topology

SRV4 = "10.201.0.2"
# Settings that change what a namespace gets, per mode.
CHANGED = {
    "tproxy": ["--proxy-cgroups", "more-proxies", "--route-mark", "0x2000", "--route-table",
               "15002", "--rule-priority", "15002"],
    "redirect": ["--proxy-cgroups", "more-proxies"],
}


class AgentRestartsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.t = Topology("restarts")
        cls.addClassCleanup(cls.t.close)
        cls.t.start()

    def in_pod(self, tool, *args):
        return self.t.tool_in_background("pod", tool, *args)

    def result(self, p):
        out, err = p.communicate(timeout=120 * TIMEOUT_SCALE)
        self.assertEqual(p.returncode, 0, err)
        return json.loads(out)

    def rules(self):
        return "\n".join(str(v) for v in self.t.firewall_dump("pod").values())

    def test_three_restarts_under_load(self):
        os.mkdir(os.path.join(self.t.cgroup, "more-proxies"))
        exemptions = self.rules().count("cgroup")
        before = len(self.t.access_log())
        stream = self.in_pod("echo_stream.py", "--host", SRV4, "--port", str(ECHO_PORT),
                             "--seconds", "8", "--rate", "500000")
        connects = self.in_pod("connects.py", "--host", SRV4, "--port", str(ECHO_PORT),
                               "--count", "1600", "--rate", "200")
        time.sleep(1)
        self.t.stop("agent", sig=signal.SIGKILL, expect_clean=False)
        self.t.start_agent()
        time.sleep(1)
        self.t.stop("agent", sig=signal.SIGTERM)
        self.t.start_agent()
        time.sleep(1)
        self.t.stop("agent", sig=signal.SIGTERM)
        self.t.start_agent(["--log-level", "debug", *CHANGED[self.t.mode]])
        streamed, counted = self.result(stream), self.result(connects)
        self.assertTrue(streamed["matched"], streamed)
        self.assertEqual(counted["outcomes"], {"ok": 1600}, counted)
        # Every connection went through the proxy: none escaped capture.
        lines = self.t.wait_access_log(before + 1601, timeout=30)
        self.assertEqual({e["original_dst"] for e in lines[before:]}, {f"{SRV4}:{ECHO_PORT}"})
        self.assertEqual(len(self.t.status()["enrolled"]), 1)
        # The rules converged to the new exemption; the routing stayed.
        self.assertEqual(self.rules().count("cgroup"), 2 * exemptions, self.rules())
        if self.t.mode == "tproxy":
            for family in ("-4", "-6"):
                routing = self.t.in_ns("pod", ["ip", family, "rule", "list"]).stdout
                self.assertIn("fwmark 0x1000/0x1000 lookup 15001", routing)
                self.assertNotIn("lookup 15002", routing)
        print(f"{self.t.mode}: 1600 connects and a {streamed['sent']}-byte stream through three "
              "agent restarts, none lost, none unproxied", flush=True)


if __name__ == "__main__":
    unittest.main(verbosity=2)
