"""An adversary and a careless operator try shunt (issue 15): processes in
an enrolled pod that try to reach the network past the proxy, floods of
connects that would fill node-wide maps, malformed and hostile clients of
the agent's control socket and of the explicit proxies, a proxy whose mark
the agent does not exempt. Runs per mode (SHUNT_TEST_MODE); what applies to
one mode only says so."""
import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
import unittest

from shunt_env import (AGENT, ECHO_PORT, PROXY, TEST_MODE, TOOLS, Topology, run,
                       wait_for)

SRV4 = "10.201.0.2"
OTH_SRV4 = "10.201.1.2"
NOBODY = 65534
# Debian's interpreter: one from a private prefix (pyenv under /root, say)
# cannot be run by another user.
PY = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else "python3"


def shared_tools():
    """The test tools, copied where an unprivileged user can read them (the
    clone's own folders may be private)."""
    d = tempfile.mkdtemp(prefix="shunt-adv-tools-")
    os.chmod(d, 0o755)
    for name in ("flood.py",):
        shutil.copy(os.path.join(TOOLS, name), d)
        os.chmod(os.path.join(d, name), 0o644)
    return d


def line_count(path):
    with open(path) as f:
        return sum(1 for line in f if line.strip())


def identity(kind):
    """setpriv arguments: an unprivileged user, or root holding CAP_NET_RAW
    only (what container runtimes give a pod by default, less the rest)."""
    if kind == "nobody":
        return ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
                "--inh-caps=-all", "--bounding-set=-all"]
    return ["setpriv", "--inh-caps=-all,+net_raw", "--bounding-set=-all,+net_raw"]


class AdversaryBase(unittest.TestCase):
    topology_args = {}

    @classmethod
    def setUpClass(cls):
        cls.tools = shared_tools()
        cls.addClassCleanup(shutil.rmtree, cls.tools, True)
        cls.t = Topology("adv", **cls.topology_args)
        cls.addClassCleanup(cls.t.close)
        cls.t.start()

    def flood(self, host, port, who="nobody", role="pod", **options):
        cmd = identity(who) + [PY, os.path.join(self.tools, "flood.py"), "--host", host,
                               "--port", str(port)]
        for k, v in options.items():
            cmd += ["--" + k.replace("_", "-"), str(v)]
        r = self.t.in_ns(role, cmd)
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)

    def flood_held(self, host, port, count, who="nobody", role="pod"):
        """Starts a flood that keeps its connections; returns (result, release)."""
        ready = os.path.join(self.tools, f"ready-{time.monotonic_ns()}")
        release = ready + ".release"
        cmd = identity(who) + [PY, os.path.join(self.tools, "flood.py"), "--host", host,
                               "--port", str(port), "--count", str(count), "--ready", ready,
                               "--release", release, "--hold", "60"]
        os.chmod(self.tools, 0o777)  # the flood writes its ready file here
        p = self.t.spawn(f"flood-{time.monotonic_ns()}",
                         ["ip", "netns", "exec", self.t.ns[role], *cmd], in_cgroup=True)

        def done():
            open(release, "w").close()
            p.wait(timeout=30)

        wait_for(lambda: os.path.exists(ready) or p.poll() is not None, timeout=60,
                 what="flood connects")
        with open(ready) as f:
            return json.load(f), done

    def log_lines_for(self, original, before):
        """Access-log lines after the first `before` for that destination
        (waited for: a line is written when its connection ends)."""
        def lines():
            return [l for l in self.t.access_log()[before:] if l.get("original_dst") == original]
        try:
            wait_for(lambda: lines(), timeout=5, what=f"an access-log line for {original}")
        except TimeoutError:
            pass
        return lines()


