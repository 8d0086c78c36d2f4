"""The supervisor ("shim"): one small process per container that outlives the engine.

It owns the container's init (its only child), the pty master or the stdio
pipes, and the json-file log; it serves a UNIX socket ``<state_dir>/shim.sock``
and, when the container exits, writes ``<state_dir>/exit.json`` atomically and
goes away. A restarted engine finds it again through ``shim.pid`` and the socket.

Protocol on shim.sock: the client sends one JSON line ``{"op": ...}``; the shim
answers one JSON line. ``attach`` then turns the connection into a stream: the
container's output (raw with a tty, else Docker's 8-byte stdcopy frames) one way
and stdin the other way; the client's half-close is stdin EOF. ``wait`` answers
only when the container has exited. Ops: start, attach, resize, signal, status,
wait.

Single-threaded: one selectors loop, every writer buffered and non-blocking, so
a slow attach client can never stall the container (it is dropped past 4 MiB).
"""
from __future__ import annotations

import fcntl
import json
import os
import selectors
import signal
import socket
import struct
import sys
import termios
import time

from . import syscalls as sc
from .cgroups import Cgroup
from .init import container_main
from .spec import ContainerSpec

CLIENT_BUFFER_LIMIT = 4 << 20
LOG_LINE_MAX = 16 * 1024          # Docker's json-file splits longer lines into partial entries
EOT = b"\x04"


def rfc3339nano(ns: int | None = None) -> str:
    """Go's time.RFC3339Nano in UTC: trailing zeros of the fraction trimmed."""
    ns = time.time_ns() if ns is None else ns
    secs, frac = divmod(ns, 10**9)
    frac_s = f"{frac:09d}".rstrip("0")
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + (f".{frac_s}" if frac_s else "") + "Z"


def write_atomic(path: str, text: str) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def frame(stream: int, data: bytes) -> bytes:
    """Docker's stdcopy header: stream byte, three zeros, big-endian length."""
    return struct.pack(">BxxxI", stream, len(data)) + data


class JsonLog:
    """Docker's json-file driver: one {"log","stream","time"} object per line."""

    def __init__(self, path: str):
        self.f = open(path, "ab", buffering=0)
        self.partial = {"stdout": b"", "stderr": b""}

    def write(self, stream: str, data: bytes) -> None:
        buf = self.partial[stream] + data
        while True:
            nl = buf.find(b"\n")
            if nl < 0 and len(buf) < LOG_LINE_MAX:
                break
            cut = nl + 1 if 0 <= nl < LOG_LINE_MAX else LOG_LINE_MAX
            self._entry(stream, buf[:cut])
            buf = buf[cut:]
        self.partial[stream] = buf

    def _entry(self, stream: str, data: bytes) -> None:
        line = json.dumps({"log": data.decode("utf-8", "replace"), "stream": stream, "time": rfc3339nano()})
        self.f.write(line.encode() + b"\n")

    def close(self) -> None:
        for stream, rest in self.partial.items():
            if rest:
                self._entry(stream, rest)
        self.f.close()


class Sink:
    """A non-blocking, buffered writer on an fd, flushed from the loop."""

    def __init__(self, sup: "Supervisor", fd: int, on_close=None):
        self.sup, self.fd = sup, fd
        self.on_close = on_close or (lambda: os.close(fd))
        self.buf = bytearray()
        self.closing = self.closed = False
        os.set_blocking(fd, False)

    def write(self, data: bytes) -> None:
        if self.closed:
            return
        self.buf += data
        if len(self.buf) > CLIENT_BUFFER_LIMIT:
            self.close(now=True)
        else:
            self.flush()

    def flush(self) -> None:
        try:
            while self.buf:
                n = os.write(self.fd, self.buf)
                del self.buf[:n]
        except BlockingIOError:
            pass
        except OSError:
            self.close(now=True)
            return
        self.sup.want_write(self.fd, self.flush if self.buf else None)
        if not self.buf and self.closing:
            self.close(now=True)

    def close(self, now: bool = False) -> None:
        if self.closed:
            return
        self.closing = True
        if self.buf and not now:
            return
        self.closed = True
        self.sup.want_write(self.fd, None)
        self.on_close()


