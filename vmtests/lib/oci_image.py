"""Container images as OCI image-layout tarballs, made from a directory
without any registry or builder: one layer, a config with the entrypoint,
and the reference name containerd's `ctr images import` gives the image."""
import hashlib
import io
import json
import os
import tarfile


def _blob(tar, data, media_type):
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    info = tarfile.TarInfo("blobs/sha256/" + digest.split(":")[1])
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))
    return {"mediaType": media_type, "digest": digest, "size": len(data)}


def _layer(rootfs):
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as layer:
        for entry in sorted(os.listdir(rootfs)):
            layer.add(os.path.join(rootfs, entry), arcname=entry)
    return out.getvalue()


def write_image(rootfs, name, path, entrypoint, cmd=(), env=(), labels=None):
    """Writes the image of `rootfs` named `name` (e.g. localhost/x:1) to the
    tarball `path`."""
    layer = _layer(rootfs)
    config = {"architecture": "amd64", "os": "linux",
              "config": {"Entrypoint": list(entrypoint), "Cmd": list(cmd),
                         "Env": ["PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", *env],
                         "Labels": labels or {}},
              "rootfs": {"type": "layers",
                         "diff_ids": ["sha256:" + hashlib.sha256(layer).hexdigest()]}}
    with tarfile.open(path, "w") as tar:
        layer_desc = _blob(tar, layer, "application/vnd.oci.image.layer.v1.tar")
        config_desc = _blob(tar, json.dumps(config).encode(),
                            "application/vnd.oci.image.config.v1+json")
        manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "config": config_desc, "layers": [layer_desc]}
        manifest_desc = _blob(tar, json.dumps(manifest).encode(), manifest["mediaType"])
        manifest_desc["annotations"] = {"io.containerd.image.name": name,
                                        "org.opencontainers.image.ref.name": name.rsplit(":", 1)[1]}
        for member, data in (("oci-layout", {"imageLayoutVersion": "1.0.0"}),
                             ("index.json", {"schemaVersion": 2, "manifests": [manifest_desc]})):
            raw = json.dumps(data).encode()
            info = tarfile.TarInfo(member)
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
