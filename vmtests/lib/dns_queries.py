"""A script run inside a pod (python3 -c SEND_CALLS_SCRIPT SERVER) that asks
SERVER:53 one DNS question by each way of sending a datagram: connect() then
send(), sendto(), sendmsg() and sendmmsg() (through ctypes: Python has no
binding for it). It prints, per call, whether the answer came, the address
it came from and, for the connected socket, getpeername(). Each question is
a name of its own (<call>.<v4|v6>.srv.test), so none is answered from the
proxy's cache."""

SEND_CALLS_SCRIPT = r'''
import ctypes, json, os, socket, struct, sys

server = sys.argv[1]
v6 = ":" in server
fam = socket.AF_INET6 if v6 else socket.AF_INET
tag = "v6" if v6 else "v4"


def query(call):
    qid = int.from_bytes(os.urandom(2), "big")
    name = f"{call.replace('+', '-')}.{tag}.srv.test"
    labels = b"".join(bytes([len(l)]) + l.encode() for l in name.split("."))
    return qid, struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0) + labels + b"\0" + \
        struct.pack(">HH", 1, 1)


def answer(sock, qids):
    data, src = sock.recvfrom(4096)
    ok = len(data) >= 12 and struct.unpack(">H", data[:2])[0] in qids and data[2] & 0x80
    return {"answered": bool(ok), "source": [src[0], src[1]]}


def fresh():
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.settimeout(5)
    return s


results = {}
s = fresh()
s.connect((server, 53))
qid, q = query("connect+send")
s.send(q)
results["connect+send"] = answer(s, [qid])
results["connect+send"]["peer"] = list(s.getpeername()[:2])

s = fresh()
qid, q = query("sendto")
s.sendto(q, (server, 53))
results["sendto"] = answer(s, [qid])

s = fresh()
qid, q = query("sendmsg")
s.sendmsg([q], [], 0, (server, 53))
data, _, _, src = s.recvmsg(4096)
results["sendmsg"] = {"answered": struct.unpack(">H", data[:2])[0] == qid,
                      "source": [src[0], src[1]]}


class Iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


class Msghdr(ctypes.Structure):
    _fields_ = [("name", ctypes.c_void_p), ("namelen", ctypes.c_uint32),
                ("iov", ctypes.POINTER(Iovec)), ("iovlen", ctypes.c_size_t),
                ("control", ctypes.c_void_p), ("controllen", ctypes.c_size_t),
                ("flags", ctypes.c_int)]


class Mmsghdr(ctypes.Structure):
    _fields_ = [("hdr", Msghdr), ("len", ctypes.c_uint)]


if v6:
    sa = struct.pack("=H", fam) + struct.pack(">HI", 53, 0) + \
        socket.inet_pton(fam, server) + struct.pack("=I", 0)
else:
    sa = struct.pack("=H", fam) + struct.pack(">H", 53) + socket.inet_pton(fam, server) + \
        bytes(8)
s = fresh()
libc = ctypes.CDLL(None, use_errno=True)
sa_buf = ctypes.create_string_buffer(sa, len(sa))
queries = [query("sendmmsg"), query("sendmmsg")]
bufs = [ctypes.create_string_buffer(q, len(q)) for _, q in queries]
iovs = [Iovec(ctypes.cast(b, ctypes.c_void_p), len(q)) for b, (_, q) in zip(bufs, queries)]
msgs = (Mmsghdr * 2)()
for i in range(2):
    msgs[i].hdr.name = ctypes.cast(sa_buf, ctypes.c_void_p)
    msgs[i].hdr.namelen = len(sa)
    msgs[i].hdr.iov = ctypes.pointer(iovs[i])
    msgs[i].hdr.iovlen = 1
sent = libc.sendmmsg(s.fileno(), msgs, 2, 0)
assert sent == 2, os.strerror(ctypes.get_errno())
ids = [qid for qid, _ in queries]
got = [answer(s, ids) for _ in range(2)]
results["sendmmsg"] = {"answered": all(g["answered"] for g in got), "source": got[0]["source"]}
assert got[0]["source"] == got[1]["source"]
print(json.dumps(results))
'''
