"""The services the suite needs: a dockerd, a local registry, podman's API service.

One module, used by `make` (through `conformance services up|down`) and by the
pytest session. Each `ensure_*` function starts its service only when it is not
already answering, waits until it does, and records what it started; `stop()`
stops exactly those processes, by PID, and nothing else. A daemon that was
running before the suite is reused and never restarted or reconfigured.

Never start a dockerd with `--bridge=none`: it deletes the host's docker0.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

STATE_DIR = Path(os.environ.get("DOCKSPEC_STATE", "/run/dockspec"))
STATE_FILE = STATE_DIR / "services.json"
DOCKER_SOCK = "/var/run/docker.sock"


class ServiceError(RuntimeError):
    """A service could not be started or does not answer; the message is one line."""


# --------------------------------------------------------------------------- probes

class UnixHTTPConnection(http.client.HTTPConnection):
    """http.client over a UNIX socket (the Engine API's usual transport)."""

    def __init__(self, path: str, timeout: float = 10.0):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self.unix_path)
        self.sock = sock


def connection(endpoint: str, timeout: float = 10.0) -> http.client.HTTPConnection:
    """An HTTP connection to `unix:///path`, `tcp://host:port` or `http://host:port`."""
    if endpoint.startswith("unix://"):
        return UnixHTTPConnection(endpoint[len("unix://"):], timeout)
    hostport = endpoint.split("://", 1)[-1].rstrip("/")
    host, _, port = hostport.rpartition(":")
    return http.client.HTTPConnection(host, int(port), timeout=timeout)


def answers(endpoint: str, path: str = "/_ping", timeout: float = 2.0) -> bool:
    """True when `endpoint` answers GET `path` with a 2xx (or 401 for registries)."""
    try:
        conn = connection(endpoint, timeout)
        conn.request("GET", path)
        status = conn.getresponse().status
        conn.close()
        return 200 <= status < 300 or status == 401
    except (OSError, http.client.HTTPException):
        return False


