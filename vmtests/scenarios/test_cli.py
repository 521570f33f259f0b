"""The command-line contract: help, exit status, one-line reasons, and
nothing half-installed after a refused start."""
import json
import os
import tempfile
import unittest

from processes import world_readable
from shunt_env import AGENT, PROXY, Topology, cgroup2_root, run


def one_line_error(testcase, r):
    testcase.assertNotEqual(r.returncode, 0)
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    testcase.assertEqual(len(lines), 1, r.stderr)
    return lines[0]


class CommandLineTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="shunt-test-cli-")
        self.addCleanup(lambda: run(["rm", "-rf", self.tmp]))

    def test_help_everywhere(self):
        for cmd in ([AGENT], [PROXY]):
            self.assertEqual(run(cmd + ["--help"]).returncode, 0)
        for sub in ("run", "enroll", "unenroll", "status", "probe", "uninstall"):
            r = run([AGENT, sub, "--help"])
            self.assertIn("--", r.stdout)

    def test_commands_without_agent_fail_with_a_reason(self):
        sock = os.path.join(self.tmp, "none.sock")
        for args in (["status"], ["enroll", "--netns", "/proc/self/ns/net"],
                     ["unenroll", "--netns", "/proc/self/ns/net"]):
            line = one_line_error(self, run([AGENT, *args, "--socket", sock], check=False))
            self.assertIn("cannot reach shunt-agent", line)

    def test_bad_configuration_is_refused_before_anything_is_installed(self):
        bpffs = f"/sys/fs/bpf/shunt-test-cli{os.getpid()}"
        config = os.path.join(self.tmp, "agent.yaml")
        with open(config, "w") as f:
            f.write("proxy-mark: 0x10\nbogus-key: 1\n")
        line = one_line_error(self, run([AGENT, "run", "--config", config, "--bpffs", bpffs,
                                         "--socket", os.path.join(self.tmp, "a.sock")], check=False))
        self.assertIn("bogus-key", line)
        for bad, word in ((["--proxy-mark", "zz"], "--proxy-mark"), (["--mode", "warp"], "mode"),
                          (["--outbound-port", "70000"], "--outbound-port"),
                          (["--cgroup", "/nonexistent/cg"], "/nonexistent/cg"),
                          (["--proxy-exemption", "mark", "--proxy-mark", "0"], "proxy-mark"),
                          (["--proxy-exemption", "uid"], "proxy-exemption")):
            r = run([AGENT, "run", "--bpffs", bpffs, "--socket", os.path.join(self.tmp, "a.sock"),
                     *bad], check=False)
            self.assertIn(word, one_line_error(self, r))
        self.assertFalse(os.path.exists(bpffs))

    def test_cgroup_that_is_not_cgroup2_is_refused(self):
        r = run([AGENT, "run", "--cgroup", self.tmp, "--bpffs", "/sys/fs/bpf/shunt-test-nocg",
                 "--socket", os.path.join(self.tmp, "a.sock")], check=False)
        self.assertIn("not on a cgroup2 filesystem", one_line_error(self, r))
        self.assertFalse(os.path.exists("/sys/fs/bpf/shunt-test-nocg"))

    def test_proxy_rejects_bad_settings(self):
        for args, word in ((["--mark", "nope"], "--mark"), (["--idle-timeout", "5 parsecs"], "--idle-timeout"),
                           (["--outbound-address", "not-an-ip"], "outbound-addresses"),
                           (["--threads", "0"], "threads")):
            self.assertIn(word, one_line_error(self, run([PROXY, *args], check=False)))
        config = os.path.join(self.tmp, "proxy.yaml")
        with open(config, "w") as f:
            f.write("outbound-port: [1, 2]\n")
        self.assertIn("outbound-port", one_line_error(self, run([PROXY, "--config", config], check=False)))

    def test_proxy_that_cannot_mark_refuses_to_start(self):
        r = run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", world_readable(PROXY),
                 "--outbound-port", "25001"], check=False)
        self.assertIn("CAP_NET_ADMIN", one_line_error(self, r))

    def test_proxy_serves_ipv4_only_where_ipv6_is_disabled(self):
        ns = f"shunt-t-cli{os.getpid()}-nov6"
        run(["ip", "netns", "add", ns])
        self.addCleanup(lambda: run(["ip", "netns", "del", ns], check=False))
        run(["ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"])
        run(["ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.lo.disable_ipv6=1"])
        run(["ip", "-n", ns, "link", "set", "lo", "up"])
        import subprocess
        p = subprocess.Popen(["ip", "netns", "exec", ns, PROXY], stderr=subprocess.PIPE, text=True)
        try:
            line = ""
            while "outbound listener on" not in line:
                line = p.stderr.readline()
                self.assertTrue(line, "proxy exited")
            self.assertIn("127.0.0.1:15001", line)
            self.assertNotIn("::1", line)
        finally:
            p.terminate()
            self.assertEqual(p.wait(10), 0)
            p.stderr.close()

    def test_probe_reports_features_and_mode(self):
        r = run([AGENT, "probe", "--json"])
        report = json.loads(r.stdout)
        self.assertEqual(report["mode"], "ebpf", report)
        names = {f["name"] for f in report["features"]}
        for needed in ("prog_connect4", "prog_getsockopt", "prog_getpeername6", "prog_sockops",
                       "helper_netns_cookie_sockopt", "shunt_programs_load"):
            self.assertIn(needed, names)
        self.assertTrue(all(f["present"] for f in report["features"]))
        # No scratch cgroup is left behind.
        self.assertFalse([d for d in os.listdir(cgroup2_root()) if d.startswith("shunt-probe-")])

    def test_probe_names_what_is_missing(self):
        # Every firewall backend disabled too, so that no mode is left.
        env = dict(os.environ, SHUNT_PROBE_DISABLE="prog_getpeername4,helper_netns_cookie_sockopt,"
                                                   "nft,iptables-nft,iptables-legacy")
        import subprocess
        r = subprocess.run([AGENT, "probe", "--json"], capture_output=True, text=True, env=env)
        self.assertEqual(r.returncode, 1)
        report = json.loads(r.stdout)
        self.assertEqual(report["mode"], "none")
        ebpf = [p for p in report["passed_over"] if p["mode"] == "ebpf"][0]
        self.assertIn("prog_getpeername4", ebpf["missing"])
        self.assertIn("helper_netns_cookie_sockopt", ebpf["missing"])
        self.assertIn("nft-redirect", report["passed_over"][2]["missing"])
        text = run([AGENT, "probe", "--disable-feature", "prog_sockops"], check=False)
        self.assertEqual(text.returncode, 0)
        self.assertIn("NO   prog_sockops", text.stdout)
        self.assertIn("not ebpf: missing prog_sockops", text.stdout)
        self.assertIn("mode: tproxy", text.stdout)


class EnrollErrorsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.t = Topology("enrl")
        cls.addClassCleanup(cls.t.close)
        cls.t.start()

    def test_enroll_errors(self):
        cases = (("/run/netns/does-not-exist", "No such file"),
                 ("/etc/hostname", "not a network namespace"),
                 ("/proc/self/ns/net", "machine's own network namespace"))
        for path, word in cases:
            line = one_line_error(self, self.t.agent_cli("enroll", "--netns", path))
            self.assertIn(word, line)
        self.assertIn("port", one_line_error(self, self.t.agent_cli(
            "enroll", "--netns", f"/run/netns/{self.t.ns['srv']}", "--outbound-port", "0")))
        self.assertEqual(len(self.t.status()["enrolled"]), 1)

    def test_enroll_again_updates_in_place(self):
        r = self.t.agent_cli("enroll", "--netns", f"/run/netns/{self.t.ns['pod']}", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(json.loads(r.stdout)["updated"])
        self.assertEqual(len(self.t.status()["enrolled"]), 1)


if __name__ == "__main__":
    unittest.main(verbosity=2)
