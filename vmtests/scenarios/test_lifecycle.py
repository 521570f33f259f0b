"""The agent's life cycle: unenroll, crash and restart, uninstall."""
import os
import signal
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from shunt_env import AGENT, Topology, attached_programs, bpftool_json, run, wait_for  # noqa: E402

SRV4 = "10.201.0.2"
PROGRAMS = sorted(["shunt_connect4", "shunt_connect6", "shunt_sockops", "shunt_getsockopt",
                   "shunt_getpeername4", "shunt_getpeername6"])


class LifecycleTest(unittest.TestCase):
    def setUp(self):
        self.t = Topology("life")
        self.addCleanup(self.t.close)
        self.t.start()

    def test_unenroll_stops_new_connections_while_established_ones_finish(self):
        hold = os.path.join(self.t.tmp, "go")
        established = self.t.client_async(SRV4, size=65536, hold_file=hold)
        wait_for(lambda: os.path.exists(hold + ".established"), what="held connection")
        self.t.unenroll("pod")
        before = len(self.t.access_log())
        fresh = self.t.client(SRV4, size=4096)
        self.assertTrue(fresh["ok"], fresh)
        # The new connection went straight to the server.
        self.assertIn(["10.201.0.1", fresh["sockname"][1]], [s["peer"] for s in self.t.server_seen()])
        self.assertEqual(len(self.t.access_log()), before)
        # The one established before unenroll finishes through the proxy.
        open(hold, "w").close()
        out, err = established.communicate(timeout=30)
        import json
        held = json.loads(out)
        self.assertTrue(held["ok"], (held, err))
        line = self.t.wait_access_log(before + 1)[-1]
        self.assertEqual(line["result"], "ok")
        self.assertEqual(line["bytes_up"], 65536)
        self.assertEqual(self.t.status()["enrolled"], [])
        # Unenrolling again says it is not enrolled.
        r = self.t.agent_cli("unenroll", "--netns", f"/run/netns/{self.t.ns['pod']}")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("not enrolled", r.stderr)

    def test_agent_kill9_and_restart_keeps_redirection_without_duplicates(self):
        self.t.stop("agent", sig=signal.SIGKILL, expect_clean=False)
        # No agent at all: the pinned links keep redirecting.
        r = self.t.client(SRV4, size=100000)
        self.assertTrue(r["ok"], r)
        self.assertEqual(self.t.wait_access_log(1)[-1]["original_dst"], f"{SRV4}:7000")
        self.t.start_agent()
        self.assertIn("6 adopted", self.t.log_text("agent"))
        self.assertEqual(sorted(attached_programs(self.t.cgroup)), PROGRAMS)
        s = self.t.status()
        self.assertEqual(len(s["enrolled"]), 1, s)
        self.assertGreaterEqual(s["enrolled"][0]["counters"]["redirected"], 1)
        r = self.t.client(SRV4, size=100000)
        self.assertTrue(r["ok"], r)
        self.assertEqual(len(self.t.wait_access_log(2)), 2)
        # A second restart still adopts and does not add attachments.
        self.t.stop("agent")
        self.t.start_agent()
        self.assertEqual(sorted(attached_programs(self.t.cgroup)), PROGRAMS)

    def test_second_agent_on_same_socket_is_refused(self):
        r = run([AGENT, "run", "--cgroup", self.t.cgroup, "--bpffs", self.t.bpffs, "--socket",
                 self.t.socket], check=False, timeout=20)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("another shunt-agent", r.stderr)
        self.assertEqual(sorted(attached_programs(self.t.cgroup)), PROGRAMS)

    def test_uninstall_leaves_nothing_and_is_idempotent(self):
        self.assertEqual(sorted(attached_programs(self.t.cgroup)), PROGRAMS)
        r = run([AGENT, "uninstall", "--cgroup", self.t.cgroup, "--bpffs", self.t.bpffs,
                 "--socket", self.t.socket])
        self.assertIn("detached", r.stdout)
        # The running agent was asked to stop.
        wait_for(lambda: self.t.procs["agent"].poll() is not None, what="agent exit")
        self.assertEqual(self.t.procs["agent"].returncode, 0)
        self.assertEqual(attached_programs(self.t.cgroup), [])
        self.assertFalse(os.path.exists(self.t.bpffs))
        links = [l for l in bpftool_json("link", "show")
                 if l.get("cgroup_id") is not None and "shunt_" in str(l)]
        self.assertEqual(links, [])
        r = run([AGENT, "uninstall", "--cgroup", self.t.cgroup, "--bpffs", self.t.bpffs])
        self.assertIn("nothing of shunt", r.stdout)
        # Connections from the pod now go direct.
        before = len(self.t.access_log())
        c = self.t.client(SRV4, size=100)
        self.assertTrue(c["ok"], c)
        time.sleep(0.2)
        self.assertEqual(len(self.t.access_log()), before)

    def test_lost_pins_are_reattached_once_by_the_next_agent(self):
        # The pins are what keep the links alive (the agent holds no link
        # fds), so removing them detaches; the next agent attaches afresh,
        # exactly once, and keeps the enrolled state held in pinned maps.
        for name in os.listdir(self.t.bpffs):
            if name.startswith("link_"):
                os.unlink(os.path.join(self.t.bpffs, name))
        self.t.stop("agent")
        self.assertEqual(attached_programs(self.t.cgroup), [])
        self.t.start_agent()
        self.assertIn("6 attached", self.t.log_text("agent"))
        self.assertEqual(sorted(attached_programs(self.t.cgroup)), PROGRAMS)
        self.assertEqual(len(self.t.status()["enrolled"]), 1)
        r = self.t.client(SRV4, size=1000)
        self.assertTrue(r["ok"], r)
        self.assertEqual(len(self.t.wait_access_log(1)), 1)


if __name__ == "__main__":
    unittest.main(verbosity=2)