class PodBypassTest(AdversaryBase):
    """Unprivileged and CAP_NET_RAW processes in the pod cannot leave it past
    the proxy by choosing a port or a mark (every mode)."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        for port in (15001, 15006):
            cls.t.start_helper(f"srv{port}", "srv", "echo_server.py", "--port", str(port),
                               "--report", os.path.join(cls.t.tmp, f"srv{port}.jsonl"))

    def test_another_hosts_proxy_ports_go_through_the_proxy(self):
        # Issue 15.3: any remote host on 15001/15006 was reached directly.
        for who in ("nobody", "root+net_raw"):
            for port in (15001, 15006):
                with self.subTest(who=who, port=port):
                    before = len(self.t.access_log())
                    r = self.flood(SRV4, port, who=who)
                    self.assertEqual(r["connected"], 1, r)
                    lines = self.log_lines_for(f"{SRV4}:{port}", before)
                    self.assertTrue(lines, f"{who} reached {SRV4}:{port} unproxied: {r}; "
                                    f"log {self.t.access_log()[before:]}; "
                                    f"status {self.t.status()['enrolled']}")
                    self.assertEqual(lines[-1]["result"], "ok")

    def test_an_unprivileged_process_cannot_set_the_proxy_mark(self):
        before = len(self.t.access_log())
        r = self.flood(SRV4, ECHO_PORT, who="nobody", mark="0xa55")
        self.assertEqual(r["mark_error"], "EPERM", r)
        self.assertEqual(r["connected"], 1, r)
        self.assertTrue(self.log_lines_for(f"{SRV4}:{ECHO_PORT}", before))

    def test_transparent_listener_serves_more_than_1024_to_one_server(self):
        # Issue 15.6: the forward proxies' per-upstream limit reset 976 of
        # 2000 connections to one server after they had connected.
        if self.t.mode != "ebpf":
            self.skipTest("the proxy's limit is the same in every mode: ebpf runs it")
        r = self.t.client(SRV4, size=64, concurrency=1100, timeout=60)
        self.assertTrue(r["ok"], r["failed"])
        self.assertNotIn("limit_reached", {l["result"] for l in self.t.access_log()})


class RecordFloodTest(AdversaryBase):
    """ebpf: node-wide original-destination records cannot be exhausted by
    one namespace (issue 15.4)."""
    topology_args = {"with_other": True, "agent_args": ["--netns-record-quota", "200"]}

    @classmethod
    def setUpClass(cls):
        if not TEST_MODE.startswith("ebpf"):
            raise unittest.SkipTest("the records are the ebpf mode's maps")
        super().setUpClass()
        t = cls.t
        # A second pod with its own proxy, enrolled the same way.
        t.other_log = os.path.join(t.tmp, "other.access.log")
        t.spawn("proxy-oth", ["ip", "netns", "exec", t.ns["oth"], PROXY, "--access-log",
                              t.other_log], in_cgroup=t.proxy_cgroup)
        wait_for(lambda: "outbound listener on" in t.log_text("proxy-oth"), what="other proxy")
        t.enroll("oth")

    def records(self, role):
        path = f"/run/netns/{self.t.ns[role]}"
        for e in self.t.status()["enrolled"]:
            if e["netns"] == path:
                return e["records"], e["counters"]
        self.fail(f"{path} is not enrolled")

    def map_records(self):
        return len(self.t.map_entries("shunt_orig_dst"))

    def test_refused_connects_leave_no_records(self):
        # The proxy is down: every connect is refused (proxy-down closed),
        # none may stay recorded; the connect hook sees no listener and
        # records nothing at all.
        self.t.stop("proxy")
        try:
            r = self.flood(SRV4, ECHO_PORT, count=2000)
            self.assertEqual(r["errors"], {"ECONNREFUSED": 2000}, r)
            wait_for(lambda: self.map_records() == 0, timeout=5, what="no records left")
            records, counters = self.records("pod")
            self.assertEqual(records, 0)
            self.assertGreaterEqual(counters["proxy_down_closed"], 2000)
        finally:
            self.t.start_proxy()
        self.assertTrue(self.t.client(SRV4, size=100)["ok"])

    def test_a_flood_hits_its_own_quota_and_nobody_elses(self):
        result, release = self.flood_held(SRV4, ECHO_PORT, 260)
        try:
            self.assertEqual(result["connected"], 200, result)
            self.assertEqual(result["errors"], {"EPERM": 60}, result)
            records, counters = self.records("pod")
            self.assertEqual(records, 200)
            self.assertEqual(counters["quota_reached"], 60)
            # The other pod, at the same time: unaffected.
            r = self.t.client(OTH_SRV4, role="oth", size=1000, concurrency=50)
            self.assertTrue(r["ok"], r)
            wait_for(lambda: line_count(self.t.other_log) >= 50,
                     what="the other pod's 50 connections in its proxy's log")
        finally:
            release()
        wait_for(lambda: self.records("pod")[0] == 0, timeout=10, what="records released")
        self.assertTrue(self.t.client(SRV4, size=100)["ok"])

    def test_unenrolment_removes_the_namespaces_records(self):
        result, release = self.flood_held(SRV4, ECHO_PORT, 100)
        try:
            self.assertEqual(result["connected"], 100, result)
            self.assertGreaterEqual(self.map_records(), 100)
            self.t.unenroll("pod")
            self.assertEqual(self.map_records(), 0)
        finally:
            release()
            self.t.enroll("pod")
        self.assertTrue(self.t.client(SRV4, size=100)["ok"])
        wait_for(lambda: self.records("pod")[0] == 0, timeout=10, what="records released")


    def new_namespace(self, suffix):
        t = self.t
        name = f"{t.ns['pod']}-{suffix}"
        run(["ip", "netns", "add", name])
        t.created_ns.append(name)
        t.ns[suffix] = name
        run(["ip", "-n", name, "link", "set", "lo", "up"])
        return name

    def test_the_original_destination_outlives_a_quick_application(self):
        """An application that connects, sends and closes at once must not
        take its original destination with it: a busy proxy asks later."""
        t = self.t
        name = self.new_namespace("quick")
        go = os.path.join(self.tools, "quick.go")
        code = ("import socket,struct,sys,os,time\ns=socket.socket()\n"
                "s.bind(('127.0.0.1',15001))\ns.listen(16)\nopen(sys.argv[1]+'.ready','w').close()\n"
                "while not os.path.exists(sys.argv[1]): time.sleep(0.02)\n"
                "c,_=s.accept()\nraw=c.getsockopt(socket.SOL_IP,80,16)\n"
                "port,=struct.unpack('!H',raw[2:4])\n"
                "print(socket.inet_ntoa(raw[4:8])+':'+str(port), flush=True)\n"
                "print(c.recv(100).decode(), flush=True)\nc.close()\n")
        stand_in = t.spawn("stand-in", ["ip", "netns", "exec", name, PY, "-c", code, go],
                           in_cgroup=True)
        wait_for(lambda: os.path.exists(go + ".ready"), what="the slow stand-in proxy")
        t.agent_cli("enroll", "--netns", f"/run/netns/{name}", check=True)
        send = ("import socket\ns=socket.create_connection(('10.99.0.7',8080),5)\n"
                "s.sendall(b'hello')\ns.close()\n")
        r = t.in_ns("quick", [PY, "-c", send])
        self.assertEqual(r.returncode, 0, r.stderr)
        time.sleep(0.5)  # the application's socket is long closed
        open(go, "w").close()
        stand_in.wait(timeout=10)
        out = t.log_text("stand-in").split()
        self.assertEqual(out[:2], ["10.99.0.7:8080", "hello"], t.log_text("stand-in"))
        wait_for(lambda: self.records("quick")[0] == 0, timeout=5, what="the slot given back")
        t.agent_cli("unenroll", "--netns", f"/run/netns/{name}", check=True)

    def test_a_deleted_namespace_leaves_no_records(self):
        t = self.t
        name = self.new_namespace("gone")
        # A listener that never accepts stands in for the proxy (under the
        # attach cgroup, as a proxy must be): the connections stay
        # established, their slots held.
        holder = t.spawn("holder", ["ip", "netns", "exec", name, PY, "-c",
                                    "import socket,time\ns=socket.socket()\n"
                                    "s.bind(('127.0.0.1',15001))\ns.listen(1024)\n"
                                    "time.sleep(120)\n"], in_cgroup=True)
        t.agent_cli("enroll", "--netns", f"/run/netns/{name}", check=True)
        wait_for(lambda: self.flood("10.99.0.1", 80, role="gone")["connected"] == 1,
                 what="the stand-in listener")
        result, release = self.flood_held("10.99.0.1", 80, 100, role="gone")
        self.assertEqual(result["connected"], 100, result)
        self.assertGreaterEqual(self.records("gone")[0], 100)
        release()
        holder.kill()
        holder.wait()
        run(["ip", "netns", "del", name])
        t.created_ns.remove(name)
        wait_for(lambda: self.records("gone")[0] == 0, timeout=10, what="records released")
        t.agent_cli("unenroll", "--netns", f"/run/netns/{name}", check=True)
        self.assertEqual(self.map_records(), 0)


class ControlSocketTest(AdversaryBase):
    """The agent's control socket against bad bytes, silent and slow
    clients, a user without permission and a stranger's socket (issue
    15.1, 15.2, 15.7, 15.8)."""

    def raw(self, data=b"", wait=True):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(self.t.socket)
        if data:
            s.sendall(data)
        if not wait:
            return s
        s.settimeout(5)
        out = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            out += chunk
        s.close()
        return out

    def timed_status(self):
        began = time.monotonic()
        r = self.t.agent_cli("status", "--json")
        return r, time.monotonic() - began

    def test_bytes_that_are_not_utf8_are_answered(self):
        for bad in (b"\xff\n", b'{"op":"\xfe"}\n', b'{"op":"enroll","netns":"/\xff"}\n', b"\x00\n"):
            answer = json.loads(self.raw(bad))
            self.assertFalse(answer["ok"], bad)
        r, _ = self.timed_status()
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_idle_slow_and_malformed_clients_delay_nobody(self):
        idle = [self.raw(wait=False) for _ in range(300)]
        slow = [self.raw(b'{"op":"sta', wait=False) for _ in range(50)]
        stop = threading.Event()

        def malformed():
            while not stop.is_set():
                try:
                    self.raw(os.urandom(64) + b"\n")
                except OSError:
                    pass

        workers = [threading.Thread(target=malformed) for _ in range(4)]
        for w in workers:
            w.start()
        try:
            for _ in range(3):
                r, took = self.timed_status()
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertLess(took, 3.0)
            began = time.monotonic()
            self.t.enroll("pod")  # enrolling again answers in time too
            self.assertLess(time.monotonic() - began, 3.0)
        finally:
            stop.set()
            for w in workers:
                w.join()
            for s in idle + slow:
                s.close()
        self.assertTrue(self.t.client(SRV4, size=100)["ok"])

    def test_silent_clients_are_closed_at_the_deadline(self):
        s = self.raw(wait=False)
        s.settimeout(10)
        began = time.monotonic()
        self.assertEqual(s.recv(10), b"")
        self.assertLess(time.monotonic() - began, 8)
        s.close()

    def test_stop_fails_when_it_cannot_reach_a_running_agent(self):
        # The socket's folder is root's: an unprivileged user is refused,
        # and `stop` must say so with a failure, not exit 0.
        agent = shutil.copy(AGENT, self.tools)
        os.chmod(agent, 0o755)
        r = run(identity("nobody") + [agent, "stop", "--socket", self.t.socket], check=False)
        self.assertNotEqual(r.returncode, 0, r.stdout)
        self.assertIn("shunt-agent:", r.stderr)
        self.assertEqual(self.timed_status()[0].returncode, 0)  # still running
        # Nobody listening at all is the one case that is not a failure.
        r = run([AGENT, "stop", "--socket", os.path.join(self.tools, "none.sock")], check=False)
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_a_socket_served_by_another_user_is_not_believed(self):
        d = tempfile.mkdtemp(prefix="shunt-adv-fake-")
        self.addCleanup(shutil.rmtree, d, True)
        os.chmod(d, 0o777)
        fake = os.path.join(d, "agent.sock")
        code = ("import socket,sys\ns=socket.socket(socket.AF_UNIX)\ns.bind(sys.argv[1])\n"
                "s.listen(8)\nopen(sys.argv[1]+'.ready','w').close()\nwhile True:\n"
                "  c,_=s.accept()\n  try:\n    c.recv(100)\n"
                "    c.sendall(b'{\"ok\":true,\"ready\":true,\"pods\":0}\\n')\n"
                "  except OSError: pass\n  c.close()\n")
        p = subprocess.Popen(identity("nobody") + [PY, "-c", code, fake])
        self.addCleanup(p.wait)
        self.addCleanup(p.kill)
        wait_for(lambda: os.path.exists(fake + ".ready"), what="fake agent")
        for command in ("ready", "status", "stop"):
            r = run([AGENT, command, "--socket", fake], check=False)
            self.assertNotEqual(r.returncode, 0, f"{command}: {r.stdout}")
            self.assertIn(f"uid {NOBODY}", r.stderr)


class UmaskTest(unittest.TestCase):
    """Issue 15.7: with umask 000, what the agent creates stays root's."""

    def test_files_and_folders_have_explicit_modes(self):
        old = os.umask(0)
        try:
            base = tempfile.mkdtemp(prefix="shunt-adv-umask-")
            self.addCleanup(shutil.rmtree, base, True)  # after t.close(): it reads the journal
            t = Topology("umask")
            self.addCleanup(t.close)
            t.socket = os.path.join(base, "run", "shunt", "agent.sock")
            t.state_dir = os.path.join(base, "state", "shunt")
            t.start()
        finally:
            os.umask(old)
        mode = lambda p: stat.S_IMODE(os.stat(p).st_mode)  # noqa: E731
        self.assertEqual(mode(t.socket), 0o600)
        self.assertEqual(mode(os.path.join(base, "run")), 0o700)
        self.assertEqual(mode(os.path.join(base, "run", "shunt")), 0o700)
        if t.mode == "ebpf":
            self.assertEqual(mode(t.bpffs), 0o700)
        else:
            self.assertIn("firewall.json", os.listdir(t.state_dir))
        if os.path.isdir(t.state_dir):
            self.assertEqual(mode(t.state_dir), 0o700)
            self.assertEqual(mode(os.path.dirname(t.state_dir)), 0o700)
            for name in os.listdir(t.state_dir):
                self.assertEqual(mode(os.path.join(t.state_dir, name)) & 0o077, 0, name)


