#!/usr/bin/env python3
"""Test server: TCP echo (closes after the client's EOF, so half-close is
observable) and UDP echo on the same port; appends one JSON line per TCP
connection to --report with the peer and local addresses it saw."""
import argparse
import json
import socket
import threading


def plain(addr):
    """('::ffff:10.0.0.1', port, ...) -> ['10.0.0.1', port]"""
    host = addr[0][7:] if addr[0].startswith("::ffff:") else addr[0]
    return [host, addr[1]]


def serve_tcp(conn, report, lock):
    peer = plain(conn.getpeername())
    local = plain(conn.getsockname())
    total = 0
    try:
        while True:
            data = conn.recv(65536)
            if not data:
                break
            conn.sendall(data)
            total += len(data)
        conn.shutdown(socket.SHUT_WR)
    except OSError:
        pass
    finally:
        conn.close()
    with lock, open(report, "a") as f:
        f.write(json.dumps({"peer": peer, "local": local, "bytes": total}) + "\n")


def tcp_loop(sock, report, lock):
    while True:
        conn, _ = sock.accept()
        threading.Thread(target=serve_tcp, args=(conn, report, lock), daemon=True).start()


def udp_loop(sock):
    while True:
        data, addr = sock.recvfrom(65536)
        sock.sendto(data, addr)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--report", required=True)
    p.add_argument("--ready", required=True, help="file created once listening")
    p.add_argument("--bind", action="append",
                   help="address to listen on (repeatable; default: every address, both "
                        "families)")
    args = p.parse_args()
    lock = threading.Lock()
    for address in args.bind or ["::"]:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        tcp = socket.socket(family, socket.SOCK_STREAM)
        tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            tcp.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0 if address == "::" else 1)
        tcp.bind((address, args.port))
        tcp.listen(1024)
        threading.Thread(target=tcp_loop, args=(tcp, args.report, lock), daemon=True).start()
    udp = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    udp.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    udp.bind(("::", args.port))
    threading.Thread(target=udp_loop, args=(udp,), daemon=True).start()
    open(args.ready, "w").close()
    threading.Event().wait()


if __name__ == "__main__":
    main()
