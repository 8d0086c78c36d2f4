"""Pushing from refimpld: the real docker CLI, refimpl-registry and Debian's docker-registry."""
from __future__ import annotations

import json
import shutil
import subprocess
import urllib.request
from pathlib import Path

import pytest

from conformance import services

from .imagekit import DOCKER, Daemon, make_image, push_image, start_registry, workdir
from .test_pull import BASE, TOP

pytestmark = pytest.mark.skipif(not Path(DOCKER).exists(), reason="the docker CLI is not installed")


def out(r) -> str:
    return r.stdout.decode() + r.stderr.decode()


@pytest.fixture(scope="module")
def env():
    d = workdir("push")
    server, host = start_registry(d / "registry")
    app = make_image([BASE, TOP])
    push_image(host, "dockspec/app", "latest", app)
    daemon = Daemon(d).start()
    assert daemon.docker("pull", f"{host}/dockspec/app").returncode == 0
    yield daemon, host, app
    daemon.stop()
    server.stop()
    shutil.rmtree(d, ignore_errors=True)


def manifest_of(host: str, repo: str, ref: str) -> tuple[dict, str]:
    req = urllib.request.Request(f"http://{host}/v2/{repo}/manifests/{ref}",
                                 headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"})
    with urllib.request.urlopen(req) as r:
        return json.loads(r.read()), r.headers["Docker-Content-Digest"]


def test_push_a_new_tag_reuses_layers_and_records_the_digest(env):
    daemon, host, app = env
    assert daemon.docker("tag", f"{host}/dockspec/app", f"{host}/dockspec/copy:v1").returncode == 0
    r = daemon.docker("push", f"{host}/dockspec/copy:v1")
    assert r.returncode == 0, out(r)
    text = out(r)
    assert "The push refers to repository" in text
    manifest, digest = manifest_of(host, "dockspec/copy", "v1")
    assert f"v1: digest: {digest}" in text
    assert manifest["config"]["digest"] == app.id
    assert [l["digest"] for l in manifest["layers"]] == [l["digest"] for l in json.loads(app.manifest)["layers"]]
    r = daemon.docker("image", "inspect", "--format", "{{json .RepoDigests}}", f"{host}/dockspec/copy:v1")
    assert f"{host}/dockspec/copy@{digest}" in out(r)
    r = daemon.docker("push", f"{host}/dockspec/copy:v1")          # everything is there now
    assert r.returncode == 0 and "Layer already exists" in out(r), out(r)


def test_push_then_pull_back_after_removal(env):
    daemon, host, app = env
    assert daemon.docker("tag", f"{host}/dockspec/app", f"{host}/dockspec/round:trip").returncode == 0
    assert daemon.docker("push", f"{host}/dockspec/round:trip").returncode == 0
    assert daemon.docker("rmi", f"{host}/dockspec/round:trip").returncode == 0
    r = daemon.docker("pull", f"{host}/dockspec/round:trip")
    assert r.returncode == 0, out(r)
    r = daemon.docker("image", "inspect", "--format", "{{.Id}}", f"{host}/dockspec/round:trip")
    assert out(r).strip() == app.id


def test_push_of_a_missing_image_and_to_a_dead_registry(env):
    daemon, host, _ = env
    r = daemon.docker("push", f"{host}/dockspec/nothing-here:v1")
    assert r.returncode != 0 and ("No such image" in out(r) or "does not exist" in out(r)), out(r)
    port = services.free_port()
    assert daemon.docker("tag", f"{host}/dockspec/app", f"127.0.0.1:{port}/x/y:z").returncode == 0
    r = daemon.docker("push", f"127.0.0.1:{port}/x/y:z")
    assert r.returncode != 0 and "connection refused" in out(r), out(r)
    assert "Traceback" not in out(r)


@pytest.mark.skipif(shutil.which("docker-registry") is None, reason="env-skip: Debian's docker-registry is not installed")
def test_push_to_debian_docker_registry(env, tmp_path):
    daemon, host, app = env
    port = services.free_port()
    (tmp_path / "config.yml").write_text(services.REGISTRY_CONFIG.format(root=tmp_path / "data", port=port))
    proc = subprocess.Popen(["docker-registry", "serve", str(tmp_path / "config.yml")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        reg = f"127.0.0.1:{port}"
        services.wait_until(lambda: services.answers(f"http://{reg}", "/v2/"), "docker-registry", 20, proc)
        assert daemon.docker("tag", f"{host}/dockspec/app", f"{reg}/dockspec/app:v1").returncode == 0
        r = daemon.docker("push", f"{reg}/dockspec/app:v1")
        assert r.returncode == 0, out(r)
        manifest, digest = manifest_of(reg, "dockspec/app", "v1")
        assert manifest["config"]["digest"] == app.id
        assert daemon.docker("rmi", f"{reg}/dockspec/app:v1").returncode == 0
        r = daemon.docker("pull", f"{reg}/dockspec/app@{digest}")
        assert r.returncode == 0, out(r)
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.mark.parametrize("mode", ["basic", "token"])
def test_login_then_push_and_pull_logout_then_refused(env, mode, tmp_path):
    from refimpl.registry.auth import Auth, Htpasswd
    daemon, host, _ = env
    (tmp_path / "htpasswd").write_text("alice:{PLAIN}s3cret\n")
    server, reg = start_registry(tmp_path / "root", Auth(mode, Htpasswd(str(tmp_path / "htpasswd"))))
    try:
        r = daemon.docker("login", "-u", "alice", "--password-stdin", reg, input=b"wrong\n")
        assert r.returncode != 0 and "incorrect username or password" in out(r), out(r)
        r = daemon.docker("login", "-u", "alice", "--password-stdin", reg, input=b"s3cret\n")
        assert r.returncode == 0 and "Login Succeeded" in out(r), out(r)
        ref = f"{reg}/alice/app:v1"
        assert daemon.docker("tag", f"{host}/dockspec/app", ref).returncode == 0
        r = daemon.docker("push", ref)
        assert r.returncode == 0, out(r)
        assert daemon.docker("rmi", ref).returncode == 0
        assert daemon.docker("pull", ref).returncode == 0
        assert daemon.docker("rmi", ref).returncode == 0
        assert daemon.docker("logout", reg).returncode == 0
        r = daemon.docker("pull", ref)
        assert r.returncode != 0, out(r)
        assert "Traceback" not in out(r)
    finally:
        server.stop()


def test_default_registry_setting_serves_familiar_names(tmp_path):
    """`--default-registry HOST`: `busybox` means docker.io/library/busybox, fetched from HOST."""
    d = workdir("defreg")
    server, host = start_registry(d / "registry")
    app = make_image([BASE, TOP])
    push_image(host, "library/busybox", "latest", app)
    daemon = Daemon(d, ["--default-registry", host]).start()
    try:
        r = daemon.docker("pull", "busybox")
        assert r.returncode == 0, out(r)
        r = daemon.docker("image", "inspect", "--format", "{{.Id}} {{json .RepoTags}}", "docker.io/library/busybox")
        assert out(r).split() == [app.id, '["busybox:latest"]']
    finally:
        daemon.stop()
        server.stop()
        shutil.rmtree(d, ignore_errors=True)
