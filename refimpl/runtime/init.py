"""The container's init: runs in the child the supervisor forks, ends in execve.

The supervisor has already unshared the pid namespace, so this process is PID 1
of a fresh one, and moves it into its cgroup while it sets up (a cgroup v1
migration can cost ~10-30 ms of RCU grace period, so it runs in parallel; it is
done before "go"). In order, the init: unshares mnt, uts, ipc (and net
unless --network host); for bridge networking waits on the caller's go pipe
until the veth is in its namespace, then configures it; sets the hostname;
mounts the overlay root, binds, /proc (with Docker's masked and read-only
paths), /sys, a minimal /dev; pivot_roots; opens its pty inside its own devpts;
reports "ready" and waits for "go" (so the engine can attach before start);
drops capabilities, switches user, chdirs, and execs with the PATH lookup done
in the container's root.

Everything goes back over one SOCK_SEQPACKET socket to the supervisor, which is
close-on-exec: a JSON message {"error", "code"} means the start failed (with
Docker's texts, which the CLI maps to exit codes 127/126), and EOF after "go"
means execve succeeded.
"""
from __future__ import annotations

import fcntl
import json
import os
import signal
import socket
import stat
import termios

from . import netconf, syscalls as sc
from .spec import DEFAULT_PATH, ContainerSpec, resolve_user

# moby: oci/defaults.go DefaultLinuxSpec() MaskedPaths and ReadonlyPaths
MASKED_PATHS = ("/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
                "/sys/firmware", "/sys/devices/virtual/powercap")
READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")
DEVICES = {"null": (1, 3), "zero": (1, 5), "full": (1, 7), "random": (1, 8), "urandom": (1, 9),
           "tty": (5, 0)}


class StartFailure(Exception):
    def __init__(self, message: str, code: int = 128):
        super().__init__(message)
        self.code = code


def exit_code_for(message: str) -> int:
    """Docker's mapping of a start error's text to the container's exit code."""
    if "executable file not found" in message or "no such file or directory" in message:
        return 127
    if "permission denied" in message or "is a directory" in message:
        return 126
    return 128


def _errtext(e: OSError) -> str:
    msg = e.strerror or str(e)
    msg = msg[:1].lower() + msg[1:]
    return f"{e.filename}: {msg}" if e.filename else msg


def container_main(spec: ContainerSpec, chan: socket.socket, go_fd: int,
                   stdio: tuple[int, int, int] | None) -> None:
    """Never returns: execs the container's process or _exits with a start error."""
    code = 128
    try:
        _setup(spec, chan, go_fd, stdio)
    except StartFailure as e:
        msg, code = str(e), e.code
    except OSError as e:
        msg = _errtext(e)
    except Exception as e:  # noqa: BLE001 - anything else is a start failure, never a traceback
        msg = f"{type(e).__name__}: {e}" if not str(e) else str(e)
    try:
        chan.send(json.dumps({"error": msg, "code": code}).encode())
    finally:
        os._exit(code)


