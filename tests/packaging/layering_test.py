#!/usr/bin/env python3
"""The folders' layering is enforced by the build: a source file of one
library cannot include a header of a library it is not declared to depend
on. For each library, a file compiled with that library's own flags (from
compile_commands.json) includes a header it may use (it must compile) and
one it may not (the compiler must not find it).

Usage: layering_test.py BUILD_DIR
"""
import json
import os
import shlex
import subprocess
import sys
import tempfile
import unittest

BUILD = None

# (folder of a translation unit, a header it may include, one it may not)
CASES = [
    ("agent/src/core/", "netns.h", "control_handler.h"),
    ("agent/src/core/", "agent_settings.h", "bpf_maps_datapath.h"),
    ("agent/src/ebpf/", "datapath.h", "firewall.h"),
    ("agent/src/firewall/", "traffic_policy.h", "installer.h"),
    ("agent/src/modes/", "installer.h", "control_handler.h"),
    ("agent/src/control/", "enrolment.h", "pod_manager.h"),
    ("agent/src/kubernetes/", "enrolment.h", "control_handler.h"),
    ("agent/src/observe/", "datapath.h", "pod_manager.h"),
    ("userspace-proxy/src/protocol/", "shunt/endpoint.h", "proxy_config.h"),
    ("userspace-proxy/src/settings/", "egress_policy.h", "metrics.h"),
    ("userspace-proxy/src/io/", "metrics.h", "session.h"),
]


def commands():
    with open(os.path.join(BUILD, "compile_commands.json")) as f:
        return json.load(f)


def command_for(folder):
    for entry in commands():
        if folder in entry["file"] and "/tests/" not in entry["file"]:
            return entry
    raise AssertionError(f"no translation unit in {folder}")


def compiles(entry, header):
    args = shlex.split(entry["command"])
    # Keep the compiler and its flags; compile a one-line file instead.
    kept = []
    skip = False
    for a in args:
        if skip:
            skip = False
            continue
        if a in ("-o", "-c", "-MF", "-MT"):
            skip = True
            continue
        if a == entry["file"] or a.startswith("-M"):
            continue
        kept.append(a)
    with tempfile.NamedTemporaryFile("w", suffix=".cpp", delete=False) as f:
        f.write(f'#include "{header}"\n')
        source = f.name
    try:
        r = subprocess.run(kept + ["-fsyntax-only", source], cwd=entry["directory"],
                           capture_output=True, text=True)
    finally:
        os.unlink(source)
    return r.returncode == 0, r.stderr


class Layering(unittest.TestCase):
    def test_each_library_sees_only_what_it_depends_on(self):
        for folder, allowed, forbidden in CASES:
            entry = command_for(folder)
            ok, err = compiles(entry, allowed)
            self.assertTrue(ok, f"{folder} cannot include {allowed}: {err}")
            ok, err = compiles(entry, forbidden)
            self.assertFalse(ok, f"{folder} can include {forbidden}: the layering leaks")
            self.assertIn("No such file", err)


if __name__ == "__main__":
    BUILD = sys.argv.pop(1)
    unittest.main()
