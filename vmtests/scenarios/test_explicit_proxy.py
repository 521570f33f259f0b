"""The explicit proxies with real clients: curl, Python's standard library
and its SOCKS package, ncat; forward HTTP and SOCKS, reverse tcp and http,
limits, errors and the stats endpoint."""
import hashlib
import json
import os
import socket
import subprocess
import sys
import time
import unittest

from shunt_env import Topology, run, wait_for

SRV4 = "10.201.0.2"
SRV6 = "fd00:201::2"
POD4 = "10.201.0.1"
MB3 = 3 * 1024 * 1024


def read_log(path):
    try:
        with open(path) as f:
            return [json.loads(l) for l in f if l.strip()]
    except FileNotFoundError:
        return []


class ExplicitProxyTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        t = cls.t = Topology("expl")
        cls.addClassCleanup(t.close)
        t.start(agent=False)
        t.hosts_file("pod", [f"{SRV4} server.test", f"{SRV6} server.test", f"{SRV4} www.blocked.test",
                             f"{SRV6} v6only.test"])
        run(["ip", "-n", t.ns["pod"], "route", "add", "10.203.0.0/24", "via", SRV4])
        t.start_helper("web", "srv", "http_echo_server.py", "--port", "8080")
        t.start_helper("app", "pod", "http_echo_server.py", "--port", "8081")
        common = ["--transparent", "false", "--connect-timeout", "2s", "--deny-cidrs", "10.201.9.0/24",
                  "--deny-hosts", "*.blocked.test"]
        cls.dual_log = t.start_named_proxy("xproxy-dual", common + [
            "--proxy-type", "dual", "--proxy-protocol", "tcp:http", "--proxy-port", "8081",
            "--admin-port", "15000", "--header-timeout", "2s", "--sni-route", "*.routed.test=10.201.0.2:7000"])
        cls.socks_log = t.start_named_proxy("xproxy-socks", common + [
            "--proxy-type", "forward", "--proxy-protocol", "socks", "--proxy-out-port", "1080",
            "--admin-port", "0"])
        cls.auth_log = t.start_named_proxy("xproxy-auth", common + [
            "--proxy-type", "dual", "--proxy-protocol", "tcp:socks", "--proxy-out-port", "1081",
            "--proxy-in-port", "4145", "--credential", "alice:s3cret", "--admin-port", "0"])
        cls.httpauth_log = t.start_named_proxy("xproxy-httpauth", common + [
            "--proxy-type", "forward", "--proxy-protocol", "http", "--proxy-out-port", "4150",
            "--credential", "alice:s3cret", "--admin-port", "0"])
        cls.rhttp_log = t.start_named_proxy("xproxy-rhttp", common + [
            "--proxy-type", "reverse", "--proxy-protocol", "http", "--proxy-in-port", "4144",
            "--proxy-port", "8081", "--admin-port", "0"])
        cls.small_log = t.start_named_proxy("xproxy-small", common + [
            "--proxy-type", "forward", "--proxy-protocol", "http", "--proxy-out-port", "4160",
            "--max-connections-per-upstream", "1", "--admin-port", "0"])
        cls.limit_log = t.start_named_proxy("xproxy-limit", common + [
            "--proxy-type", "forward", "--proxy-protocol", "socks", "--proxy-out-port", "1090",
            "--max-connections", "5", "--admin-port", "15002"])

    # ---- helpers --------------------------------------------------------
    def curl(self, *args, role="pod"):
        r = self.t.in_ns(role, ["curl", "-sS", "-m", "10", *args], in_cgroup=False)
        return r

    def py(self, code, role="pod", python="python3"):
        r = self.t.in_ns(role, [python, "-c", code], in_cgroup=False)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout

    def raw(self, port, payload, role="pod", host="127.0.0.1", read=4096, half_close=False):
        code = (f"import socket,sys\ns=socket.create_connection(({host!r},{port}),5)\n"
                f"s.settimeout(5)\ns.sendall({payload!r})\n"
                + ("s.shutdown(socket.SHUT_WR)\n" if half_close else "") +
                f"d=b''\ntry:\n  while len(d)<{read}:\n    c=s.recv(65536)\n    if not c: break\n    d+=c\n"
                f"except OSError as e: d+=b'<'+type(e).__name__.encode()+b'>'\nsys.stdout.buffer.write(d)\n")
        r = subprocess.run(["ip", "netns", "exec", self.t.ns[role], "python3", "-c", code],
                           capture_output=True, timeout=60)
        return r.stdout

    def last(self, log, **match):
        wait_for(lambda: any(all(l.get(k) == v for k, v in match.items()) for l in read_log(log)),
                 what=f"log line {match}")
        return [l for l in read_log(log) if all(l.get(k) == v for k, v in match.items())][-1]

    # ---- forward HTTP ---------------------------------------------------
    def test_http_get_ipv4_ipv6_and_names(self):
        for url in (f"http://{SRV4}:8080/headers", f"http://[{SRV6}]:8080/headers",
                    "http://server.test:8080/headers"):
            r = self.curl("-x", "http://127.0.0.1:4140", url)
            self.assertEqual(r.returncode, 0, r.stderr)
            info = json.loads(r.stdout)
            self.assertEqual(info["path"], "/headers")
            self.assertNotIn("proxy-connection", info["headers"])
            self.assertEqual(info["headers"]["host"], url.split("/")[2])
        line = self.last(self.dual_log, host="server.test:8080")
        self.assertEqual((line["protocol"], line["method"], line["status"], line["listener"]),
                         ("http", "GET", 200, "forward"))

    def test_http_large_download_and_uploads_intact(self):
        r = self.t.in_ns("pod", ["sh", "-c", f"curl -sS -m 20 -x http://[::1]:4140 "
                                 f"http://{SRV4}:8080/bytes/{MB3} | sha256sum"], in_cgroup=False)
        expected = hashlib.sha256((bytes(range(256)) * 256 * 48)[:MB3]).hexdigest()
        self.assertEqual(r.stdout.split()[0], expected)
        body = os.urandom(2 * 1024 * 1024)
        path = os.path.join(self.t.tmp, "upload.bin")
        with open(path, "wb") as f:
            f.write(body)
        for extra in ([], ["-H", "Transfer-Encoding: chunked"]):
            r = self.curl("-x", "http://127.0.0.1:4140", "-H", "Expect:", "--data-binary", f"@{path}", *extra,
                          f"http://{SRV4}:8080/upload")
            info = json.loads(r.stdout)
            self.assertEqual(info["length"], len(body))
            self.assertEqual(info["sha256"], hashlib.sha256(body).hexdigest())
            self.assertEqual(info["chunked"], bool(extra))

    def test_connect_tunnel(self):
        r = self.curl("-p", "-x", "http://127.0.0.1:4140", f"http://[{SRV6}]:8080/headers")
        self.assertEqual(json.loads(r.stdout)["path"], "/headers")
        line = self.last(self.dual_log, protocol="connect", host=f"[{SRV6}]:8080")
        self.assertEqual(line["status"], 200)
        # Python's standard library through the tunnel.
        out = self.py("import http.client\nc=http.client.HTTPConnection('127.0.0.1',4140,timeout=5)\n"
                      f"c.set_tunnel('{SRV4}',8080)\nc.request('GET','/headers')\n"
                      "print(c.getresponse().status)")
        self.assertEqual(out.strip(), "200")

    def test_keep_alive_and_pipelining(self):
        r = self.curl("-x", "http://127.0.0.1:4140", f"http://{SRV4}:8080/headers",
                      f"http://{SRV4}:8080/bytes/10", "-o", "/dev/null", "-o", "/dev/null",
                      "-w", "%{num_connects}\n")
        self.assertEqual(r.stdout.split(), ["1", "0"])  # the second request reused the connection
        req = (f"GET http://{SRV4}:8080/bytes/5 HTTP/1.1\r\nHost: {SRV4}:8080\r\n\r\n"
               f"GET http://{SRV4}:8080/bytes/7 HTTP/1.1\r\nHost: {SRV4}:8080\r\nConnection: close\r\n\r\n")
        out = self.raw(4140, req.encode(), read=1 << 20)
        self.assertEqual(out.count(b"HTTP/1.1 200"), 2, out)
        self.assertTrue(out.endswith(bytes(range(7))), out[-20:])

    def test_http_errors_are_proper_responses(self):
        def status(payload, port=4140):
            out = self.raw(port, payload)
            return int(out.split(b" ")[1]) if out.startswith(b"HTTP/1.1 ") else out

        self.assertEqual(status(b"GARBAGE\r\n\r\n"), 400)
        self.assertEqual(status(b"GET /relative HTTP/1.1\r\nHost: x\r\n\r\n"), 400)
        self.assertEqual(status(b"GET https://x/ HTTP/1.1\r\nHost: x\r\n\r\n"), 400)
        self.assertEqual(status(b"GET http://x/ HTTP/1.1\r\nX-Big: " + b"a" * 70000 + b"\r\n\r\n"), 431)
        self.assertEqual(status(f"GET http://{SRV4}:7999/ HTTP/1.1\r\nHost: a\r\n\r\n".encode()), 502)
        self.assertEqual(status(b"GET http://10.203.0.1/ HTTP/1.1\r\nHost: a\r\n\r\n"), 504)
        self.assertEqual(status(b"GET http://10.201.9.1/ HTTP/1.1\r\nHost: a\r\n\r\n"), 403)
        self.assertEqual(status(b"CONNECT www.blocked.test:80 HTTP/1.1\r\n\r\n"), 403)
        self.assertEqual(status(b"GET http://nowhere.invalid/ HTTP/1.1\r\nHost: a\r\n\r\n"), 502)
        self.assertEqual(status(b"CONNECT nohostport HTTP/1.1\r\n\r\n"), 400)
        results = {l["result"] for l in read_log(self.dual_log)}
        for r in ("bad_request", "header_too_large", "connect_refused", "connect_timeout", "denied",
                  "dns_error"):
            self.assertIn(r, results)

    def test_credentials_required_where_configured(self):
        url = f"http://{SRV4}:8080/headers"
        r = self.curl("-x", "http://127.0.0.1:4150", url, "-o", "/dev/null", "-w", "%{http_code}")
        self.assertEqual(r.stdout, "407")
        r = self.curl("-x", "http://127.0.0.1:4150", "--proxy-user", "alice:wrong", url, "-o",
                      "/dev/null", "-w", "%{http_code}")
        self.assertEqual(r.stdout, "407")
        r = self.curl("-x", "http://127.0.0.1:4150", "--proxy-user", "alice:s3cret", url)
        info = json.loads(r.stdout)
        self.assertNotIn("proxy-authorization", info["headers"])  # not leaked upstream
        self.assertEqual(self.last(self.httpauth_log, status=200)["auth_user"], "alice")

    def test_slow_client_is_cut_off_and_others_are_served(self):
        code = ("import socket,time\ns=socket.create_connection(('127.0.0.1',4140))\n"
                "t=time.time()\ntry:\n  for b in b'GET http://x/ HTTP/1.1\\r\\n':\n"
                "    s.send(bytes([b])); time.sleep(0.5)\nexcept OSError: pass\n"
                "s.settimeout(5)\ntry: d=s.recv(100)\nexcept OSError: d=b''\n"
                "print(round(time.time()-t,1), d[:12].decode(errors='replace'))")
        slow = subprocess.Popen(["ip", "netns", "exec", self.t.ns["pod"], "python3", "-c", code],
                                stdout=subprocess.PIPE, text=True)
        r = self.curl("-x", "http://127.0.0.1:4140", f"http://{SRV4}:8080/headers")
        self.assertEqual(r.returncode, 0)
        out, _ = slow.communicate(timeout=30)
        elapsed = float(out.split()[0])
        self.assertLess(elapsed, 6, out)
        self.assertIn("header_timeout", {l["result"] for l in read_log(self.dual_log)})

    def test_upstream_limit_answers_503_and_dns_is_cached(self):
        code = ("import socket\na=socket.create_connection(('127.0.0.1',4160),5)\n"
                f"a.sendall(b'GET http://{SRV4}:8080/bytes/3 HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n')\n"
                "a.settimeout(5)\nd=b''\nwhile not d.endswith(bytes(range(3))): d+=a.recv(1000)\n"
                "b=socket.create_connection(('127.0.0.1',4160),5)\n"
                f"b.sendall(b'GET http://{SRV4}:8080/bytes/3 HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n')\n"
                "b.settimeout(5)\nprint(b.recv(100).split()[1].decode())")
        self.assertEqual(self.py(code).strip(), "503")
        self.assertEqual(self.last(self.small_log, status=503)["result"], "limit_reached")
        for _ in range(2):
            self.curl("-x", "http://127.0.0.1:4140", "http://server.test:8080/headers")
        stats = self.curl("http://127.0.0.1:15000/stats").stdout
        self.assertIn('shunt_proxy_dns_lookups_total{result="cache_hit"}', stats)

    # ---- SOCKS ----------------------------------------------------------
    def test_socks_with_curl_every_variant(self):
        cases = [("--socks4", f"http://{SRV4}:8080/headers", "socks4"),
                 ("--socks4a", "http://server.test:8080/headers", "socks4a"),
                 ("--socks5", f"http://[{SRV6}]:8080/headers", "socks5"),
                 ("--socks5-hostname", "http://server.test:8080/headers", "socks5")]
        for flag, url, proto in cases:
            r = self.curl(flag, "127.0.0.1:1080", url)
            self.assertEqual(r.returncode, 0, (flag, r.stderr))
            self.assertEqual(json.loads(r.stdout)["path"], "/headers")
            # Wait for this request's own line: the proxy writes it when the
            # connection ends, which can be after curl has returned.
            host = url.split("/")[2]
            line = self.last(self.socks_log, protocol=proto, result="ok", host=host)
            self.assertEqual(line["listener"], "forward")

    def test_socks_with_python_and_ncat(self):
        out = self.py("import socks\ns=socks.socksocket()\n"
                      "s.set_proxy(socks.SOCKS5,'127.0.0.1',1081,username='alice',password='s3cret')\n"
                      f"s.connect(('{SRV4}',7000))\ns.sendall(b'x'*100000)\ns.shutdown(1)\nd=b''\n"
                      "while True:\n  c=s.recv(65536)\n  if not c: break\n  d+=c\nprint(len(d))",
                      python="/usr/bin/python3")  # Debian's, with python3-socks
        self.assertEqual(out.strip(), "100000")
        self.assertEqual(self.last(self.auth_log, protocol="socks5", result="ok")["auth_user"], "alice")
        r = self.t.in_ns("pod", ["sh", "-c", f"echo hello | ncat --proxy 127.0.0.1:1080 "
                                 f"--proxy-type socks5 {SRV4} 7000"], in_cgroup=False)
        self.assertEqual(r.stdout.strip(), "hello", r.stderr)
        r = self.t.in_ns("pod", ["sh", "-c", f"echo hi4 | ncat --proxy 127.0.0.1:1080 "
                                 f"--proxy-type socks4 {SRV4} 7000"], in_cgroup=False)
        self.assertEqual(r.stdout.strip(), "hi4", r.stderr)

    def test_socks_authentication(self):
        url = f"http://{SRV4}:8080/headers"
        self.assertEqual(self.curl("-x", "socks5://alice:s3cret@127.0.0.1:1081", url).returncode, 0)
        self.assertNotEqual(self.curl("-x", "socks5://alice:nope@127.0.0.1:1081", url).returncode, 0)
        # No credentials offered: "no acceptable methods".
        self.assertEqual(self.raw(1081, b"\x05\x01\x00"), b"\x05\xff")
        self.assertEqual(self.raw(1081, b"\x05\x01\x02\x01\x05alice\x04nope"), b"\x05\x02\x01\x01")
        results = {l["result"] for l in read_log(self.auth_log)}
        self.assertTrue({"auth_failed", "auth_required"} <= results, results)

    def test_socks_reply_codes(self):
        def reply(request):
            return self.raw(1080, b"\x05\x01\x00" + request)[2:4]

        port = (7000).to_bytes(2, "big")
        self.assertEqual(reply(b"\x05\x02\x00\x01\x0a\xc9\x00\x02" + port)[1], 0x07)  # BIND
        self.assertEqual(reply(b"\x05\x03\x00\x01\x0a\xc9\x00\x02" + port)[1], 0x07)  # UDP ASSOCIATE
        self.assertEqual(reply(b"\x05\x01\x00\x09\x00\x00")[1], 0x08)  # address type
        self.assertEqual(reply(b"\x05\x01\x00\x01\x0a\xc9\x00\x02\x1f\x3f")[1], 0x05)  # refused 7999
        self.assertEqual(reply(b"\x05\x01\x00\x01\x0a\xc9\x09\x01" + port)[1], 0x02)  # denied CIDR
        self.assertEqual(reply(b"\x05\x01\x00\x01\x0a\xcc\x00\x01" + port)[1], 0x03)  # no route
        self.assertEqual(reply(b"\x05\x01\x00\x01\x0a\xcb\x00\x01" + port)[1], 0x06)  # timeout
        self.assertEqual(reply(b"\x05\x01\x00\x03\x0cnothing.test" + port)[1], 0x04)  # no such host
        self.assertEqual(reply(b"\x05\x01\x00\x03" + bytes([16]) + b"www.blocked.test" + port)[1], 0x02)
        # SOCKS4 has one failure code.
        self.assertEqual(self.raw(1080, b"\x04\x01\x1f\x3f\x0a\xc9\x00\x02\x00")[:2], b"\x00\x5b")
        # Garbage and a truncated greeting get nothing and a closed connection.
        self.assertEqual(self.raw(1080, b"\x16\x03\x01garbage"), b"<ConnectionResetError>")

    # ---- reverse --------------------------------------------------------
    def test_reverse_tcp_and_sni(self):
        r = self.curl(f"http://{POD4}:4143/headers", role="srv")
        info = json.loads(r.stdout)
        self.assertEqual(info["path"], "/headers")
        line = self.last(self.dual_log, listener="reverse", protocol="tcp")
        self.assertEqual(line["host"], "localhost:8081")
        # TLS towards the reverse tcp listener: the SNI is read, not terminated,
        # and a matching route sends the bytes to the echo server.
        code = ("import ssl,socket\nc=ssl.create_default_context()\n"
                f"s=socket.create_connection(('{POD4}',4143),5)\n"
                "try: c.wrap_socket(s,server_hostname='api.routed.test')\nexcept Exception as e: print('tls failed as expected')\n")
        self.py(code, role="srv")
        line = self.last(self.dual_log, sni="api.routed.test")
        self.assertEqual(line["upstream"], f"{SRV4}:7000")

    def test_reverse_http_adds_forwarding_headers(self):
        r = self.curl(f"http://{POD4}:4144/headers", "-H", "X-Forwarded-For: 192.0.2.1", role="srv")
        info = json.loads(r.stdout)
        self.assertEqual(info["headers"]["x-forwarded-for"], f"192.0.2.1, {SRV4}")
        self.assertEqual(info["headers"]["x-forwarded-proto"], "http")
        self.assertEqual(self.last(self.rhttp_log, listener="reverse")["status"], 200)

    # ---- limits, stats, leaks ------------------------------------------
    def test_connection_limit_and_stats(self):
        code = ("import socket,time\nheld=[socket.create_connection(('127.0.0.1',1090)) for _ in range(5)]\n"
                "time.sleep(0.5)\nrefused=0\nfor _ in range(1000):\n"
                "  try:\n    s=socket.create_connection(('127.0.0.1',1090)); s.settimeout(5)\n"
                # The reset of a refused connection can overtake connect()'s return.
                "  except ConnectionResetError:\n    refused+=1; continue\n"
                "  try:\n    d=s.recv(10)\n    refused+= d==b''\n  except ConnectionResetError: refused+=1\n"
                "  s.close()\nprint(refused)")
        self.assertEqual(self.py(code).strip(), "1000")
        stats = self.curl("http://127.0.0.1:15002/stats").stdout
        self.assertIn('shunt_proxy_limit_rejections_total{limit="connections"} 1000', stats)
        self.curl("-x", "http://127.0.0.1:4140", f"http://{SRV4}:8080/headers")
        stats = self.curl("http://127.0.0.1:15000/stats").stdout
        self.assertIn('shunt_proxy_connections_total{listener="forward"}', stats)
        self.assertIn("# TYPE shunt_proxy_connections_active gauge", stats)
        # Still serving after all that.
        r = self.curl("--socks5", "127.0.0.1:1090", f"http://{SRV4}:8080/headers")
        self.assertEqual(r.returncode, 0)

    def test_no_descriptor_leak_after_bad_input(self):
        pid = self.t.procs["xproxy-socks"].pid
        fds = lambda: len(os.listdir(f"/proc/{pid}/fd"))  # noqa: E731
        before = fds()
        # Truncated handshakes end with the client's EOF; garbage is refused.
        for payload in (b"", b"\x05", b"\x05\x01", b"\x04\x01", b"\x05\x01\x00\x05\x09", os.urandom(64)):
            for _ in range(8):
                self.raw(1080, payload, half_close=True)
        time.sleep(0.3)
        self.assertLessEqual(fds(), before + 2)


if __name__ == "__main__":
    unittest.main(verbosity=2)
