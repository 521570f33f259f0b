"""The agent's life cycle: unenroll, crash and restart, uninstall. Runs once
per mode and firewall backend (SHUNT_TEST_MODE)."""
import json
import os
import signal
import time
import unittest

from shunt_env import AGENT, Topology, attached_programs, bpftool_json, run, wait_for

SRV4 = "10.201.0.2"
PROGRAMS = sorted(["shunt_connect4", "shunt_connect6", "shunt_sockops", "shunt_getsockopt",
                   "shunt_setsockopt",
                   "shunt_getpeername4", "shunt_getpeername6", "shunt_getsockname4",
                   "shunt_getsockname6", "shunt_sock_release",
                   "shunt_sendmsg4", "shunt_sendmsg6", "shunt_recvmsg4", "shunt_recvmsg6",
                   "shunt_udp_egress"])


class LifecycleTest(unittest.TestCase):
    def setUp(self):
        self.t = Topology("life")
        self.addCleanup(self.t.close)
        self.t.start()

    def programs(self):
        """The cgroup programs of this mode (the fast path adds a sockops)."""
        return sorted(PROGRAMS + (["shunt_sockops_fastpath"] if self.t.sk_msg else []))

    def installed(self):
        """What shunt has in place: attached programs, or the pod's rules."""
        if self.t.mode == "ebpf":
            return sorted(attached_programs(self.t.cgroup))
        return self.t.firewall_footprint()

    def test_unenroll_stops_new_connections(self):
        hold = os.path.join(self.t.tmp, "go")
        established = self.t.client_async(SRV4, size=65536, hold_file=hold)
        wait_for(lambda: os.path.exists(hold + ".established"), what="held connection")
        self.t.unenroll("pod")
        if self.t.mode != "ebpf":
            self.assertEqual(self.t.firewall_footprint(), [])
        before = len(self.t.access_log())
        fresh = self.t.client(SRV4, size=4096)
        self.assertTrue(fresh["ok"], fresh)
        # The new connection went straight to the server (which records a
        # connection once it has closed it: after the client had its echo).
        wait_for(lambda: ["10.201.0.1", fresh["sockname"][1]] in
                 [s["peer"] for s in self.t.server_seen()], what="the server's record")
        self.assertEqual(len(self.t.access_log()), before)
        open(hold, "w").close()
        out, err = established.communicate(timeout=30)
        held = json.loads(out)
        if self.t.traits["established_survive_unenroll"]:
            # The one established before unenroll finishes through the proxy.
            self.assertTrue(held["ok"], (held, err))
            line = self.t.wait_access_log(before + 1)[-1]
            self.assertEqual(line["result"], "ok")
            self.assertEqual(line["bytes_up"], 65536)
        else:
            # The firewall modes (docs/modes.md): once the rules are gone its
            # packets are neither routed to the proxy (tproxy) nor translated
            # (redirect); it is reset, promptly, and never hangs.
            self.assertFalse(held["ok"], held)
        self.assertEqual(self.t.status()["enrolled"], [])
        # Unenrolling again says it is not enrolled.
        r = self.t.agent_cli("unenroll", "--netns", f"/run/netns/{self.t.ns['pod']}")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("not enrolled", r.stderr)

    def test_agent_kill9_and_restart_keeps_redirection_without_duplicates(self):
        installed = self.installed()
        self.assertTrue(installed)
        self.t.stop("agent", sig=signal.SIGKILL, expect_clean=False)
        # No agent at all: the pinned links (or the rules) keep redirecting.
        r = self.t.client(SRV4, size=100000)
        self.assertTrue(r["ok"], r)
        self.assertEqual(self.t.wait_access_log(1)[-1]["original_dst"], f"{SRV4}:7000")
        self.t.start_agent()
        if self.t.mode == "ebpf":
            self.assertIn(f"{len(self.programs())} adopted", self.t.log_text("agent"))
        else:
            self.assertIn("rules converged", self.t.log_text("agent"))
        self.assertEqual(self.installed(), installed)
        s = self.t.status()
        self.assertEqual(len(s["enrolled"]), 1, s)
        if self.t.traits["counters"]:
            self.assertGreaterEqual(s["enrolled"][0]["counters"]["redirected"], 1)
        r = self.t.client(SRV4, size=100000)
        self.assertTrue(r["ok"], r)
        self.assertEqual(len(self.t.wait_access_log(2)), 2)
        # A second restart still converges to the same single copy.
        self.t.stop("agent")
        self.t.start_agent()
        self.assertEqual(self.installed(), installed)

    def test_second_agent_on_same_socket_is_refused(self):
        installed = self.installed()
        r = run([AGENT, "run", "--cgroup", self.t.cgroup, "--bpffs", self.t.bpffs, "--socket",
                 self.t.socket, "--state-dir", self.t.state_dir, *self.t.mode_args()],
                check=False, timeout=20)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("another shunt-agent", r.stderr)
        self.assertEqual(self.installed(), installed)

    def test_uninstall_leaves_nothing_and_is_idempotent(self):
        self.assertTrue(self.installed())
        r = run([AGENT, "uninstall", "--cgroup", self.t.cgroup, "--bpffs", self.t.bpffs,
                 "--socket", self.t.socket, "--state-dir", self.t.state_dir])
        self.assertIn("detached" if self.t.mode == "ebpf" else "removed the rules of", r.stdout)
        # The running agent was asked to stop.
        wait_for(lambda: self.t.procs["agent"].poll() is not None, what="agent exit")
        self.assertEqual(self.t.procs["agent"].returncode, 0)
        self.assertEqual(attached_programs(self.t.cgroup), [])
        self.assertFalse(os.path.exists(self.t.bpffs))
        self.assertEqual(self.t.firewall_footprint(), [])
        self.assertFalse(os.path.exists(os.path.join(self.t.state_dir, "firewall.json")))
        links = [l for l in bpftool_json("link", "show")
                 if l.get("cgroup_id") is not None and "shunt_" in str(l)]
        self.assertEqual(links, [])
        r = run([AGENT, "uninstall", "--cgroup", self.t.cgroup, "--bpffs", self.t.bpffs,
                 "--state-dir", self.t.state_dir])
        self.assertIn("nothing of shunt", r.stdout)
        # Connections from the pod now go direct.
        before = len(self.t.access_log())
        c = self.t.client(SRV4, size=100)
        self.assertTrue(c["ok"], c)
        time.sleep(0.2)
        self.assertEqual(len(self.t.access_log()), before)

    def test_lost_pins_are_reattached_once_by_the_next_agent(self):
        if self.t.mode != "ebpf":
            self.skipTest("pins exist in ebpf mode only")
        # The pins are what keep the links alive (the agent holds no link
        # fds), so removing them detaches; the next agent attaches afresh,
        # exactly once, and keeps the enrolled state held in pinned maps.
        for name in os.listdir(self.t.bpffs):
            if name.startswith("link_"):
                os.unlink(os.path.join(self.t.bpffs, name))
        self.t.stop("agent")
        self.assertEqual(attached_programs(self.t.cgroup), [])
        self.t.start_agent()
        self.assertIn(f"{len(self.programs())} attached", self.t.log_text("agent"))
        self.assertEqual(sorted(attached_programs(self.t.cgroup)), self.programs())
        self.assertEqual(len(self.t.status()["enrolled"]), 1)
        r = self.t.client(SRV4, size=1000)
        self.assertTrue(r["ok"], r)
        self.assertEqual(len(self.t.wait_access_log(1)), 1)

    def test_killed_between_applying_and_recording_converges_to_one_copy(self):
        if self.t.mode == "ebpf":
            self.skipTest("the journal belongs to the firewall modes")
        clean = self.t.firewall_footprint()
        self.t.unenroll("pod")
        self.t.stop("agent")
        self.t.start_agent(env={"SHUNT_FAULT_INJECT": "after-apply"})
        r = self.t.agent_cli("enroll", "--netns", f"/run/netns/{self.t.ns['pod']}")
        self.assertNotEqual(r.returncode, 0)
        wait_for(lambda: self.t.procs["agent"].poll() is not None, what="agent killed")
        self.t.stop("agent", expect_clean=False)
        # The rules went in; the journal still says "applying".
        self.assertEqual(self.t.firewall_footprint(), clean)
        with open(os.path.join(self.t.state_dir, "firewall.json")) as f:
            self.assertEqual(json.load(f)["netns"][0]["state"], "applying")
        self.t.start_agent()
        self.assertEqual(self.t.firewall_footprint(), clean)
        self.assertEqual(len(self.t.status()["enrolled"]), 1)
        self.t.enroll("pod")
        self.assertEqual(self.t.firewall_footprint(), clean)
        r = self.t.client(SRV4, size=5000)
        self.assertTrue(r["ok"], r)
        self.assertEqual(self.t.wait_access_log(1)[-1]["result"], "ok")


if __name__ == "__main__":
    unittest.main(verbosity=2)
