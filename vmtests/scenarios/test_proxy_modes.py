"""The proxy's original-destination lookup is one function for every mode:
here connections arrive through nat REDIRECT (set up by hand inside the
test's own namespace, as the firewall fallback will) and the proxy, started
with no flag about it, finds their destination through conntrack."""
import os
import unittest

from shunt_env import ECHO_PORT, Topology, run

RULES = """
table inet shunt_test {
  chain output {
    type nat hook output priority -100; policy accept;
    meta mark & 0xa55 == 0xa55 return
    ip daddr 10.201.0.2 tcp dport 7000 redirect to :15001
    ip6 daddr fd00:201::2 tcp dport 7000 redirect to :15001
  }
}
"""


class RedirectModeTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        t = cls.t = Topology("rdir")
        cls.addClassCleanup(t.close)
        t.start(agent=False)
        t.start_proxy()
        path = os.path.join(t.tmp, "rules.nft")
        with open(path, "w") as f:
            f.write(RULES)
        # Only inside the test's pod namespace, never the machine's own.
        run(["ip", "netns", "exec", t.ns["pod"], "nft", "-f", path])

    def test_redirected_connections_reach_their_destination(self):
        for host, shown in (("10.201.0.2", "10.201.0.2"), ("fd00:201::2", "[fd00:201::2]")):
            before = len(self.t.access_log())
            r = self.t.client(host, size=200000)
            self.assertTrue(r["ok"], r)
            self.assertEqual(r["peername"], [host, ECHO_PORT])
            line = self.t.wait_access_log(before + 1)[-1]
            self.assertEqual(line["original_dst"], f"{shown}:{ECHO_PORT}")
            self.assertEqual(line["original_dst_source"], "sockopt")
            self.assertEqual(line["result"], "ok")


if __name__ == "__main__":
    unittest.main(verbosity=2)