class Client:
    """One connection on shim.sock."""

    def __init__(self, sup: "Supervisor", conn: socket.socket):
        self.sup, self.conn = sup, conn
        self.fd = conn.fileno()
        self.req = b""
        self.mode = "request"    # request | attach | wait | done
        self.streams: set[str] = set()
        self.stdin = False
        self.out = Sink(sup, self.fd, self._closed)
        sup.want_read(self.fd, self.on_read)

    def reply(self, obj: dict) -> None:
        self.out.write(json.dumps(obj).encode() + b"\n")

    def finish(self) -> None:
        self.mode = "done"
        self.sup.want_read(self.fd, None)
        self.out.close()

    def _closed(self) -> None:
        self.sup.want_read(self.fd, None)
        self.sup.clients.discard(self)
        try:
            self.conn.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.conn.close()

    def on_read(self) -> None:
        try:
            data = self.conn.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if self.mode == "request":
            if not data:
                return self.out.close(now=True)
            self.req += data
            if b"\n" in self.req:
                line, _, rest = self.req.partition(b"\n")
                self.sup.handle(self, line)
                if rest and self.mode == "attach" and self.stdin:
                    self.sup.stdin_write(rest)
        elif self.mode == "attach" and self.stdin:
            if data:
                self.sup.stdin_write(data)
            else:
                self.sup.want_read(self.fd, None)
                if self.sup.spec.stdin_once:
                    self.sup.stdin_eof()
        elif not data:            # half-closed: keep sending until the container exits
            self.sup.want_read(self.fd, None)