def wait_until(check, what: str, timeout: float, proc: subprocess.Popen | None = None,
               log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        if proc is not None and proc.poll() is not None:
            tail = _tail(log) if log else ""
            raise ServiceError(f"{what} exited with status {proc.returncode} during start-up{tail}")
        time.sleep(0.1)
    raise ServiceError(f"{what} did not answer within {timeout:.0f}s{_tail(log) if log else ''}")


def _tail(log: Path) -> str:
    try:
        lines = [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return f" (last log line: {lines[-1][:300]})" if lines else ""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------- the set

@dataclass
class Started:
    """A process this module started, and how to find it again."""
    name: str
    pid: int
    workdir: str = ""


@dataclass
class Services:
    registry: str = ""                     # host:port of the local registry
    registry_kind: str = "distribution"    # which server it is (see registry_kind())
    started: list[Started] = field(default_factory=list)
    endpoints: dict[str, str] = field(default_factory=dict)

    # -- persistence, so `conformance services up` and a later pytest agree
    def save(self) -> None:
        STATE_DIR.mkdir(parents=True, exist_ok=True)
        tmp = STATE_FILE.with_suffix(".tmp")
        tmp.write_text(json.dumps({
            "registry": self.registry,
            "registry_kind": self.registry_kind,
            "started": [s.__dict__ for s in self.started],
            "endpoints": self.endpoints,
        }, indent=1))
        os.replace(tmp, STATE_FILE)

    @classmethod
    def load(cls) -> "Services":
        try:
            data = json.loads(STATE_FILE.read_text())
        except (OSError, ValueError):
            return cls()
        svc = cls(registry=data.get("registry", ""), endpoints=data.get("endpoints", {}),
                  registry_kind=data.get("registry_kind", "distribution"))
        svc.started = [Started(**s) for s in data.get("started", []) if _alive(s.get("pid", 0))]
        return svc

    def stop(self, only: set[int] | None = None) -> None:
        """Stop what this set started (newest first), by PID, and forget it.

        With `only`, just those PIDs: a session stops what it started itself and
        leaves what an earlier `services up` (or another session) started
        running and recorded.
        """
        keep = []
        for s in reversed(self.started):
            if only is not None and s.pid not in only:
                keep.append(s)
                continue
            _terminate(s.pid, s.name)
            if s.workdir and s.workdir.startswith(tempfile.gettempdir()):
                shutil.rmtree(s.workdir, ignore_errors=True)
        self.started = keep[::-1]
        if self.started:
            self.save()
            return
        try:
            STATE_FILE.unlink()
        except OSError:
            pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False


def _terminate(pid: int, name: str, timeout: float = 20.0) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done:
                return
        except ChildProcessError:
            if not _alive(pid):
                return
        time.sleep(0.1)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _spawn(name: str, argv: list[str], log: Path, env: dict | None = None) -> subprocess.Popen:
    if shutil.which(argv[0]) is None:
        raise ServiceError(f"{name}: {argv[0]} is not installed (run scripts/bootstrap)")
    logf = open(log, "ab")
    return subprocess.Popen(argv, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            env=env, start_new_session=True)


# --------------------------------------------------------------------------- dockerd

def ensure_dockerd(svc: Services, sock: str = DOCKER_SOCK, timeout: float = 60.0) -> str:
    """Reuse the dockerd answering on `sock`, or start one with Docker's defaults."""
    endpoint = f"unix://{sock}"
    if answers(endpoint):
        svc.endpoints["docker"] = endpoint
        return endpoint
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    log = STATE_DIR / "dockerd.log"
    proc = _spawn("dockerd", ["dockerd", "-H", endpoint], log)
    svc.started.append(Started("dockerd", proc.pid))
    svc.save()
    wait_until(lambda: answers(endpoint), "dockerd", timeout, proc, log)
    svc.endpoints["docker"] = endpoint
    return endpoint


# --------------------------------------------------------------------------- registry

REGISTRY_CONFIG = """\
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {root}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{port}
"""


REGISTRY_KINDS = ("distribution", "refimpl")


def registry_kind() -> str:
    """Which registry server the suite starts: Debian's docker-registry ("distribution",
    the default) or ours ("refimpl"), from $DOCKSPEC_REGISTRY_KIND."""
    kind = os.environ.get("DOCKSPEC_REGISTRY_KIND", "distribution")
    if kind not in REGISTRY_KINDS:
        raise ServiceError(f"unknown registry kind {kind!r} (DOCKSPEC_REGISTRY_KIND: "
                           f"{' or '.join(REGISTRY_KINDS)})")
    return kind


def ensure_registry(svc: Services, timeout: float = 30.0) -> str:
    """Reuse $DOCKSPEC_REGISTRY or the registry recorded earlier; else start one of the kind asked for."""
    kind = registry_kind()
    wanted = os.environ.get("DOCKSPEC_REGISTRY") or (svc.registry if svc.registry_kind == kind else "")
    if wanted and answers(f"http://{wanted}", "/v2/"):
        svc.registry = wanted
        return wanted
    if os.environ.get("DOCKSPEC_REGISTRY"):
        raise ServiceError(f"registry {wanted} (DOCKSPEC_REGISTRY) does not answer on /v2/")
    workdir = Path(tempfile.mkdtemp(prefix="dockspec-registry-"))
    port = free_port()
    log = workdir / "registry.log"
    if kind == "refimpl":
        import sys
        argv = [sys.executable, "-m", "refimpl.registry.server", "--root", str(workdir / "data"),
                "--listen", f"127.0.0.1:{port}"]
    else:
        (workdir / "config.yml").write_text(REGISTRY_CONFIG.format(root=workdir / "data", port=port))
        argv = ["docker-registry", "serve", str(workdir / "config.yml")]
    proc = _spawn("registry", argv, log)
    svc.started.append(Started("registry", proc.pid, str(workdir)))
    svc.registry, svc.registry_kind = f"127.0.0.1:{port}", kind
    svc.save()
    wait_until(lambda: answers(f"http://{svc.registry}", "/v2/"), "registry", timeout, proc, log)
    return svc.registry


# --------------------------------------------------------------------------- podman

PODMAN_CONTAINERS_CONF = """\
[containers]
# root in this sandbox cannot raise rlimits: do not ask for more than we have
default_ulimits = ["nofile={nofile}:{nofile}", "nproc={nproc}:{nproc}"]
[engine]
events_logger = "file"
cgroup_manager = "cgroupfs"
runtime = "{runtime}"
"""

PODMAN_REGISTRIES_CONF = """\
unqualified-search-registries = []
[[registry]]
location = "{registry}"
insecure = true
"""


def podman_env(svc: Services) -> dict[str, str]:
    """Environment that points podman at our config files, written into the state dir."""
    import resource
    conf_dir = STATE_DIR / "podman"
    conf_dir.mkdir(parents=True, exist_ok=True)
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    nproc = resource.getrlimit(resource.RLIMIT_NPROC)[1]
    nofile = 1048576 if nofile == resource.RLIM_INFINITY else nofile
    # Above a few thousand, runc's setrlimit(NPROC) is refused here; crun cannot
    # run on a hybrid cgroup v1/v2 host at all.
    nproc = 4096 if nproc == resource.RLIM_INFINITY else min(nproc, 4096)
    runtime = "runc" if shutil.which("runc") else "crun"
    (conf_dir / "containers.conf").write_text(
        PODMAN_CONTAINERS_CONF.format(nofile=nofile, nproc=nproc, runtime=runtime))
    (conf_dir / "registries.conf").write_text(
        PODMAN_REGISTRIES_CONF.format(registry=svc.registry or "127.0.0.1"))
    env = dict(os.environ)
    env["CONTAINERS_CONF"] = str(conf_dir / "containers.conf")
    env["CONTAINERS_REGISTRIES_CONF"] = str(conf_dir / "registries.conf")
    return env


def ensure_podman(svc: Services, timeout: float = 30.0) -> str:
    """Start podman's Docker-compatible API service on a socket of our own."""
    sock = STATE_DIR / "podman.sock"
    endpoint = f"unix://{sock}"
    if answers(endpoint):
        svc.endpoints["podman"] = endpoint
        return endpoint
    log = STATE_DIR / "podman-service.log"
    proc = _spawn("podman", ["podman", "system", "service", "--time=0", endpoint], log,
                  env=podman_env(svc))
    svc.started.append(Started("podman", proc.pid))
    svc.save()
    wait_until(lambda: answers(endpoint), "podman service", timeout, proc, log)
    svc.endpoints["podman"] = endpoint
    return endpoint


# --------------------------------------------------------------------------- all

def up(names: list[str]) -> Services:
    """Ensure the named services ("docker", "registry", "podman") answer."""
    svc = Services.load()
    ensure_registry(svc)
    for name in names:
        if name == "docker":
            ensure_dockerd(svc)
        elif name == "podman":
            ensure_podman(svc)
        elif name != "registry":
            raise ServiceError(f"unknown service {name!r}")
    svc.save()
    return svc
