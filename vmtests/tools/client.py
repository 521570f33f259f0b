#!/usr/bin/env python3
"""Test client, run inside the "pod": prints one JSON object describing
what the application saw (getpeername, local address, timings, errors)."""
import argparse
import hashlib
import json
import os
import socket
import struct
import sys
import threading
import time


def family_of(host):
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def tcp_segments(sock):
    """Data segments this socket sent and received through TCP/IP
    (struct tcp_info: tcpi_data_segs_in at 152, tcpi_data_segs_out at 156).
    Bytes carried by the sk_msg fast path are not counted here."""
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 232)
    seg_in, seg_out = struct.unpack_from("II", info, 152)
    return {"data_segs_in": seg_in, "data_segs_out": seg_out}


IPPROTO_MPTCP = 262


def echo_once(host, port, size, timeout, hold=0.0, hold_file=None, tcp_info=False, mptcp=False):
    """Connects, sends `size` random bytes, half-closes, reads the echo."""
    out = {"host": host, "port": port}
    s = socket.socket(family_of(host), socket.SOCK_STREAM, IPPROTO_MPTCP if mptcp else 0)
    s.settimeout(timeout)
    start = time.monotonic()
    try:
        s.connect((host, port))
        out["peername"] = list(s.getpeername()[:2])
        out["sockname"] = list(s.getsockname()[:2])
        if hold_file:
            # Established; wait until the test says to go on.
            with open(hold_file + ".established", "w"):
                pass
            while not os.path.exists(hold_file):
                time.sleep(0.02)
        if hold:
            time.sleep(hold)
        payload = os.urandom(size)
        received = bytearray()
        send_error = []

        def send():
            try:
                s.sendall(payload)
                s.shutdown(socket.SHUT_WR)
            except OSError as e:  # a reset may surface here instead of in recv
                send_error.append(e)

        sender = threading.Thread(target=send)
        sender.start()
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                received += chunk
        finally:
            sender.join()
        if send_error:
            raise send_error[0]
        out["sent"] = len(payload)
        out["received"] = len(received)
        out["intact"] = hashlib.sha256(payload).digest() == hashlib.sha256(received).digest()
        out["ok"] = out["intact"]
        if tcp_info:
            out["tcp"] = tcp_segments(s)
    except OSError as e:
        out["ok"] = False
        out["error"] = type(e).__name__
        out["errno"] = e.errno
    finally:
        out["elapsed"] = time.monotonic() - start
        s.close()
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--host", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--size", type=int, default=1024)
    p.add_argument("--timeout", type=float, default=10)
    p.add_argument("--concurrency", type=int, default=1)
    p.add_argument("--hold", type=float, default=0.0, help="seconds idle before sending")
    p.add_argument("--hold-file", help="wait for this file to exist before sending")
    p.add_argument("--udp", action="store_true")
    p.add_argument("--tcp-info", action="store_true", help="report TCP/IP data segments")
    p.add_argument("--repeat", type=int, default=1, help="connections one after another")
    p.add_argument("--mptcp", action="store_true", help="an MPTCP socket (IPPROTO_MPTCP)")
    args = p.parse_args()
    if args.udp:
        s = socket.socket(family_of(args.host), socket.SOCK_DGRAM)
        s.settimeout(args.timeout)
        s.sendto(b"ping", (args.host, args.port))
        data, addr = s.recvfrom(100)
        print(json.dumps({"ok": data == b"ping", "from": list(addr[:2])}))
        return 0
    if args.repeat > 1:
        failed = []
        for _ in range(args.repeat):
            r = echo_once(args.host, args.port, args.size, args.timeout)
            if not r["ok"]:
                failed.append(r)
        print(json.dumps({"ok": not failed, "completed": args.repeat - len(failed),
                          "failed": failed[:5]}))
        return 0
    if args.concurrency == 1:
        print(json.dumps(echo_once(args.host, args.port, args.size, args.timeout, args.hold,
                                   args.hold_file, args.tcp_info, args.mptcp)))
        return 0
    results = [None] * args.concurrency
    barrier = threading.Barrier(args.concurrency)

    def run(i):
        barrier.wait()
        results[i] = echo_once(args.host, args.port, args.size, args.timeout)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(args.concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ok = sum(1 for r in results if r and r["ok"])
    print(json.dumps({"ok": ok == args.concurrency, "completed": ok,
                      "failed": [r for r in results if not r or not r["ok"]][:5]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
