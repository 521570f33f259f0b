"""Inbound capture: connections from another namespace to a server in the
pod go through the proxy's inbound listener, in every mode (sk_lookup in
ebpf, TPROXY or REDIRECT in PREROUTING in the firewall modes). Runs once
per mode and backend (SHUNT_TEST_MODE)."""
import json
import os
import signal
import unittest

from shunt_env import Topology, bpftool_json, wait_for

POD4, POD6 = "10.201.0.1", "fd00:201::1"
WILDCARD, POD_ONLY, LOOPBACK_ONLY, EXCLUDED = 8080, 8082, 8083, 8081
KIB = 1024


def seen_by(report):
    """What a tools/echo_server.py saw (one JSON line per connection)."""
    try:
        with open(report) as f:
            return [json.loads(line) for line in f if line.strip()]
    except FileNotFoundError:
        return []


def inbound_links():
    return [l for l in bpftool_json("link", "show") if l.get("type") == "netns"]


class InboundTest(unittest.TestCase):
    # test_inbound_fallback.py runs this class again with sk_lookup off.
    agent_args = []

    @classmethod
    def setUpClass(cls):
        cls.t = Topology("inbnd", agent_args=cls.agent_args, proxy_args=["--inbound", "true"])
        cls.addClassCleanup(cls.t.close)
        cls.t.start()
        t = cls.t
        # The pod's application: on every address, on the pod's addresses
        # only, on loopback only, and on a port the policy excludes.
        for name, port, binds in (("app_any", WILDCARD, []),
                                  ("app_pod", POD_ONLY, ["--bind", POD4, "--bind", POD6]),
                                  ("app_lo", LOOPBACK_ONLY, ["--bind", "127.0.0.1", "--bind", "::1"]),
                                  ("app_excl", EXCLUDED, [])):
            t.start_helper(name, "pod", "echo_server.py", "--port", str(port), "--report",
                           os.path.join(t.tmp, f"{name}.jsonl"), *binds)
        cls.enroll_capture()

    @classmethod
    def enroll_capture(cls, *extra):
        cls.t.agent_cli("enroll", "--netns", f"/run/netns/{cls.t.ns['pod']}",
                        "--capture-inbound", "on", "--exclude-inbound-ports", str(EXCLUDED),
                        *extra, check=True)

    def inbound_lines(self):
        return [l for l in self.t.access_log() if l.get("listener") == "inbound"]

    def through_proxy(self, host, port, size=64 * KIB):
        before = len(self.inbound_lines())
        r = self.t.client(host, port=port, role="srv", size=size)
        self.assertTrue(r["ok"], r)
        self.assertEqual(r["received"], size)
        # This connection's line: one that came after it started, from its
        # address, to its destination. Lines of an earlier test's
        # connections may still be arriving, and one of them may have had
        # the same ephemeral port (seen in CI: the 200-client test's).
        client = f"{'[fd00:201::2]' if ':' in host else '10.201.0.2'}:{r['sockname'][1]}"
        bracketed = f"[{host}]" if ":" in host else host

        def mine():
            return [l for l in self.inbound_lines()[before:] if l.get("client") == client
                    and l.get("original_dst") == f"{bracketed}:{port}"]

        wait_for(lambda: mine(), what=f"the inbound access-log line of {client} to "
                                      f"{bracketed}:{port}")
        line = mine()[-1]
        self.assertEqual(line["result"], "ok")
        self.assertEqual(line["bytes_up"], size)
        self.assertEqual(line["bytes_down"], size)
        return line

    def test_ipv4_to_wildcard_application(self):
        self.through_proxy(POD4, WILDCARD)

    def test_ipv6_to_wildcard_application(self):
        self.through_proxy(POD6, WILDCARD)

    def test_application_on_the_pod_address(self):
        self.through_proxy(POD4, POD_ONLY)
        self.through_proxy(POD6, POD_ONLY)

    def test_application_on_loopback_only(self):
        line = self.through_proxy(POD4, LOOPBACK_ONLY)
        self.assertEqual(line["upstream"], f"127.0.0.1:{LOOPBACK_ONLY}")
        line = self.through_proxy(POD6, LOOPBACK_ONLY)
        self.assertEqual(line["upstream"], f"[::1]:{LOOPBACK_ONLY}")

    def test_no_loop_one_line_per_connection(self):
        before = len(self.t.access_log())
        self.through_proxy(POD4, WILDCARD)
        self.through_proxy(POD4, POD_ONLY)
        wait_for(lambda: len(self.t.access_log()) >= before + 2, what="log lines")
        # The proxy's own connections to the application are neither
        # captured again nor redirected outbound.
        lines = self.t.access_log()[before:]
        self.assertEqual(len(lines), 2, lines)

    def test_excluded_port_bypasses_the_proxy(self):
        before = len(self.t.access_log())
        r = self.t.client(POD4, port=EXCLUDED, role="srv", size=KIB)
        self.assertTrue(r["ok"], r)
        r = self.t.client(POD6, port=EXCLUDED, role="srv", size=KIB)
        self.assertTrue(r["ok"], r)
        self.assertEqual(len(self.t.access_log()), before)

    def test_a_reused_source_port_keeps_its_destination(self):
        """A client that connects again from the same port, to another port of
        the pod, within conntrack's TIME_WAIT: the proxy must see the new
        original destination. The redirect mode does not: after REDIRECT both
        connections have the same reply tuple (client -> POD:15006), and
        SO_ORIGINAL_DST can find the old one (seen in CI, where the 200-client
        test's ports were reused; a known defect, docs/modes.md)."""
        code = f"""
import json, socket
out = []
for port in ({WILDCARD}, {POD_ONLY}):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("10.201.0.2", 47123))
    s.connect(("{POD4}", port))
    s.sendall(b"x" * 100)
    s.shutdown(socket.SHUT_WR)
    got = b""
    while True:
        d = s.recv(4096)
        if not d:
            break
        got += d
    s.close()
    out.append(len(got))
print(json.dumps(out))
"""
        before = len(self.inbound_lines())
        r = self.t.in_ns("srv", ["python3", "-c", code])
        self.assertEqual(r.returncode, 0, r.stderr)
        wait_for(lambda: len(self.inbound_lines()) >= before + 2, what="two inbound lines")
        seen = [l["original_dst"] for l in self.inbound_lines()[before:]
                if l.get("client") == "10.201.0.2:47123"]
        if self.t.mode == "redirect":
            self.skipTest(f"known defect of the redirect mode (docs/modes.md): the proxy saw "
                          f"{seen} for connections to {WILDCARD} then {POD_ONLY}")
        self.assertEqual(seen, [f"{POD4}:{WILDCARD}", f"{POD4}:{POD_ONLY}"])

    # Late among the tests: its 200 ephemeral ports would be used again by
    # the next tests' clients (see the test above).
    def test_zy_200_concurrent_clients(self):
        before = len(self.inbound_lines())
        r = self.t.client(POD4, port=WILDCARD, role="srv", size=16 * KIB, concurrency=200,
                          timeout=30)
        self.assertTrue(r["ok"], r)
        self.assertEqual(r["completed"], 200)
        wait_for(lambda: len(self.inbound_lines()) >= before + 200, timeout=30,
                 what="200 inbound lines")
        self.assertEqual(sum(1 for l in self.inbound_lines()[before:] if l["result"] == "ok"), 200)

    def test_status_shows_the_inbound_policy(self):
        entry = self.t.status()["enrolled"][0]
        self.assertTrue(entry["policy"]["capture_inbound"])
        self.assertEqual(entry["policy"]["inbound_ports"],
                         f"1-{EXCLUDED - 1},{EXCLUDED + 1}-15000,15002-15005,15007-65535")
        if self.t.mode == "ebpf":
            self.assertTrue(entry["inbound_link"])
        if self.t.mode == "ebpf" and not self.agent_args:
            self.assertGreater(entry["counters"]["inbound_steered"], 0)

    def test_capture_off_then_on_again(self):
        self.t.agent_cli("enroll", "--netns", f"/run/netns/{self.t.ns['pod']}", check=True)
        try:
            before = len(self.t.access_log())
            r = self.t.client(POD4, port=WILDCARD, role="srv", size=KIB)
            self.assertTrue(r["ok"], r)
            self.assertEqual(len(self.t.access_log()), before)
            if self.t.mode == "ebpf":
                self.assertEqual(inbound_links(), [])
                self.assertEqual(self.t.firewall_footprint(), [])
        finally:
            self.enroll_capture()
        self.through_proxy(POD4, WILDCARD)

    def test_zz_uninstall_removes_link_and_rules(self):
        # Last (zz): takes the whole set-up down; close() then checks that
        # the firewall modes left no rule behind.
        if self.t.mode == "ebpf" and not self.agent_args:
            self.assertEqual(len(inbound_links()), 1)
        self.t.stop("agent")
        self.t.agent_cli("uninstall", "--cgroup", self.t.cgroup, "--bpffs", self.t.bpffs,
                         "--state-dir", self.t.state_dir, check=True)
        self.assertEqual(inbound_links(), [])
        self.assertEqual(self.t.firewall_footprint(), [])
        r = self.t.client(POD4, port=WILDCARD, role="srv", size=KIB)
        self.assertTrue(r["ok"], r)


