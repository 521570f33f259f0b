"""A proxy handed over to a new process without a cut (issue 19, item 2;
docs/operations.md, "Replacing a proxy"): shunt-proxy started with the
--upgrade-socket of a running one takes its listening sockets over; the old
one stops accepting, finishes its connections and exits. Under a stream of
data and 200 connects per second through the pod's proxy, the hand-over
loses no byte and fails no connect, and the two processes' access-log lines
account for every connection exactly once; a connection that never ends is
closed at the old proxy's drain timeout and logged so. Runs per mode
(SHUNT_TEST_MODE), in the sanitizer build too."""
import json
import os
import subprocess
import time
import unittest

from processes import joining_cgroup
from shunt_env import ECHO_PORT, PROXY, TIMEOUT_SCALE, Topology, wait_for

SRV4 = "10.201.0.2"


class HandoverTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.t = Topology("hand")
        cls.addClassCleanup(cls.t.close)
        cls.t.start(agent=False)
        cls.t.start_agent()
        cls.upgrade = os.path.join(cls.t.tmp, "proxy-upgrade.sock")
        cls.generation = 0
        cls.start_proxy(drain="60s")
        r = cls.t.agent_cli("enroll", "--netns", f"/run/netns/{cls.t.ns['pod']}")
        assert r.returncode == 0, r.stderr

    @classmethod
    def start_proxy(cls, drain, extra=()):
        """A proxy in the pod's namespace and the proxies' cgroup, with the
        hand-over socket; when one runs, this one takes over from it."""
        cls.generation += 1
        name = f"xproxy{cls.generation}"
        os.makedirs(cls.t.proxy_cgroup, exist_ok=True)
        cls.t.spawn(name, ["ip", "netns", "exec", cls.t.ns["pod"], PROXY, "--access-log",
                           cls.t.access_log_path, "--upgrade-socket", cls.upgrade,
                           "--drain-timeout", drain, "--admin-port", "0", *extra],
                    in_cgroup=cls.t.proxy_cgroup)
        wait_for(lambda: "ready" in cls.t.log_text(name) or cls.t.procs[name].poll() is not None,
                 what=f"{name} ready")
        if cls.t.procs[name].poll() is not None:
            raise RuntimeError(f"{name} exited: " + cls.t.log_text(name))
        return name

    def in_pod(self, tool, *args):
        return self.t.tool_in_background("pod", tool, *args)

    def result(self, p, timeout=120):
        out, err = p.communicate(timeout=timeout * TIMEOUT_SCALE)
        self.assertEqual(p.returncode, 0, err)
        return json.loads(out)

    def wait_exit(self, name, timeout):
        p = self.t.procs[name]
        p.wait(timeout=timeout * TIMEOUT_SCALE)
        self.t.procs.pop(name)
        self.assertEqual(p.returncode, 0, self.t.log_text(name)[-2000:])

    def to_server(self):
        return [e for e in self.t.access_log() if e.get("original_dst") == f"{SRV4}:{ECHO_PORT}"]

    def test_1_stream_and_connects_through_a_hand_over(self):
        old = f"xproxy{self.generation}"
        before = len(self.to_server())
        stream = self.in_pod("echo_stream.py", "--host", SRV4, "--port", str(ECHO_PORT),
                             "--seconds", "4", "--rate", "1000000")
        connects = self.in_pod("connects.py", "--host", SRV4, "--port", str(ECHO_PORT),
                               "--count", "800", "--rate", "200")
        wait_for(lambda: len(self.to_server()) >= before + 100, timeout=30,
                 what="connects under way")
        new = self.start_proxy(drain="60s")
        self.assertIn("took the listeners over", self.t.log_text(new))
        self.assertIn("the successor accepts now; draining", self.t.log_text(old))
        streamed, counted = self.result(stream), self.result(connects)
        self.assertTrue(streamed["matched"], streamed)
        self.assertGreater(streamed["sent"], 1_000_000)
        self.assertEqual(counted["outcomes"], {"ok": 800}, counted)
        # The old proxy exits once its connections are done (the stream's).
        self.wait_exit(old, timeout=30)
        self.assertIn("hand-over: drained, exiting", self.t.log_text(old))
        # Both processes' lines together: each connection once, all ok.
        ours = [e for e in self.t.access_log() if e.get("original_dst") == f"{SRV4}:{ECHO_PORT}"][before:]
        self.assertEqual(len(ours), 801, [e["result"] for e in ours if e["result"] != "ok"])
        self.assertEqual({e["result"] for e in ours}, {"ok"})
        # (Counted, not told apart by the client's address: loopback
        # connections reuse ports in TIME_WAIT, tcp_tw_reuse.)
        print(f"{self.t.mode}: 800 connects and a {streamed['sent']}-byte stream through the "
              f"hand-over, none lost", flush=True)

    def test_2_a_connection_that_never_ends_is_closed_at_the_drain_timeout(self):
        old = self.start_proxy(drain="2s")  # takes over from test 1's; drains in 2 s when replaced
        ready = os.path.join(self.t.tmp, "hold.ready")
        held = self.in_pod("echo_stream.py", "--host", SRV4, "--port", str(ECHO_PORT),
                           "--hold", "--ready", ready)
        wait_for(lambda: os.path.exists(ready), what="the held connection")
        self.start_proxy(drain="60s")
        self.wait_exit(old, timeout=20)
        self.assertIn("drain timeout, closing 1 connection(s)", self.t.log_text(old))
        ended = self.result(held)
        self.assertEqual(ended["ended"], "reset", ended)
        last = [e for e in self.t.access_log() if e["result"] == "drain_timeout"]
        self.assertEqual(len(last), 1, last)
        self.assertEqual(last[0]["original_dst"], f"{SRV4}:{ECHO_PORT}")
        # The new proxy serves.
        r = self.in_pod("connects.py", "--host", SRV4, "--port", str(ECHO_PORT), "--count", "5")
        self.assertEqual(self.result(r)["outcomes"], {"ok": 5})

    def test_2b_a_connection_in_its_handshake_at_the_drain_timeout_is_logged(self):
        # The server's namespace drops SYNs to one port: the old proxy's
        # upstream connect for it hangs past the drain timeout, until the
        # proxy's connect timeout, which logs it (the process waits for it
        # instead of exiting with the connection unaccounted for).
        silent = ECHO_PORT + 999
        for cmd in (["nft", "add", "table", "inet", "t"],
                    ["nft", "add", "chain", "inet", "t", "in",
                     "{ type filter hook input priority 0; }"],
                    ["nft", "add", "rule", "inet", "t", "in", "tcp", "dport", str(silent),
                     "drop"]):
            r = self.t.netns_run("srv", cmd)
            self.assertEqual(r.returncode, 0, r.stderr)
        old = self.start_proxy(drain="1s", extra=["--connect-timeout", "6s"])
        client = subprocess.Popen(["ip", "netns", "exec", self.t.ns["pod"], "python3", "-c", f"""
import socket
s = socket.create_connection(("{SRV4}", {silent}), timeout=30)
s.sendall(b"x\\n")
try:
    print(repr(s.recv(10)))
except OSError as e:
    print(type(e).__name__)"""], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  preexec_fn=joining_cgroup(self.t.cgroup))
        time.sleep(0.5)
        self.start_proxy(drain="60s")
        self.wait_exit(old, timeout=30)
        self.assertIn("drain timeout, closing 1 connection(s)", self.t.log_text(old))
        client.communicate(timeout=30)
        lines = [e for e in self.t.access_log() if e.get("original_dst") == f"{SRV4}:{silent}"]
        self.assertEqual([e["result"] for e in lines], ["connect_timeout"], lines)

    def test_3_misuse_is_refused(self):
        """A peer that is not a successor (garbage, silence) changes nothing;
        the path is its owner's alone."""
        import socket
        with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as s:
            s.connect(self.upgrade)
            s.sendall(b"give me everything")
        with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as s:
            s.connect(self.upgrade)  # and says nothing
        current = f"xproxy{self.generation}"
        self.assertIsNone(self.t.procs[current].poll())
        wait_for(lambda: "not a successor's request" in self.t.log_text(current),
                 what="the refusal logged")
        r = self.in_pod("connects.py", "--host", SRV4, "--port", str(ECHO_PORT), "--count", "3")
        self.assertEqual(self.result(r)["outcomes"], {"ok": 3})
        self.assertEqual(os.stat(self.upgrade).st_mode & 0o077, 0)  # its owner only


if __name__ == "__main__":
    unittest.main(verbosity=2)
