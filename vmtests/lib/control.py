"""The agent's control protocol from a test: one JSON request line, one
JSON answer line (what `shunt-agent enroll` and shunt-cni send)."""
import json
import socket


def control_request(socket_path, request, timeout=10.0):
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(timeout)
        s.connect(socket_path)
        s.sendall((json.dumps(request) + "\n").encode())
        data = b""
        while not data.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    return json.loads(data)
