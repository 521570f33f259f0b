"""Outbound redirection on the host kernel: what the application, the
proxy and the server each see. Runs once per mode and firewall backend
(SHUNT_TEST_MODE): the same assertions, except where docs/modes.md says
the modes differ."""
import os
import unittest

from shunt_env import ECHO_PORT, TOOLS, Topology, wait_for

SRV4 = "10.201.0.2"
SRV6 = "fd00:201::2"
POD4 = "10.201.0.1"
POD6 = "fd00:201::1"
MIB = 1024 * 1024


class RedirectTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.t = Topology("redir", with_other=True)
        cls.addClassCleanup(cls.t.close)
        cls.t.start()

    def last_log_for(self, client):
        """The access-log line of the connection the client made."""
        port = client["sockname"][1]
        for line in reversed(self.t.wait_access_log(1)):
            if line["client"].endswith(f":{port}"):
                return line
        self.fail(f"no access-log line for client port {port}: {self.t.access_log()}")

    def check_redirected_echo(self, host, bracketed):
        before = len(self.t.access_log())
        r = self.t.client(host, size=MIB)
        self.assertTrue(r["ok"], r)
        self.assertEqual(r["received"], MIB)
        # getpeername() in the application shows the original destination,
        # getsockname() the pod's own address, as without shunt (issue 15.11).
        self.assertEqual(r["peername"][:2], [host, ECHO_PORT])
        self.assertEqual(r["sockname"][0], POD6 if ":" in host else POD4)
        self.t.wait_access_log(before + 1)
        line = self.last_log_for(r)
        self.assertEqual(line["original_dst"], f"{bracketed}:{ECHO_PORT}")
        # ebpf and redirect answer SO_ORIGINAL_DST; TPROXY delivers on the
        # original address itself.
        self.assertEqual(line["original_dst_source"],
                         "local" if self.t.mode == "tproxy" else "sockopt")
        self.assertEqual(line["upstream"], f"{bracketed}:{ECHO_PORT}")
        self.assertEqual(line["result"], "ok")
        self.assertEqual(line["bytes_up"], MIB)
        self.assertEqual(line["bytes_down"], MIB)
        for key in ("ts", "id", "listener", "client", "duration_ms"):
            self.assertIn(key, line)
        # The server's peer is the proxy's upstream socket, not the app's.
        seen = [s for s in self.t.server_seen() if s["bytes"] == MIB]
        self.assertTrue(seen)
        peers = {f"{s['peer'][0]}:{s['peer'][1]}" for s in seen}
        upstream_local = line["upstream_local"].replace("[", "").replace("]", "")
        self.assertIn(upstream_local, peers)
        self.assertNotEqual(r["sockname"][1], int(upstream_local.rsplit(":", 1)[1]))

    def test_ipv4_1mib_echo_through_proxy(self):
        self.check_redirected_echo(SRV4, SRV4)

    def test_ipv6_1mib_echo_through_proxy(self):
        self.check_redirected_echo(SRV6, "[fd00:201::2]")

    def test_non_enrolled_namespace_untouched(self):
        before = len(self.t.access_log())
        r = self.t.client("10.201.1.2", role="oth", size=4096)
        self.assertTrue(r["ok"], r)
        self.assertEqual(r["peername"], ["10.201.1.2", ECHO_PORT])
        # The server saw the client's own socket: nothing in between. (It
        # writes its line once the connection is closed: maybe after the
        # client has its answer.)
        peer = ["10.201.1.1", r["sockname"][1]]
        wait_for(lambda: peer in [s["peer"] for s in self.t.server_seen()],
                 what="the server's line for the client's own socket")
        self.assertEqual(len(self.t.access_log()), before)

    def test_udp_is_not_redirected(self):
        before = len(self.t.access_log())
        r = self.t.client(SRV4, udp=True)
        self.assertTrue(r["ok"], r)
        self.assertEqual(r["from"], [SRV4, ECHO_PORT])
        self.assertEqual(len(self.t.access_log()), before)

    def test_loopback_destinations_are_not_redirected(self):
        before = len(self.t.access_log())
        code = ("import socket\n"
                "for fam, host in ((socket.AF_INET, '127.0.0.1'), (socket.AF_INET6, '::1')):\n"
                "    l = socket.socket(fam); l.bind((host, 0)); l.listen()\n"
                "    c = socket.socket(fam); c.connect(l.getsockname()[:2])\n"
                "    a, peer = l.accept()\n"
                "    assert peer[:2] == c.getsockname()[:2], (peer, c.getsockname())\n"
                "    assert c.getpeername()[:2] == l.getsockname()[:2]\n"
                "print('direct')\n")
        r = self.t.in_ns("pod", ["python3", "-c", code])
        self.assertEqual(r.stdout.strip(), "direct", r.stderr)
        self.assertEqual(len(self.t.access_log()), before)

    def test_loopback_is_redirected_when_configured(self):
        pod = f"/run/netns/{self.t.ns['pod']}"
        ready = os.path.join(self.t.tmp, "pod-echo.ready")
        self.t.spawn("pod-echo", ["ip", "netns", "exec", self.t.ns["pod"], "python3",
                                  os.path.join(TOOLS, "echo_server.py"), "--port", "7100",
                                  "--report", os.path.join(self.t.tmp, "pod-echo.jsonl"),
                                  "--ready", ready])
        wait_for(lambda: os.path.exists(ready), what="echo server in the pod")
        self.assertEqual(self.t.agent_cli("enroll", "--netns", pod, "--redirect-loopback").returncode, 0)
        try:
            for host, shown in (("127.0.0.1", "127.0.0.1"), ("::1", "[::1]")):
                before = len(self.t.access_log())
                r = self.t.client(host, port=7100, size=5000)
                self.assertTrue(r["ok"], r)
                line = self.t.wait_access_log(before + 1)[-1]
                self.assertEqual(line["original_dst"], f"{shown}:7100")
                self.assertEqual(line["result"], "ok")
            # The proxy's own port stays out even then.
            before = len(self.t.access_log())
            r = self.t.client("127.0.0.1", port=15001, size=10, timeout=3)
            self.assertEqual(self.t.wait_access_log(before + 1)[-1]["result"], "no_original_dst")
        finally:
            self.t.enroll("pod")
            self.t.stop("pod-echo", expect_clean=False)
        self.assertFalse(self.t.status()["enrolled"][0]["redirect_loopback"])

    def test_mptcp_sockets_see_the_original_destination(self):
        # Issue 15.11: an MPTCP socket's getpeername() showed the proxy.
        probe = self.t.in_ns("pod", ["python3", "-c",
                                     "import socket; socket.socket(socket.AF_INET, "
                                     "socket.SOCK_STREAM, 262).close()"])
        if probe.returncode != 0:
            self.skipTest("MPTCP is not available on this kernel")
        for host in (SRV4, SRV6):
            r = self.t.client(host, size=1000, mptcp=True)
            self.assertTrue(r["ok"], r)
            self.assertEqual(r["peername"][:2], [host, ECHO_PORT])
            self.assertEqual(r["sockname"][0], POD6 if ":" in host else POD4)

    def test_remote_hosts_on_the_proxy_ports_are_captured(self):
        """Issue 15.3: the proxy's ports are exempt on its own listeners
        only; another host's 15001/15006 goes through the proxy like any
        other port (there it is refused, since nothing listens)."""
        for port in (15001, 15006):
            before = len(self.t.access_log())
            r = self.t.client(SRV4, port=port, size=10, timeout=3)
            self.assertFalse(r["ok"], r)
            line = self.t.wait_access_log(before + 1)[-1]
            self.assertEqual(line["original_dst"], f"{SRV4}:{port}")
            self.assertNotEqual(line["result"], "ok")

    def test_200_concurrent_connections(self):
        before = len(self.t.access_log())
        r = self.t.client(SRV4, size=16384, concurrency=200, timeout=30)
        self.assertTrue(r["ok"], r)
        self.assertEqual(r["completed"], 200)
        lines = self.t.wait_access_log(before + 200, timeout=30)
        self.assertEqual(sum(1 for x in lines[before:] if x["result"] == "ok"), 200)

    def test_sidecar_placement_has_no_loop(self):
        # The proxy runs in the pod's namespace, in the proxies' cgroup under
        # the attach cgroup: each application connection makes exactly one
        # proxied connection, never more.
        before = len(self.t.access_log())
        r = self.t.client(SRV4, size=100)
        self.assertTrue(r["ok"], r)
        self.t.wait_access_log(before + 1)
        import time
        time.sleep(0.3)
        self.assertEqual(len(self.t.access_log()), before + 1)
        if self.t.traits["counters"]:
            counters = self.t.status()["enrolled"][0]["counters"]
            # Exempt by its cgroup, not by its mark.
            self.assertGreater(counters["skipped_proxy_cgroup"], 0)
            self.assertEqual(counters["skipped_bypass"], 0)

    def test_status_lists_the_enrolled_namespace(self):
        s = self.t.status()
        self.assertEqual(s["mode"], self.t.mode)
        if self.t.traits["pins"]:
            self.assertEqual(s["cgroup"], self.t.cgroup)
            self.assertIn("link_shunt_connect4", s["pins"])
        else:
            self.assertEqual(s["state_dir"], self.t.state_dir)
            self.assertEqual(s["enrolled"][0]["backend"], self.t.backend)
            self.assertNotIn("counters", s["enrolled"][0])
        self.assertEqual([e["netns"] for e in s["enrolled"]], [f"/run/netns/{self.t.ns['pod']}"])
        text = self.t.agent_cli("status").stdout
        self.assertIn(self.t.mode, text)
        self.assertIn(self.t.ns["pod"], text)

    def test_enrolling_again_keeps_one_copy(self):
        before = self.t.firewall_footprint()
        self.t.enroll("pod")
        self.t.enroll("pod")
        self.assertEqual(self.t.firewall_footprint(), before)
        self.assertEqual(len(self.t.status()["enrolled"]), 1)
        r = self.t.client(SRV4, size=1000)
        self.assertTrue(r["ok"], r)


if __name__ == "__main__":
    unittest.main(verbosity=2)
