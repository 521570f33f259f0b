#!/usr/bin/env python3
"""A small authoritative DNS server for the tests, over UDP and TCP on
--address:--port (standard library only). Its zone (.test):

  srv.test        A --a (and AAAA --aaaa when given), TTL 60
  big.test        40 A records: over 512 bytes, so a UDP answer without
                  EDNS is truncated (TC) and the client retries over TCP
  edns.test       a TXT answer of about 4 KiB (only with EDNS and a buffer
                  that large over UDP; TC otherwise)
  odd.test        a record of type 65400, opaque data
  anything else   NXDOMAIN
  a query it cannot read: FORMERR (ID kept when there is one)

Every query received is appended to --log as one JSON line (transport,
name, type), so a test can tell what reached the server."""
import argparse
import json
import socket
import struct
import threading


def read_name(msg, pos):
    labels = []
    while True:
        n = msg[pos]
        if n == 0:
            return ".".join(labels).lower(), pos + 1
        if n & 0xC0:
            raise ValueError("compressed question")
        labels.append(msg[pos + 1:pos + 1 + n].decode("ascii", "replace"))
        pos += 1 + n


def encode_name(name):
    return b"".join(bytes([len(l)]) + l.encode() for l in name.split(".")) + b"\0"


def rr(name, rtype, ttl, rdata):
    return encode_name(name) + struct.pack(">HHIH", rtype, 1, ttl, len(rdata)) + rdata


class Zone:
    def __init__(self, a, aaaa):
        self.a = socket.inet_aton(a)
        self.aaaa = socket.inet_pton(socket.AF_INET6, aaaa) if aaaa else None

    def records(self, name, qtype):
        """(rcode, answer records)"""
        if name == "srv.test":
            if qtype == 1:
                return 0, [rr(name, 1, 60, self.a)]
            if qtype == 28 and self.aaaa:
                return 0, [rr(name, 28, 60, self.aaaa)]
            return 0, []
        if name == "big.test":
            return 0, [rr(name, 1, 60, bytes([10, 99, 0, i])) for i in range(40)]
        if name == "edns.test":
            text = b"".join(bytes([250]) + bytes([65 + i % 26]) * 250 for i in range(16))
            return 0, [rr(name, 16, 60, text)]
        if name == "odd.test":
            return 0, [rr(name, 65400, 60, b"\x01\x02opaque")]
        return 3, []


def answer(zone, query, tcp, log):
    if len(query) < 12:
        return struct.pack(">HHHHHH", 0, 0x8001, 0, 0, 0, 0)
    qid, flags, qdcount = struct.unpack(">HHH", query[:6])
    try:
        name, pos = read_name(query, 12)
        qtype, qclass = struct.unpack(">HH", query[pos:pos + 4])
        question = query[12:pos + 4]
        edns_size = 512
        arcount = struct.unpack(">H", query[10:12])[0]
        if arcount and len(query) >= pos + 4 + 11 and query[pos + 4] == 0:
            edns_size = max(512, struct.unpack(">H", query[pos + 7:pos + 9])[0])
    except (ValueError, IndexError, struct.error):
        return struct.pack(">HHHHHH", qid, 0x8001, 0, 0, 0, 0)
    with open(log, "a") as f:
        f.write(json.dumps({"transport": "tcp" if tcp else "udp", "name": name,
                            "type": qtype}) + "\n")
    rcode, records = zone.records(name, qtype)
    body = b"".join(records)
    opt = b"\0" + struct.pack(">HHIH", 41, 4096, 0, 0) if edns_size > 512 else b""
    reply_flags = 0x8400 | (flags & 0x0100) | rcode
    msg = struct.pack(">HHHHHH", qid, reply_flags, 1, len(records), 0,
                      1 if opt else 0) + question + body + opt
    if not tcp and len(msg) > edns_size:
        msg = struct.pack(">HHHHHH", qid, reply_flags | 0x0200, 1, 0, 0, 0) + question
    return msg


def serve_udp(sock, zone, log):
    while True:
        data, peer = sock.recvfrom(65535)
        sock.sendto(answer(zone, data, False, log), peer)


def serve_tcp_client(conn, zone, log):
    with conn:
        while True:
            head = conn.recv(2, socket.MSG_WAITALL)
            if len(head) < 2:
                return
            query = conn.recv(struct.unpack(">H", head)[0], socket.MSG_WAITALL)
            reply = answer(zone, query, True, log)
            conn.sendall(struct.pack(">H", len(reply)) + reply)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--address", action="append", required=True)
    ap.add_argument("--port", type=int, default=53)
    ap.add_argument("--a", required=True)
    ap.add_argument("--aaaa")
    ap.add_argument("--log", required=True)
    ap.add_argument("--ready", help="file created once serving")
    args = ap.parse_args()
    zone = Zone(args.a, args.aaaa)
    threads = []
    for address in args.address:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        udp = socket.socket(family, socket.SOCK_DGRAM)
        udp.bind((address, args.port))
        tcp = socket.socket(family, socket.SOCK_STREAM)
        tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        tcp.bind((address, args.port))
        tcp.listen(64)
        threads.append(threading.Thread(target=serve_udp, args=(udp, zone, args.log),
                                        daemon=True))

        def accept(listener=tcp):
            while True:
                conn, _ = listener.accept()
                threading.Thread(target=serve_tcp_client, args=(conn, zone, args.log),
                                 daemon=True).start()
        threads.append(threading.Thread(target=accept, daemon=True))
    for t in threads:
        t.start()
    if args.ready:
        open(args.ready, "w").close()
    for t in threads:
        t.join()


if __name__ == "__main__":
    main()
