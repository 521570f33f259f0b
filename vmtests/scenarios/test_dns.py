"""The proxy's DNS listener (issue 20, the proxy's part; docs/operations.md,
"The DNS listener"): queries over UDP and TCP answered through a DNS server
of the test's own in the server's namespace, cached for their TTL, passed
through unchanged (NXDOMAIN, truncation and the retry over TCP, a 4 KiB
EDNS answer, a record type the proxy does not know), malformed queries
forwarded without harm, an access-log line per query, and a later TCP
connection's line naming the host it was resolved from ("original_host").
The pod's resolver is the proxy's listener itself (port 53 on the pod's
loopback, /etc/netns/<pod>/resolv.conf), except in the last test: the
namespace is enrolled with capture-dns, which sends its queries to port
53 anywhere to the listener, forwarded to the resolver they were for
(test_dns_capture tests the capture itself). ebpf mode."""
import json
import os
import re
import unittest

from shunt_env import ECHO_PORT, PROXY, Topology, wait_for

SRV4 = "10.201.0.2"
SRV6 = "fd00:201::2"
# A proxy built with AddressSanitizer (scripts/test.sh's first pass).
with open(PROXY, "rb") as binary:
    SANITIZED = b"__asan_init" in binary.read()


class DnsListenerTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.t = Topology("dns", agent_args=["--dns-port", "53"],
                         proxy_args=["--dns", "true", "--dns-port", "53",
                                     "--dns-upstreams", SRV4, "--header-timeout", "2s",
                                     "--dns-all-names", "true"])
        cls.addClassCleanup(cls.t.close)
        cls.t.start(agent=False)
        cls.server_log = os.path.join(cls.t.tmp, "dns-server.log")
        open(cls.server_log, "w").close()
        cls.t.start_helper("dns", "srv", "dns_server.py", "--address", SRV4, "--address", SRV6,
                           "--a", SRV4, "--aaaa", SRV6, "--log", cls.server_log)
        cls.t.resolv_conf("pod", ["nameserver 127.0.0.1"])
        cls.t.start_agent()
        cls.t.start_proxy()
        r = cls.t.agent_cli("enroll", "--netns", f"/run/netns/{cls.t.ns['pod']}",
                            "--capture-dns", "true")
        assert r.returncode == 0, r.stderr

    def dig(self, *args):
        r = self.t.in_ns("pod", ["dig", "@127.0.0.1", "+time=5", "+tries=1", *args])
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        return r.stdout

    def served(self):
        with open(self.server_log) as f:
            return [json.loads(line) for line in f if line.strip()]

    def dns_lines(self):
        return [e for e in self.t.access_log() if e["listener"] == "dns"]

    def test_1_answers_are_cached_for_their_ttl(self):
        out = self.dig("srv.test", "A")
        self.assertIn("status: NOERROR", out)
        self.assertRegex(out, r"srv\.test\.\s+60\s+IN\s+A\s+10\.201\.0\.2")
        before = len(self.served())
        out = self.dig("srv.test", "A")
        self.assertIn("10.201.0.2", out)
        self.assertEqual(len(self.served()), before, "the cached answer reached the server")
        lines = [e for e in self.dns_lines() if e["query"] == "srv.test" and e["qtype"] == "A"]
        self.assertEqual([e["cached"] for e in lines[-2:]], [False, True])
        last = lines[-1]
        self.assertEqual(last["rcode"], "NOERROR")
        self.assertEqual(last["answers"], [SRV4])
        self.assertEqual(last["transport"], "udp")
        self.assertEqual(last["result"], "ok")

    def test_2_tcp_nxdomain_edns_and_unknown_types_pass_through(self):
        out = self.dig("+tcp", "srv.test", "AAAA")
        self.assertIn(SRV6, out)
        self.assertEqual(self.dns_lines()[-1]["transport"], "tcp")
        self.assertIn("status: NXDOMAIN", self.dig("missing.test", "A"))
        self.assertEqual(self.dns_lines()[-1]["rcode"], "NXDOMAIN")
        out = self.dig("+bufsize=4096", "edns.test", "TXT")
        self.assertNotIn("flags: qr aa tc", out)
        self.assertGreater(out.count("AAAAAAAAAA"), 0)
        self.assertRegex(out, r"MSG SIZE\s+rcvd: (4[0-9]{3})")
        out = self.dig("odd.test", "TYPE65400")
        self.assertIn("TYPE65400", out)
        self.assertIn("\\# 8 01026F7061717565", out)

    def test_3_a_truncated_answer_is_retried_over_tcp(self):
        out = self.dig("+noedns", "big.test", "A")
        self.assertIn("Truncated, retrying in TCP mode", out)
        self.assertEqual(out.count("IN\tA\t10.99.0."), 40)
        kinds = [e["transport"] for e in self.served() if e["name"] == "big.test"]
        self.assertIn("udp", kinds)
        self.assertIn("tcp", kinds)

    def test_4_malformed_queries_do_no_harm(self):
        family_addr = ("127.0.0.1", 53)
        garbage = [b"\x12", b"\x00\x01\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\xc0\x0c\x00\x01",
                   b"\x00\x02\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00" + b"\x40" + b"a" * 64,
                   os.urandom(300)]
        code = ("import socket,sys\n"
                "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
                "s.settimeout(2)\n"
                f"for g in {garbage!r}:\n"
                f"    s.sendto(g,{family_addr!r})\n"
                "    try: s.recv(65535)\n"
                "    except OSError: pass\n")
        r = self.t.in_ns("pod", ["python3", "-c", code])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("10.201.0.2", self.dig("srv.test", "A"))
        self.assertIsNone(self.t.procs["proxy"].poll())

    def test_5_a_connection_names_the_host_it_was_resolved_from(self):
        r = self.t.in_ns("pod", ["python3", "-c", f"""
import socket
host = socket.getaddrinfo("srv.test", {ECHO_PORT}, socket.AF_INET, socket.SOCK_STREAM)[0][4]
s = socket.create_connection(host, timeout=5)
s.sendall(b"ping\\n"); print(s.recv(10).decode().strip())"""])
        self.assertEqual(r.stdout.strip(), "ping", r.stderr)
        def named():
            return [e for e in self.t.access_log()
                    if e["listener"] == "outbound" and e.get("original_host") == "srv.test"]
        wait_for(named, what="the connection's access-log line")
        self.assertEqual(named()[-1]["original_dst"], f"{SRV4}:{ECHO_PORT}")
        # (dns-all-names: every name of the address; here there is one.)
        self.assertEqual(named()[-1]["original_hosts"], ["srv.test"])

    def test_6_tcp_queries_to_any_resolver_are_captured(self):
        # (A question nobody asked yet: answered by the resolver, not the cache.)
        out = self.t.in_ns("pod", ["dig", f"@{SRV4}", "+tcp", "+time=5", "+tries=1", "srv.test",
                                   "MX"]).stdout
        self.assertIn("status: NOERROR", out)
        last = self.dns_lines()[-1]
        self.assertEqual((last["transport"], last["query"], last["qtype"]),
                         ("tcp", "srv.test", "MX"), last)
        self.assertEqual(last["original_dst"], f"{SRV4}:53", last)
        self.assertEqual(last["upstream"], f"{SRV4}:53", last)
        self.assertEqual(self.t.status()["enrolled"][0]["policy"]["capture_dns"], True)
        # UDP queries to it are captured too (test_dns_capture has the rest).
        out = self.t.in_ns("pod", ["dig", f"@{SRV4}", "+time=5", "+tries=1", "srv.test",
                                   "NS"]).stdout
        self.assertIn("status: NOERROR", out)
        last = self.dns_lines()[-1]
        self.assertEqual((last["transport"], last["qtype"], last["original_dst"]),
                         ("udp", "NS", f"{SRV4}:53"), last)

    def rss_kib(self):
        # (ip netns exec runs the proxy in its own process: the same pid.)
        with open(f"/proc/{self.t.procs['proxy'].pid}/status") as f:
            return next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))

    @unittest.skipIf(SANITIZED, "the sanitizer build forwards about 2,000 queries a second: "
                     "the flood's figures are the release build's")
    def test_7_a_flood_of_new_names_leaves_no_growth(self):
        # 10,000 queries a second for 10 s, each a new name (a miss, then
        # cached): the cache and the name book are bounded, so a second
        # flood finds the proxy no bigger than the first left it.
        names = os.path.join(self.t.tmp, "flood.txt")
        with open(names, "w") as f:
            f.writelines(f"f{i}.test A\n" for i in range(250000))
        os.chmod(self.t.tmp, 0o755)
        sizes = []
        for _ in range(2):
            r = self.t.in_ns("pod", ["dnsperf", "-s", "127.0.0.1", "-p", "53", "-d", names,
                                     "-l", "10", "-Q", "10000", "-c", "4"], timeout=60)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            completed = int(re.search(r"Queries completed:\s+(\d+)", r.stdout).group(1))
            self.assertGreater(completed, 50000, r.stdout)
            sizes.append(self.rss_kib())
        print(f"proxy RSS after each flood: {sizes[0]} KiB, {sizes[1]} KiB", flush=True)
        self.assertLess(sizes[1], sizes[0] * 1.1 + 4096, sizes)
        self.assertIsNone(self.t.procs["proxy"].poll())

    def test_8_silent_and_half_sent_tcp_clients_are_closed(self):
        # A client that connects and sends nothing, and one that sends one
        # byte of a length prefix, hold the listener only for header-timeout.
        r = self.t.in_ns("pod", ["python3", "-c", """
import socket, time
for first in (b"", b"\\x00"):
    s = socket.create_connection(("127.0.0.1", 53), timeout=20)
    s.sendall(first)
    t = time.monotonic()
    got = s.recv(10)
    print(repr(got), round(time.monotonic() - t, 1))
    s.close()
"""])
        self.assertEqual(r.returncode, 0, r.stderr)
        for line in r.stdout.splitlines():
            got, seconds = line.rsplit(" ", 1)
            self.assertEqual(got, "b''", r.stdout)
            self.assertTrue(1 <= float(seconds) <= 8, r.stdout)
        self.assertIn("10.201.0.2", self.dig("+tcp", "srv.test", "A"))


if __name__ == "__main__":
    unittest.main(verbosity=2)
