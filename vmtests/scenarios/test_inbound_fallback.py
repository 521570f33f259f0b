"""Inbound capture in the ebpf mode on a kernel without sk_lookup
(simulated with --disable-feature prog_sk_lookup): outbound stays BPF, and
inbound is captured by the tproxy mode's inbound rules alone. The whole
inbound suite runs unchanged; then uninstall must take those rules away."""
import os
import unittest

import test_inbound


class FallbackInboundTest(test_inbound.InboundTest):
    agent_args = ["--disable-feature", "prog_sk_lookup"]

    @classmethod
    def setUpClass(cls):
        if os.environ.get("SHUNT_TEST_MODE", "ebpf") != "ebpf":
            raise unittest.SkipTest("the ebpf mode's fallback")
        super().setUpClass()

    def test_status_says_how(self):
        status = self.t.status()
        self.assertIn("tproxy rules (sk_lookup unavailable", status["inbound"])
        self.assertEqual(test_inbound.inbound_links(), [])
        entry = status["enrolled"][0]
        self.assertTrue(entry["inbound_link"])
        # Only the inbound chain: outbound stays with the BPF programs.
        rules = "\n".join(self.t.firewall_footprint())
        self.assertIn("inbound", rules)
        self.assertNotIn("chain output", rules)


if __name__ == "__main__":
    unittest.main(verbosity=2)
