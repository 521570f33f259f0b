#!/usr/bin/env python3
"""Adversarial test client, run inside a pod: makes --count TCP connects
one after another (optionally with SO_MARK set first) and keeps the ones
that connected open. Writes one JSON object: how many connected and the
errors by name. With --ready, writes that JSON to the file once every
connect was tried and holds the sockets until --release exists (or --hold
seconds pass); without it, closes them at once and prints the JSON."""
import argparse
import errno
import json
import os
import socket
import sys
import time


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--host", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--count", type=int, default=1)
    p.add_argument("--timeout", type=float, default=3)
    p.add_argument("--mark", type=lambda s: int(s, 0), help="SO_MARK to set before connect")
    p.add_argument("--ready", help="write the result here, then hold the sockets")
    p.add_argument("--release", help="hold until this file exists")
    p.add_argument("--hold", type=float, default=30.0, help="longest hold, seconds")
    args = p.parse_args()
    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    held, errors, mark_error = [], {}, None
    for _ in range(args.count):
        s = socket.socket(family, socket.SOCK_STREAM)
        s.settimeout(args.timeout)
        try:
            if args.mark is not None:
                try:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_MARK, args.mark)
                except OSError as e:
                    mark_error = errno.errorcode.get(e.errno, str(e.errno))
            s.connect((args.host, args.port))
            held.append(s)
        except OSError as e:
            name = errno.errorcode.get(e.errno, type(e).__name__) if e.errno else type(e).__name__
            errors[name] = errors.get(name, 0) + 1
            s.close()
    result = {"connected": len(held), "errors": errors, "mark_error": mark_error}
    if held:
        result["peername"] = list(held[0].getpeername()[:2])
    text = json.dumps(result)
    if args.ready:
        with open(args.ready + ".tmp", "w") as f:
            f.write(text)
        os.rename(args.ready + ".tmp", args.ready)
        deadline = time.monotonic() + args.hold
        while time.monotonic() < deadline and not (args.release and os.path.exists(args.release)):
            time.sleep(0.05)
    for s in held:
        s.close()
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
