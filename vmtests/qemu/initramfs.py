"""A small initramfs for the QEMU runner: the host's static busybox, the
guest kernel's modules needed to mount the host's root over 9p with a tmpfs
overlay on top, and an init that switches into that root and runs the
guest script. Everything else (binaries, tests, tools) is the host's own,
seen read-only through 9p."""
import gzip
import os
import shutil
import subprocess
import tempfile

# Loaded by the init before switch_root (with their dependencies).
BOOT_MODULES = ["virtio_pci", "9p", "9pnet_virtio", "overlay"]

INIT = r"""#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in $(cat /modules.load); do insmod "$m" || echo "shunt-vm: insmod $m failed"; done
mkdir -p /lower /upper /merged
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000,cache=loose hostroot /lower \
  || { echo "shunt-vm: cannot mount the host root"; poweroff -f; }
mount -t tmpfs -o size=1g tmpfs /upper
mkdir -p /upper/upper /upper/work
mount -t overlay overlay -o lowerdir=/lower,upperdir=/upper/upper,workdir=/upper/work /merged \
  || { echo "shunt-vm: cannot mount the overlay"; poweroff -f; }
mkdir -p /merged/run/shunt-vm/results /merged/run/shunt-vm/kernel
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 results /merged/run/shunt-vm/results
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000 kernel /merged/run/shunt-vm/kernel
mount --move /proc /merged/proc
mount --move /sys /merged/sys
mount --move /dev /merged/dev
exec switch_root /merged /bin/bash /run/shunt-vm/results/guest.sh
"""


def depmod(kernel):
    """modules.dep for the unpacked kernel (depmod -b wants ROOT/lib/modules)."""
    lib = os.path.join(kernel.root, "lib")
    if not os.path.exists(os.path.join(lib, "modules")) and \
            os.path.isdir(os.path.join(kernel.root, "usr", "lib", "modules")):
        os.symlink("usr/lib", lib)
    if not os.path.exists(os.path.join(kernel.modules, "modules.dep")):
        subprocess.run(["depmod", "-b", kernel.root, kernel.version], check=True)


def module_files(kernel, names):
    """The .ko files of `names` and their dependencies, in load order."""
    files = []
    for name in names:
        r = subprocess.run(["modprobe", "-d", kernel.root, "-S", kernel.version,
                            "--show-depends", name], capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"modprobe --show-depends {name} ({kernel.version}): {r.stderr}")
        for line in r.stdout.splitlines():
            parts = line.split()
            if parts and parts[0] == "insmod" and parts[1] not in files:
                files.append(parts[1])
    return files


def build(kernel, out):
    """Writes the initramfs (gzip'd newc cpio) for `kernel` to `out`."""
    depmod(kernel)
    busybox = shutil.which("busybox")
    if busybox is None:
        raise RuntimeError("busybox not found (scripts/setup.sh installs busybox-static)")
    with tempfile.TemporaryDirectory(prefix="shunt-initramfs-") as tree:
        for d in ("bin", "proc", "sys", "dev", "lib/modules"):
            os.makedirs(os.path.join(tree, d))
        shutil.copy(busybox, os.path.join(tree, "bin", "busybox"))
        load = []
        for ko in module_files(kernel, BOOT_MODULES):
            name = os.path.basename(ko)
            target = os.path.join(tree, "lib", "modules", name)
            if name.endswith(".xz"):
                subprocess.run(["xz", "-dc", ko], stdout=open(target[:-3], "wb"), check=True)
                target = target[:-3]
            elif name.endswith(".zst"):
                subprocess.run(["zstd", "-dcq", ko], stdout=open(target[:-4], "wb"), check=True)
                target = target[:-4]
            else:
                shutil.copy(ko, target)
            load.append("/lib/modules/" + os.path.basename(target))
        with open(os.path.join(tree, "modules.load"), "w") as f:
            f.write("\n".join(load) + "\n")
        with open(os.path.join(tree, "init"), "w") as f:
            f.write(INIT)
        os.chmod(os.path.join(tree, "init"), 0o755)
        cpio = newc_archive(tree)
    with gzip.open(out, "wb", compresslevel=1) as f:
        f.write(cpio)
    return out


def newc_archive(tree):
    """The tree as a cpio archive in the kernel's "newc" format."""
    out = bytearray()

    def entry(name, st, data, ino):
        header = "070701" + "".join(f"{v:08x}" for v in (
            ino, st.st_mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(name) + 1, 0))
        out.extend(header.encode() + name.encode() + b"\0")
        out.extend(b"\0" * (-len(out) % 4))
        out.extend(data)
        out.extend(b"\0" * (-len(out) % 4))

    ino = 1
    for dirpath, dirnames, filenames in os.walk(tree):
        dirnames.sort()
        for name in [""] + sorted(dirnames) + sorted(filenames):
            path = os.path.join(dirpath, name) if name else dirpath
            rel = os.path.relpath(path, tree)
            if name == "" and rel != ".":
                continue  # directories are written by their parent
            st = os.lstat(path)
            if os.path.islink(path):
                data = os.readlink(path).encode()
            elif os.path.isfile(path):
                with open(path, "rb") as f:
                    data = f.read()
            else:
                data = b""
            entry(rel, st, data, ino)
            ino += 1
    entry("TRAILER!!!", os.stat_result((0,) * 10), b"", 0)
    return bytes(out)
