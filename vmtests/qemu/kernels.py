"""Debian kernels for the QEMU runner, downloaded into a cache without
being installed on the host: a private apt configuration (sources, lists,
an empty dpkg status so the host's own kernel is not taken into account),
the host's configured archive URIs, `apt-get download` and `dpkg-deb -x`.
Kernels are named by their line and resolved through the suite's
metapackage, because the versioned package names change with every
security update."""
import glob
import json
import lzma
import os
import struct
import re
import shutil
import subprocess

# line -> (suites searched, metapackage)
KERNELS = {
    "5.10": (["bullseye", "bullseye-security"], "linux-image-amd64"),
    "6.1": (["bookworm", "bookworm-security"], "linux-image-amd64"),
    "6.12": (["bookworm-security"], "linux-image-6.12-amd64"),
    "7.3": (["trixie-backports"], "linux-image-amd64"),
}
ORDER = ["5.10", "6.1", "6.12", "7.3"]


def host_archives():
    """The archive and security URIs this machine is configured with."""
    main, security = "http://deb.debian.org/debian", "http://deb.debian.org/debian-security"
    files = glob.glob("/etc/apt/sources.list.d/*.sources") + ["/etc/apt/sources.list"]
    for path in files:
        try:
            with open(path) as f:
                text = f.read()
        except OSError:
            continue
        for uri in re.findall(r"^\s*(?:URIs:|deb)\s+(\S+)", text, re.M):
            if uri.startswith("http") and "debian" in uri:
                if "security" in uri:
                    security = uri.rstrip("/")
                elif "debian" in uri.rsplit("/", 1)[-1]:
                    main = uri.rstrip("/")
    return main, security


class KernelCache:
    def __init__(self, root, log=print):
        self.root = root
        self.log = log

    def apt_dir(self, line):
        return os.path.join(self.root, "apt", line)

    def apt(self, line, *args, tool="apt-get"):
        d = self.apt_dir(line)
        opts = [
            "-o", f"Dir::Etc::SourceList={d}/sources.list",
            "-o", "Dir::Etc::SourceParts=/dev/null",
            "-o", f"Dir::State={d}/state",
            "-o", f"Dir::State::status={d}/status",
            "-o", f"Dir::Cache={d}/cache",
            "-o", "APT::Architecture=amd64",
            "-o", "Acquire::Languages=none",
            # Older suites are signed with keys the host trusts through its
            # keyring package; the archive's own signature is still checked.
            "-o", "Dir::Etc::Trusted=/usr/share/keyrings/debian-archive-keyring.gpg",
            "-o", "Dir::Etc::TrustedParts=/usr/share/keyrings",
            "-o", "Debug::NoLocking=1",
        ]
        return subprocess.run([tool, *opts, *args], capture_output=True, text=True,
                              cwd=os.path.join(d, "debs"))

    def prepare_apt(self, line):
        suites, _ = KERNELS[line]
        main, security = host_archives()
        d = self.apt_dir(line)
        for sub in ("state/lists/partial", "cache/archives/partial", "debs"):
            os.makedirs(os.path.join(d, sub), exist_ok=True)
        with open(os.path.join(d, "status"), "w"):
            pass
        with open(os.path.join(d, "sources.list"), "w") as f:
            for suite in suites:
                uri = security if suite.endswith("-security") else main
                f.write(f"deb {uri} {suite} main\n")
        r = self.apt(line, "update")
        if r.returncode != 0:
            raise RuntimeError(f"apt-get update for kernel {line}: {r.stderr.strip()[-500:]}")

    def resolve(self, line):
        """The versioned linux-image package the metapackage depends on."""
        _, meta = KERNELS[line]
        r = self.apt(line, "depends", meta, tool="apt-cache")
        for name in re.findall(r"Depends:\s+(linux-image-[0-9]\S*)", r.stdout):
            if not name.endswith(("-dbg", "-unsigned")):
                return name
        raise RuntimeError(f"cannot resolve {meta} for kernel {line}: {r.stderr.strip()[-300:]}")

    def fetch(self, line):
        """Downloads and unpacks kernel `line` (once); returns its Kernel."""
        info = os.path.join(self.root, "kernels", line, "kernel.json")
        if not os.path.exists(info):
            self.download(line)
        with open(info) as f:
            return Kernel(line=line, **json.load(f))

    def download(self, line):
        self.log(f"kernel {line}: resolving and downloading")
        self.prepare_apt(line)
        package = self.resolve(line)
        # Newer kernels split the image package: the kernel and its modules
        # are in linux-binary-* and linux-modules-* packages it depends on.
        deps = self.apt(line, "depends", package, tool="apt-cache").stdout
        packages = [package] + re.findall(
            r"Depends:\s+(linux-(?:binary|modules|base)-[0-9]\S*)", deps)
        debs = os.path.join(self.apt_dir(line), "debs")
        for old in glob.glob(os.path.join(debs, "*.deb")):
            os.unlink(old)
        r = self.apt(line, "download", *packages)
        if r.returncode != 0:
            raise RuntimeError(f"apt-get download {' '.join(packages)}: {r.stderr.strip()[-500:]}")
        root = os.path.join(self.root, "kernels", line, "root")
        shutil.rmtree(root, ignore_errors=True)
        os.makedirs(root)
        for deb in glob.glob(os.path.join(debs, "*.deb")):
            subprocess.run(["dpkg-deb", "-x", deb, root], check=True)
            os.unlink(deb)
        modules = [d for d in glob.glob(os.path.join(root, "lib", "modules", "*")) +
                   glob.glob(os.path.join(root, "usr", "lib", "modules", "*")) if os.path.isdir(d)]
        if len(modules) != 1:
            raise RuntimeError(f"kernel {line}: expected one modules directory, found {modules}")
        version = os.path.basename(modules[0])
        image = [p for p in (os.path.join(root, "boot", f"vmlinuz-{version}"),
                             os.path.join(modules[0], "vmlinuz")) if os.path.exists(p)]
        if not image:
            raise RuntimeError(f"kernel {line}: no vmlinuz in {packages}")
        with open(os.path.join(self.root, "kernels", line, "kernel.json"), "w") as f:
            json.dump({"package": package, "version": version, "root": root,
                       "image": image[0], "modules": modules[0]}, f)
        self.log(f"kernel {line}: {package} ({version})")


