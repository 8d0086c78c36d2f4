"""A real dockerd pulls from and pushes to refimpl-registry, digests preserved."""
from __future__ import annotations

import json
import subprocess
import sys
import urllib.request

import pytest

from conformance import images, services

pytestmark = pytest.mark.usefixtures("host_dockerd")


@pytest.fixture
def registry(tmp_path):
    port = services.free_port()
    proc = subprocess.Popen([sys.executable, "-m", "refimpl.registry.server", "--root", str(tmp_path / "root"),
                             "--listen", f"127.0.0.1:{port}"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    addr = f"127.0.0.1:{port}"
    try:
        services.wait_until(lambda: services.answers(f"http://{addr}", "/v2/"), "refimpl-registry", 20, proc)
        yield addr
    finally:
        proc.terminate()
        proc.wait(10)


def docker(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=120)


def test_dockerd_pulls_then_pushes_through_refimpl_registry(registry):
    built = images.build_busybox()
    repo = f"{registry}/interop/busybox"
    digest = images.push(built, registry, "interop/busybox", "v1")
    pushed_back = f"{registry}/interop/copy:v2"
    try:
        r = docker("pull", f"{repo}:v1")
        assert r.returncode == 0, r.stderr
        assert digest in r.stdout
        inspect = json.loads(docker("image", "inspect", f"{repo}:v1").stdout)[0]
        assert inspect["Id"] == built.image_id
        assert f"{repo}@{digest}" in inspect["RepoDigests"]
        assert docker("tag", f"{repo}:v1", pushed_back).returncode == 0
        r = docker("push", pushed_back)
        assert r.returncode == 0, r.stderr
        assert "Mounted from interop/busybox" in r.stdout or "exists" in r.stdout.lower() \
            or "Pushed" in r.stdout, r.stdout
        req = urllib.request.Request(f"http://{registry}/v2/interop/copy/manifests/v2",
                                     headers={"Accept": images.MT_MANIFEST})
        with urllib.request.urlopen(req) as resp:
            new_digest = resp.headers["Docker-Content-Digest"]
            manifest = json.loads(resp.read())
        # dockerd writes its own manifest bytes, naming the same config and layers
        ours = json.loads(built.manifest)
        assert manifest["config"]["digest"] == ours["config"]["digest"]
        assert len(manifest["layers"]) == len(ours["layers"])   # layers may be recompressed
        # and a pull by the digest the registry reports gives the same image back
        docker("rmi", pushed_back)
        r = docker("pull", f"{registry}/interop/copy@{new_digest}")
        assert r.returncode == 0, r.stderr
        assert json.loads(docker("image", "inspect", f"{registry}/interop/copy@{new_digest}").stdout)[0]["Id"] \
            == built.image_id
    finally:
        for line in docker("images", "--digests", "--format", "{{.Repository}}@{{.Digest}}").stdout.split():
            if line.startswith(f"{registry}/"):
                docker("rmi", "-f", line)
        for ref in (f"{repo}:v1", pushed_back):
            docker("rmi", "-f", ref)
