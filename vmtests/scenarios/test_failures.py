"""Failures reach the application promptly, as resets, and are logged."""
import os
import unittest

from shunt_env import Topology, run

SRV4 = "10.201.0.2"


class FailureTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.t = Topology("fail", proxy_args=["--connect-timeout", "1s", "--idle-timeout", "2s"])
        cls.addClassCleanup(cls.t.close)
        cls.t.start()
        # A destination whose SYNs vanish: routed to the server namespace,
        # which does not forward.
        run(["ip", "-n", cls.t.ns["pod"], "route", "add", "10.203.0.0/24", "via", SRV4])

    def failing_client(self, host, port, expected_result, max_seconds):
        before = len(self.t.access_log())
        r = self.t.client(host, port=port, size=1000, timeout=15)
        self.assertFalse(r["ok"], r)
        self.assertIn(r["error"], ("ConnectionResetError", "BrokenPipeError"), r)
        self.assertLess(r["elapsed"], max_seconds, r)
        line = self.t.wait_access_log(before + 1)[-1]
        self.assertEqual(line["result"], expected_result, line)
        self.assertEqual(line["original_dst"], f"{host}:{port}")
        self.assertEqual(line["upstream"], None)
        return line

    def test_connection_refused_is_a_prompt_reset(self):
        line = self.failing_client(SRV4, 7999, "connect_refused", 2)
        self.assertIn("refused", line["error"])

    def test_no_route_is_a_prompt_reset(self):
        if self.t.traits["connect_sees_unroutable"]:
            # The firewall modes act after the kernel's route lookup:
            # connect() itself fails, promptly, and the proxy never sees it.
            before = len(self.t.access_log())
            r = self.t.client("10.204.0.1", port=80, size=1000, timeout=15)
            self.assertFalse(r["ok"], r)
            self.assertEqual(r["error"], "OSError", r)
            self.assertLess(r["elapsed"], 2, r)
            self.assertEqual(len(self.t.access_log()), before)
            return
        self.failing_client("10.204.0.1", 80, "unreachable", 2)

    def test_silent_destination_times_out_at_the_connect_timeout(self):
        self.failing_client("10.203.0.1", 80, "connect_timeout", 4)

    def test_idle_connection_is_closed(self):
        before = len(self.t.access_log())
        r = self.t.client(SRV4, size=10, hold=3.5, timeout=10)
        self.assertFalse(r["ok"], r)
        line = self.t.wait_access_log(before + 1)[-1]
        self.assertEqual(line["result"], "idle_timeout")
        self.assertGreaterEqual(line["duration_ms"], 1900)


class BypassByUidTest(unittest.TestCase):
    """The fallback exemption by identity (proxy-exemption mark), with a uid
    instead of SO_MARK: the proxy runs as its own uid, in the attach cgroup
    rather than a proxy cgroup, and the agent never redirects that uid
    (configured through the YAML file)."""

    @classmethod
    def setUpClass(cls):
        cls.t = Topology("byuid", proxy_args=["--mark", "0"], proxy_uid=1337)
        cls.addClassCleanup(cls.t.close)
        config = os.path.join(cls.t.tmp, "agent.yaml")
        with open(config, "w") as f:
            f.write("proxy-exemption: mark\nproxy-mark: 0\nbypass-uid: 1337\n")
        cls.t.agent_args = ["--config", config]
        cls.t.proxy_in_attach_cgroup = True
        cls.t.start()

    def test_proxy_running_as_bypassed_uid_does_not_loop(self):
        r = self.t.client(SRV4, size=300000)
        self.assertTrue(r["ok"], r)
        lines = self.t.wait_access_log(1)
        self.assertEqual(len(lines), 1)
        self.assertEqual(lines[0]["result"], "ok")
        if self.t.traits["counters"]:
            counters = self.t.status()["enrolled"][0]["counters"]
            self.assertEqual(counters["redirected"], 1)
            self.assertEqual(counters["skipped_bypass"], 1)


if __name__ == "__main__":
    unittest.main(verbosity=2)
