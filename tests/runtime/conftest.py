"""Fixtures for the runtime tests: a busybox rootfs and throw-away containers.

Everything real: overlayfs, namespaces, cgroups. Needs root, overlayfs and
/bin/busybox (Debian's busybox-static); otherwise every test here skips.
Containers' cgroups live under ``dockspec-rttest``; all of it is removed.
"""
from __future__ import annotations

import os
import shutil
import signal
import tempfile

import pytest

from refimpl.runtime import ContainerSpec, Shim, spawn
from refimpl.runtime.cgroups import Cgroup, ROOT, V1_CONTROLLERS, version

PARENT = "dockspec-rttest"


def _why_not() -> str | None:
    if os.geteuid() != 0:
        return "the runtime needs root (namespaces, mounts, cgroups)"
    if not os.path.exists("/bin/busybox"):
        return "no /bin/busybox (apt-get install busybox-static)"
    with open("/proc/filesystems") as f:
        if "overlay" not in f.read():
            return "the kernel has no overlayfs"
    return None


REASON = _why_not()


@pytest.fixture(scope="session")
def rootfs():
    if REASON:
        pytest.skip(REASON)
    d = tempfile.mkdtemp(prefix="wt-runtime-rootfs-")
    os.makedirs(f"{d}/bin")
    os.makedirs(f"{d}/etc")
    os.makedirs(f"{d}/data/dir")
    shutil.copy2("/bin/busybox", f"{d}/bin/busybox")
    import subprocess
    for applet in subprocess.run(["/bin/busybox", "--list"], capture_output=True, text=True).stdout.split():
        if applet != "busybox":
            os.symlink("busybox", f"{d}/bin/{applet}")
    with open(f"{d}/etc/passwd", "w") as f:
        f.write("root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n"
                "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
    with open(f"{d}/etc/group", "w") as f:
        f.write("root:x:0:\napp:x:1000:\nextra:x:2000:app\nnogroup:x:65534:\n")
    with open(f"{d}/data/noexec", "w") as f:
        f.write("not a program\n")
    with open(f"{d}/data/lower.txt", "w") as f:
        f.write("from the lower dir\n")
    yield d
    shutil.rmtree(d, ignore_errors=True)
    for path in ([f"{ROOT}/{PARENT}"] if version() == 2 else [f"{ROOT}/{c}/{PARENT}" for c in V1_CONTROLLERS]):
        try:
            os.rmdir(path)
        except OSError:
            pass


class Containers:
    """Makes specs with their own scratch dirs; kills and removes all of it afterwards."""

    def __init__(self, rootfs: str):
        self.rootfs = rootfs
        self.made: list[tuple[str, ContainerSpec]] = []

    def spec(self, args, **kw) -> tuple[ContainerSpec, str]:
        base = tempfile.mkdtemp(prefix="wt-runtime-")
        for sub in ("upper", "work", "merged", "state"):
            os.mkdir(f"{base}/{sub}")
        cid = "dockspec-rttest-" + os.path.basename(base).split("-")[-1].lower()
        spec = ContainerSpec(id=cid, lower_dirs=[self.rootfs], upper_dir=f"{base}/upper",
                             work_dir=f"{base}/work", merged_dir=f"{base}/merged", args=list(args),
                             cgroup_parent=PARENT, **kw)
        self.made.append((base, spec))
        return spec, f"{base}/state"

    def run(self, args, stdin: bytes | None = None, **kw):
        """spawn, attach, start, collect: (ExitStatus, stdout, stderr, shim)."""
        spec, state = self.spec(args, open_stdin=stdin is not None, stdin_once=stdin is not None, **kw)
        shim = spawn(spec, state)
        with shim.attach(stdin=stdin is not None) as att:
            shim.start()
            if stdin is not None:
                att.send(stdin)
                att.close_stdin()
            out = att.read_all() if spec.tty else att.read_streams()
        st = shim.wait(timeout=20)
        if spec.tty:
            return st, out, b"", shim
        return st, out["stdout"], out["stderr"], shim

    def cleanup(self) -> None:
        for base, spec in self.made:
            cg = Cgroup(spec.cgroup_parent, spec.id)
            if cg.exists():
                for pid in cg.pids():
                    _kill(pid)
                if cg.frozen():
                    cg.thaw()
            try:
                shim_pid = Shim(f"{base}/state").supervisor_pid()
                with open(f"/proc/{shim_pid}/cmdline", "rb") as f:
                    if b"python" in f.read():
                        _kill(shim_pid)
            except (OSError, ValueError):
                pass
            if cg.exists():
                try:
                    cg.remove(timeout=3)
                except OSError:
                    pass
            shutil.rmtree(base, ignore_errors=True)


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


@pytest.fixture
def containers(rootfs):
    c = Containers(rootfs)
    yield c
    c.cleanup()
