"""One traffic-policy table, run unchanged in every mode and backend
(SHUNT_TEST_MODE), IPv4 and IPv6: each case is a policy, a connection and
whether the proxy must see it. The policy is changed on the enrolled
namespace between cases (enroll again), which also checks that a change
applies to new connections only."""
import json
import os
import unittest

from control import control_request
from processes import world_readable
from shunt_env import ECHO_PORT, TOOLS, Topology, run, wait_for

SRV = {4: "10.201.0.2", 6: "fd00:201::2"}
# More addresses of the server namespace, for the prefix cases.
NEAR = {4: "10.201.0.4", 6: "fd00:201::4"}
FAR = {4: "10.201.0.130", 6: "fd00:201::8003"}
PORTS = [ECHO_PORT, 7001, 7002, 7100]
UID, GID = 4242, 4243
R, D = True, False  # redirected, direct

# (name, policy settings, [(family, address, port, who, redirected)]).
# `who`: "root", "uid" (runs as UID) or "gid" (runs with group GID).
CASES = [
    ("empty policy", {}, [(f, SRV[f], ECHO_PORT, "root", R) for f in (4, 6)]
     + [(f, SRV[f], 7100, "uid", R) for f in (4, 6)]),
    ("excluded port", {"exclude_outbound_ports": "7001"},
     [(f, SRV[f], p, "root", p != 7001) for f in (4, 6) for p in (ECHO_PORT, 7001)]),
    ("included range", {"include_outbound_ports": "7000-7001"},
     [(f, SRV[f], p, "root", p in (7000, 7001)) for f in (4, 6) for p in PORTS]),
    ("include with a hole", {"include_outbound_ports": "7000-7100",
                             "exclude_outbound_ports": "7001"},
     [(f, SRV[f], p, "root", p != 7001) for f in (4, 6) for p in PORTS]),
    ("excluded prefix", {"exclude_outbound_cidrs": "10.201.0.0/30,fd00:201::/126"},
     [(f, a[f], ECHO_PORT, "root", a is not SRV) for f in (4, 6) for a in (SRV, NEAR)]),
    ("overlapping prefixes", {"exclude_outbound_cidrs":
                              "10.201.0.0/29,10.201.0.4/32,fd00:201::/125,fd00:201::4/128"},
     [(f, a[f], ECHO_PORT, "root", a is FAR) for f in (4, 6) for a in (SRV, NEAR, FAR)]),
    ("excluded uid", {"exclude_uids": f"{UID},1"},
     [(f, SRV[f], ECHO_PORT, who, who == "root") for f in (4, 6) for who in ("root", "uid")]),
    ("excluded gid", {"exclude_gids": str(GID)},
     [(f, SRV[f], ECHO_PORT, who, who != "gid") for f in (4, 6) for who in ("root", "gid")]),
]


# The setting `explain` names for the connections a case leaves alone. The
# ebpf mode's maps hold the captured ports, not the lists that made them:
# a port out of them is named by either list.
PORT_LISTS = ("include-outbound-ports", "exclude-outbound-ports")
DECIDED_BY = {
    "empty policy": None,
    "excluded port": PORT_LISTS,
    "included range": PORT_LISTS,
    "include with a hole": PORT_LISTS,
    "excluded prefix": ("exclude-outbound-cidrs",),
    "overlapping prefixes": ("exclude-outbound-cidrs",),
    "excluded uid": ("exclude-uids",),
    "excluded gid": ("exclude-gids",),
}


def largest_prefix_list():
    """16384 prefixes (the most one namespace may have), the one that
    matters last."""
    cidrs = [f"100.{64 + i // 65536}.{i // 256 % 256}.{i % 256}/32" for i in range(8190)]
    cidrs += [f"2001:db8::{i:x}/128" for i in range(8192)]
    cidrs += [f"{NEAR[4]}/32", f"{NEAR[6]}/128"]
    return ",".join(cidrs)


class PolicyTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.t = Topology("polcy")
        cls.addClassCleanup(cls.t.close)
        cls.t.start()
        t = cls.t
        for f, host in list(NEAR.items()) + list(FAR.items()):
            dev = f"s{t.tag}0b"[:15]
            run(["ip", "-n", t.ns["srv"], f"-{f}", "addr", "add",
                 f"{host}/{24 if f == 4 else 64}", "dev", dev] + (["nodad"] if f == 6 else []))
        for port in PORTS[1:]:
            t.start_helper(f"echo{port}", "srv", "echo_server.py", "--port", str(port),
                           "--report", os.path.join(t.tmp, f"echo{port}.jsonl"))
        os.chmod(t.tmp, 0o755)

    def control(self, request):
        """One request on the agent's control socket (the protocol the
        enroll command and the CNI plugin use)."""
        return control_request(self.t.socket, request)

    def set_policy(self, settings):
        request = {"op": "enroll", "netns": f"/run/netns/{self.t.ns['pod']}", **settings}
        answer = self.control(request)
        self.assertTrue(answer.get("ok"), answer)
        return answer

    def connect(self, address, port, who):
        # /usr/bin/python3: the one on PATH may live where another user
        # cannot read (pyenv under /root).
        client = os.path.join(TOOLS, "client.py")
        cmd = ["/usr/bin/python3" if who != "root" else "python3",
               world_readable(client) if who == "uid" else client, "--host", address, "--port", str(port),
               "--size", "2048"]
        if who == "uid":
            cmd = ["setpriv", f"--reuid={UID}", f"--regid={UID}", "--clear-groups"] + cmd
        elif who == "gid":
            cmd = ["setpriv", f"--regid={GID}", "--clear-groups"] + cmd
        r = self.t.in_ns("pod", cmd)
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)

    def explain(self, address, port, who):
        """`shunt-agent explain` for the connection connect() makes."""
        dst = f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
        ids = {"root": (0, 0), "uid": (UID, UID), "gid": (0, GID)}[who]
        r = self.t.agent_cli("explain", "--netns", f"/run/netns/{self.t.ns['pod']}", "--dst", dst,
                             "--uid", str(ids[0]), "--gid", str(ids[1]), "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)

    def check_case(self, name, connections, decided_by=None):
        for family, address, port, who, redirected in connections:
            with self.subTest(case=name, family=family, address=address, port=port, who=who):
                # What the kernel's state says, then what a real connection does.
                why = self.explain(address, port, who)
                self.assertEqual(why["verdict"], "redirected" if redirected else "not redirected",
                                 why)
                if not redirected and decided_by:
                    self.assertIn(why["decided_by"], decided_by, why)
                before = len(self.t.access_log())
                r = self.connect(address, port, who)
                self.assertTrue(r["ok"], r)
                if redirected:
                    lines = self.t.wait_access_log(before + 1)
                    bracketed = f"[{address}]" if family == 6 else address
                    self.assertEqual(lines[-1]["original_dst"], f"{bracketed}:{port}")
                else:
                    # The proxy would have logged it by now: it logs before
                    # the client could see the echo.
                    self.assertEqual(len(self.t.access_log()), before,
                                     f"{name}: proxied though the policy excludes it")

    def test_policy_table(self):
        for name, settings, connections in CASES:
            answer = self.set_policy(settings)
            self.assertTrue(answer["updated"])
            self.check_case(name, connections, DECIDED_BY[name])
        self.set_policy({})

    def test_largest_policy(self):
        answer = self.set_policy({"exclude_outbound_cidrs": largest_prefix_list()})
        self.assertEqual(len(answer["policy"]["exclude_outbound_cidrs"]), 16384)
        entry = [e for e in self.t.status()["enrolled"]][0]
        self.assertEqual(len(entry["policy"]["exclude_outbound_cidrs"]), 16384)
        self.check_case("largest", [(f, a[f], ECHO_PORT, "root", a is SRV)
                                    for f in (4, 6) for a in (SRV, NEAR)])
        too_many = largest_prefix_list() + ",192.0.2.1"
        answer = self.control({"op": "enroll", "netns": f"/run/netns/{self.t.ns['pod']}",
                               "exclude_outbound_cidrs": too_many})
        self.assertFalse(answer["ok"])
        self.assertIn("at most 16384", answer["error"])
        self.set_policy({})

    def test_bad_values_are_refused_and_nothing_changes(self):
        self.set_policy({"exclude_outbound_ports": "7001"})
        before = self.t.status()["enrolled"][0]["policy"]
        for settings, named in (({"exclude_outbound_ports": "7001,70000"}, "'70000'"),
                                ({"exclude_outbound_cidrs": "10.0.0.0/8,fd00::/200"},
                                 "'fd00::/200'"),
                                ({"exclude_uids": "nobody"}, "'nobody'"),
                                ({"include_inbound_ports": "9-1"}, "'9-1'")):
            answer = self.control({"op": "enroll", "netns": f"/run/netns/{self.t.ns['pod']}",
                                   **settings})
            self.assertFalse(answer["ok"], settings)
            self.assertIn(named, answer["error"])
        self.assertEqual(self.t.status()["enrolled"][0]["policy"], before)
        r = self.t.agent_cli("enroll", "--netns", f"/run/netns/{self.t.ns['pod']}",
                             "--exclude-outbound-cidrs", "10.1.2.3/8")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("did you mean 10.0.0.0/8", r.stderr)
        self.set_policy({})

    def test_change_affects_new_connections_only(self):
        self.set_policy({})
        hold = os.path.join(self.t.tmp, "hold-policy")
        held = self.t.client_async(SRV[4], port=7001, size=4096, hold_file=hold, timeout=30)
        # The held connection is established through the proxy (its
        # relay starts at once); then the port is excluded.
        wait_for(lambda: self.established_to_proxy(), what="held connection at the proxy")
        self.set_policy({"exclude_outbound_ports": "7001"})
        self.check_case("after the change", [(4, SRV[4], 7001, "root", D)])
        open(hold, "w").close()
        out, err = held.communicate(timeout=60)
        r = json.loads(out)
        self.assertTrue(r["ok"], (r, err))
        self.assertEqual(r["received"], 4096)
        self.set_policy({})

    def established_to_proxy(self):
        out = self.t.netns_run("pod", ["ss", "-Htn", "state", "established",
                                       "( dport = :7001 )"]).stdout
        return bool(out.strip())


if __name__ == "__main__":
    unittest.main(verbosity=2)