class Supervisor:
    def __init__(self, state_dir: str, report_fd: int, go_fd: int):
        self.state_dir = os.path.abspath(state_dir)
        self.report_fd, self.go_fd = report_fd, go_fd
        with open(f"{self.state_dir}/spec.json") as f:
            self.spec = ContainerSpec.from_json(f.read())
        self.cgroup = Cgroup(self.spec.cgroup_parent, self.spec.id)
        self.sel = selectors.DefaultSelector()
        self.readers: dict[int, object] = {}
        self.writers: dict[int, object] = {}
        self.clients: set[Client] = set()
        self.pid = 0
        self.started = False
        self.exit: dict | None = None
        self.outputs: dict[int, str] = {}     # fd -> "stdout" | "stderr"
        self.stdin: Sink | None = None
        self.master = -1

    # --- loop plumbing --------------------------------------------------
    def _update(self, fd: int) -> None:
        ev = (selectors.EVENT_READ if fd in self.readers else 0) | \
             (selectors.EVENT_WRITE if fd in self.writers else 0)
        try:
            self.sel.unregister(fd)
        except (KeyError, ValueError):
            pass
        if ev:
            self.sel.register(fd, ev)

    def want_read(self, fd: int, cb) -> None:
        (self.readers.__setitem__(fd, cb) if cb else self.readers.pop(fd, None))
        self._update(fd)

    def want_write(self, fd: int, cb) -> None:
        if self.writers.get(fd) == cb:
            return
        (self.writers.__setitem__(fd, cb) if cb else self.writers.pop(fd, None))
        self._update(fd)

    def report(self, obj: dict) -> bool:
        """Tell the engine's spawn() how set-up goes; False if nobody reads any more."""
        if self.report_fd >= 0:
            try:
                os.write(self.report_fd, json.dumps(obj).encode() + b"\n")
            except OSError:       # the caller gave up (its on_netns hook failed) or died
                return False
        return True

    # --- life ----------------------------------------------------------------
    def run(self) -> int:
        write_atomic(f"{self.state_dir}/shim.pid", str(os.getpid()))
        try:
            self.spec.validate()
            if os.path.exists(f"{self.state_dir}/exit.json"):
                os.unlink(f"{self.state_dir}/exit.json")
            self.cgroup.create(self.spec.memory, self.spec.memory_swap, self.spec.nano_cpus,
                               self.spec.pids_limit)
        except (OSError, ValueError) as e:
            self.report({"error": str(e), "exit_code": 128})
            return 1
        try:
            return self._run()
        finally:
            if os.path.exists(f"{self.state_dir}/shim.sock"):
                os.unlink(f"{self.state_dir}/shim.sock")
            if self.cgroup.exists():
                try:
                    self.cgroup.remove()
                except OSError as e:
                    print(f"shim: removing cgroup: {e}", file=sys.stderr)

    def _run(self) -> int:
        spec = self.spec
        os.chdir(self.state_dir)
        try:
            os.unlink("shim.sock")
        except FileNotFoundError:
            pass
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind("shim.sock")
        self.listener.listen(16)
        self.log = JsonLog(spec.log_path or f"{self.state_dir}/json.log")
        chan, child_chan = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        stdio = child_ends = None
        if not spec.tty:
            in_r, in_w = os.pipe() if spec.open_stdin else (os.open("/dev/null", os.O_RDONLY), -1)
            out_r, out_w = os.pipe()
            err_r, err_w = os.pipe()
            stdio, child_ends = (in_r, out_w, err_w), (in_r, out_w, err_w)
        sc.unshare(sc.CLONE_NEWPID)
        pid = os.fork()
        if pid == 0:
            chan.close()
            self.listener.close()
            if self.report_fd >= 0:
                os.close(self.report_fd)
            container_main(spec, child_chan, self.go_fd, stdio)
        self.pid = pid
        try:
            self.cgroup.join(pid)
        except OSError as e:
            os.kill(pid, signal.SIGKILL)
            self._reap_blocking()
            self.report({"error": f"joining the container's cgroup: {e}", "exit_code": 128})
            return 0
        child_chan.close()
        if self.go_fd >= 0:
            os.close(self.go_fd)
        if child_ends:
            for fd in child_ends:
                os.close(fd)
            self.outputs = {out_r: "stdout", err_r: "stderr"}
            if in_w >= 0:
                self.stdin = Sink(self, in_w)
        self.chan = chan
        # set-up phase: until the init reports ready (or fails)
        while True:
            msg, fds, _, _ = socket.recv_fds(chan, 65536, 1)
            info = json.loads(msg) if msg else {"error": "container init exited unexpectedly", "code": 128}
            if "netns" in info:
                self.report({"netns": pid})
            elif "ready" in info:
                break
            else:
                self._reap_blocking()
                self.log.close()
                self.report({"error": info["error"], "exit_code": self.exit["exit_code"]})
                return 0
        if spec.tty:
            self.master = fds[0]
            self.outputs = {self.master: "stdout"}
            if spec.console_size:
                self.resize(*spec.console_size)
            if spec.open_stdin:
                self.stdin = Sink(self, os.dup(self.master))
        for fd in self.outputs:
            os.set_blocking(fd, False)
            self.want_read(fd, lambda fd=fd: self.on_output(fd))
        self.pidfd = os.pidfd_open(pid)
        self.want_read(self.pidfd, self.on_exit)
        self.listener.setblocking(False)
        self.want_read(self.listener.fileno(), self.on_accept)
        if not self.report({"created": pid}):
            # The engine died during set-up: no one will ever start this container or know
            # of this supervisor. Do not linger with a set-up container: end it.
            os.write(2, b"shim: the engine went away before the container was started\n")
            os.kill(pid, signal.SIGKILL)
            self._reap_blocking()
            self.log.close()
            return 0
        os.close(self.report_fd)
        self.report_fd = -1
        while self.exit is None or self.clients or self.outputs:
            for key, ev in self.sel.select(None if self.exit is None else 1.0):
                if ev & selectors.EVENT_READ and key.fd in self.readers:
                    self.readers[key.fd]()
                if ev & selectors.EVENT_WRITE and key.fd in self.writers:
                    self.writers[key.fd]()
            if self.exit is not None and time.monotonic() > self.linger_until:
                break
        return 0

    # --- events --------------------------------------------------------------
    def on_accept(self) -> None:
        try:
            conn, _ = self.listener.accept()
        except BlockingIOError:
            return
        self.clients.add(Client(self, conn))

    def on_output(self, fd: int) -> None:
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return
        except OSError:            # EIO: every pty slave is closed
            data = b""
        stream = self.outputs.get(fd)
        if not data:
            self.want_read(fd, None)
            self.outputs.pop(fd, None)
            os.close(fd)
            if self.exit is not None and not self.outputs:
                self._finish()
            return
        self.log.write(stream, data)
        for c in list(self.clients):
            if c.mode == "attach" and stream in c.streams:
                c.out.write(data if self.spec.tty else frame(1 if stream == "stdout" else 2, data))

    def on_exit(self) -> None:
        self.want_read(self.pidfd, None)
        self._reap_blocking()
        self.linger_until = time.monotonic() + 2.0
        if self.stdin:
            self.stdin.close(now=True)
        if not self.outputs:
            self._finish()

    def _reap_blocking(self) -> None:
        _, status = os.waitpid(self.pid, 0)
        code = os.waitstatus_to_exitcode(status)
        self.exit = {"exit_code": code if code >= 0 else 128 - code,
                     "finished_at": rfc3339nano(), "oom_killed": self.cgroup.oom_killed(),
                     "pid": self.pid}
        self.linger_until = time.monotonic() + 2.0
        try:                      # the rest of the pid namespace dies with its PID 1
            self.cgroup.remove()
        except OSError as e:
            print(f"shim: removing cgroup: {e}", file=sys.stderr)
        write_atomic(f"{self.state_dir}/exit.json", json.dumps(self.exit))

    def _finish(self) -> None:
        """Output drained after exit: close the log, end attaches, answer waiters."""
        self.want_read(self.listener.fileno(), None)
        self.listener.close()
        try:
            os.unlink("shim.sock")
        except FileNotFoundError:
            pass
        self.log.close()
        for c in list(self.clients):
            if c.mode == "wait":
                c.reply(self.exit)
            if c.mode in ("attach", "wait"):
                c.finish()

    # --- ops -----------------------------------------------------------------
    def handle(self, client: Client, line: bytes) -> None:
        try:
            req = json.loads(line)
            op = req.get("op")
            if op == "status":
                client.reply(self.status())
            elif op == "start":
                client.reply(self.start())
            elif op == "attach":
                client.streams = {s for s in ("stdout", "stderr") if req.get(s)}
                client.stdin = bool(req.get("stdin")) and self.stdin is not None
                client.reply({"ok": True, "tty": self.spec.tty})
                if self.exit is not None and not self.outputs:
                    client.finish()
                else:
                    client.mode = "attach"
            elif op == "wait":
                if self.exit is not None and not self.outputs:
                    client.reply(self.exit)
                    client.finish()
                else:
                    client.mode = "wait"
            elif op == "resize":
                self.resize(int(req["height"]), int(req["width"]))
                client.reply({"ok": True})
            elif op == "signal":
                self.signal(int(req["signal"]))
                client.reply({"ok": True})
            else:
                raise ValueError(f"unknown op: {op!r}")
        except (ValueError, KeyError, TypeError, OSError) as e:
            client.reply({"error": str(e)})
            client.finish()
            return
        if client.mode == "request":
            client.finish()

    def status(self) -> dict:
        return {"pid": self.pid, "running": self.exit is None and self.started,
                "started": self.started, "tty": self.spec.tty, "exit": self.exit,
                "paused": self.exit is None and self.cgroup.frozen()}

    def start(self) -> dict:
        if self.started:
            raise ValueError("container already started")
        if self.exit is not None:
            raise ValueError("container has exited")
        self.started = True
        self.chan.setblocking(True)
        self.chan.send(b"go")
        msg = self.chan.recv(65536)
        self.chan.close()
        if not msg:               # close-on-exec fired: execve succeeded
            write_atomic(f"{self.state_dir}/started.json",
                         json.dumps({"pid": self.pid, "started_at": rfc3339nano()}))
            return {"pid": self.pid}
        info = json.loads(msg)
        return {"error": info["error"], "exit_code": info.get("code", 128)}

    def resize(self, height: int, width: int) -> None:
        if self.master < 0:
            raise ValueError("the container has no tty")
        fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))

    def signal(self, sig: int) -> None:
        if self.exit is not None:
            raise ValueError("container is not running")
        os.kill(self.pid, sig)
        if sig == signal.SIGKILL and self.cgroup.frozen():
            self.cgroup.thaw()

    def stdin_write(self, data: bytes) -> None:
        if self.stdin is not None:
            self.stdin.write(data)

    def stdin_eof(self) -> None:
        if self.stdin is None:
            return
        if self.spec.tty:
            self.stdin.write(EOT)
            self.stdin.close()
        else:
            self.stdin.close()
        self.stdin = None


def serve(state_dir: str, report_fd: int, go_fd: int) -> int:
    """Entry point of the supervisor process (forked or fresh)."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGCHLD, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    try:
        signal.set_wakeup_fd(-1)
    except ValueError:
        pass
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
    return Supervisor(state_dir, report_fd, go_fd).run()


if __name__ == "__main__":
    sys.exit(serve(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