class Kernel:
    def __init__(self, line, package, version, root, image, modules):
        self.line = line
        self.package = package
        self.version = version
        self.root = root
        self.image = image
        self.modules = modules

    def boot_image(self):
        """The uncompressed ELF vmlinux (unpacked once, beside the kernel's
        root): under software emulation QEMU boots it through its PVH entry
        in about half the time the bzImage takes to decompress itself. Falls
        back to the bzImage when its payload cannot be unpacked."""
        target = os.path.join(os.path.dirname(self.root), "vmlinux")
        if not os.path.exists(target):
            with open(self.image, "rb") as f:
                elf = unpack_bzimage(f.read())
            if elf is None:
                return self.image
            with open(target + ".tmp", "wb") as f:
                f.write(elf)
            os.rename(target + ".tmp", target)
        return target


def bzimage_payload(data):
    """(compression, payload) of an x86 bzImage, from its boot header:
    the protected-mode code starts after (setup_sects + 1) sectors and the
    compressed kernel lies at payload_offset within it."""
    if len(data) < 0x250 or data[0x202:0x206] != b"HdrS":
        return None, b""
    setup_sects = data[0x1F1] or 4
    offset, length = struct.unpack_from("<II", data, 0x248)
    start = (setup_sects + 1) * 512 + offset
    payload = data[start:start + length]
    if payload.startswith(b"\xfd7zXZ\x00"):
        return "xz", payload
    if payload.startswith(b"\x28\xb5\x2f\xfd"):
        return "zstd", payload
    return None, payload


def unpack_bzimage(data):
    """The ELF vmlinux inside a bzImage, or None (unknown compression)."""
    kind, payload = bzimage_payload(data)
    # The build appends the uncompressed size (4 bytes) to the payload.
    if kind == "xz":
        elf = lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(payload)
    elif kind == "zstd" and shutil.which("zstd"):
        r = subprocess.run(["zstd", "-dc"], input=payload[:-4], capture_output=True)
        elf = r.stdout if r.returncode == 0 else b""
    else:
        return None
    return elf if elf.startswith(b"\x7fELF") else None
