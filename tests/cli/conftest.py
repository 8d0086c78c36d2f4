"""Fixtures for the CLI tests: a real Docker Engine API daemon, an offline busybox
image, a local registry, and a helper that runs the `refimpl` CLI as a process.

The CLI is tested against whatever daemon answers at $DSCLI_HOST (default: the host's
dockerd); tests skip with a reason if none answers. Everything they create is named
`dscli-*` and removed afterwards; nothing else on the daemon is touched.
"""
from __future__ import annotations

import io
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from refimpl.cli.client import CLIError, Client

ROOT = Path(__file__).resolve().parents[2]
HOST = os.environ.get("DSCLI_HOST", "unix:///var/run/docker.sock")
IMAGE = "dscli-busybox:test"
BUSYBOX = Path("/bin/busybox")
PATH_ENV = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass
class Result:
    rc: int
    out: str
    err: str


def cli_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "DOCKER_HOST"}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


def refimpl(*args: str, input: str | bytes | None = None, host: str | None = HOST, env: dict | None = None,
            timeout: float = 60) -> Result:
    """Run `python -m refimpl.cli [-H host] args...` and collect its output."""
    argv = [sys.executable, "-m", "refimpl.cli"] + (["-H", host] if host else []) + list(args)
    data = input.encode() if isinstance(input, str) else input
    p = subprocess.run(argv, input=data, capture_output=True, timeout=timeout, env=env or cli_env(),
                       stdin=None if data is not None else subprocess.DEVNULL)
    return Result(p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace"))


def docker(*args: str, check: bool = True, input: bytes | None = None) -> str:
    """The real docker CLI, for setting up and for observing independently."""
    p = subprocess.run(["docker", "-H", HOST, *args], capture_output=True, input=input, timeout=120)
    if check and p.returncode:
        raise AssertionError(f"docker {' '.join(args)}: {p.stderr.decode().strip()}")
    return p.stdout.decode()


@pytest.fixture(scope="session")
def daemon(request) -> Client:
    if HOST == "unix:///var/run/docker.sock":
        request.getfixturevalue("host_dockerd")     # started for the session when not running
    try:
        c = Client(HOST)
        c.version
    except CLIError as e:
        pytest.skip(f"no Docker Engine API daemon at {HOST}: {e}")
    if not shutil.which("docker"):
        pytest.skip("the docker CLI is needed to prepare and observe test objects")
    return c


def busybox_tar(marker: int | None = None) -> bytes:
    """A root file system: busybox-static, its applet links, /etc/passwd, /tmp
    (and /etc/marker, to make a layer no other image has)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        def add(name, kind=tarfile.DIRTYPE, mode=0o755, data=b"", link=""):
            ti = tarfile.TarInfo(name)
            ti.type, ti.mode, ti.size, ti.linkname, ti.mtime = kind, mode, len(data), link, 0
            tar.addfile(ti, io.BytesIO(data) if data else None)
        for d in ("bin", "sbin", "usr", "usr/bin", "usr/sbin", "etc", "root", "proc", "sys", "dev"):
            add(d)
        add("tmp", mode=0o1777)
        add("bin/busybox", tarfile.REGTYPE, 0o755, BUSYBOX.read_bytes())
        applets = subprocess.run([str(BUSYBOX), "--list-full"], capture_output=True, text=True).stdout.split()
        for path in sorted(set(applets) - {"bin/busybox"}):
            add(path, tarfile.SYMTYPE, 0o777, link="/bin/busybox")
        add("etc/passwd", tarfile.REGTYPE, 0o644, b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n")
        add("etc/group", tarfile.REGTYPE, 0o644, b"root:x:0:\nnogroup:x:65534:\n")
        if marker is not None:
            add("etc/marker", tarfile.REGTYPE, 0o644, str(marker).encode())
    return buf.getvalue()


@pytest.fixture(scope="session")
def image(daemon) -> str:
    """`dscli-busybox:test`, imported offline from Debian's busybox-static."""
    if not BUSYBOX.exists():
        pytest.skip("/bin/busybox (Debian's busybox-static) is not installed")
    docker("import", "-c", 'CMD ["sh"]', "-c", f"ENV PATH={PATH_ENV}", "-", IMAGE, input=busybox_tar())
    yield IMAGE
    docker("rmi", "-f", IMAGE, check=False)


@pytest.fixture
def names(daemon):
    """A factory of fresh `dscli-*` container names; their containers are removed afterwards."""
    made: list[str] = []

    def new() -> str:
        made.append(f"dscli-{uuid.uuid4().hex[:10]}")
        return made[-1]
    yield new
    for n in made:
        docker("rm", "-f", n, check=False)


@pytest.fixture
def name(names) -> str:
    return names()


def exists(name: str) -> bool:
    return bool(docker("ps", "-aq", "--filter", f"name=^/{name}$").strip())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def registry(image):
    """Debian's docker-registry on 127.0.0.1; yields the repository `127.0.0.1:PORT/dscli/busybox`
    holding `:test` (the local test image) and `:fresh` (a layer the daemon does not have),
    both pushed by docker and removed from the daemon."""
    binary = shutil.which("docker-registry")
    if not binary:
        pytest.skip("docker-registry (Debian package) is not installed")
    tmp = Path(tempfile.mkdtemp(prefix="dscli-registry-"))
    port = _free_port()
    (tmp / "config.yml").write_text(
        "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n"
        f"    rootdirectory: {tmp}/data\nhttp:\n  addr: 127.0.0.1:{port}\n")
    proc = subprocess.Popen([binary, "serve", str(tmp / "config.yml")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        else:
            pytest.skip("docker-registry did not start")
        repo = f"127.0.0.1:{port}/dscli/busybox"
        docker("tag", image, f"{repo}:test")
        docker("import", "-c", 'CMD ["sh"]', "-c", f"ENV PATH={PATH_ENV}", "-", f"{repo}:fresh",
               input=busybox_tar(marker=port))
        for tag in ("test", "fresh"):
            docker("push", f"{repo}:{tag}")
            docker("rmi", f"{repo}:{tag}")
        yield repo
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(tmp, ignore_errors=True)
