"""Observing shunt (issue 21): the node's Prometheus page follows the
traffic the test makes (parsed by Prometheus' own text parser), the live
connections list a held connection with its original destination, and a
hostile or silent process on a pod's admin port delays and pollutes
neither. Runs per mode (SHUNT_TEST_MODE)."""
import json
import os
import re
import socket
import subprocess
import sys
import time
import unittest
import urllib.error
import urllib.request

from processes import world_readable
from shunt_env import AGENT, ECHO_PORT, TIMEOUT_SCALE, TOOLS, Topology, wait_for

try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:  # Debian's python3-prometheus-client, for another python3
    sys.path.append("/usr/lib/python3/dist-packages")
    from prometheus_client.parser import text_string_to_metric_families

SRV4 = "10.201.0.2"
SRV_OTHER = "10.201.1.2"

# Listens on the proxy's admin port in a namespace with no proxy: one
# connection gets a forged metrics page (new series, odd labels, a huge
# value), the next nothing at all (it is held open, never answered), the
# third an endless answer.
HOSTILE = r"""
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 15000)); s.listen(64)
open(sys.argv[1], "w").close()
held = []
forged = (b"HTTP/1.0 200 OK\r\n\r\n"
          b"shunt_proxy_connections_active 5\n"
          b"shunt_proxy_evil_total{x=\"1\"} 1\n"
          b"shunt_proxy_results_total{listener=\"outbound\",result=\"a\\\"b\"} 1\n"
          b"shunt_proxy_results_total{listener=\"outbound\",result=\"forged\"} 7\n"
          b"shunt_proxy_connections_total{listener=\"outbound\"} NaN\n")
n = 0
while True:
    c, _ = s.accept()
    n += 1
    if n % 3 == 1:
        c.recv(4096); c.sendall(forged); c.close()
    elif n % 3 == 2:
        held.append(c)
    else:
        c.recv(4096)
        try:
            c.sendall(b"HTTP/1.0 200 OK\r\n\r\n")
            while True:
                c.sendall(b"x" * 65536)
        except OSError:
            c.close()
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ObserveTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.port = free_port()
        cls.t = Topology("observe", with_other=True,
                         agent_args=["--metrics-address", f"127.0.0.1:{cls.port}"])
        cls.addClassCleanup(cls.t.close)
        cls.t.start()
        cls.pod_ns = f"/run/netns/{cls.t.ns['pod']}"
        cls.other_ns = f"/run/netns/{cls.t.ns['oth']}"

    # ---- helpers ------------------------------------------------------
    def scrape(self):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics",
                                    timeout=20 * TIMEOUT_SCALE) as r:
            self.assertEqual(r.status, 200)
            text = r.read().decode()
        samples = {}
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
        return samples, text

    @staticmethod
    def value(samples, name, **labels):
        want = set(labels.items())
        return sum(v for (n, l), v in samples.items() if n == name and want <= set(l))

    def connections(self, *args):
        r = self.t.agent_cli("connections", "--json", *args)
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)

    # ---- tests --------------------------------------------------------
    def test_metrics_follow_traffic(self):
        before, text = self.scrape()
        info = [l for (n, l), _ in before.items() if n == "shunt_agent_info"]
        self.assertEqual(len(info), 1, text)
        self.assertEqual(dict(info[0])["mode"], self.t.mode)
        self.assertTrue(dict(info[0])["kernel"])
        for _ in range(3):
            self.t.client(SRV4)
        wait_for(lambda: len(self.t.access_log()) >= 3, what="access log")
        after, text = self.scrape()
        pod = {"netns": self.pod_ns}
        self.assertGreaterEqual(
            self.value(after, "shunt_proxy_connections_total", **pod)
            - self.value(before, "shunt_proxy_connections_total", **pod), 3, text)
        self.assertGreaterEqual(
            self.value(after, "shunt_proxy_bytes_total", direction="up", **pod)
            - self.value(before, "shunt_proxy_bytes_total", direction="up", **pod), 3 * 1024)
        self.assertGreaterEqual(
            self.value(after, "shunt_proxy_connection_results_total", result="ok", **pod)
            - self.value(before, "shunt_proxy_connection_results_total", result="ok", **pod), 3)
        self.assertGreaterEqual(
            self.value(after, "shunt_proxy_upstream_connect_seconds_count", **pod)
            - self.value(before, "shunt_proxy_upstream_connect_seconds_count", **pod), 3)
        self.assertEqual(self.value(after, "shunt_proxy_up", **pod), 1)
        self.assertEqual(self.value(after, "shunt_proxy_scrape_ok", **pod), 1)
        if self.t.mode == "ebpf":
            self.assertGreaterEqual(
                self.value(after, "shunt_bpf_connect_decisions_total", decision="redirected", **pod)
                - self.value(before, "shunt_bpf_connect_decisions_total", decision="redirected",
                             **pod), 3, text)
        else:
            self.assertNotIn("shunt_bpf_connects_total{", text)
        # Every family the page has is documented (docs/operations.md).
        with open(os.path.join(os.path.dirname(__file__), "..", "..", "docs",
                               "operations.md")) as f:
            documented = f.read()
        for family in text_string_to_metric_families(text):
            # (The parser names a counter's family without its _total.)
            self.assertTrue(f"| `{family.name}" in documented, f"{family.name} is not documented")
        # The control requests the test made (status, enroll) are counted.
        self.assertGreaterEqual(
            self.value(after, "shunt_agent_control_requests_total", op="status", result="ok"), 1)
        self.assertGreaterEqual(
            self.value(after, "shunt_agent_control_request_seconds_count", op="enroll"), 1)

    def test_connections_list_a_held_connection(self):
        hold = os.path.join(self.t.tmp, "hold-conn")
        client = self.t.client_async(SRV4, hold_file=hold, timeout=60)
        try:
            def held():
                for ns in self.connections("--netns", self.pod_ns)["namespaces"]:
                    for c in ns.get("connections", []):
                        if c["original_dst"] == f"{SRV4}:{ECHO_PORT}":
                            return c
                return None
            wait_for(lambda: held() is not None, what="the held connection listed")
            c = held()
            self.assertEqual(c["upstream"], f"{SRV4}:{ECHO_PORT}")
            self.assertTrue(c["client"], c)  # 127.0.0.1 in the ebpf mode, the pod's address else
            self.assertGreaterEqual(c["age_seconds"], 0)
            # The text form names it too; another namespace's filter does not.
            r = self.t.agent_cli("connections", "--netns", self.pod_ns)
            self.assertIn(f"{SRV4}:{ECHO_PORT}", r.stdout)
            self.assertIn("1 connection(s)", r.stdout)
            self.assertEqual(self.connections("--netns", "/run/netns/none")["namespaces"], [])
        finally:
            open(hold, "w").close()
            client.communicate(timeout=30)
        wait_for(lambda: not any(ns.get("connections") for ns in
                                 self.connections("--netns", self.pod_ns)["namespaces"]),
                 what="the connection gone from the list")

    def test_explain_reads_what_is_installed(self):
        r = self.t.agent_cli("explain", "--netns", self.pod_ns, "--dst", f"{SRV4}:{ECHO_PORT}",
                             "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        why = json.loads(r.stdout)
        self.assertEqual(why["verdict"], "redirected", why)
        self.assertEqual(why["to"], "127.0.0.1:15001")
        self.assertEqual(why["proxy"], "up")
        self.assertNotIn("NOT captured", why["installed"])
        self.assertNotIn("could not", why["installed"])
        self.assertIn("BPF maps" if self.t.mode == "ebpf" else "rule(s) of shunt", why["installed"])
        # Another path of the same namespace finds it too.
        pid = self.t.procs["proxy"].pid
        r = self.t.agent_cli("explain", "--netns", f"/proc/{pid}/ns/net", "--dst",
                             f"{SRV4}:{ECHO_PORT}", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)["netns"], self.pod_ns)
        text = self.t.agent_cli("explain", "--netns", self.pod_ns, "--dst", "127.0.0.1:8080")
        self.assertIn("not redirected", text.stdout)
        self.assertIn("redirect-loopback", text.stdout)
        r = self.t.agent_cli("explain", "--netns", self.other_ns, "--dst", f"{SRV4}:80")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("not enrolled", r.stderr)
        r = self.t.agent_cli("explain", "--netns", self.pod_ns, "--dst", "example.com:80")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("ADDRESS:PORT", r.stderr)

    def trace(self, *args, duration=6):
        """`shunt-agent trace` running in the background for `duration` s."""
        return subprocess.Popen([AGENT, "trace", "--socket", self.t.socket, "--json",
                                 "--duration", str(duration), *args],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def connects(self, host, port, count=1):
        tool = world_readable(os.path.join(TOOLS, "connects.py"))
        r = self.t.in_ns("pod", ["python3", tool, "--host", host, "--port", str(port),
                                 "--count", str(count)])
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)

    def test_trace_shows_each_decision_with_its_reason(self):
        # One port the policy leaves alone, for the skipped decision.
        self.t.agent_cli("enroll", "--netns", self.pod_ns, "--exclude-outbound-ports", "7001",
                         check=True)
        try:
            if self.t.mode != "ebpf":
                hold = os.path.join(self.t.tmp, "hold-trace")
                tracer = self.trace("--netns", self.pod_ns)
                time.sleep(1.5)
                client = self.t.client_async(SRV4, hold_file=hold, timeout=60)
                out, err = tracer.communicate(timeout=60)
                open(hold, "w").close()
                client.communicate(timeout=30)
                self.assertEqual(tracer.returncode, 0, err)
                self.assertIn("report no per-connection decisions", err)
                lines = [json.loads(l) for l in out.splitlines()]
                self.assertIn(f"{SRV4}:{ECHO_PORT}", [l["dst"] for l in lines], out)
                return
            tracer = self.trace("--netns", self.pod_ns)
            time.sleep(1.5)
            self.connects(SRV4, ECHO_PORT)
            self.connects(SRV4, 7001)  # nothing listens there: refused, but traced
            out, err = tracer.communicate(timeout=60)
            self.assertEqual(tracer.returncode, 0, err)
            lines = [json.loads(l) for l in out.splitlines()]
            # The proxy's own upstream connects are traced too, as its own.
            proxy = [l for l in lines if l["comm"] == "shunt-proxy"]
            self.assertTrue(proxy, lines)
            self.assertTrue(all("proxy's own socket" in l["reason"] for l in proxy), proxy)
            by_dst = {l["dst"]: l for l in lines if l["comm"] != "shunt-proxy"}
            redirected = by_dst[f"{SRV4}:{ECHO_PORT}"]
            self.assertEqual(redirected["decision"], "redirected", lines)
            self.assertEqual(redirected["listener_port"], 15001)
            self.assertEqual(redirected["netns"], self.pod_ns)
            self.assertEqual(redirected["protocol"], "tcp")
            self.assertEqual(redirected["uid"], 0)
            self.assertGreater(redirected["pid"], 0)
            self.assertIn("python", redirected["comm"])
            skipped = by_dst[f"{SRV4}:7001"]
            self.assertEqual(skipped["decision"], "skipped", lines)
            self.assertIn("policy port", skipped["reason"])
            self.assertIn("held back: 0 by the rate limit, 0 by a full ring", err)
            # Rate-limited: what is over the limit is counted, not shown.
            tracer = self.trace("--netns", self.pod_ns, "--rate", "5", duration=5)
            time.sleep(1.5)
            self.connects(SRV4, ECHO_PORT, count=60)
            out, err = tracer.communicate(timeout=60)
            shown = len(out.splitlines())
            self.assertGreater(shown, 0)
            self.assertLess(shown, 30, out)
            held = int(re.search(r"held back: (\d+) by the rate limit", err).group(1))
            self.assertGreaterEqual(shown + held, 60, err)
            # One trace at a time; the one that ended leaves the switch off.
            first = self.trace(duration=4)
            time.sleep(1)
            second = subprocess.run([AGENT, "trace", "--socket", self.t.socket, "--duration",
                                     "1"], capture_output=True, text=True, timeout=30)
            self.assertNotEqual(second.returncode, 0)
            self.assertIn("one trace at a time", second.stderr)
            first.communicate(timeout=30)
            (ctl,) = self.t.map_entries("shunt_trace_ctl")
            until = ctl["formatted"]["value"]["until_ns"] if "formatted" in ctl else \
                int.from_bytes(bytes(int(b, 16) for b in ctl["value"][:8]), "little")
            self.assertEqual(until, 0, ctl)
        finally:
            self.t.agent_cli("enroll", "--netns", self.pod_ns, "--exclude-outbound-ports", "",
                             check=True)

    def test_bad_arguments_are_refused(self):
        r = self.t.agent_cli("connections", "--pod", "no-slash")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("NAMESPACE/NAME", r.stderr)
        r = self.t.agent_cli("connections", "--pod", "a/b", "--netns", "/x")
        self.assertNotEqual(r.returncode, 0)
        with self.assertRaises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(f"http://127.0.0.1:{self.port}/nothing-here", timeout=10)
        self.assertEqual(e.exception.code, 404)
        e.exception.close()

    def test_hostile_admin_port_neither_delays_nor_pollutes(self):
        ready = os.path.join(self.t.tmp, "hostile.ready")
        self.t.spawn("hostile", ["ip", "netns", "exec", self.t.ns["oth"], "python3", "-c",
                                 HOSTILE, ready])
        wait_for(lambda: os.path.exists(ready), what="hostile admin port")
        self.t.enroll("oth")
        try:
            for _ in range(3):  # a forged page, a silent peer, an endless answer
                started = time.monotonic()
                samples, text = self.scrape()
                self.assertLess(time.monotonic() - started, 8 * TIMEOUT_SCALE)
                self.assertNotIn("evil", text)
                self.assertNotIn('a\\"b', text)
                # The pod's own proxy is still there.
                self.assertEqual(self.value(samples, "shunt_proxy_scrape_ok",
                                            netns=self.pod_ns), 1)
            started = time.monotonic()
            answer = self.connections()
            self.assertLess(time.monotonic() - started, 8 * TIMEOUT_SCALE)
            by_netns = {ns["netns"]: ns for ns in answer["namespaces"]}
            self.assertTrue(by_netns[self.pod_ns]["ok"])
            self.assertIn(self.other_ns, by_netns)
        finally:
            self.t.unenroll("oth")


if __name__ == "__main__":
    unittest.main()
