"""The QEMU runner's pieces that need no guest: the initramfs archive
format, the failure summary and the matrix table."""
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import initramfs  # noqa: E402
import kernels  # noqa: E402
import run_qemu  # noqa: E402


def parse_newc(data):
    """name -> (mode, data) of a newc cpio archive."""
    entries, offset = {}, 0
    while True:
        assert data[offset:offset + 6] == b"070701", offset
        fields = [int(data[offset + 6 + 8 * i:offset + 14 + 8 * i], 16) for i in range(13)]
        mode, size, namesize = fields[1], fields[6], fields[11]
        name_start = offset + 110
        name = data[name_start:name_start + namesize - 1].decode()
        offset = name_start + namesize
        offset += -offset % 4
        body = data[offset:offset + size]
        offset += size
        offset += -offset % 4
        if name == "TRAILER!!!":
            return entries
        entries[name] = (mode, body)


class NewcArchiveTest(unittest.TestCase):
    def test_files_directories_and_links_round_trip(self):
        with tempfile.TemporaryDirectory() as tree:
            os.makedirs(os.path.join(tree, "bin"))
            with open(os.path.join(tree, "init"), "w") as f:
                f.write("#!/bin/sh\necho hi\n")
            os.chmod(os.path.join(tree, "init"), 0o755)
            os.symlink("busybox", os.path.join(tree, "bin", "sh"))
            entries = parse_newc(initramfs.newc_archive(tree))
        self.assertEqual(entries["init"][1], b"#!/bin/sh\necho hi\n")
        self.assertEqual(entries["init"][0] & 0o777, 0o755)
        self.assertEqual(entries["bin/sh"][1], b"busybox")
        self.assertEqual(entries["bin/sh"][0] & 0o170000, 0o120000)
        self.assertEqual(entries["bin"][0] & 0o170000, 0o040000)


class BzImageTest(unittest.TestCase):
    @staticmethod
    def bzimage(payload, setup_sects=2):
        """A boot header the way the kernel's build lays it out: setup
        sectors, then the protected-mode part holding the payload."""
        import lzma
        import struct
        header = bytearray((setup_sects + 1) * 512)
        header[0x1F1] = setup_sects
        header[0x202:0x206] = b"HdrS"
        body = b"decompressor code" + payload
        struct.pack_into("<II", header, 0x248, len(b"decompressor code"), len(payload))
        return bytes(header) + body + b"trailer"

    def test_xz_payload_unpacks_to_the_elf(self):
        import lzma
        elf = b"\x7fELF" + bytes(range(256)) * 40
        image = self.bzimage(lzma.compress(elf, format=lzma.FORMAT_XZ) + b"\x00\x28\x00\x00")
        self.assertEqual(kernels.bzimage_payload(image)[0], "xz")
        self.assertEqual(kernels.unpack_bzimage(image), elf)

    def test_unknown_payload_falls_back(self):
        self.assertIsNone(kernels.unpack_bzimage(self.bzimage(b"\x1f\x8b gzip-ish")))
        self.assertIsNone(kernels.unpack_bzimage(b"not a kernel" * 100))


class ReportTest(unittest.TestCase):
    def test_failures_name_the_test_and_its_reason(self):
        log = ("test_a ... ok\ntest_b ... FAIL\n\n" + "=" * 70 + "\nFAIL: test_b (__main__.T.test_b)"
               "\n" + "-" * 70 + "\nTraceback...\nAssertionError: 'sockopt' != 'local'\n\n"
               + "-" * 70 + "\nRan 2 tests\n\nFAILED (failures=1)\n")
        with tempfile.NamedTemporaryFile("w", suffix=".log", delete=False) as f:
            f.write(log)
        try:
            out = run_qemu.failures(f.name)
        finally:
            os.unlink(f.name)
        self.assertEqual(len(out), 1)
        self.assertIn("FAIL: test_b", out[0])
        self.assertIn("AssertionError", out[0])

    def test_table_says_why_a_mode_is_not_possible(self):
        rows = [{"kernel": "5.10", "version": "5.10.0-46-amd64", "auto_mode": "tproxy",
                 "seconds": 100, "timed_out": False,
                 "runs": [{"scenario": "redirect", "mode": "ebpf", "result": "not possible",
                           "why": "ebpf requested but not possible: missing so_netns_cookie"},
                          {"scenario": "redirect", "mode": "auto", "result": "pass"}]}]
        text = run_qemu.table(rows, ["auto", "ebpf"])
        self.assertIn("| 5.10 (5.10.0-46-amd64) | tproxy | redirect pass | not possible: ebpf "
                      "requested but not possible: missing so_netns_cookie | 100 s |", text)


if __name__ == "__main__":
    unittest.main(verbosity=2)
