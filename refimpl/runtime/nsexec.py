"""Run a process inside a running container (`docker exec`).

    python -m refimpl.runtime.nsexec '{"pid": 1234, "args": ["sh"], "env": [...],
                                       "user": "", "cwd": "/", "cgroup_procs": [...]}'

The helper is started by the engine with the exec's stdin/stdout/stderr already
in place (pipes, or the slave side of a pseudo-terminal). It joins the
container's namespaces with setns(2) — ipc, uts, net, pid, then mnt, which also
moves its root and working directory to the container's root — and forks, so
that the child is born into the container's PID namespace. The child joins the
container's cgroups, drops to Docker's default capability set, switches to the
user (resolved against the container's /etc/passwd and /etc/group), changes
to the working directory and execs the command with a PATH lookup done in the
container's file system. The parent waits and exits with the child's status
(128+signal when it was killed). Exec failures print Docker's texts and exit
126 or 127, as the docker CLI expects.
"""

from __future__ import annotations

import errno
import json
import os
import sys

from . import syscalls
from .spec import resolve_user

NAMESPACES = [("ipc", syscalls.CLONE_NEWIPC), ("uts", syscalls.CLONE_NEWUTS),
              ("net", syscalls.CLONE_NEWNET), ("pid", syscalls.CLONE_NEWPID),
              ("mnt", syscalls.CLONE_NEWNS)]


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def _lookup(cmd: str, env: list[str]) -> str:
    if "/" in cmd:
        return cmd
    path = next((e[5:] for e in env if e.startswith("PATH=")), "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    for d in path.split(":"):
        full = os.path.join(d or ".", cmd)
        if os.path.isfile(full) and os.access(full, os.X_OK):
            return full
    raise FileNotFoundError(errno.ENOENT, f'exec: "{cmd}": executable file not found in $PATH')


def child(spec: dict) -> None:
    for procs in spec.get("cgroup_procs", []):
        try:
            with open(procs, "w") as f:
                f.write(str(os.getpid()))
        except OSError:
            pass
    uid, gid, groups, home = resolve_user(spec.get("user") or "", _read("/etc/passwd"), _read("/etc/group"))
    env = list(spec.get("env") or [])
    if not any(e.startswith("HOME=") for e in env):
        env.append(f"HOME={home}")
    os.chdir(spec.get("cwd") or "/")
    args = spec["args"]
    try:
        path = _lookup(args[0], env)
    except FileNotFoundError as e:
        print(f"OCI runtime exec failed: exec failed: unable to start container process: {e.strerror}: unknown",
              file=sys.stderr)
        os._exit(127)
    syscalls.drop_capabilities(syscalls.DEFAULT_CAPS)
    os.setgroups(groups)
    os.setgid(gid)
    os.setuid(uid)
    try:
        os.execve(path, args, dict(e.split("=", 1) for e in env if "=" in e))
    except OSError as e:
        code = 127 if e.errno == errno.ENOENT else 126
        text = {errno.ENOENT: "no such file or directory", errno.EACCES: "permission denied",
                errno.EISDIR: "is a directory"}.get(e.errno, e.strerror)
        print(f'OCI runtime exec failed: exec failed: unable to start container process: exec: '
              f'"{args[0]}": {text}: unknown', file=sys.stderr)
        os._exit(code)


def main(argv: list[str]) -> int:
    spec = json.loads(argv[0])
    pid = int(spec["pid"])
    fds = []
    try:
        for name, _ in NAMESPACES:     # open all first: after setns(mnt) /proc is the container's
            fds.append(os.open(f"/proc/{pid}/ns/{name}", os.O_RDONLY | os.O_CLOEXEC))
    except OSError as e:
        print(f"cannot join container process {pid}: {e.strerror}", file=sys.stderr)
        return 126
    for fd, (_, nstype) in zip(fds, NAMESPACES):
        syscalls.setns(fd, nstype)
        os.close(fd)
    kid = os.fork()
    if kid == 0:
        try:
            child(spec)
        except BaseException as e:  # noqa: BLE001 - the child must never return into the parent's code
            print(f"exec failed: {(str(e).splitlines() or [type(e).__name__])[0]}", file=sys.stderr)
        os._exit(126)
    for fd in (0, 1, 2):               # the child holds the streams; EOF reaches the client when it exits
        try:
            os.close(fd)
        except OSError:
            pass
    _, status = os.waitpid(kid, 0)
    return os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)


