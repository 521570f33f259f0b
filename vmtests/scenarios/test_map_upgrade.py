"""An agent meeting the pinned maps of an earlier version whose layout
differs (issue 19, item 3; docs/operations.md, "Upgrades"): counters are
made again with their values carried over, settings made again, and a map
holding state (here the original destinations) refused with the reason
and the steps, nothing attached. The earlier version's maps are made with
bpftool, as it would have left them. ebpf mode."""
import json
import os
import subprocess
import unittest

from shunt_env import ECHO_PORT, Topology, run

SRV4 = "10.201.0.2"


def bpftool(*args):
    r = run(["bpftool", "-j", *args])
    return json.loads(r.stdout) if r.stdout.strip() else None


class MapUpgradeTest(unittest.TestCase):
    def setUp(self):
        self.t = Topology("mapup")
        self.addCleanup(self.t.close)
        self.t.start(agent=False)
        os.makedirs(self.t.bpffs)

    def pin(self, name, kind, key, value, entries):
        run(["bpftool", "map", "create", os.path.join(self.t.bpffs, name), "type", kind, "key",
             str(key), "value", str(value), "entries", str(entries), "name", name])

    def test_counters_are_carried_and_settings_made_again(self):
        # An earlier shunt_stats: two counters fewer; one namespace's counters.
        self.pin("shunt_stats", "percpu_hash", 8, 152, 64)
        key = ["0x2a"] + ["0"] * 7
        value = ["0x07"] + ["0"] * 151
        run(["bpftool", "map", "update", "pinned", os.path.join(self.t.bpffs, "shunt_stats"),
             "key", *key, "value", *value])
        self.pin("shunt_config", "array", 4, 8, 1)
        self.t.start_agent()
        log = self.t.log_text("agent")
        self.assertIn("map shunt_stats: layout changed (value 152 -> ", log)
        self.assertIn("made again with the old values copied in", log)
        self.assertIn("map shunt_config: layout changed", log)
        info = bpftool("map", "show", "pinned", os.path.join(self.t.bpffs, "shunt_stats"))
        self.assertGreater(info["bytes_value"], 152)
        entry = bpftool("map", "lookup", "pinned", os.path.join(self.t.bpffs, "shunt_stats"),
                        "key", *key)
        first_cpu = entry["values"][0]["value"]
        self.assertEqual(int(first_cpu[0], 16), 7)
        self.assertTrue(all(int(b, 16) == 0 for b in first_cpu[152:]))
        # And the data path works with them.
        self.t.start_proxy()
        self.t.enroll("pod")
        r = self.t.in_ns("pod", ["python3", "-c", f"""
import socket
s = socket.create_connection(("{SRV4}", {ECHO_PORT}), timeout=5)
s.sendall(b"ping\\n"); print(s.recv(10).decode().strip())"""])
        self.assertEqual(r.stdout.strip(), "ping", r.stderr)
        self.assertEqual(self.t.wait_access_log(1)[-1]["original_dst"], f"{SRV4}:{ECHO_PORT}")

    def test_state_of_another_layout_is_refused_with_the_steps(self):
        self.pin("shunt_orig_dst", "lru_hash", 8, 8, 64)
        p = subprocess.run(["timeout", "20", *self.t.agent_command()], capture_output=True,
                           text=True)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("the pinned map shunt_orig_dst has another layout", p.stderr)
        self.assertIn("shunt-agent uninstall", p.stderr)
        # Nothing attached, and the earlier version's map is left as it was.
        tree = bpftool("cgroup", "tree", self.t.cgroup) or []
        self.assertEqual([p for e in tree for p in e.get("programs", [])], [])
        self.assertEqual(sorted(os.listdir(self.t.bpffs)), ["shunt_orig_dst"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
