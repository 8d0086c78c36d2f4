"""Helpers for the image tests: registries on 127.0.0.1, image blobs made in memory,
refimpld as a subprocess, the docker CLI and raw Engine API calls over its socket."""
from __future__ import annotations

import gzip
import hashlib
import http.client
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from refimpl.httpd import BackgroundServer
from refimpl.image import manifest as mf
from refimpl.registry.server import Registry
from refimpl.registry.store import Store

ROOT = Path(__file__).resolve().parents[2]
DOCKER = shutil.which("docker") or "/usr/local/bin/docker"


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def layer_tar(files: dict[str, bytes]) -> bytes:
    """A deterministic layer tar of regular files (parents implied)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(files):
            ti = tarfile.TarInfo(name)
            ti.size, ti.mode, ti.mtime = len(files[name]), 0o644, 0
            tar.addfile(ti, io.BytesIO(files[name]))
    return buf.getvalue()


def gz(data: bytes) -> bytes:
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as f:
        f.write(data)
    return out.getvalue()


@dataclass
class Img:
    """An image as a registry holds it: config, compressed layers, manifest bytes."""
    config: bytes
    layers: list[bytes]
    manifest: bytes
    media_type: str

    @property
    def id(self) -> str:
        return sha(self.config)

    @property
    def digest(self) -> str:
        return sha(self.manifest)

    def blobs(self) -> dict[str, bytes]:
        return {sha(b): b for b in [self.config, *self.layers]}


def make_image(tars: list[bytes], *, oci: bool = False, arch: str = "amd64", labels: dict | None = None,
               created: str | None = None) -> Img:
    diff_ids = [sha(t) for t in tars]
    blobs = [gz(t) for t in tars]
    extra = {"created": created} if created else {}
    config = mf.canonical_json({"architecture": arch, "os": "linux",
                                "config": {"Cmd": ["sh"], "Labels": labels or {}},
                                "rootfs": {"type": "layers", "diff_ids": diff_ids},
                                "history": [{"created_by": f"layer {i}"} for i in range(len(tars))],
                                **extra})
    layer_type = mf.OCI_LAYER_GZIP if oci else mf.DOCKER_LAYER
    media = mf.OCI_MANIFEST if oci else mf.DOCKER_MANIFEST
    manifest = mf.build_manifest(config, [mf.Descriptor(layer_type, sha(b), len(b)) for b in blobs], media)
    return Img(config, blobs, manifest, media)


def push_raw(host: str, repo: str, ref: str, blobs: dict[str, bytes], manifest: bytes,
             media_type: str, headers: dict | None = None) -> str:
    for digest, data in blobs.items():          # POST, then PUT ?digest= (every registry has it)
        req = urllib.request.Request(f"http://{host}/v2/{repo}/blobs/uploads/", data=b"",
                                     method="POST", headers=headers or {})
        with urllib.request.urlopen(req, timeout=20) as resp:
            location = resp.headers["Location"]
        if location.startswith("/"):
            location = f"http://{host}{location}"
        sep = "&" if "?" in location else "?"
        req = urllib.request.Request(f"{location}{sep}digest={digest}", data=data, method="PUT",
                                     headers={"Content-Type": "application/octet-stream",
                                              **(headers or {})})
        urllib.request.urlopen(req, timeout=20).read()
    req = urllib.request.Request(f"http://{host}/v2/{repo}/manifests/{ref}", data=manifest, method="PUT",
                                 headers={"Content-Type": media_type, **(headers or {})})
    urllib.request.urlopen(req, timeout=20).read()
    return sha(manifest)


def push_image(host: str, repo: str, tag: str, img: Img) -> str:
    return push_raw(host, repo, tag, img.blobs(), img.manifest, img.media_type)


def start_registry(root: Path, auth=None) -> tuple[BackgroundServer, str]:
    server = BackgroundServer(Registry(Store(root), auth), ["127.0.0.1:0"],
                              error_hook=Registry.error_hook).start()
    return server, server.urls[0].split("//", 1)[1]


def tree(root: Path) -> set[str]:
    """Every path under root (to show that a failed operation left nothing)."""
    return {str(p.relative_to(root)) for p in root.rglob("*")} if root.exists() else set()


# ---------------------------------------------------------------------- refimpld + docker CLI
class Daemon:
    def __init__(self, workdir: Path, extra: list[str] | None = None):
        self.dir = workdir
        # A bridge of the test's own (refimpld's default, refimpl0, belongs to a real daemon).
        self.bridge = f"dsim{os.urandom(3).hex()}"
        self.extra = ["--bridge", self.bridge, *(extra or [])]
        self.sock = workdir / "refimpl.sock"
        self.data, self.exec_root = workdir / "data", workdir / "exec"
        self.proc: subprocess.Popen | None = None
        (workdir / "docker-config").mkdir(exist_ok=True)

    def start(self) -> "Daemon":
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "refimpl.daemon", "-H", f"unix://{self.sock}", "--data-root",
             str(self.data), "--exec-root", str(self.exec_root), "--log-level", "warning", *self.extra],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=open(self.dir / "daemon.log", "ab"))
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"refimpld exited: {(self.dir / 'daemon.log').read_text()[-500:]}")
            try:
                if self.api("GET", "/_ping")[0] == 200:
                    return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("refimpld did not answer /_ping within 15 s")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        try:
            from refimpl.network.bridge import delete_bridge
            delete_bridge(self.bridge)
        except Exception:  # noqa: BLE001 - nothing to remove when no container ever started
            pass

    def docker(self, *args: str, input: bytes | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
        env = {**os.environ, "DOCKER_CONFIG": str(self.dir / "docker-config")}
        env.pop("DOCKER_HOST", None)
        return subprocess.run([DOCKER, "-H", f"unix://{self.sock}", *args], input=input, env=env,
                              capture_output=True, timeout=timeout)

    def api(self, method: str, path: str, body: bytes | None = None,
            headers: dict | None = None) -> tuple[int, bytes, dict]:
        conn = _UnixConnection(str(self.sock))
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, resp.read(), {k.lower(): v for k, v in resp.getheaders()}
        finally:
            conn.close()


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str):
        super().__init__("localhost", timeout=60)
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(60)
        self.sock.connect(self.path)


def workdir(prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=f"wt-images-{prefix}-", dir="/tmp"))


def json_lines(data: bytes) -> list[dict]:
    return [json.loads(line) for line in data.splitlines() if line.strip()]