class WithoutSkLookupOrTproxyTest(unittest.TestCase):
    """ebpf on a kernel with neither sk_lookup nor TPROXY (simulated):
    outbound still works, capture-inbound is refused with the reason, status
    says why. (Without sk_lookup alone, test_inbound_fallback.py.)"""

    def test_capture_inbound_refused_with_the_reason(self):
        t = Topology("nosklk", agent_args=["--disable-feature",
                                           "prog_sk_lookup,nft,iptables-nft,iptables-legacy"])
        self.addCleanup(t.close)
        if t.mode != "ebpf":
            self.skipTest("the ebpf mode's inbound capture")
        t.start()
        self.assertIn("unavailable", t.status()["inbound"])
        r = t.agent_cli("enroll", "--netns", f"/run/netns/{t.ns['pod']}", "--capture-inbound",
                        "on")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("sk_lookup", r.stderr)
        self.assertIn("TPROXY", r.stderr)
        # The namespace keeps the policy it had: outbound still redirected.
        self.assertFalse(t.status()["enrolled"][0]["policy"]["capture_inbound"])
        r = t.client("10.201.0.2", size=1024)
        self.assertTrue(r["ok"], r)
        t.wait_access_log(1)


class ClientAddressTest(unittest.TestCase):
    """preserve-client-address: the application sees the client's address.
    Only the tproxy mode can route the application's replies back to the
    proxy; the others refuse the setting with the reason."""

    def test_application_sees_the_client_address(self):
        t = Topology("cladr", agent_args=["--preserve-client-address"],
                     proxy_args=["--inbound", "true", "--inbound-client-address", "true"])
        self.addCleanup(t.close)
        if t.mode != "tproxy":
            t.require_mode()
            os.makedirs(t.cgroup)
            r = t.agent_cli("run", "--cgroup", t.cgroup, "--bpffs", t.bpffs, "--state-dir",
                            t.state_dir, *t.mode_args(), "--preserve-client-address")
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("preserve-client-address", r.stderr)
            self.assertIn("tproxy", r.stderr)
            return
        t.start()
        report = os.path.join(t.tmp, "app.jsonl")
        t.start_helper("app", "pod", "echo_server.py", "--port", str(WILDCARD), "--report", report)
        t.agent_cli("enroll", "--netns", f"/run/netns/{t.ns['pod']}", "--capture-inbound", "on",
                    check=True)
        for host, client in ((POD4, "10.201.0.2"), (POD6, "fd00:201::2")):
            r = t.client(host, port=WILDCARD, role="srv", size=32 * KIB)
            self.assertTrue(r["ok"], r)
            self.assertEqual(r["received"], 32 * KIB)
            wait_for(lambda: any(s["peer"][0] == client for s in seen_by(report)),
                     what=f"the application seeing {client}")
        lines = [l for l in t.access_log() if l.get("listener") == "inbound"]
        self.assertEqual(len(lines), 2, t.access_log())


