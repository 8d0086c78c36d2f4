"""Targets: one implementation under test, driven through its CLI and its API.

A target is read from targets.toml (or a file named by $DOCKSPEC_TARGETS): an
argv prefix for its CLI and an Engine API endpoint. The adapter runs CLI
commands (plainly, or inside a real pseudo-terminal for `-i -t`), speaks HTTP
to the API socket, and probes the target's capabilities once per run.

Like podman's CLI, which talks to a local engine or a remote API chosen once at
start-up, scenarios never know which target they drive.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pexpect
import pyte

from . import services

TARGETS_FILE = Path(os.environ.get("DOCKSPEC_TARGETS", Path(__file__).with_name("targets.toml")))


class TargetError(RuntimeError):
    """The target is unknown or does not answer; the message is one line."""


@dataclass
class Result:
    argv: list[str]
    rc: int
    out: str
    err: str
    seconds: float

    def describe(self) -> str:
        cmd = " ".join(shlex.quote(a) for a in self.argv)
        return (f"$ {cmd}\n[exit {self.rc} after {self.seconds:.2f}s]\n"
                f"--- stdout\n{self.out[-3000:]}\n--- stderr\n{self.err[-3000:]}")


@dataclass
class ApiResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self):
        return json.loads(self.body or b"null")


def load_config(path: Path = TARGETS_FILE) -> dict[str, dict]:
    try:
        return tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise TargetError(f"cannot read targets file {path}: {e}") from None


@dataclass
class Target:
    name: str
    cli: list[str]
    endpoint: str
    service: str
    default_network: str
    env: dict[str, str] = field(default_factory=dict)
    second_daemon: str = ""
    description: str = ""
    capabilities: dict[str, str | None] = field(default_factory=dict)
    base_env: dict[str, str] | None = None   # the environment CLI commands start from

    @classmethod
    def named(cls, name: str, path: Path = TARGETS_FILE) -> "Target":
        config = load_config(path)
        if name not in config:
            known = ", ".join(sorted(config))
            raise TargetError(f"unknown target {name!r} (known targets: {known})")
        c = config[name]
        state = str(services.STATE_DIR)
        endpoint = c["endpoint"].replace("{state}", state)
        cli = [a.replace("{endpoint}", endpoint) for a in c["cli"]]
        if cli and shutil.which(cli[0]) is None:
            # A CLI installed in the suite's own virtual environment (refimpl) need not be on PATH.
            beside = Path(sys.executable).parent / cli[0]
            if beside.exists():
                cli[0] = str(beside)
        return cls(name=name, cli=cli, endpoint=endpoint, service=c.get("service", name),
                   default_network=c.get("default_network", "bridge"), env=dict(c.get("env", {})),
                   second_daemon=c.get("second_daemon", ""), description=c.get("description", ""))

    # ------------------------------------------------------------------ CLI
    def environ(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = dict(self.base_env if self.base_env is not None else os.environ)
        env.update(self.env)
        env.update(extra or {})
        return env

    def run(self, args: list[str], input: str | bytes | None = None, timeout: float = 120,
            env: dict[str, str] | None = None, cli: list[str] | None = None) -> Result:
        argv = [*(cli or self.cli), *args]
        t0 = time.monotonic()
        data = input.encode() if isinstance(input, str) else input
        try:
            p = subprocess.run(argv, input=data, capture_output=True, timeout=timeout,
                               env=self.environ(env), stdin=None if data is not None else subprocess.DEVNULL)
        except subprocess.TimeoutExpired as e:
            out = (e.stdout or b"").decode(errors="replace")
            return Result(argv, -1, out, f"timed out after {timeout}s", time.monotonic() - t0)
        except FileNotFoundError:
            return Result(argv, 127, "", f"{argv[0]}: command not found", 0.0)
        return Result(argv, p.returncode, p.stdout.decode(errors="replace"),
                      p.stderr.decode(errors="replace"), time.monotonic() - t0)

    def ok(self, args: list[str], **kw) -> Result:
        """Run a command that must succeed (set-up and clean-up steps)."""
        r = self.run(args, **kw)
        if r.rc != 0:
            raise AssertionError(f"command failed:\n{r.describe()}")
        return r

    def inspect(self, obj: str, kind: str = "") -> dict:
        args = [kind, "inspect", obj] if kind else ["inspect", obj]
        data = json.loads(self.ok(args).out)
        return data[0] if isinstance(data, list) else data

    def terminal(self, args: list[str], env: dict[str, str] | None = None) -> "Terminal":
        return Terminal([*self.cli, *args], self.environ(env))

    # ------------------------------------------------------------------ API
    def api(self, method: str, path: str, body: bytes | dict | None = None,
            headers: dict[str, str] | None = None, endpoint: str | None = None,
            timeout: float = 60) -> ApiResponse:
        conn = services.connection(endpoint or self.endpoint, timeout)
        hdrs = dict(headers or {})
        if isinstance(body, dict):
            body = json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        try:
            conn.request(method, path, body=body, headers=hdrs)
            resp = conn.getresponse()
            data = resp.read()
            return ApiResponse(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data)
        finally:
            conn.close()

    def check_alive(self) -> None:
        if not services.answers(self.endpoint):
            raise TargetError(f"target {self.name}: nothing answers on {self.endpoint}")

    def version(self) -> dict:
        try:
            return self.api("GET", "/version").json()
        except (OSError, ValueError):
            return {}


class Terminal:
    """A CLI process on a real pseudo-terminal: type into it, read the screen."""

    def __init__(self, argv: list[str], env: dict[str, str], rows: int = 24, cols: int = 120):
        self.argv = argv
        self.screen = pyte.Screen(cols, rows)
        self.stream = pyte.ByteStream(self.screen)
        self.transcript = b""
        self.child = pexpect.spawn(argv[0], argv[1:], env=env, dimensions=(rows, cols), timeout=30)

    def _pump(self, timeout: float) -> bool:
        try:
            data = self.child.read_nonblocking(65536, timeout=timeout)
        except pexpect.TIMEOUT:
            return True
        except pexpect.EOF:
            return False
        self.transcript += data
        self.stream.feed(data)
        return True

    def text(self) -> str:
        return ANSI.sub("", self.transcript.decode(errors="replace")).replace("\r", "")

    def wait_for(self, pattern: str, timeout: float = 30) -> str:
        """Wait until the output (since start) matches the regex `pattern`."""
        deadline = time.monotonic() + timeout
        rx = re.compile(pattern)
        while True:
            m = rx.search(self.text())
            if m:
                return m.group(0)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"terminal never showed /{pattern}/ within {timeout}s; "
                                     f"it shows:\n{self.display()}")
            if not self._pump(min(0.2, remaining)):
                m = rx.search(self.text())
                if m:
                    return m.group(0)
                raise AssertionError(f"terminal process ended without showing /{pattern}/; "
                                     f"it shows:\n{self.display()}")

    def type(self, line: str) -> None:
        self.child.send(line + "\r")

    def send_eof(self) -> None:
        self.child.sendeof()

    def display(self) -> str:
        return "\n".join(line.rstrip() for line in self.screen.display).rstrip()

    def wait_exit(self, timeout: float = 30) -> int:
        deadline = time.monotonic() + timeout
        while self.child.isalive() and time.monotonic() < deadline:
            self._pump(0.2)
        if self.child.isalive():
            raise AssertionError(f"terminal process still running after {timeout}s:\n{self.display()}")
        self.child.close()
        return self.child.exitstatus if self.child.exitstatus is not None else 128 + (self.child.signalstatus or 0)

    def close(self) -> None:
        if self.child.isalive():
            self.child.terminate(force=True)


ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\x1b[()][A-Z0-9]|\x1b[=>]")


def probe(target: Target) -> dict[str, str | None]:
    """Capabilities: name → None when present, or the reason it is missing.

    Reasons starting with "unsupported:" are the target's; "env-skip:" the host's.
    """
    caps: dict[str, str | None] = {}
    info = {}
    try:
        info = target.api("GET", "/info").json() or {}
    except (OSError, ValueError):
        pass
    controllers = _host_cgroup_controllers()
    for cap, ctrl, key in [("memory-limit", "memory", "MemoryLimit"),
                           ("pids-limit", "pids", "PidsLimit"),
                           ("cpu-limit", "cpu", "CpuCfsQuota"),
                           ("pause", "freezer", None)]:
        if ctrl not in controllers:
            caps[cap] = f"env-skip: the host has no {ctrl} cgroup controller"
        elif key and info.get(key) is False:
            caps[cap] = f"unsupported: {target.name} reports {key}=false"
        else:
            caps[cap] = None
    caps["tty"] = None
    caps["second-daemon"] = None if target.second_daemon else f"unsupported: {target.name} names no way to start a second daemon"
    caps["tcp-endpoint"] = caps["second-daemon"]
    caps["iptables"] = None if _which("iptables") else "env-skip: iptables is not installed"
    caps["bridge-network"] = caps["iptables"]
    caps["skopeo"] = None if _which("skopeo") else "env-skip: skopeo is not installed"
    caps["legacy-plugins"] = _legacy_plugins(target)
    return caps


def _legacy_plugins(target: Target) -> str | None:
    """Docker's legacy plugins: a socket in /run/docker/plugins (or a .spec file) that the
    engine finds by name the first time it is used. Podman does not look there: it knows only
    the volume plugins its containers.conf lists (`[engine.volume_plugins]`)."""
    if target.service == "podman":
        return ("unsupported: podman finds volume plugins only through containers.conf "
                "[engine.volume_plugins], not in Docker's plugin directories")
    from .volume_plugins import why_not
    return why_not()


def _which(cmd: str) -> bool:
    from shutil import which
    return which(cmd) is not None


def _host_cgroup_controllers() -> set[str]:
    found = set()
    try:
        for line in Path("/proc/cgroups").read_text().splitlines()[1:]:
            name, _, _, enabled = line.split()
            if enabled == "1":
                found.add(name)
    except OSError:
        pass
    try:
        found |= set(Path("/sys/fs/cgroup/cgroup.controllers").read_text().split())
    except OSError:
        pass
    return found
