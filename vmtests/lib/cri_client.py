"""A client of the Kubernetes Container Runtime Interface (runtime.v1) over
containerd's socket, the calls the kubelet makes for a pod: gRPC from
Debian's python3-grpcio, the messages from cri/runtime_v1_subset.proto
(compiled with protoc into a temporary directory when first used)."""
import functools
import importlib
import os
import subprocess
import sys
import tempfile

PROTO_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cri")
PROTO = "runtime_v1_subset.proto"


@functools.lru_cache(maxsize=None)
def messages():
    """The compiled messages (module runtime_v1_subset_pb2)."""
    out = tempfile.mkdtemp(prefix="shunt-cri-proto-")
    subprocess.run(["protoc", f"-I{PROTO_DIR}", f"--python_out={out}",
                    os.path.join(PROTO_DIR, PROTO)], check=True, capture_output=True, text=True)
    sys.path.insert(0, out)
    try:
        return importlib.import_module("runtime_v1_subset_pb2")
    finally:
        sys.path.remove(out)
        for name in os.listdir(out):
            os.unlink(os.path.join(out, name))
        os.rmdir(out)


class CriError(RuntimeError):
    pass


class CriClient:
    """One channel to a CRI socket; each method is the RPC of the same name,
    taking the request's fields as keyword arguments (nested messages as
    dicts) and returning the response message."""

    SERVICE = "/runtime.v1.RuntimeService/"

    def __init__(self, socket_path, timeout=60):
        import grpc
        self._grpc = grpc
        self.pb = messages()
        self.timeout = timeout
        self.channel = grpc.insecure_channel(f"unix://{socket_path}")

    def close(self):
        self.channel.close()

    def call(self, method, **fields):
        request_type = getattr(self.pb, f"{method}Request")
        response_type = getattr(self.pb, f"{method}Response")
        request = request_type()
        _fill(request, fields)
        rpc = self.channel.unary_unary(self.SERVICE + method,
                                       request_serializer=request_type.SerializeToString,
                                       response_deserializer=response_type.FromString)
        try:
            return rpc(request, timeout=self.timeout)
        except self._grpc.RpcError as e:
            raise CriError(f"{method}: {e.code().name}: {e.details()}") from None

    def __getattr__(self, method):
        if method[:1].isupper():
            return functools.partial(self.call, method)
        raise AttributeError(method)


def _fill(message, fields):
    """Sets a message from a dict: scalars, repeated scalars, maps, nested
    messages (dicts) and repeated messages (lists of dicts)."""
    for name, value in fields.items():
        field = message.DESCRIPTOR.fields_by_name[name]
        target = getattr(message, name)
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            target.update(value)
        elif field.label == field.LABEL_REPEATED:
            for item in value:
                if field.message_type is not None:
                    _fill(target.add(), item)
                else:
                    target.append(item)
        elif field.message_type is not None:
            _fill(target, value)
        else:
            setattr(message, name, value)
