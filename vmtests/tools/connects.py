#!/usr/bin/env python3
"""Connects to --host:--port --count times in a row (at most --rate per
second), each with the socket options asked for, sends a line and reads the
echo. Prints one JSON object: how many connects ended each way (ok,
ECONNREFUSED, EPERM, ...), the slowest connect in milliseconds, the local
ports of the connections that succeeded (a direct connection's port is the
one the server sees), and what setsockopt answered."""
import argparse
import errno
import json
import socket
import sys
import time

SO_MARK = 36
IP_TRANSPARENT = 19
IPV6_TRANSPARENT = 75


def set_options(s, args, family):
    """The options the test asked for; returns what setsockopt said."""
    answers = {}
    if args.mark is not None:
        try:
            s.setsockopt(socket.SOL_SOCKET, SO_MARK, args.mark)
            answers["SO_MARK"] = "ok"
        except OSError as e:
            answers["SO_MARK"] = errno.errorcode.get(e.errno, str(e.errno))
    if args.transparent:
        level, name = ((socket.SOL_IP, IP_TRANSPARENT) if family == socket.AF_INET
                       else (socket.IPPROTO_IPV6, IPV6_TRANSPARENT))
        try:
            s.setsockopt(level, name, 1)
            answers["TRANSPARENT"] = "ok"
        except OSError as e:
            answers["TRANSPARENT"] = errno.errorcode.get(e.errno, str(e.errno))
    return answers


def one(args, family, address):
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(args.timeout)
    answers = set_options(s, args, family)
    start = time.monotonic()
    try:
        s.connect(address)
        elapsed = time.monotonic() - start
        port = s.getsockname()[1]
        s.sendall(b"x" * 16)
        got = b""
        while len(got) < 16:
            chunk = s.recv(16 - len(got))
            if not chunk:
                break
            got += chunk
        return ("ok" if got == b"x" * 16 else "short"), elapsed, port, answers
    except socket.timeout:
        return "timeout", time.monotonic() - start, None, answers
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno)), time.monotonic() - start, None, answers
    finally:
        s.close()


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--host", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--count", type=int, default=1)
    p.add_argument("--rate", type=float, default=0, help="connects per second (0: no limit)")
    p.add_argument("--timeout", type=float, default=5)
    p.add_argument("--mark", type=lambda v: int(v, 0), help="SO_MARK before connect")
    p.add_argument("--transparent", action="store_true", help="IP(V6)_TRANSPARENT before connect")
    args = p.parse_args()
    info = socket.getaddrinfo(args.host, args.port, type=socket.SOCK_STREAM)[0]
    family, address = info[0], info[4]
    outcomes, ports, answers, timeline = {}, [], {}, []
    slowest = 0.0
    began = time.monotonic()
    for i in range(args.count):
        if args.rate:
            delay = began + i / args.rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        outcome, elapsed, port, said = one(args, family, address)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
        slowest = max(slowest, elapsed)
        timeline.append([round(time.monotonic() - began, 4), outcome, round(elapsed * 1000, 2)])
        if port is not None:
            ports.append(port)
        for k, v in said.items():
            answers.setdefault(k, {})
            answers[k][v] = answers[k].get(v, 0) + 1
    json.dump({"outcomes": outcomes, "slowest_ms": round(slowest * 1000, 2), "ports": ports,
               "setsockopt": answers, "timeline": timeline}, sys.stdout)
    print()


if __name__ == "__main__":
    main()
