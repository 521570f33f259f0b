"""Processes a scenario starts, each with its own log file in the test's
folder, shared by the topology of namespaces (shunt_env.py) and the
podman node (podman_env.py)."""
import os
import subprocess


class Processes:
    """Mixin: needs `self.tmp` (the test's folder) and `self.procs`."""

    def spawn(self, name, cmd, env=None, preexec_fn=None, new_session=False):
        with open(os.path.join(self.tmp, f"{name}.log"), "a") as log:
            p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                                 preexec_fn=preexec_fn, start_new_session=new_session)
        self.procs[name] = p
        return p

    def log_text(self, name):
        try:
            with open(os.path.join(self.tmp, f"{name}.log")) as f:
                return f.read()
        except FileNotFoundError:
            return ""


def joining_cgroup(cgroup):
    """A preexec_fn that moves the child into `cgroup` (a cgroup v2
    directory) before it runs: its sockets are then that cgroup's."""
    procs_file = os.path.join(cgroup, "cgroup.procs")

    def enter():
        with open(procs_file, "w") as f:
            f.write(str(os.getpid()))

    return enter


def mode_args(mode, backend, sk_msg=False, probe_chooses_ebpf=True):
    """The agent's flags for a test mode. ebpf runs with the default (auto)
    mode where the probe must choose it; the firewall modes name theirs."""
    if mode == "ebpf":
        args = [] if probe_chooses_ebpf else ["--mode", "ebpf"]
        return args + (["--sk-msg", "true"] if sk_msg else [])
    return ["--mode", mode] + (["--backend", backend] if backend else [])


_SHARED = {}


def world_readable(path):
    """A copy of `path` in a folder every user can read and traverse, made
    once per process and removed at its exit: a test that runs a program or
    a script as another user must not depend on the modes of the folders
    the checkout lives in."""
    import atexit
    import shutil
    import tempfile
    if "dir" not in _SHARED:
        _SHARED["dir"] = tempfile.mkdtemp(prefix="shunt-shared-")
        os.chmod(_SHARED["dir"], 0o755)
        atexit.register(shutil.rmtree, _SHARED["dir"], True)
    copy = os.path.join(_SHARED["dir"], os.path.basename(path))
    if not os.path.exists(copy):
        shutil.copy(path, copy)
        os.chmod(copy, 0o755)
    return copy
