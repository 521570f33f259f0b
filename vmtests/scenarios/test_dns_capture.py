"""DNS capture (issue 20; docs/modes.md "DNS", docs/policy.md#dns): a pod
enrolled with capture-dns, whose resolver is a DNS server of the test's own
in the server's namespace (IPv4 and IPv6), has its queries answered through
the proxy's DNS listener (default port 15053) by every way of sending a
datagram, over UDP and TCP, and sees the answers come from the resolver it
asked. The proxy forwards to that resolver, caches, passes everything
through unchanged, logs each query and names later connections' hosts.
Capture off, or a resolver in an excluded prefix, leaves DNS alone. Every
mode: the redirect mode cannot tell a UDP query's resolver, so those go to
the proxy's dns-upstreams (by default the nameservers of its resolv.conf,
here the pod's: the server's IPv4 address)."""
import json
import os
import re
import unittest

from dns_queries import SEND_CALLS_SCRIPT
from shunt_env import ECHO_PORT, Topology, wait_for

SRV4 = "10.201.0.2"
SRV6 = "fd00:201::2"


def at53(server):
    return f"[{server}]:53" if ":" in server else f"{server}:53"


class DnsCaptureTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.t = Topology("dnscap", proxy_args=["--dns", "true", "--header-timeout", "2s"])
        cls.addClassCleanup(cls.t.close)
        cls.t.start(agent=False)
        cls.server_log = os.path.join(cls.t.tmp, "dns-server.log")
        open(cls.server_log, "w").close()
        cls.t.start_helper("dns", "srv", "dns_server.py", "--address", SRV4, "--address", SRV6,
                           "--a", SRV4, "--aaaa", SRV6, "--log", cls.server_log)
        cls.t.resolv_conf("pod", [f"nameserver {SRV4}", "options attempts:1 timeout:5"])
        cls.t.start_agent()
        cls.t.start_proxy()
        cls.enroll(capture=True)

    @classmethod
    def enroll(cls, capture, *extra):
        r = cls.t.agent_cli("enroll", "--netns", f"/run/netns/{cls.t.ns['pod']}",
                            "--capture-dns", "true" if capture else "false", *extra)
        assert r.returncode == 0, r.stderr

    def forwarded(self, server, transport="udp"):
        """(original_dst, upstream) of a query to `server`: in the
        redirect mode a UDP query's resolver is unknown."""
        if self.t.mode == "redirect" and transport == "udp":
            return None, at53(SRV4)
        return at53(server), at53(server)

    def assert_forwarded(self, line, server, transport="udp"):
        original, upstream = self.forwarded(server, transport)
        self.assertEqual(line.get("original_dst"), original, line)
        self.assertEqual(line["upstream"], upstream, line)

    def dig(self, server, *args):
        r = self.t.in_ns("pod", ["dig", f"@{server}", "+time=5", "+tries=1", *args])
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        # dig says so when an answer comes from another address than the
        # one it asked, and ignores it.
        self.assertNotIn("unexpected source", r.stdout)
        return r.stdout

    def served(self):
        with open(self.server_log) as f:
            return [json.loads(line) for line in f if line.strip()]

    def dns_lines(self):
        return [e for e in self.t.access_log() if e["listener"] == "dns"]

    def last_dns_line(self, query, qtype):
        # (Waited for: after a flood the log may still be catching up.)
        def lines():
            return [e for e in self.dns_lines() if e["query"] == query and e["qtype"] == qtype]
        wait_for(lines, what=f"an access-log line for {query} {qtype}")
        return lines()[-1]

    def test_1_getaddrinfo_goes_through_the_proxy_to_the_pods_resolver(self):
        r = self.t.in_ns("pod", ["python3", "-c", """
import socket
print(sorted({a[4][0] for a in socket.getaddrinfo("srv.test", 80, proto=socket.IPPROTO_TCP)}))"""])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.strip(), str(sorted([SRV4, SRV6])))
        for qtype in ("A", "AAAA"):
            line = self.last_dns_line("srv.test", qtype)
            self.assertEqual(line["transport"], "udp", line)
            self.assert_forwarded(line, SRV4)
            self.assertEqual(line["rcode"], "NOERROR", line)

    def test_2_dig_over_ipv4_and_ipv6_sees_its_own_resolver_answer(self):
        out = self.dig(SRV4, "srv.test", "MX")
        self.assertIn("status: NOERROR", out)
        self.assertIn(f"SERVER: {SRV4}#53", out)
        self.assert_forwarded(self.last_dns_line("srv.test", "MX"), SRV4)
        out = self.dig(SRV6, "srv.test", "TXT")
        self.assertIn("status: NOERROR", out)
        self.assertIn(f"SERVER: {SRV6}#53", out)
        self.assert_forwarded(self.last_dns_line("srv.test", "TXT"), SRV6)

    def test_3_every_way_of_sending_a_datagram_is_captured(self):
        for server in (SRV4, SRV6):
            r = self.t.in_ns("pod", ["python3", "-c", SEND_CALLS_SCRIPT, server])
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            results = json.loads(r.stdout)
            for call, got in results.items():
                # The answer came back, from the resolver's address.
                self.assertEqual(got["source"], [server, 53], (call, got))
                self.assertTrue(got["answered"], (call, got))
            self.assertEqual(results["connect+send"]["peer"], [server, 53])
            tag = "v6" if ":" in server else "v4"
            for call in results:
                line = self.last_dns_line(f"{call.replace('+', '-')}.{tag}.srv.test", "A")
                self.assert_forwarded(line, server)

    def test_4_tcp_truncation_edns_nxdomain_and_unknown_types_pass_through(self):
        out = self.dig(SRV4, "+noedns", "big.test", "A")
        self.assertIn("Truncated, retrying in TCP mode", out)
        self.assertEqual(out.count("IN\tA\t10.99.0."), 40)
        tcp = self.last_dns_line("big.test", "A")
        self.assertEqual(tcp["transport"], "tcp", tcp)
        self.assert_forwarded(tcp, SRV4, "tcp")
        self.assertIn("status: NXDOMAIN", self.dig(SRV4, "missing.test", "A"))
        self.assertEqual(self.last_dns_line("missing.test", "A")["rcode"], "NXDOMAIN")
        out = self.dig(SRV4, "+bufsize=4096", "edns.test", "TXT")
        self.assertRegex(out, r"MSG SIZE\s+rcvd: (4[0-9]{3})")
        out = self.dig(SRV6, "odd.test", "TYPE65400")
        self.assertIn("\\# 8 01026F7061717565", out)
        self.assertIn("status: NOERROR", self.dig(SRV4, "+tcp", "srv.test", "SOA"))
        self.assertEqual(self.last_dns_line("srv.test", "SOA")["transport"], "tcp")

    def test_5_a_cached_answer_does_not_reach_the_resolver(self):
        # (An answer with records: one without has no TTL to be kept for.)
        self.dig(SRV6, "+norecurse", "srv.test", "AAAA")
        before = len(self.served())
        self.assertIn(SRV6, self.dig(SRV6, "+norecurse", "srv.test", "AAAA"))
        self.assertEqual(len(self.served()), before, "the cached answer reached the server")
        self.assertTrue(self.last_dns_line("srv.test", "AAAA")["cached"])

    def test_6_a_connection_names_the_host_it_was_resolved_from(self):
        r = self.t.in_ns("pod", ["python3", "-c", f"""
import socket
host = socket.getaddrinfo("srv.test", {ECHO_PORT}, socket.AF_INET6, socket.SOCK_STREAM)[0][4]
s = socket.create_connection(host[:2], timeout=5)
s.sendall(b"ping\\n"); print(s.recv(10).decode().strip())"""])
        self.assertEqual(r.stdout.strip(), "ping", r.stderr)

        def named():
            return [e for e in self.t.access_log()
                    if e["listener"] == "outbound" and e.get("original_host") == "srv.test"]
        wait_for(named, what="the connection's access-log line")
        self.assertEqual(named()[-1]["original_dst"], f"[{SRV6}]:{ECHO_PORT}")

    def udp_records(self):
        return (len(self.t.map_entries("shunt_udp_socks")),
                len(self.t.map_entries("shunt_udp_flows")))

    def test_7_a_flood_leaves_no_records_behind(self):
        # 10,000 queries a second for 10 s through the capture: the records
        # are per socket, not per query, and go with their sockets.
        names = os.path.join(self.t.tmp, "flood.txt")
        with open(names, "w") as f:
            f.writelines(f"f{i}.test A\n" for i in range(250000))
        os.chmod(self.t.tmp, 0o755)
        # (Ten seconds where there are BPF records to check; the firewall
        # modes keep none, and a shorter flood spares CI time.)
        seconds = "10" if self.t.traits["counters"] else "3"
        r = self.t.in_ns("pod", ["dnsperf", "-s", SRV4, "-d", names, "-l", seconds, "-Q", "10000",
                                 "-c", "4"], timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        completed = int(re.search(r"Queries completed:\s+(\d+)", r.stdout).group(1))
        # (How many depends on the machine: software emulation answers a
        # few thousand. What is checked is that nothing is left behind.)
        self.assertGreater(completed, 1000, r.stdout)
        if self.t.traits["counters"]:
            wait_for(lambda: self.udp_records() == (0, 0), what="the flood's records to go")
            counters = self.t.status()["enrolled"][0]["counters"]
            self.assertGreater(counters["dns_udp_redirected"], 0, counters)
        self.assertIsNone(self.t.procs["proxy"].poll())

    def test_8_an_excluded_resolver_and_capture_off_leave_dns_alone(self):
        try:
            self.enroll(True, "--exclude-outbound-cidrs", f"{SRV4}/32")
            self.direct_only()
            self.enroll(True, "--exclude-outbound-ports", "53")
            self.direct_only()
            self.enroll(False)
            self.direct_only()
            self.assertEqual(self.t.status()["enrolled"][0]["policy"]["capture_dns"], False)
        finally:
            self.enroll(True)
        self.dig(SRV4, "after.srv.test", "A")
        self.last_dns_line("after.srv.test", "A")

    def test_9_dns_ports_choose_the_ports_captured(self):
        try:
            self.enroll(True, "--dns-ports", "5353")
            # Port 53 is left alone; 5353 goes to the listener, which asks
            # the resolver there (nothing listens: the client gets SERVFAIL).
            self.direct_only()
            # (Over TCP in the redirect mode, where UDP's resolver is unknown.)
            tcp = ["+tcp"] if self.t.mode == "redirect" else []
            out = self.dig(SRV4, *tcp, "-p", "5353", "other-port.test", "A")
            self.assertIn("status: SERVFAIL", out)
            line = self.last_dns_line("other-port.test", "A")
            self.assertEqual(line["original_dst"], f"{SRV4}:5353", line)
            self.assertEqual(self.t.status()["enrolled"][0]["policy"]["dns_ports"], "5353")
        finally:
            self.enroll(True, "--dns-ports", "53")

    def direct_only(self):
        """Asks the resolver a new name over UDP and TCP: it reaches the
        server, and the proxy never logs it."""
        name = f"direct-{os.urandom(4).hex()}.test"
        for transport in ((), ("+tcp",)):
            self.assertIn("status: NXDOMAIN", self.dig(SRV4, *transport, name, "A"))
        self.assertEqual([e for e in self.dns_lines() if e["query"] == name], [],
                         "a query went through the proxy")
        self.assertEqual(sorted(e["transport"] for e in self.served() if e["name"] == name),
                         ["tcp", "udp"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