class InboundProxyDownTest(unittest.TestCase):
    """Issue 17: inbound connections while the proxy is down follow the
    namespace's proxy-down policy: open, to the application directly;
    closed, never to the application unproxied (the ebpf mode drops the
    SYN, the firewall modes refuse it)."""

    @classmethod
    def setUpClass(cls):
        cls.t = Topology("indown", proxy_args=["--inbound", "true"])
        cls.addClassCleanup(cls.t.close)
        cls.t.start()
        cls.report = os.path.join(cls.t.tmp, "app.jsonl")
        cls.t.start_helper("app", "pod", "echo_server.py", "--port", str(WILDCARD), "--report",
                           cls.report)

    def enroll(self, policy):
        self.t.agent_cli("enroll", "--netns", f"/run/netns/{self.t.ns['pod']}",
                         "--capture-inbound", "on", "--proxy-down", policy, check=True)

    def inbound_lines(self):
        return [l for l in self.t.access_log() if l.get("listener") == "inbound"]

    def test_inbound_follows_the_proxy_down_policy(self):
        t = self.t
        self.enroll("open")
        t.stop("proxy", sig=signal.SIGKILL, expect_clean=False)
        wait_for(lambda: t.status()["enrolled"][0]["proxy"] == "down", what="proxy down")
        before_app, before_log = len(seen_by(self.report)), len(self.inbound_lines())
        for host in (POD4, POD6):
            r = t.client(host, port=WILDCARD, role="srv", size=KIB)
            self.assertTrue(r["ok"], r)
        wait_for(lambda: len(seen_by(self.report)) >= before_app + 2, what="the application")
        self.assertEqual(len(self.inbound_lines()), before_log)
        self.enroll("closed")
        before_app = len(seen_by(self.report))
        for host in (POD4, POD6):
            r = t.client(host, port=WILDCARD, role="srv", size=KIB, timeout=2)
            self.assertFalse(r["ok"], r)
        self.assertEqual(len(seen_by(self.report)), before_app)
        if t.traits["counters"]:
            counters = t.status()["enrolled"][0]["counters"]
            self.assertGreaterEqual(counters["proxy_down_open"], 2)
            self.assertGreaterEqual(counters["proxy_down_closed"], 2)
        t.start_proxy()
        wait_for(lambda: t.status()["enrolled"][0]["proxy"] == "up", what="proxy up")
        before_log = len(self.inbound_lines())
        r = t.client(POD4, port=WILDCARD, role="srv", size=KIB)
        self.assertTrue(r["ok"], r)
        wait_for(lambda: len(self.inbound_lines()) > before_log, what="inbound access-log line")


if __name__ == "__main__":
    unittest.main(verbosity=2)
