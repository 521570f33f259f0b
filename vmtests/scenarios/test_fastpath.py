"""The sk_msg fast path (agent setting sk-msg on): bytes between the
application and the proxy skip TCP/IP, and every way a connection can end
still behaves as plain TCP does. The foundation's scenarios also run with
the fast path on (SHUNT_TEST_MODE=ebpf+sk-msg)."""
import json
import os
import unittest

from shunt_env import AGENT, ECHO_PORT, TOOLS, Topology, run, wait_for

SRV4 = "10.201.0.2"
SRV6 = "fd00:201::2"
PEER_PORT = 7100
MIB = 1024 * 1024


class FastPathTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # The proxy relays with splice(2), which cannot see bytes the fast
        # path put in a socket's queue: it must notice and fall back to
        # reads (the foundation's scenarios cover the default, copying).
        cls.t = Topology("fastp", mode="ebpf+sk-msg", proxy_args=["--splice", "true"])
        cls.addClassCleanup(cls.t.close)
        cls.t.start()
        cls.t.start_helper("peer", "srv", "stream_peer.py", "serve", "--port", str(PEER_PORT))

    def counters(self):
        return self.t.status()["enrolled"][0]["counters"]

    def peer(self, mode, host=SRV4, **options):
        cmd = ["python3", os.path.join(TOOLS, "stream_peer.py"), "connect", "--host", host,
               "--port", str(PEER_PORT), "--mode", mode]
        for k, v in options.items():
            cmd += ["--" + k, str(v)]
        r = self.t.in_ns("pod", cmd)
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)

    def assert_maps_drain(self):
        """Closed connections leave nothing in the sock hash or the
        original-destination maps."""
        for name in ("shunt_sock_hash", "shunt_pairs", "shunt_orig_dst"):
            wait_for(lambda: not self.t.map_entries(name), timeout=10,
                     what=f"{name} to be empty")

    def test_status_says_the_fast_path_is_on(self):
        self.assertTrue(self.t.status()["sk_msg"])
        text = self.t.agent_cli("status", check=True).stdout
        self.assertIn("sk_msg:    on", text)
        self.assertIn("link_shunt_sockops_fastpath", self.t.status()["pins"])

    def test_payload_integrity_from_1_byte_to_4_mib(self):
        sizes = [1, 2, 63, 64, 1460, 4096, 65535, 65536, 65537, 1 << 20, 4 << 20]
        for host in (SRV4, SRV6):
            for size in sizes:
                before = self.counters()
                r = self.t.client(host, size=size, tcp_info=True)
                self.assertTrue(r["ok"], (host, size, r))
                self.assertEqual(r["received"], size)
                after = self.counters()
                # Both ends joined the sock hash, and the application's
                # bytes went around TCP/IP both ways.
                self.assertEqual(after["fastpath_sockets"] - before["fastpath_sockets"], 2)
                self.assertEqual(after["fastpath_declined"], before["fastpath_declined"])
                self.assertEqual(r["tcp"], {"data_segs_in": 0, "data_segs_out": 0},
                                 (host, size))
        self.assert_maps_drain()

    @unittest.skip("known defect of the fast path, docs/benchmarks.md: a blocking recv() fails "
                   "with EAGAIN while another thread sends on the same socket (seen on 6.18)")
    def test_full_duplex_stream_from_two_threads(self):
        # echo_stream.py writes from one thread and reads from another, as
        # any full-duplex application does. The kernel's recvmsg for a
        # socket in a sock map (tcp_bpf_recvmsg) returns -EAGAIN when its
        # wait for redirected bytes ends without any, and a send on the
        # same socket ends that wait: the reading thread's blocking recv()
        # fails. This test reproduces it; it is skipped until the fast path
        # keeps such sockets out of the sock hash or the kernel stops doing so.
        p = self.t.tool_in_background("pod", "echo_stream.py", "--host", SRV4, "--port",
                                      str(ECHO_PORT), "--seconds", "3", "--rate", "500000")
        out, err = p.communicate(timeout=60)
        self.assertEqual(p.returncode, 0, err)
        self.assertTrue(json.loads(out)["matched"], out)

    def test_thousand_short_connections_leave_no_entries(self):
        before = self.counters()
        r = self.t.client(SRV4, size=100, repeat=1000)
        self.assertTrue(r["ok"], r)
        self.assertEqual(r["completed"], 1000)
        after = self.counters()
        self.assertEqual(after["fastpath_sockets"] - before["fastpath_sockets"], 2000)
        self.assert_maps_drain()

    def test_server_closing_first_delivers_everything_then_an_error(self):
        for host in (SRV4, SRV6):
            r = self.peer("close", host=host, size=3 * MIB + 7)
            self.assertTrue(r["ok"], r)
            self.assertEqual(r["received"], 3 * MIB + 7)
            self.assertTrue(r["intact"], r)
            self.assertIn(r["write_after_close"], ("BrokenPipeError", "ConnectionResetError"))
        self.assert_maps_drain()

    def test_server_reset_reaches_the_application(self):
        r = self.peer("reset")
        self.assertTrue(r["ok"], r)
        self.assertIn(r["end"], ("ConnectionResetError", "eof"))
        self.assertLess(r["elapsed"], 5)
        self.assert_maps_drain()

    def test_application_reset_ends_the_proxied_connection(self):
        before = len(self.t.access_log())
        r = self.peer("client-reset")
        self.assertTrue(r["ok"], r)
        lines = self.t.wait_access_log(before + 1)
        port = r["sockname"][1]
        line = [l for l in lines if l["client"].endswith(f":{port}")]
        self.assertTrue(line, lines[-3:])
        self.assertEqual(line[-1]["result"], "reset", line[-1])
        self.assert_maps_drain()

    def test_large_writes_against_a_slow_reader_arrive_whole(self):
        # The server reads 16 KiB every 10 ms: the application's sends are
        # partial and the proxy's reads and writes interleave with them.
        r = self.peer("slow", size=MIB, timeout=60)
        self.assertTrue(r["ok"], r)
        self.assertEqual(r["received"], MIB)
        self.assertTrue(r["intact"], r)
        self.assert_maps_drain()


class FastPathSettingTest(unittest.TestCase):
    def test_turning_the_setting_off_removes_the_fast_path_for_new_connections(self):
        t = Topology("fpoff", mode="ebpf+sk-msg")
        self.addCleanup(t.close)
        t.start()
        self.assertIn("link_shunt_sockops_fastpath", t.status()["pins"])
        t.stop("agent")
        t.sk_msg = False
        t.start_agent()
        status = t.status()
        self.assertFalse(status["sk_msg"])
        self.assertNotIn("link_shunt_sockops_fastpath", status["pins"])
        before = status["enrolled"][0]["counters"]["fastpath_sockets"]
        r = t.client(SRV4, size=MIB, tcp_info=True)
        self.assertTrue(r["ok"], r)
        self.assertGreater(r["tcp"]["data_segs_out"], 0)
        after = t.status()["enrolled"][0]["counters"]["fastpath_sockets"]
        self.assertEqual(after, before)

    def test_sk_msg_is_refused_outside_the_ebpf_mode(self):
        r = run([AGENT, "run", "--mode", "tproxy", "--sk-msg", "on"], check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("sk-msg", r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
