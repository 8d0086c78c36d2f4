"""The engine's side of the runtime: spawn a supervisor, then talk to it.

``spawn()`` forks the supervisor from the calling process (the fast path: no
interpreter start-up) or, with ``fresh=True``, execs ``python -S -m
refimpl.runtime.shim`` (safe from any process, ~17 ms more). Either way the
supervisor is double-forked into its own session, so it is no child of the
engine and survives it. spawn returns once the container is set up and waiting
to exec ("created"); ``Shim.start()`` lets it exec and returns its pid or raises
StartError with Docker's text and exit code. Attach between the two to miss no
output.
"""
from __future__ import annotations

import json
import os
import signal as _signal
import socket
import sys
import time
from dataclasses import dataclass

from .cgroups import Cgroup
from .spec import ContainerSpec, signal_number


class StartError(Exception):
    """The container could not be started; .exit_code is Docker's (127, 126, 128)."""

    def __init__(self, message: str, exit_code: int = 128):
        super().__init__(message)
        self.exit_code = exit_code


class ShimGone(Exception):
    """The supervisor is gone without having recorded an exit."""


@dataclass
class ExitStatus:
    exit_code: int
    finished_at: str
    oom_killed: bool


def _sock_path(state_dir: str) -> str:
    path = os.path.join(os.path.abspath(state_dir), "shim.sock")
    return path if len(path) < 100 else None


def spawn(spec: ContainerSpec, state_dir: str, on_netns=None, fresh: bool = False) -> "Shim":
    """Write spec.json, start the container's supervisor, set the container up.

    With network_mode "bridge", ``on_netns(pid)`` is called here once the
    container has its own netns (pid is any process in it): move the veth in
    there; the container configures it from ``spec.net`` after the call returns.
    Raises ValueError for a bad spec, StartError if set-up fails; either way
    nothing is left behind but the state dir's files."""
    spec.validate()
    os.makedirs(state_dir, exist_ok=True)
    state_dir = os.path.abspath(state_dir)
    with open(f"{state_dir}/spec.json.tmp", "w") as f:
        f.write(spec.to_json())
    os.replace(f"{state_dir}/spec.json.tmp", f"{state_dir}/spec.json")
    report_r, report_w = os.pipe()
    go_r, go_w = os.pipe() if spec.network_mode == "bridge" else (-1, -1)
    pid = os.fork()
    if pid == 0:
        _become_shim(state_dir, report_w, go_r, fresh)
    os.close(report_w)
    if go_r >= 0:
        os.close(go_r)
    os.waitpid(pid, 0)
    try:
        with os.fdopen(report_r, "rb") as report:
            for line in report:
                msg = json.loads(line)
                if "netns" in msg:
                    try:
                        on_netns(msg["netns"]) if on_netns else None
                        os.write(go_w, b"G")
                    finally:
                        os.close(go_w)
                        go_w = -1
                elif "created" in msg:
                    return Shim(state_dir, msg["created"])
                else:
                    raise StartError(msg["error"], msg.get("exit_code", 128))
        raise StartError("the container's supervisor died during set-up (see shim.log)")
    finally:
        if go_w >= 0:
            os.close(go_w)


