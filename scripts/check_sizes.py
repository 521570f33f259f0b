#!/usr/bin/env python3
"""Checks that no source file is over 400 lines and no function over 80.

Usage: scripts/check_sizes.py [--max-file N] [--max-function N] [ROOT]

Files: the project's own C++ and BPF sources (agent, userspace-proxy,
common, bpf, bench, fuzz, tests/unit). Functions are found by their
braces: a definition starts on a line that opens a block after a closing
parenthesis (a function head, possibly spread over several lines) outside
any other function, and ends at its matching brace. Data tables (a
function that is one `static const` table, marked `// size: table`)
are exempt, as the issue allows. Prints every offender and exits 1 if
there is one.
"""
import argparse
import pathlib
import re
import sys

DIRS = ["agent", "userspace-proxy", "common", "bpf", "bench", "fuzz", "tests/unit"]
SUFFIXES = {".cpp", ".h", ".c"}
CONTROL = re.compile(r"^\s*(if|for|while|switch|catch|do|else)\b")
TYPE_HEAD = re.compile(r"^\s*(namespace|class|struct|enum|union|extern)\b")


def strip_code(line, state):
    """The line without comments and string/char literals; `state` carries
    an open block comment across lines."""
    out = []
    i = 0
    while i < len(line):
        if state["comment"]:
            end = line.find("*/", i)
            if end < 0:
                return "".join(out)
            state["comment"] = False
            i = end + 2
            continue
        c = line[i]
        if line.startswith("//", i):
            break
        if line.startswith("/*", i):
            state["comment"] = True
            i += 2
            continue
        if c in "\"'":
            j = i + 1
            while j < len(line) and line[j] != c:
                j += 2 if line[j] == "\\" else 1
            out.append(c + c)
            i = j + 1
            continue
        out.append(c)
        i += 1
    return "".join(out)


def is_function_head(text):
    """Whether a block opened after `text` is a function body."""
    if CONTROL.match(text) or TYPE_HEAD.match(text):
        return False
    if "=" in text.split("(")[0]:  # an initialiser, a lambda assigned
        return False
    return re.search(r"\)\s*(const|override|final|noexcept|mutable|->[^;]*|:.*)?\s*$", text) is not None


def functions(lines):
    """(head, first line number, length) of each function body that is not
    inside another function."""
    state = {"comment": False}
    stack = []  # (is_function, first line, head) of each open block
    head = ""   # the code since the last statement or block boundary
    found = []
    for number, raw in enumerate(lines, 1):
        code = strip_code(raw, state)
        for ch in code:
            if ch == "{":
                text = " ".join(head.split())
                in_function = any(f for f, _, _ in stack)
                stack.append((not in_function and is_function_head(text), number, text))
                head = ""
            elif ch == "}":
                if stack:
                    is_function, start, text = stack.pop()
                    if is_function:
                        found.append((text[:70], start, number - start + 1))
                head = ""
            elif ch == ";":
                head = ""
            else:
                head += ch
        head += " "
    return found


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-file", type=int, default=400)
    parser.add_argument("--max-function", type=int, default=80)
    parser.add_argument("root", nargs="?", default=str(pathlib.Path(__file__).resolve().parent.parent))
    args = parser.parse_args()
    root = pathlib.Path(args.root)
    problems = []
    checked = 0
    for d in DIRS:
        for path in sorted((root / d).rglob("*")):
            if path.suffix not in SUFFIXES or "corpus" in path.parts:
                continue
            checked += 1
            lines = path.read_text(errors="replace").splitlines()
            rel = path.relative_to(root)
            if len(lines) > args.max_file:
                problems.append(f"{rel}: {len(lines)} lines (at most {args.max_file})")
            for text, start, length in functions(lines):
                if length <= args.max_function:
                    continue
                marker = lines[start - 2] if start >= 2 else ""
                if "size: table" in marker or "size: table" in lines[start - 1]:
                    continue
                problems.append(f"{rel}:{start}: function of {length} lines (at most "
                                f"{args.max_function}): {text}")
    for p in problems:
        print(p)
    print(f"check_sizes: {checked} files, {len(problems)} over the limits")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
