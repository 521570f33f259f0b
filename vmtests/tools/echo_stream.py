#!/usr/bin/env python3
"""One long connection to an echo server: sends a deterministic byte
pattern for --seconds (at most --rate bytes per second) and checks that
every byte comes back, in order. With --hold it sends one line, then keeps
the connection open and idle until the peer ends it. Prints one JSON
object: bytes sent and received, whether they matched, how it ended."""
import argparse
import json
import socket
import threading
import time


def pattern(offset, size):
    return bytes((offset + i) % 251 for i in range(size))


def stream(s, args):
    sent = [0]
    done = threading.Event()

    def writer():
        end = time.monotonic() + args.seconds
        chunk = 4096
        while time.monotonic() < end:
            s.sendall(pattern(sent[0], chunk))
            sent[0] += chunk
            time.sleep(chunk / args.rate)
        s.shutdown(socket.SHUT_WR)
        done.set()

    t = threading.Thread(target=writer, daemon=True)
    t.start()
    received, matched = 0, True
    while True:
        data = s.recv(65536)
        if not data:
            break
        if data != pattern(received, len(data)):
            matched = False
        received += len(data)
    t.join()
    return {"sent": sent[0], "received": received, "matched": matched and received == sent[0],
            "ended": "eof"}


def hold(s):
    s.sendall(b"hold\n")
    got = b""
    try:
        while True:
            data = s.recv(65536)
            if not data:
                return {"received": len(got), "ended": "eof"}
            got += data
    except ConnectionResetError:
        return {"received": len(got), "ended": "reset"}


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--host", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--seconds", type=float, default=3)
    ap.add_argument("--rate", type=int, default=2_000_000)
    ap.add_argument("--hold", action="store_true")
    ap.add_argument("--ready", help="file created once connected")
    args = ap.parse_args()
    with socket.create_connection((args.host, args.port), timeout=60) as s:
        s.settimeout(None)
        if args.ready:
            open(args.ready, "w").close()
        result = hold(s) if args.hold else stream(s, args)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
