"""A deliberately broken build must fail the guest run loudly: the
getsockopt program is not attached (SHUNT_FAULT_INJECT in the guest), so
the proxy cannot learn original destinations on the newest kernel. The
runner must exit non-zero, name the scenario, the mode and the failing test
with its reason, and keep the guest's console log; and nothing of QEMU may
be left running."""
import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from kernels import ORDER  # noqa: E402

BIN = os.environ.get("SHUNT_BIN", os.path.join(os.path.dirname(os.path.dirname(HERE)),
                                               "build", "bin"))


def qemu_processes():
    out = subprocess.run(["pgrep", "-f", "qemu-system-x86_64.*mount_tag=results"],
                         capture_output=True, text=True).stdout
    return out.split()


class BrokenBuild(unittest.TestCase):
    def test_detached_getsockopt_fails_the_guest_with_a_reason(self):
        newest = ORDER[-1]
        with tempfile.TemporaryDirectory(prefix="shunt-vm-broken-") as out:
            r = subprocess.run(
                [sys.executable, os.path.join(HERE, "run_qemu.py"), "--kernel", newest,
                 "--modes", "ebpf", "--scenarios", "redirect", "--tests", "ipv4_1mib",
                 "--inject", "skip-attach:shunt_getsockopt", "--bin", BIN, "--out", out],
                capture_output=True, text=True, timeout=900)
            print(r.stdout[-3000:], r.stderr[-2000:])
            self.assertEqual(r.returncode, 1)
            self.assertIn(f"kernel {newest}: redirect in ebpf (ebpf): FAIL", r.stdout)
            failing = [l for l in r.stdout.splitlines()
                       if "test_ipv4_1mib_echo_through_proxy" in l]
            self.assertTrue(failing, "the failing test is named")
            self.assertRegex(failing[0], r"(FAIL|ERROR): .* -- \S", "with its reason")
            console = os.path.join(out, newest, "console.log")
            self.assertIn(f"console log {console}", r.stdout)
            with open(console, errors="replace") as f:
                self.assertIn("redirect.ebpf: exit 1", f.read())
        self.assertEqual(qemu_processes(), [])


if __name__ == "__main__":
    unittest.main(verbosity=2)
