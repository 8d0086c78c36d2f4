"""A real refimpld for the container tests, driven by the real docker CLI.

The data root is prepared with the offline busybox image before the daemon
starts; the daemon gets its own socket, data and exec roots under
/tmp/wt-containers-*, and its own bridge (dsct…). Everything is removed again:
containers (rm -f through the API), the daemon (by its PID), the bridge and its
iptables chains, the directories.
"""

from __future__ import annotations

import http.client
import io
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKER = shutil.which("docker") or "/usr/local/bin/docker"


def why_not() -> str | None:
    if os.geteuid() != 0:
        return "containers need root (namespaces, mounts, cgroups)"
    if not os.path.exists(DOCKER):
        return "the docker CLI is not installed"
    if not os.path.exists("/bin/busybox"):
        return "no /bin/busybox to build the offline busybox image (apt-get install busybox-static)"
    with open("/proc/filesystems") as f:
        if "overlay" not in f.read():
            return "the kernel has no overlayfs"
    if shutil.which("iptables") is None:
        return "iptables is not installed (the default bridge network needs it)"
    return None


class UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float = 30):
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.path)


class Daemon:
    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="wt-containers-", dir="/tmp"))
        self.sock = str(self.dir / "refimpl.sock")
        self.data, self.exec = self.dir / "data", self.dir / "exec"
        self.bridge = "dsct" + secrets.token_hex(4)
        self.proc: subprocess.Popen | None = None
        self.env = dict(os.environ, DOCKER_HOST=f"unix://{self.sock}", DOCKER_CLI_HINTS="false")
        self.env.pop("DOCKER_CONTEXT", None)

    def prepare(self) -> "Daemon":
        from conformance.images import build_busybox
        from refimpl.engine.images import ImageService
        b = build_busybox()
        images = ImageService(self.data / "image")
        image = images.add_image(b.config, [io.BytesIO(x) for x in b.layers])
        images.tag(image.id, "busybox")
        self.image_id = image.id
        return self

    def start(self) -> "Daemon":
        log = open(self.dir / "refimpld.log", "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "refimpl.daemon", "-H", f"unix://{self.sock}", "--data-root",
             str(self.data), "--exec-root", str(self.exec), "--bridge", self.bridge],
            cwd=ROOT, stdout=log, stderr=log, env=dict(os.environ, PYTHONPATH=str(ROOT)))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"refimpld exited: {(self.dir / 'refimpld.log').read_text()[-2000:]}")
            try:
                if self.api("GET", "/_ping")[0] == 200:
                    return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("refimpld did not answer /_ping in 20 s")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def cleanup(self) -> None:
        try:
            if self.proc is None:
                self.start()
            for c in self.api("GET", "/containers/json?all=1")[1]:
                self.api("DELETE", f"/containers/{c['Id']}?force=1")
        except Exception:   # noqa: BLE001 - best effort; the cgroup sweep below is the backstop
            pass
        self.stop()
        _kill_leftovers(self.data / "containers")
        from refimpl.network import bridge
        try:
            bridge.delete_bridge(self.bridge)
        except Exception:  # noqa: BLE001
            pass
        shutil.rmtree(self.dir, ignore_errors=True)

    # -- clients ------------------------------------------------------------------------
    def docker(self, *args: str, input: str | None = None, timeout: float = 30,
               check: bool = False) -> subprocess.CompletedProcess:
        p = subprocess.run([DOCKER, *args], input=input, capture_output=True, text=True,
                           env=self.env, timeout=timeout)
        if check and p.returncode:
            raise AssertionError(f"docker {' '.join(args)}: {p.returncode}: {p.stderr}")
        return p

    def out(self, *args: str, **kw) -> str:
        return self.docker(*args, check=True, **kw).stdout.strip()

    def api(self, method: str, path: str, body=None, raw: bytes | None = None):
        conn = UnixHTTP(self.sock)
        try:
            data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
            conn.request(method, "/v1.44" + path if not path.startswith("/_") else path, body=data,
                         headers={"Content-Type": "application/json"} if data is not None else {})
            resp = conn.getresponse()
            payload = resp.read()
            try:
                return resp.status, json.loads(payload) if payload.strip() else None
            except ValueError:
                return resp.status, payload
        finally:
            conn.close()

    def inspect(self, ref: str) -> dict:
        status, body = self.api("GET", f"/containers/{ref}/json")
        assert status == 200, body
        return body


def _kill_leftovers(containers_dir: Path) -> None:
    from refimpl.runtime.cgroups import Cgroup
    if not containers_dir.exists():
        return
    for d in containers_dir.iterdir():
        cg = Cgroup("refimpl", d.name)
        if cg.exists():
            for pid in cg.pids():
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            if cg.frozen():
                cg.thaw()
            try:
                cg.remove(timeout=3)
            except OSError:
                pass


def daemon_fixture():
    reason = why_not()
    if reason:
        pytest.skip(reason)
    d = Daemon()
    try:
        d.prepare().start()
        yield d
    finally:
        d.cleanup()
