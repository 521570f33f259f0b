"""A data path that fails safe and cannot be bypassed (issue 17): the
proxy-down policy (open: connections go direct; closed: refused at once)
when the proxy was killed or never started, redirection coming back when it
listens again, and a pod's processes trying to pass for the proxy (its
mark, IP_TRANSPARENT, its uid) with and without the socket-option guard.
Runs per mode (SHUNT_TEST_MODE); the ebpf mode decides in the kernel at each
connect(), the firewall modes switch the namespace's rules within a window
this test measures and prints."""
import json
import os
import signal
import subprocess
import threading
import time
import unittest

from processes import world_readable
from shunt_env import AGENT, ECHO_PORT, TIMEOUT_SCALE, TOOLS, Topology, wait_for

SRV4 = "10.201.0.2"
SRV6 = "fd00:201::2"
NOBODY = 65534
# A refused connect is answered by the kernel at once; this bound only
# keeps a hang (the 133 s of TPROXY to no socket) from passing. Scaled, like
# every wait, under software emulation.
REFUSED_WITHIN_MS = 250 * TIMEOUT_SCALE


class ProxyDownTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.t = Topology("pdown")
        cls.addClassCleanup(cls.t.close)
        cls.t.start(agent=False)
        cls.t.start_agent()
        cls.ns_path = f"/run/netns/{cls.t.ns['pod']}"

    # ---- helpers ------------------------------------------------------
    def enroll(self, *flags):
        r = self.t.agent_cli("enroll", "--netns", self.ns_path, *flags)
        self.assertEqual(r.returncode, 0, r.stderr)

    def proxy_state(self):
        return self.t.status()["enrolled"][0]["proxy"]

    def set_proxy(self, up):
        running = "proxy" in self.t.procs and self.t.procs["proxy"].poll() is None
        if up and not running:
            self.t.start_proxy()
        if not up and running:
            self.t.stop("proxy", sig=signal.SIGKILL, expect_clean=False)
        # The agent's watch (and in the firewall modes the rules) follow.
        if not self.t.status()["enrolled"]:
            return
        wait_for(lambda: self.proxy_state() == ("up" if up else "down"), timeout=10,
                 what=f"status proxy {'up' if up else 'down'}")

    def connects(self, host, count, who="root", rate=0, **options):
        tool = world_readable(os.path.join(TOOLS, "connects.py"))
        cmd = ["python3", tool, "--host", host, "--port", str(ECHO_PORT), "--count", str(count),
               "--rate", str(rate)]
        for k, v in options.items():
            cmd += ["--" + k] if v is True else ["--" + k, str(v)]
        if who == "nobody":
            cmd = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
                   "--inh-caps=-all", "--bounding-set=-all"] + cmd
        r = self.t.in_ns("pod", cmd, timeout=300)
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)

    def server_ports(self):
        return {int(x["peer"][1]) for x in self.t.server_seen()}

    def assert_redirected_again(self):
        before = len(self.t.access_log())
        r = self.connects(SRV4, 1)
        self.assertEqual(r["outcomes"], {"ok": 1}, r)
        lines = self.t.wait_access_log(before + 1)
        self.assertEqual(lines[-1]["original_dst"], f"{SRV4}:{ECHO_PORT}")

    def skip_unless_cgroup_exemption(self):
        exemption = self.t.status()["exemption"]
        if not exemption.startswith("cgroup ("):
            # A forced backend without the cgroup match (nft before 5.13):
            # the documented fallback, which a root process can copy.
            self.skipTest(f"the mark fallback is in force here: {exemption}")

    def counters(self):
        return self.t.status()["enrolled"][0].get("counters", {})

    def check_refused(self, host, count):
        r = self.connects(host, count)
        self.assertEqual(r["outcomes"], {"ECONNREFUSED": count}, r)
        self.assertLess(r["slowest_ms"], REFUSED_WITHIN_MS, r["slowest_ms"])
        print(f"{self.t.mode} {host}: {count} connects refused, slowest {r['slowest_ms']} ms",
              flush=True)

    def check_direct(self, host, count):
        before = len(self.t.access_log())
        r = self.connects(host, count)
        self.assertEqual(r["outcomes"], {"ok": count}, r)
        # Direct: the server saw each connection come from the client's own
        # port (through the proxy it would see the proxy's), and the proxy
        # logged none of them.
        wait_for(lambda: set(r["ports"]) <= self.server_ports(), timeout=10,
                 what="the server to see the pod's own connections")
        time.sleep(0.2)
        self.assertEqual(len(self.t.access_log()), before)

    # ---- proxy-down policy ------------------------------------------
    def test_1_never_started_closed_is_refused_at_once(self):
        self.enroll()  # the default policy: closed; no proxy was ever started
        self.set_proxy(False)
        self.assertEqual(self.t.status()["enrolled"][0]["policy"]["proxy_down"], "closed")
        self.check_refused(SRV4, 50)
        self.check_refused(SRV6, 50)
        if self.t.traits["counters"]:
            self.assertGreaterEqual(self.counters()["proxy_down_closed"], 100)

    def test_2_never_started_open_goes_direct_then_redirected(self):
        self.enroll("--proxy-down", "open")
        self.set_proxy(False)
        self.check_direct(SRV4, 50)
        self.check_direct(SRV6, 50)
        if self.t.traits["counters"]:
            self.assertGreaterEqual(self.counters()["proxy_down_open"], 100)
        self.set_proxy(True)
        self.assert_redirected_again()

    def kill_check_and_restart(self, policy, check):
        """The proxy listening, then killed (`check` runs then), then back:
        redirected again without enrolling again."""
        self.enroll("--proxy-down", policy)
        self.set_proxy(True)
        self.assert_redirected_again()
        self.set_proxy(False)
        check(SRV4, 500)
        check(SRV6, 500)
        self.set_proxy(True)
        self.assert_redirected_again()

    def test_3_killed_closed_500_refused_then_back(self):
        self.kill_check_and_restart("closed", self.check_refused)

    def test_4_killed_open_500_direct_then_back(self):
        self.kill_check_and_restart("open", self.check_direct)

    def test_5_switching_window_at_200_per_second(self):
        """Connects at 200 per second while the proxy is killed, with the
        open policy: how long connects fail before the policy takes over."""
        self.enroll("--proxy-down", "open")
        self.set_proxy(True)
        result = {}
        worker = threading.Thread(target=lambda: result.update(
            self.connects(SRV4, 600, rate=200, timeout=2)))
        worker.start()
        time.sleep(1.0)
        self.t.stop("proxy", sig=signal.SIGKILL, expect_clean=False)
        worker.join(timeout=120)
        # Hit: failed, or slowed down by a lost SYN (retransmitted later).
        hit = [(at, ms) for at, outcome, ms in result["timeline"] if outcome != "ok" or ms > 100]
        window = (hit[-1][0] + hit[-1][1] / 1000 - hit[0][0]) if hit else 0.0
        print(f"{self.t.mode}: killing the proxy under 200 connects/s: {len(hit)} of 600 "
              f"connects failed or took over 100 ms, over {window * 1000:.0f} ms "
              f"({result['outcomes']})", flush=True)
        self.assertLess(window, 3.0 * TIMEOUT_SCALE, result["timeline"])
        self.set_proxy(True)

    # ---- what a pod cannot do ---------------------------------------
    def test_6_root_with_the_proxy_mark_is_still_captured(self):
        """uid 0 with CAP_NET_ADMIN, like the proxy (which runs as root here,
        with the same gid): it copies the uid, the gid and the mark, and is
        still redirected, since it is not in a proxy cgroup."""
        self.skip_unless_cgroup_exemption()
        self.enroll()
        self.set_proxy(True)
        for host in (SRV4, SRV6):
            before = len(self.t.access_log())
            r = self.connects(host, 5, mark="0xa55")
            self.assertEqual(r["outcomes"], {"ok": 5}, r)
            self.t.wait_access_log(before + 5)
            if self.t.mode == "ebpf":
                self.assertEqual(r["setsockopt"]["SO_MARK"], {"EPERM": 5}, r)
        if self.t.mode == "ebpf":
            self.assertGreaterEqual(self.counters()["sockopt_refused"], 10)
            wait_for(lambda: "socket-option guard refused" in self.t.log_text("agent"),
                     timeout=10, what="the agent's log line for the refusal")
        # With the guard off the option is set, and the connection is
        # captured all the same.
        self.enroll("--guard-sockopts", "false")
        for host in (SRV4, SRV6):
            before = len(self.t.access_log())
            r = self.connects(host, 5, mark="0xa55")
            self.assertEqual(r["setsockopt"]["SO_MARK"], {"ok": 5}, r)
            self.assertEqual(r["outcomes"], {"ok": 5}, r)
            self.t.wait_access_log(before + 5)
        self.enroll("--guard-sockopts", "true")

    def test_7_transparent_sockets_are_guarded(self):
        self.enroll()
        self.set_proxy(True)
        for host in (SRV4, SRV6):
            before = len(self.t.access_log())
            r = self.connects(host, 3, transparent=True)
            self.assertEqual(r["outcomes"], {"ok": 3}, r)
            self.t.wait_access_log(before + 3)
            if self.t.mode == "ebpf":
                self.assertEqual(r["setsockopt"]["TRANSPARENT"], {"EPERM": 3}, r)
        self.enroll("--guard-sockopts", "false")
        r = self.connects(SRV4, 1, transparent=True)
        self.assertEqual(r["setsockopt"]["TRANSPARENT"], {"ok": 1}, r)
        self.enroll("--guard-sockopts", "true")

    def test_8_excluded_uid_stays_excluded(self):
        """exclude-uids is policy, not a bypass: it keeps working."""
        self.enroll("--exclude-uids", str(NOBODY))
        self.set_proxy(True)
        before = len(self.t.access_log())
        r = self.connects(SRV4, 3, who="nobody")
        self.assertEqual(r["outcomes"], {"ok": 3}, r)
        wait_for(lambda: set(r["ports"]) <= self.server_ports(), timeout=10,
                 what="the server to see the excluded uid's own connections")
        self.assertEqual(len(self.t.access_log()), before)
        self.enroll("--exclude-uids", "")

    def test_9_status_says_which_exemption_is_in_force(self):
        self.skip_unless_cgroup_exemption()
        self.assertTrue(self.t.status()["exemption"].startswith("cgroup ("),
                        self.t.status()["exemption"])