def _become_shim(state_dir: str, report_w: int, go_r: int, fresh: bool) -> None:
    """In the forked child: detach (setsid + second fork), shed the engine's fds, serve."""
    code = 1
    try:
        os.setsid()
        if os.fork():
            os._exit(0)
        keep = {report_w, go_r}
        for name in os.listdir("/proc/self/fd"):
            fd = int(name)
            if fd > 2 and fd not in keep:
                try:
                    os.close(fd)
                except OSError:
                    pass
        null = os.open("/dev/null", os.O_RDWR)
        logfd = os.open(f"{state_dir}/shim.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(null, 0)
        os.dup2(logfd, 1)
        os.dup2(logfd, 2)
        os.close(null)
        os.close(logfd)
        if fresh:
            env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
            for fd in keep - {-1}:
                os.set_inheritable(fd, True)
            os.execve(sys.executable, [sys.executable, "-S", "-m", "refimpl.runtime.shim", state_dir,
                                       str(report_w), str(go_r)], env)
        from .shim import serve
        code = serve(state_dir, report_w, go_r)
    except BaseException as e:  # noqa: BLE001 - report, never unwind into the engine's code
        try:
            os.write(report_w, json.dumps({"error": f"supervisor: {e}"}).encode() + b"\n")
        except OSError:
            pass
        try:                       # and keep it in shim.log (fd 2 by now)
            import traceback
            os.write(2, "".join(traceback.format_exception(e)).encode(errors="replace"))
        except OSError:
            pass
    finally:
        os._exit(code)


class Shim:
    """A handle on one container's supervisor, addressed by its state dir."""

    def __init__(self, state_dir: str, pid: int = 0):
        self.state_dir = os.path.abspath(state_dir)
        self.pid = pid
        with open(f"{self.state_dir}/spec.json") as f:
            self.spec = ContainerSpec.from_json(f.read())
        self.cgroup = Cgroup(self.spec.cgroup_parent, self.spec.id)

    @classmethod
    def find(cls, state_dir: str) -> "Shim | None":
        """Reconnect after an engine restart: the handle if the supervisor is alive."""
        try:
            shim = cls(state_dir)
            shim.pid = shim.status()["pid"]
            return shim
        except (OSError, ValueError):
            return None

    def supervisor_pid(self) -> int:
        with open(f"{self.state_dir}/shim.pid") as f:
            return int(f.read())

    def connect(self, request: dict, timeout: float | None = 10.0) -> socket.socket:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        path = _sock_path(self.state_dir)
        if path is None:   # AF_UNIX paths are limited to 108 bytes: go through a dir fd
            dfd = os.open(self.state_dir, os.O_RDONLY | os.O_DIRECTORY)
            try:
                s.connect(f"/proc/self/fd/{dfd}/shim.sock")
            finally:
                os.close(dfd)
        else:
            s.connect(path)
        s.sendall(json.dumps(request).encode() + b"\n")
        return s

    def call(self, request: dict, timeout: float | None = 10.0) -> dict:
        with self.connect(request, timeout) as s:
            reply = _readline(s)
        if not reply:
            raise ShimGone("no answer from the container's supervisor")
        obj = json.loads(reply)
        if "error" in obj and request["op"] != "start":
            raise ValueError(obj["error"])
        return obj

    def start(self) -> int:
        reply = self.call({"op": "start"}, timeout=30)
        if "error" in reply:
            raise StartError(reply["error"], reply.get("exit_code", 128))
        return reply["pid"]

    def status(self) -> dict:
        return self.call({"op": "status"})

    def signal(self, sig) -> None:
        self.call({"op": "signal", "signal": signal_number(sig)})

    def resize(self, height: int, width: int) -> None:
        self.call({"op": "resize", "height": height, "width": width})

    def attach(self, stdin: bool = False, stdout: bool = True, stderr: bool = True) -> "Attachment":
        s = self.connect({"op": "attach", "stdin": stdin, "stdout": stdout, "stderr": stderr}, None)
        head = json.loads(_readline(s))
        if "error" in head:
            s.close()
            raise ValueError(head["error"])
        return Attachment(s, head["tty"])

    def exit_status(self) -> ExitStatus | None:
        try:
            with open(f"{self.state_dir}/exit.json") as f:
                d = json.load(f)
        except FileNotFoundError:
            return None
        return ExitStatus(d["exit_code"], d["finished_at"], d["oom_killed"])

    def wait(self, timeout: float | None = None) -> ExitStatus:
        """Block until the container exited (and its output is drained)."""
        try:
            with self.connect({"op": "wait"}, timeout) as s:
                _readline(s)
        except (FileNotFoundError, ConnectionRefusedError, ConnectionResetError):
            pass
        st = self.exit_status()
        if st is None:
            raise ShimGone("the container's supervisor is gone and recorded no exit")
        return st

    def stop(self, timeout: float = 10.0) -> ExitStatus:
        """Docker's stop: the stop signal, `timeout` seconds of grace, then SIGKILL."""
        try:
            self.signal(self.spec.stop_signal)
            return self.wait(timeout)
        except (socket.timeout, TimeoutError):
            pass
        except ValueError:      # not running any more
            return self.wait()
        try:
            self.signal(_signal.SIGKILL)
        except ValueError:
            pass
        return self.wait()

    def pause(self) -> None:
        self.cgroup.freeze()

    def resume(self) -> None:
        self.cgroup.thaw()

    def pids(self) -> list[int]:
        return self.cgroup.pids()


class Attachment:
    """A live attach stream: .recv() output, .send() stdin, .close_stdin() for EOF.
    Without a tty, recv_frames() splits the stdcopy frames into (stream, data)."""

    def __init__(self, sock: socket.socket, tty: bool):
        self.sock, self.tty = sock, tty

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def close_stdin(self) -> None:
        self.sock.shutdown(socket.SHUT_WR)

    def recv(self, n: int = 65536) -> bytes:
        return self.sock.recv(n)

    def read_all(self, timeout: float = 10.0) -> bytes:
        self.sock.settimeout(timeout)
        out = b""
        while chunk := self.sock.recv(65536):
            out += chunk
        return out

    def read_streams(self, timeout: float = 10.0) -> dict[str, bytes]:
        raw, out = self.read_all(timeout), {"stdout": b"", "stderr": b""}
        while raw:
            stream, size = raw[0], int.from_bytes(raw[4:8], "big")
            out["stdout" if stream == 1 else "stderr"] += raw[8:8 + size]
            raw = raw[8 + size:]
        return out

    def close(self) -> None:
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _readline(s: socket.socket) -> bytes:
    buf = b""
    while not buf.endswith(b"\n"):
        chunk = s.recv(1)
        if not chunk:
            break
        buf += chunk
    return buf
