"""The firewall fallback itself: how auto picks a mode, how each namespace's
backend is recognised, and that a namespace's own rules survive enroll and
unenroll exactly."""
import os
import unittest

from shunt_env import AGENT, Topology, run, usable_backends

SRV4 = "10.201.0.2"
TPROXY_FEATURES = "nft-tproxy,iptables-nft-tproxy,iptables-legacy-tproxy"

USER_IPTABLES = """*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:USER_CHAIN - [0:0]
-A OUTPUT -j USER_CHAIN
-A USER_CHAIN -p tcp -m tcp --dport 9 -j ACCEPT
COMMIT
*mangle
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:USER_MANGLE - [0:0]
-A OUTPUT -p udp -j USER_MANGLE
-A PREROUTING -p udp -j USER_MANGLE
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:USER_NAT - [0:0]
-A OUTPUT -p udp -j USER_NAT
COMMIT
"""

USER_NFT = """table inet user {
  chain user_forward {
    type filter hook forward priority 0; policy drop;
  }
  chain user_output {
    type filter hook output priority 0; policy accept;
    tcp dport 9 accept
  }
}
"""


def add_user_rules(t, backend, role="pod"):
    """A namespace with a life of its own: a DROP policy, other chains,
    rules in the tables shunt uses, other ip rules and routes."""
    ns = t.ns[role]
    if backend == "nft":
        run(["ip", "netns", "exec", ns, "nft", "-f", "-"], input=USER_NFT)
    else:
        for tool in ("iptables", "ip6tables"):
            run(["ip", "netns", "exec", ns, f"{tool}-{backend.split('-')[1]}-restore"],
                input=USER_IPTABLES)
    run(["ip", "-n", ns, "route", "add", "10.99.0.0/16", "dev", "lo", "table", "200"])
    run(["ip", "-n", ns, "rule", "add", "from", "10.99.0.0/16", "lookup", "200", "pref", "500"])
    run(["ip", "-n", ns, "-6", "rule", "add", "from", "fd00:99::/64", "lookup", "200", "pref",
         "500"])


class ModeChoiceTest(unittest.TestCase):
    def setUp(self):
        self.t = Topology("choice")
        self.addCleanup(self.t.close)

    def agent_fails(self, *args):
        r = run([AGENT, "run", "--socket", self.t.socket, "--state-dir", self.t.state_dir,
                 *args], check=False, timeout=30)
        self.assertNotEqual(r.returncode, 0)
        self.assertFalse(os.path.exists(self.t.socket))
        return r.stderr

    def test_auto_falls_back_to_tproxy_then_redirect_and_says_why(self):
        if not usable_backends("tproxy"):
            self.skipTest("no tproxy here")
        self.t.agent_args = ["--disable-feature", "prog_getsockopt"]
        self.t.start()
        self.assertEqual(self.t.status()["mode"], "tproxy")
        self.assertIn("not ebpf: missing prog_getsockopt", self.t.log_text("agent"))
        r = self.t.client(SRV4, size=2000)
        self.assertTrue(r["ok"], r)
        self.assertEqual(self.t.wait_access_log(1)[-1]["original_dst"], f"{SRV4}:7000")
        # The same through the environment variable, with tproxy gone too.
        self.t.stop("agent")
        self.t.agent_args = []
        self.t.start_agent(env={"SHUNT_PROBE_DISABLE": "prog_sockops," + TPROXY_FEATURES})
        self.assertEqual(self.t.status()["mode"], "redirect")
        log = self.t.log_text("agent")
        self.assertIn("not tproxy: missing nft-tproxy", log)
        self.t.enroll("pod")
        r = self.t.client(SRV4, size=2000)
        self.assertTrue(r["ok"], r)
        self.assertEqual(self.t.wait_access_log(2)[-1]["original_dst_source"], "sockopt")

    def test_probe_names_the_mode_and_what_each_passed_over_mode_lacked(self):
        r = run([AGENT, "probe", "--disable-feature", "so_netns_cookie,policy-routing"],
                check=False)
        self.assertIn("not ebpf: missing so_netns_cookie", r.stdout)
        self.assertIn("not tproxy: missing policy-routing", r.stdout)
        self.assertIn("mode: redirect", r.stdout)

    def test_forcing_a_mode_the_kernel_cannot_do_fails_with_the_reason(self):
        err = self.agent_fails("--mode", "tproxy", "--disable-feature", TPROXY_FEATURES)
        self.assertIn("tproxy requested but not possible", err)
        self.assertIn("iptables-legacy-tproxy", err)
        err = self.agent_fails("--mode", "redirect", "--backend", "nft", "--disable-feature",
                               "nft-redirect")
        self.assertIn("backend nft cannot do the redirect mode", err)
        err = self.agent_fails("--mode", "firewall")
        self.assertIn("not one of auto, ebpf, tproxy, redirect", err)