class ExemptionFallbackTest(unittest.TestCase):
    """Where the cgroup match is missing (simulated), the firewall modes fall
    back to the mark and say so; proxy-exemption cgroup refuses to start
    instead. The ebpf mode uses the mark only when asked to."""

    def setUp(self):
        self.t = Topology("exfb")
        self.addCleanup(self.t.close)

    def test_the_exemption_in_force_is_the_one_status_names(self):
        t = self.t
        if t.mode == "ebpf":
            t.agent_args = ["--proxy-exemption", "mark"]
            t.start()
            self.assertTrue(t.status()["exemption"].startswith("cgroup ("), t.status())
            self.assertIn("and mark 0xa55", t.status()["exemption"])
            return
        missing = "nft-cgroup,iptables-nft-cgroup,iptables-legacy-cgroup"
        t.agent_args = ["--disable-feature", missing]
        t.start()
        self.assertTrue(t.status()["exemption"].startswith("mark 0xa55 (fallback: no cgroup"),
                        t.status()["exemption"])
        r = t.client(SRV4, size=100)
        self.assertTrue(r["ok"], r)
        t.stop("agent")
        err = os.path.join(t.tmp, "refused.log")
        with open(err, "w") as f:
            rc = subprocess.run(
                [AGENT, "run", "--cgroup", t.cgroup, "--bpffs", t.bpffs, "--socket", t.socket,
                 "--state-dir", t.state_dir, *t.mode_args(), "--disable-feature", missing,
                 "--proxy-exemption", "cgroup"], stdout=f, stderr=subprocess.STDOUT,
                timeout=60).returncode
        self.assertNotEqual(rc, 0)
        with open(err) as f:
            self.assertIn("proxy-exemption cgroup: no cgroup match", f.read())


if __name__ == "__main__":
    unittest.main(verbosity=2)