# --------------------------------------------------------------------------- the engine's side
def cgroup_procs(pid: int) -> list[str]:
    """The cgroup.procs files of every cgroup (v1 controllers and v2) a process is in."""
    out = []
    for line in _read(f"/proc/{pid}/cgroup").splitlines():
        _, controllers, path = line.split(":", 2)
        if controllers == "":
            base = "/sys/fs/cgroup/unified" if os.path.isdir("/sys/fs/cgroup/unified") else "/sys/fs/cgroup"
        else:
            name = controllers.split(",")[0].removeprefix("name=")
            base = f"/sys/fs/cgroup/{name}"
            if not os.path.isdir(base):
                base = f"/sys/fs/cgroup/{controllers}"
        procs = os.path.join(base, path.lstrip("/"), "cgroup.procs")
        if os.path.exists(procs):
            out.append(procs)
    return out


class ExecProcess:
    """An exec's process as the API layer sees it: output chunks tagged 1 (stdout) or 2
    (stderr) — everything is 1 with a TTY — stdin writes, stdin EOF, resize, wait."""

    def __init__(self, proc, master: int | None):
        import asyncio
        self.proc, self.master = proc, master
        self.queue: asyncio.Queue = asyncio.Queue()
        loop = asyncio.get_running_loop()
        self._pending = 0
        if master is not None:
            self._pending = 1
            loop.add_reader(master, self._tty_ready)
        else:
            for stream, tag in ((proc.stdout, 1), (proc.stderr, 2)):
                self._pending += 1
                loop.create_task(self._pump(stream, tag))

    def _tty_ready(self) -> None:
        import asyncio
        try:
            data = os.read(self.master, 65536)
        except OSError:
            data = b""
        if data:
            self.queue.put_nowait((1, data))
        else:
            asyncio.get_running_loop().remove_reader(self.master)
            self._done()

    async def _pump(self, stream, tag: int) -> None:
        while data := await stream.read(65536):
            self.queue.put_nowait((tag, data))
        self._done()

    def _done(self) -> None:
        self._pending -= 1
        if self._pending == 0:
            self.queue.put_nowait((0, b""))

    async def output(self):
        while True:
            tag, data = await self.queue.get()
            if tag == 0:
                return
            yield tag, data

    async def write(self, data: bytes) -> None:
        if self.master is not None:
            os.write(self.master, data)
        elif self.proc.stdin is not None:
            self.proc.stdin.write(data)
            await self.proc.stdin.drain()

    def close_stdin(self) -> None:
        if self.master is not None:
            try:
                os.write(self.master, b"\x04")          # EOF at the terminal
            except OSError:
                pass
        elif self.proc.stdin is not None:
            self.proc.stdin.close()

    def resize(self, height: int, width: int) -> None:
        if self.master is not None:
            import fcntl
            import struct
            import termios
            fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))

    async def wait(self) -> int:
        code = await self.proc.wait()
        if self.master is not None:
            try:
                os.close(self.master)
            except OSError:
                pass
            self.master = None
        return code


async def spawn(spec: dict, tty: bool, stdin: bool) -> ExecProcess:
    """Start the nsexec helper for `spec` with a pseudo-terminal or pipes."""
    import asyncio
    spec = {**spec, "cgroup_procs": cgroup_procs(int(spec["pid"]))}
    argv = [sys.executable, "-m", "refimpl.runtime.nsexec", json.dumps(spec)]
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = {"PYTHONPATH": root, "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    if tty:
        master, slave = os.openpty()
        os.set_blocking(master, False)
        try:
            proc = await asyncio.create_subprocess_exec(*argv, stdin=slave, stdout=slave, stderr=slave,
                                                        env=env, start_new_session=True)
        finally:
            os.close(slave)
        return ExecProcess(proc, master)
    P = asyncio.subprocess.PIPE
    proc = await asyncio.create_subprocess_exec(*argv, stdin=P if stdin else asyncio.subprocess.DEVNULL,
                                                stdout=P, stderr=P, env=env)
    return ExecProcess(proc, None)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