def _setup(spec, chan, go_fd, stdio) -> None:
    os.setsid()
    if stdio is not None:
        for i, fd in enumerate(stdio):
            os.dup2(fd, i)
    flags = sc.CLONE_NEWNS | sc.CLONE_NEWUTS | sc.CLONE_NEWIPC
    if spec.network_mode != "host":
        flags |= sc.CLONE_NEWNET
    sc.unshare(flags)
    if spec.network_mode == "bridge":
        chan.send(b'{"netns": true}')
        if os.read(go_fd, 1) != b"G":
            raise StartFailure("network setup for the container failed")
    if go_fd >= 0:
        os.close(go_fd)
    if spec.network_mode != "host":
        netconf.loopback_up()
        if spec.net is not None:
            netconf.configure_interface(spec.net)
        sc.sethostname(spec.hostname or spec.id[:12])
    elif spec.hostname:
        sc.sethostname(spec.hostname)
    _mount_rootfs(spec)
    master = _open_console() if spec.tty else None
    cwd = spec.cwd or "/"
    if not os.path.isdir(cwd):
        os.makedirs(cwd, mode=0o755)
    if spec.readonly_rootfs:
        sc.mount(None, "/", None, sc.MS_REMOUNT | sc.MS_BIND | sc.MS_RDONLY)
    uid, gid, groups, home = resolve_user(spec.user, _slurp("/etc/passwd"), _slurp("/etc/group"))
    env = spec.env_dict()
    env.setdefault("PATH", DEFAULT_PATH)
    env.setdefault("HOSTNAME", spec.hostname or spec.id[:12])
    env.setdefault("HOME", home)
    if spec.tty:
        env.setdefault("TERM", "xterm")
    # ready: hand the pty master over, then wait for the engine's start
    if master is not None:
        socket.send_fds(chan, [b'{"ready": true}'], [master])
        os.close(master)
    else:
        chan.send(b'{"ready": true}')
    if chan.recv(16) != b"go":
        os._exit(128)
    for sig in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT, signal.SIGTERM, signal.SIGCHLD):
        signal.signal(sig, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
    sc.drop_capabilities(spec.capabilities)  # a non-root uid then loses them all on setuid
    os.setgroups(groups)
    os.setgid(gid)
    os.setuid(uid)
    if spec.no_new_privileges:
        sc.set_no_new_privs()
    try:
        os.chdir(cwd)
    except OSError as e:
        raise StartFailure(f"chdir to cwd (\"{cwd}\") set in config.json failed: {_errtext(e)}")
    path = lookup(spec.args[0], env["PATH"])
    try:
        os.execve(path, spec.args, env)
    except OSError as e:
        msg = f"exec {path}: {_errtext(OSError(e.errno, e.strerror))}"
        raise StartFailure(msg, exit_code_for(msg)) from None


def lookup(name: str, path_var: str) -> str:
    """Go's exec.LookPath, whose error texts Docker's CLI maps to exit codes."""
    def check(file: str) -> None:
        st = os.stat(file)
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(21, "is a directory")
        if not st.st_mode & 0o111:
            raise PermissionError(13, "permission denied")

    if "/" in name:
        try:
            check(name)
        except (IsADirectoryError, PermissionError) as e:
            raise StartFailure(f'exec: "{name}": {e.strerror}', 126) from None
        except OSError as e:
            msg = f'exec: "{name}": stat {name}: {_errtext(OSError(e.errno, e.strerror))}'
            raise StartFailure(msg, exit_code_for(msg)) from None
        return name
    for d in path_var.split(":"):
        candidate = os.path.join(d or ".", name)
        try:
            check(candidate)
            return candidate
        except OSError:
            continue
    raise StartFailure(f'exec: "{name}": executable file not found in $PATH', 127)


def _slurp(path: str) -> str:
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def _ensure(path: str, is_dir: bool) -> None:
    if is_dir:
        os.makedirs(path, exist_ok=True)
    elif not os.path.exists(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        open(path, "a").close()


def _bind(source: str, target: str, readonly: bool) -> None:
    sc.mount(source, target, None, sc.MS_BIND | sc.MS_REC)
    if readonly:
        sc.mount(None, target, None, sc.MS_REMOUNT | sc.MS_BIND | sc.MS_RDONLY | sc.MS_REC)


def _mount_rootfs(spec: ContainerSpec) -> None:
    sc.mount(None, "/", None, sc.MS_REC | sc.MS_PRIVATE)
    root = spec.merged_dir
    data = f"lowerdir={':'.join(spec.lower_dirs)},upperdir={spec.upper_dir},workdir={spec.work_dir}"
    sc.mount("overlay", root, "overlay", 0, data)
    for m in spec.mounts:
        target = root + m.target
        if m.type == "tmpfs":
            _ensure(target, True)
            sc.mount("tmpfs", target, "tmpfs", sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC
                     | (sc.MS_RDONLY if m.readonly else 0), m.options or "mode=1777")
        else:
            if not os.path.exists(m.source):
                raise StartFailure(f"invalid mount config: bind source path does not exist: {m.source}")
            _ensure(target, os.path.isdir(m.source))
            _bind(m.source, target, m.readonly)
    for name, source in spec.etc_files.items():
        _ensure(f"{root}/etc/{name}", False)
        _bind(source, f"{root}/etc/{name}", False)
    nosuid = sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC
    _ensure(f"{root}/proc", True)
    sc.mount("proc", f"{root}/proc", "proc", nosuid)
    _ensure(f"{root}/sys", True)
    sc.mount("sysfs", f"{root}/sys", "sysfs", nosuid | sc.MS_RDONLY)
    _mount_dev(root, nosuid)
    for p in MASKED_PATHS:
        target = root + p
        if os.path.isdir(target):
            sc.mount("tmpfs", target, "tmpfs", sc.MS_RDONLY, "size=0")
        elif os.path.exists(target):
            sc.mount(f"{root}/dev/null", target, None, sc.MS_BIND)
    for p in READONLY_PATHS:
        if os.path.exists(root + p):
            _bind(root + p, root + p, True)
    os.chdir(root)
    sc.pivot_root(".", ".")
    sc.mount(None, ".", None, sc.MS_SLAVE | sc.MS_REC)
    sc.umount2(".", sc.MNT_DETACH)
    os.chdir("/")


def _mount_dev(root: str, nosuid: int) -> None:
    dev = f"{root}/dev"
    _ensure(dev, True)
    sc.mount("tmpfs", dev, "tmpfs", sc.MS_NOSUID | sc.MS_STRICTATIME, "mode=755,size=65536k")
    for name, (major, minor) in DEVICES.items():
        os.mknod(f"{dev}/{name}", 0o666 | stat.S_IFCHR, os.makedev(major, minor))
        os.chmod(f"{dev}/{name}", 0o666)
    for name, target in (("ptmx", "pts/ptmx"), ("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                         ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2"),
                         ("core", "/proc/kcore")):
        os.symlink(target, f"{dev}/{name}")
    for d in ("pts", "shm", "mqueue"):
        os.mkdir(f"{dev}/{d}")
    sc.mount("devpts", f"{dev}/pts", "devpts", sc.MS_NOSUID | sc.MS_NOEXEC,
             "newinstance,ptmxmode=0666,mode=0620,gid=5")
    sc.mount("shm", f"{dev}/shm", "tmpfs", nosuid, "mode=1777,size=65536k")
    sc.mount("mqueue", f"{dev}/mqueue", "mqueue", nosuid)


def _open_console() -> int:
    """A pty from the container's own devpts instance: its slave becomes stdio,
    the controlling terminal and /dev/console; the master goes to the supervisor."""
    master, slave = os.openpty()
    name = os.ttyname(slave)
    _ensure("/dev/console", False)
    sc.mount(name, "/dev/console", None, sc.MS_BIND)
    for i in range(3):
        os.dup2(slave, i)
    os.close(slave)
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    return master
