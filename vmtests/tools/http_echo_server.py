#!/usr/bin/env python3
"""Test HTTP/1.1 server: GET /headers answers the request headers as JSON,
GET /bytes/N streams N deterministic bytes, POST/PUT answers the body's
length and sha256 (chunked uploads included). Keep-alive capable."""
import argparse
import hashlib
import json
import socket
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send_body(self, body, ctype="application/json"):
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path.startswith("/bytes/"):
            n = int(self.path.split("/")[2])
            self.send_response(200)
            self.send_header("Content-Length", str(n))
            self.end_headers()
            block = bytes(range(256)) * 256
            sent = 0
            while sent < n:
                chunk = block[: min(len(block), n - sent)]
                self.wfile.write(chunk)
                sent += len(chunk)
            return
        info = {"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()},
                "peer": self.client_address[0]}
        self.send_body(json.dumps(info).encode())

    def read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = bytearray()
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b""):
                        pass
                    return bytes(data)
                data += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length", "0")))

    def do_POST(self):
        body = self.read_body()
        self.send_body(json.dumps({"length": len(body), "sha256": hashlib.sha256(body).hexdigest(),
                                   "chunked": "chunked" in self.headers.get("Transfer-Encoding", "")}).encode())

    do_PUT = do_POST


class Server(ThreadingHTTPServer):
    address_family = socket.AF_INET6
    daemon_threads = True

    def server_bind(self):
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--ready", required=True)
    args = p.parse_args()
    server = Server(("::", args.port), Handler)
    open(args.ready, "w").close()
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
