"""BPF programs replaced under load (issue 19, item 3; docs/operations.md,
"Upgrades"): an agent built with changed programs (shunt-agent-bpf-variant,
whose every program is one instruction longer, SHUNT_VARIANT_MARK) replaces
the running agent, then the first build comes back (a rollback), while a
stream of data and 200 connects per second go through the pod's proxy.
Each pinned link keeps its id and gets the other build's program (bpf_link
update, no detach), the maps are kept, no byte of the stream is lost, no
connect fails, and every connection reaches the proxy with its original
destination. ebpf mode."""
import json
import os
import signal
import time
import unittest

from shunt_env import AGENT, BIN, ECHO_PORT, TIMEOUT_SCALE, Topology, run

SRV4 = "10.201.0.2"
SRV6 = "fd00:201::2"
VARIANT = os.path.join(BIN, "shunt-agent-bpf-variant")


def bpftool(*args):
    return json.loads(run(["bpftool", "-j", *args]).stdout)


class ProgramUpgradeTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.t = Topology("progup")
        cls.addClassCleanup(cls.t.close)
        cls.t.start()

    def links(self):
        """Each pinned link's name: (link id, program tag)."""
        out = {}
        for name in sorted(os.listdir(self.t.bpffs)):
            if not name.startswith("link_"):
                continue
            link = bpftool("link", "show", "pinned", os.path.join(self.t.bpffs, name))
            prog = bpftool("prog", "show", "id", str(link["prog_id"]))
            out[name] = (link["id"], prog["tag"])
        return out

    def maps(self):
        return {name: bpftool("map", "show", "pinned", os.path.join(self.t.bpffs, name))["id"]
                for name in os.listdir(self.t.bpffs) if name.startswith("shunt_")}

    def in_pod(self, tool, *args):
        return self.t.tool_in_background("pod", tool, *args)

    def result(self, p):
        out, err = p.communicate(timeout=120 * TIMEOUT_SCALE)
        self.assertEqual(p.returncode, 0, err)
        return json.loads(out)

    def replace_agent(self, binary):
        self.t.stop("agent", sig=signal.SIGTERM)
        self.t.start_agent(binary=binary)

    def test_programs_replaced_and_rolled_back_under_load(self):
        first, maps = self.links(), self.maps()
        self.assertIn("link_shunt_connect4", first)
        before = len(self.t.access_log())
        stream = self.in_pod("echo_stream.py", "--host", SRV4, "--port", str(ECHO_PORT),
                             "--seconds", "8", "--rate", "500000")
        connects = [self.in_pod("connects.py", "--host", host, "--port", str(ECHO_PORT),
                                "--count", "800", "--rate", "100") for host in (SRV4, SRV6)]
        time.sleep(1.5)
        self.replace_agent(VARIANT)
        upgraded = self.links()
        time.sleep(2)
        self.replace_agent(AGENT)
        rolled_back = self.links()
        streamed = self.result(stream)
        counted = [self.result(p) for p in connects]
        self.assertTrue(streamed["matched"], streamed)
        for c in counted:
            self.assertEqual(c["outcomes"], {"ok": 800}, c)

        # The same links, each running the other build's program, then the
        # first build's again; the maps were kept throughout.
        self.assertEqual(upgraded.keys(), first.keys())
        for name, (link_id, tag) in first.items():
            self.assertEqual(upgraded[name][0], link_id, name)
            self.assertNotEqual(upgraded[name][1], tag, f"{name}: the program was not replaced")
            self.assertEqual(rolled_back[name], (link_id, tag), name)
        self.assertEqual(self.maps(), maps)

        # Every connection went through the proxy with its original destination.
        lines = self.t.wait_access_log(before + 1601, timeout=30)[before:]
        self.assertEqual(len(lines), 1601)
        self.assertEqual({e["original_dst"] for e in lines},
                         {f"{SRV4}:{ECHO_PORT}", f"[{SRV6}]:{ECHO_PORT}"})
        self.assertEqual(len(self.t.status()["enrolled"]), 1)
        print(f"{len(first)} links replaced in place and back under load: 1600 connects and a "
              f"{streamed['sent']}-byte stream, none lost, none unproxied", flush=True)


if __name__ == "__main__":
    unittest.main(verbosity=2)