class ExplicitProxyInputTest(unittest.TestCase):
    """The explicit proxies against smuggling, self-reference and SOCKS
    requests that used to get no answer (issue 15.5, 15.9, 15.10). The
    proxies do not depend on the mode: run in the ebpf pass."""

    @classmethod
    def setUpClass(cls):
        if not TEST_MODE.startswith("ebpf"):
            raise unittest.SkipTest("the explicit proxies are the same in every mode")
        cls.t = Topology("advx")
        cls.addClassCleanup(cls.t.close)
        cls.t.start(agent=False)
        t = cls.t
        t.start_helper("web", "srv", "http_echo_server.py", "--port", "8080")
        t.start_named_proxy("xproxy-http", ["--proxy-type", "forward", "--proxy-protocol", "http",
                                            "--proxy-out-port", "4140", "--admin-port", "15100"])
        t.start_named_proxy("xproxy-socks", ["--proxy-type", "forward", "--proxy-protocol",
                                             "socks", "--proxy-out-port", "1080"])
        t.start_named_proxy("xproxy-rev", ["--proxy-type", "reverse", "--proxy-protocol", "http",
                                           "--proxy-in-port", "4143", "--proxy-host", SRV4,
                                           "--proxy-port", "8080"])

    def exchange(self, port, data, host="127.0.0.1"):
        code = ("import socket,sys\ns=socket.create_connection((sys.argv[1],int(sys.argv[2])),5)\n"
                "s.sendall(bytes.fromhex(sys.argv[3]))\ns.settimeout(5)\nout=b''\n"
                "try:\n  while True:\n    c=s.recv(65536)\n    if not c: break\n    out+=c\n"
                "except OSError: pass\nprint(out.hex())\n")
        r = self.t.in_ns("pod", ["python3", "-c", code, host, str(port), data.hex()],
                         in_cgroup=False)
        self.assertEqual(r.returncode, 0, r.stderr)
        return bytes.fromhex(r.stdout.strip())

    def test_transfer_encoding_not_ending_in_chunked_is_refused(self):
        for te in ("chunked, identity", "xchunked", "identity", "chunked, chunked"):
            body = b"0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
            for port, target in ((4140, f"http://{SRV4}:8080/headers"), (4143, "/headers")):
                with self.subTest(te=te, port=port):
                    req = (f"POST {target} HTTP/1.1\r\nHost: {SRV4}:8080\r\n"
                           f"Transfer-Encoding: {te}\r\n\r\n").encode() + body
                    out = self.exchange(port, req)
                    self.assertTrue(out.startswith(b"HTTP/1.1 400"), out[:200])
                    self.assertEqual(out.count(b"HTTP/1.1"), 1, out)  # one answer, then closed
        # Content-Length with Transfer-Encoding: refused too.
        req = (f"POST http://{SRV4}:8080/x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
               "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n").encode()
        self.assertTrue(self.exchange(4140, req).startswith(b"HTTP/1.1 400"))
        # A sound chunked request still goes through.
        req = (f"POST http://{SRV4}:8080/x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
               "Connection: close\r\n\r\n3\r\nabc\r\n0\r\n\r\n").encode()
        self.assertTrue(self.exchange(4140, req).startswith(b"HTTP/1.1 200"))

    def test_forward_proxies_do_not_reach_themselves(self):
        for target in ("127.0.0.1:4140", "[::1]:4140", "127.0.0.1:15100", "localhost:4140"):
            with self.subTest(target=target):
                out = self.exchange(4140, f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n"
                                    .encode())
                self.assertTrue(out.startswith(b"HTTP/1.1 403"), out[:200])
        out = self.exchange(4140, b"GET http://127.0.0.1:15100/stats HTTP/1.1\r\nHost: a\r\n\r\n")
        self.assertTrue(out.startswith(b"HTTP/1.1 403"), out[:200])
        # SOCKS5 to itself: refused with "not allowed" (0x02).
        req = b"\x05\x01\x00" + b"\x05\x01\x00\x01" + bytes([127, 0, 0, 1]) + (1080).to_bytes(2, "big")
        out = self.exchange(1080, req)
        self.assertEqual(out[:2], b"\x05\x00")
        self.assertEqual(out[2:4], b"\x05\x02", out)

    def test_socks_requests_that_cannot_be_accepted_are_answered(self):
        greeting = b"\x05\x01\x00"
        for name, request in (
                ("empty host", b"\x05\x01\x00\x03\x00\x1f\x90"),
                ("NUL in host", b"\x05\x01\x00\x03\x03a\x00b\x1f\x90")):
            with self.subTest(name):
                out = self.exchange(1080, greeting + request)
                self.assertEqual(out[:2], b"\x05\x00", out)
                self.assertEqual(len(out), 12, out)
                self.assertEqual(out[2], 5)
                self.assertNotEqual(out[3], 0, out)
        # SOCKS4a with an empty host name: 0x5B.
        out = self.exchange(1080, b"\x04\x01\x1f\x90\x00\x00\x00\x01user\x00\x00")
        self.assertEqual(out[:2], b"\x00\x5b", out)


class MarkMismatchTest(unittest.TestCase):
    """Issue 15.14: a proxy the agent does not exempt (with the mark as the
    exemption, a mark the agent does not know) must not loop 1,024 times per
    connection; it says what is wrong."""

    def test_the_proxy_recognises_its_own_connections(self):
        t = Topology("mark", proxy_args=["--mark", "0x2"],
                     agent_args=["--proxy-exemption", "mark"])
        t.proxy_in_attach_cgroup = True
        self.addCleanup(t.close)
        t.start()
        r = t.client(SRV4, size=100, timeout=5)
        self.assertFalse(r["ok"], r)
        time.sleep(0.5)
        lines = t.access_log()
        self.assertLessEqual(len(lines), 6, lines)
        self.assertIn("loop_refused", {l["result"] for l in lines})
        log = t.log_text("proxy")
        self.assertEqual(log.count("comes from the proxy's own upstream socket"), 1, log)
        self.assertIn("--mark", log)
        self.assertIn("proxy cgroup", log)


if __name__ == "__main__":
    unittest.main(verbosity=2)