class BackendDetectionTest(unittest.TestCase):
    """With --backend auto, each namespace gets the backend its own rules
    are already in; an empty one gets native nftables."""

    def test_each_namespace_keeps_its_backend(self):
        if not {"nft", "iptables-nft", "iptables-legacy"} <= set(usable_backends("redirect")):
            self.skipTest("needs all three backends")
        t = Topology("detect", with_other=True, mode="redirect/auto")
        self.addCleanup(t.close)
        t.start(agent=False)
        add_user_rules(t, "iptables-legacy", "pod")
        add_user_rules(t, "iptables-nft", "oth")
        t.start_agent()
        t.start_proxy()
        for role in ("pod", "oth", "srv"):
            t.enroll(role)
        backends = {e["netns"]: e["backend"] for e in t.status()["enrolled"]}
        self.assertEqual(backends[f"/run/netns/{t.ns['pod']}"], "iptables-legacy")
        self.assertEqual(backends[f"/run/netns/{t.ns['oth']}"], "iptables-nft")
        self.assertEqual(backends[f"/run/netns/{t.ns['srv']}"], "nft")
        self.assertIn("iptables-legacy already holds", t.log_text("agent"))
        r = t.client(SRV4, size=3000)
        self.assertTrue(r["ok"], r)
        self.assertEqual(t.wait_access_log(1)[-1]["result"], "ok")
        for role in ("pod", "oth", "srv"):
            t.unenroll(role)
            self.assertEqual(t.firewall_footprint(role), [])


class ExistingRulesTest(unittest.TestCase):
    """enroll and unenroll leave a namespace's own rules exactly as they were."""

    def check(self, mode, backend):
        if backend not in usable_backends(mode):
            self.skipTest(f"{mode} with {backend} is not possible here")
        t = Topology("keep", mode=f"{mode}/{backend}")
        self.addCleanup(t.close)
        t.start(agent=False)
        add_user_rules(t, backend)
        before = t.firewall_dump()
        t.start_agent()
        t.start_proxy()
        t.enroll("pod")
        during = t.firewall_dump()
        self.assertNotEqual(during, before)
        # The namespace's own rules are all still there while enrolled.
        for key, value in before.items():
            if isinstance(value, list):
                for line in value:
                    if line.startswith(("-A", ":USER", ":FORWARD")):
                        self.assertIn(line, during[key], key)
        if backend == "nft":
            self.assertIn("table inet user", during["nft"])
        self.assertIn("lookup 200", during["rules-4"])
        r = t.client(SRV4, size=3000)
        self.assertTrue(r["ok"], r)
        self.assertEqual(t.wait_access_log(1)[-1]["result"], "ok")
        t.unenroll("pod")
        self.assertEqual(t.firewall_dump(), before)

    def test_tproxy_nft(self):
        self.check("tproxy", "nft")

    def test_tproxy_iptables_nft(self):
        self.check("tproxy", "iptables-nft")

    def test_tproxy_iptables_legacy(self):
        self.check("tproxy", "iptables-legacy")

    def test_redirect_nft(self):
        self.check("redirect", "nft")

    def test_redirect_iptables_nft(self):
        self.check("redirect", "iptables-nft")

    def test_redirect_iptables_legacy(self):
        self.check("redirect", "iptables-legacy")


if __name__ == "__main__":
    unittest.main(verbosity=2)
