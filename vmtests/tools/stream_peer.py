#!/usr/bin/env python3
"""Ends of a connection that close or reset on purpose, for the fast-path
scenarios. `serve` runs in the server namespace; `connect` in the pod.

serve --port P --ready F
  The first byte a client sends picks the behaviour:
    c  send --size bytes (a deterministic pattern), then close first
    r  reset the connection (SO_LINGER 0) without answering
    s  echo slowly: read 16 KiB every 10 ms and send it back
connect --host H --port P --mode close|reset|client-reset|slow [--size N]
  Prints one JSON object with what the client saw.
"""
import argparse
import hashlib
import json
import socket
import struct
import sys
import threading
import time


def pattern(size):
    block = bytes(range(256)) * 256
    return (block * (size // len(block) + 1))[:size]


def reset(sock):
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def serve_one(conn):
    try:
        kind = conn.recv(1)
        if kind == b"c":
            size = int(conn.recv(16).decode().strip())
            conn.sendall(pattern(size))
            conn.close()
        elif kind == b"r":
            reset(conn)
        elif kind == b"s":
            while True:
                data = conn.recv(16384)
                if not data:
                    break
                conn.sendall(data)
                time.sleep(0.01)
            conn.close()
        else:
            conn.close()
    except OSError:
        conn.close()


def serve(args):
    sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    sock.bind(("::", args.port))
    sock.listen(128)
    open(args.ready, "w").close()
    while True:
        conn, _ = sock.accept()
        threading.Thread(target=serve_one, args=(conn,), daemon=True).start()


def read_all(sock):
    data = bytearray()
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return bytes(data)
        data += chunk


def connect(args):
    out = {"mode": args.mode}
    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(args.timeout)
    start = time.monotonic()
    try:
        s.connect((args.host, args.port))
        out["sockname"] = list(s.getsockname()[:2])
        if args.mode == "close":
            # The server sends and closes first; every byte must arrive.
            s.sendall(b"c" + f"{args.size:<15}".encode())
            data = read_all(s)
            out["received"] = len(data)
            out["intact"] = hashlib.sha256(data).digest() == \
                hashlib.sha256(pattern(args.size)).digest()
            # The server is gone: writing must end in an error, not hang.
            try:
                for _ in range(50):
                    s.sendall(b"x" * 1024)
                    time.sleep(0.02)
                out["write_after_close"] = "accepted"
            except OSError as e:
                out["write_after_close"] = type(e).__name__
        elif args.mode == "reset":
            s.sendall(b"r")
            try:
                out["received"] = len(read_all(s))
                out["end"] = "eof"
            except OSError as e:
                out["end"] = type(e).__name__
        elif args.mode == "client-reset":
            s.sendall(b"s" + b"y" * 100000)
            time.sleep(0.1)
            reset(s)
            out["end"] = "reset-sent"
        elif args.mode == "slow":
            # Large partial writes against a slow reader, read back whole.
            payload = pattern(args.size)
            got = bytearray()
            t = threading.Thread(target=lambda: got.extend(read_all(s)))
            t.start()
            s.sendall(b"s" + payload)
            s.shutdown(socket.SHUT_WR)
            t.join()
            # The server echoes everything after the mode byte.
            out["received"] = len(got)
            out["intact"] = hashlib.sha256(bytes(got)).digest() == \
                hashlib.sha256(payload).digest()
        out["ok"] = True
    except OSError as e:
        out["ok"] = False
        out["error"] = type(e).__name__
    finally:
        out["elapsed"] = round(time.monotonic() - start, 3)
        if args.mode != "client-reset":
            s.close()
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    sv = sub.add_parser("serve")
    sv.add_argument("--port", type=int, required=True)
    sv.add_argument("--ready", required=True)
    cn = sub.add_parser("connect")
    cn.add_argument("--host", required=True)
    cn.add_argument("--port", type=int, required=True)
    cn.add_argument("--mode", choices=["close", "reset", "client-reset", "slow"], required=True)
    cn.add_argument("--size", type=int, default=262144)
    cn.add_argument("--timeout", type=float, default=10)
    args = p.parse_args()
    if args.command == "serve":
        serve(args)
        return 0
    print(json.dumps(connect(args)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
