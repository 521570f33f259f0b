#!/usr/bin/env python3
"""scripts/check_sizes.py finds a file over the limit and a function over
it, honours the table marker, and passes a tree within the limits."""
import os
import subprocess
import sys
import tempfile
import unittest

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts",
                      "check_sizes.py")


def tree(files):
    root = tempfile.mkdtemp()
    for name, text in files.items():
        path = os.path.join(root, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
    return root


def function(name, lines, head="int"):
    body = "".join(f"  x += {i};\n" for i in range(lines))
    return f"{head} {name}(int x) {{\n{body}  return x;\n}}\n"


def run(root):
    return subprocess.run([sys.executable, SCRIPT, root], capture_output=True, text=True)


class CheckSizes(unittest.TestCase):
    def test_within_limits_passes(self):
        r = run(tree({"agent/a.cpp": function("short_one", 60)}))
        self.assertEqual(r.returncode, 0, r.stdout)

    def test_long_function_fails_with_its_name(self):
        r = run(tree({"agent/a.cpp": "namespace n {\n" + function("long_one", 90) + "}\n"}))
        self.assertEqual(r.returncode, 1)
        self.assertIn("long_one", r.stdout)
        self.assertIn("agent/a.cpp:2", r.stdout)

    def test_multi_line_head_and_coroutine(self):
        text = ("asio::awaitable<void> serve(int a,\n                            int b) {\n"
                + "".join(f"  co_await f({i});\n" for i in range(85)) + "}\n")
        r = run(tree({"userspace-proxy/s.cpp": text}))
        self.assertEqual(r.returncode, 1)
        self.assertIn("serve", r.stdout)

    def test_long_file_fails(self):
        text = "".join(function(f"f{i}", 10) for i in range(40))
        r = run(tree({"common/big.cpp": text}))
        self.assertEqual(r.returncode, 1)
        self.assertIn("common/big.cpp:", r.stdout.replace(" lines", ":"))

    def test_table_marker_exempts_a_table(self):
        text = "// size: table\n" + function("table", 120, head="static const int*")
        r = run(tree({"agent/t.cpp": text}))
        self.assertEqual(r.returncode, 0, r.stdout)

    def test_braces_in_strings_and_comments_are_ignored(self):
        text = 'int f() {\n  const char* s = "}}}";  // }\n  /* { */\n  return 0;\n}\n' + \
            function("g", 85)
        r = run(tree({"bpf/x.h": text}))
        self.assertEqual(r.returncode, 1)
        self.assertIn(" g(", r.stdout)


if __name__ == "__main__":
    unittest.main()
