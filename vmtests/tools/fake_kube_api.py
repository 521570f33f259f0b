#!/usr/bin/env python3
"""A stand-in for the Kubernetes API server, for the annotation path: HTTPS
on 127.0.0.1 with a certificate the test made, answering
GET /api/v1/namespaces/NS/pods/NAME the way the API server does (a Pod
object; 401 without the right bearer token; 404 Status for an unknown pod),
and POST /api/v1/namespaces/NS/events (201 with the Event, which the report
holds under "body").
The pods' annotations are read from --pods (a JSON file {"NS/NAME":
{annotations}}) on every request, so a test can change them. Each request
is appended to --report as a JSON line."""
import argparse
import json
import re
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--token", required=True)
    ap.add_argument("--pods", required=True)
    ap.add_argument("--report", required=True)
    ap.add_argument("--ready", required=True, help="file to write the port to once listening")
    args = ap.parse_args()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def reply(self, code, body):
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):  # noqa: N802
            auth = self.headers.get("Authorization", "")
            with lock, open(args.report, "a") as f:
                f.write(json.dumps({"path": self.path, "authorization": auth}) + "\n")
            if auth != f"Bearer {args.token}":
                return self.reply(401, {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                        "reason": "Unauthorized", "code": 401})
            m = re.fullmatch(r"/api/v1/namespaces/([^/]+)/pods/([^/?]+)", self.path)
            with open(args.pods) as f:
                pods = json.load(f)
            key = f"{m.group(1)}/{m.group(2)}" if m else None
            if key not in pods:
                return self.reply(404, {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                        "reason": "NotFound", "code": 404,
                                        "message": f"pods \"{m.group(2) if m else ''}\" not found"})
            ns, name = key.split("/")
            self.reply(200, {"kind": "Pod", "apiVersion": "v1",
                             "metadata": {"name": name, "namespace": ns,
                                          "annotations": pods[key]},
                             "spec": {"containers": [{"name": "app", "image": "busybox"}]},
                             "status": {"phase": "Pending"}})

        def do_POST(self):  # noqa: N802
            auth = self.headers.get("Authorization", "")
            length = int(self.headers.get("Content-Length", "0"))
            raw = self.rfile.read(length)
            try:
                body = json.loads(raw)
            except ValueError:
                body = None
            with lock, open(args.report, "a") as f:
                f.write(json.dumps({"path": self.path, "authorization": auth, "method": "POST",
                                    "content_type": self.headers.get("Content-Type", ""),
                                    "body": body}) + "\n")
            if auth != f"Bearer {args.token}":
                return self.reply(401, {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                        "reason": "Unauthorized", "code": 401})
            if not re.fullmatch(r"/api/v1/namespaces/[^/]+/events", self.path) or \
                    not isinstance(body, dict) or body.get("kind") != "Event":
                return self.reply(400, {"kind": "Status", "apiVersion": "v1",
                                        "status": "Failure", "reason": "BadRequest", "code": 400})
            self.reply(201, body)

        def log_message(self, *a):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(args.cert, args.key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    with open(args.ready + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    import os
    os.rename(args.ready + ".tmp", args.ready)
    server.serve_forever()


if __name__ == "__main__":
    main()
