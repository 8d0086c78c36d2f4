"""Pulling from real registries on 127.0.0.1: refimpl-registry (in-process) and, where
installed, Debian's docker-registry. Digests are checked, failures leave nothing."""
from __future__ import annotations

import base64
import json
import shutil
import socket
import subprocess
import time

import pytest

from refimpl.engine.images import ImageService
from refimpl.engine.pull import PullError, pull
from refimpl.httpd import BackgroundServer, Response, Router, json_response
from refimpl.image import manifest as mf
from refimpl.image.reference import ReferenceError
from refimpl.registry.auth import Auth, Htpasswd
from refimpl.registry.client import decode_auth, is_insecure, parse_challenge

from .imagekit import (Img, layer_tar, make_image, push_image, push_raw, sha, start_registry, tree,
                       workdir)

BASE = layer_tar({"bin/tool": b"#!/bin/sh\necho base\n", "etc/os-release": b"ID=test\n"})
TOP = layer_tar({"app/run": b"hello\n"})


@pytest.fixture
def tmp():
    d = workdir("pull")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def reg(tmp):
    server, host = start_registry(tmp / "registry")
    yield host
    server.stop()


@pytest.fixture
def store(tmp):
    return ImageService(tmp / "engine" / "image")


def collect():
    msgs = []
    return msgs, msgs.append


def test_pull_schema2_progress_refs_and_manifest_kept(reg, store):
    img = make_image([BASE, TOP])
    push_image(reg, "dockspec/app", "v1", img)
    msgs, say = collect()
    got = pull(store, f"{reg}/dockspec/app:v1", None, say)
    assert got.id == img.id
    assert got.repo_tags == [f"{reg}/dockspec/app:v1"]
    assert got.repo_digests == [f"{reg}/dockspec/app@{img.digest}"]
    assert store.blobs.get(img.digest) == img.manifest                      # byte-exact
    statuses = [m["status"] for m in msgs]
    assert msgs[0] == {"status": "Pulling from dockspec/app", "id": "v1"}
    for s in ("Pulling fs layer", "Downloading", "Verifying Checksum", "Download complete",
              "Extracting", "Pull complete"):
        assert s in statuses
    assert statuses[-2:] == [f"Digest: {img.digest}", f"Status: Downloaded newer image for {reg}/dockspec/app:v1"]
    down = [m for m in msgs if m["status"] == "Downloading"]
    assert down[-1]["progressDetail"]["current"] == down[-1]["progressDetail"]["total"]
    assert (store.layer_path(got.chain_ids[-1]) / "diff" / "app" / "run").read_bytes() == b"hello\n"
    msgs2, say2 = collect()
    pull(store, f"{reg}/dockspec/app:v1", None, say2)
    assert msgs2[-1]["status"] == f"Status: Image is up to date for {reg}/dockspec/app:v1"
    assert not any(m["status"] == "Downloading" for m in msgs2)


def test_pull_by_digest_and_oci_manifest(reg, store):
    img = make_image([BASE], oci=True)
    push_image(reg, "dockspec/oci", "1", img)
    got = pull(store, f"{reg}/dockspec/oci@{img.digest}", None, lambda m: None)
    assert got.id == img.id and got.repo_tags == []
    assert got.repo_digests == [f"{reg}/dockspec/oci@{img.digest}"]


def test_index_with_several_platforms_picks_amd64(reg, store):
    amd = make_image([BASE], oci=True, arch="amd64")
    arm = make_image([TOP], oci=True, arch="arm64")
    for i in (amd, arm):
        push_image(reg, "dockspec/multi", i.digest.split(":")[1][:8], i)
    index = mf.build_index([mf.Descriptor(mf.OCI_MANIFEST, sha(arm.manifest), len(arm.manifest),
                                          mf.Platform("linux", "arm64")),
                            mf.Descriptor(mf.OCI_MANIFEST, sha(amd.manifest), len(amd.manifest),
                                          mf.Platform("linux", "amd64"))])
    push_raw(reg, "dockspec/multi", "latest", {}, index, mf.OCI_INDEX)
    got = pull(store, f"{reg}/dockspec/multi", None, lambda m: None, platform="linux/amd64")
    assert got.id == amd.id
    assert got.repo_digests == [f"{reg}/dockspec/multi@{sha(index)}"]        # the index digest
    assert store.blobs.get(sha(index)) == index


def test_shared_layers_are_not_downloaded_twice(reg, store):
    first, second = make_image([BASE]), make_image([BASE, TOP])
    push_image(reg, "dockspec/first", "latest", first)
    push_image(reg, "dockspec/second", "latest", second)
    pull(store, f"{reg}/dockspec/first", None, lambda m: None)
    msgs, say = collect()
    pull(store, f"{reg}/dockspec/second", None, say)
    base_id = sha(second.layers[0]).split(":")[1][:12]
    top_id = sha(second.layers[1]).split(":")[1][:12]
    assert {"status": "Already exists", "progressDetail": {}, "id": base_id} in msgs
    assert not any(m.get("id") == base_id and m["status"] == "Downloading" for m in msgs)
    assert any(m.get("id") == top_id and m["status"] == "Pull complete" for m in msgs)


def test_unknown_tag_and_repository_are_404_in_dockers_words(reg, store):
    push_image(reg, "dockspec/app", "v1", make_image([BASE]))
    with pytest.raises(PullError) as e:
        pull(store, f"{reg}/dockspec/app:nope", None, lambda m: None)
    assert e.value.status == 404
    assert str(e.value) == f"manifest for {reg}/dockspec/app:nope not found: manifest unknown: manifest unknown"
    with pytest.raises(ReferenceError, match="invalid reference format"):
        pull(store, "Not/Valid::x", None, lambda m: None)


def test_docker_hub_is_unreachable_cleanly(store):
    with pytest.raises(PullError) as e:
        pull(store, "busybox", None, lambda m: None)
    assert "registry-1.docker.io" in str(e.value) and "\n" not in str(e.value)


class Liar:
    """A registry that serves a correct manifest and config but lies about one blob."""

    def __init__(self, img: Img, lie: str):
        self.img, self.lie = img, lie
        self.router = Router()
        self.router.add("GET", r"/v2/", self.base)
        self.router.add("GET", r"/v2/(?P<name>.+)/manifests/(?P<ref>[^/]+)", self.manifest)
        self.router.add("GET", r"/v2/(?P<name>.+)/blobs/(?P<digest>[^/]+)", self.blob)

    async def __call__(self, req):
        return await self.router(req)

    async def base(self, req):
        return json_response({})

    async def manifest(self, req):
        claimed = sha(b"something else") if self.lie == "manifest" else self.img.digest
        return Response(200, self.img.manifest, {"Content-Type": self.img.media_type,
                                                 "Docker-Content-Digest": claimed})

    async def blob(self, req):
        data = self.img.blobs()[req.params["digest"]]
        if self.lie == "layer" and req.params["digest"] == sha(self.img.layers[-1]):
            data = bytes(len(data))            # the right length, the wrong bytes
        return Response(200, data, {"Content-Type": "application/octet-stream"})


@pytest.mark.parametrize("lie", ["layer", "manifest"])
def test_a_lying_registry_is_refused_and_nothing_is_kept(store, lie):
    img = make_image([BASE, TOP])
    with BackgroundServer(Liar(img, lie), ["127.0.0.1:0"]) as server:
        host = server.urls[0].split("//")[1]
        before = tree(store.root)
        with pytest.raises(PullError, match="verification failed for digest") as e:
            pull(store, f"{host}/liar/img:latest", None, lambda m: None)
        assert "\n" not in str(e.value)
        assert tree(store.root) == before
        assert store.refs == {} and store.images() == []


def _htpasswd(tmp) -> Htpasswd:
    path = tmp / "htpasswd"
    path.write_text("alice:{PLAIN}s3cret\n")
    return Htpasswd(str(path))


def test_bearer_token_auth(tmp, store):
    img = make_image([BASE])
    open_server, host = start_registry(tmp / "authreg")
    push_image(host, "private/app", "latest", img)
    open_server.stop()
    server, host = start_registry(tmp / "authreg", Auth("token", _htpasswd(tmp)))
    try:
        with pytest.raises(PullError) as e:                       # anonymous: no access granted
            pull(store, f"{host}/private/app", None, lambda m: None)
        assert e.value.status == 404 and str(e.value).startswith(
            f"pull access denied for {host}/private/app, repository does not exist or may require "
            "'docker login'")
        with pytest.raises(PullError, match="unauthorized"):
            pull(store, f"{host}/private/app", {"username": "alice", "password": "wrong"}, lambda m: None)
        assert store.images() == []
        got = pull(store, f"{host}/private/app", {"username": "alice", "password": "s3cret"}, lambda m: None)
        assert got.id == img.id
    finally:
        server.stop()


def test_basic_auth(tmp, store):
    img = make_image([BASE])
    open_server, host = start_registry(tmp / "basicreg")
    push_image(host, "private/app", "latest", img)
    open_server.stop()
    server, host = start_registry(tmp / "basicreg", Auth("basic", _htpasswd(tmp)))
    try:
        with pytest.raises(PullError, match="no basic auth credentials"):
            pull(store, f"{host}/private/app", None, lambda m: None)
        assert pull(store, f"{host}/private/app", {"username": "alice", "password": "s3cret"},
                    lambda m: None).id == img.id
    finally:
        server.stop()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(shutil.which("docker-registry") is None, reason="Debian's docker-registry is not installed")
def test_pull_from_distribution_registry(tmp, store):
    port = _free_port()
    config = tmp / "config.yml"
    config.write_text(f"version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n"
                      f"    rootdirectory: {tmp / 'dist'}\nhttp:\n  addr: 127.0.0.1:{port}\n")
    proc = subprocess.Popen(["docker-registry", "serve", str(config)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    pytest.fail("docker-registry did not start")
                time.sleep(0.05)
        host = f"127.0.0.1:{port}"
        img, oci = make_image([BASE, TOP]), make_image([TOP], oci=True)
        push_image(host, "dockspec/app", "latest", img)
        push_image(host, "dockspec/oci", "latest", oci)
        assert pull(store, f"{host}/dockspec/app", None, lambda m: None).id == img.id
        assert pull(store, f"{host}/dockspec/oci", None, lambda m: None).id == oci.id
        with pytest.raises(PullError) as e:
            pull(store, f"{host}/dockspec/app:nope", None, lambda m: None)
        assert e.value.status == 404 and "manifest unknown" in str(e.value)
    finally:
        proc.terminate()
        proc.wait(10)


def test_auth_header_and_challenge_parsing():
    raw = base64.urlsafe_b64encode(json.dumps({"username": "u", "password": "p"}).encode()).decode()
    assert decode_auth(raw.rstrip("=")) == {"username": "u", "password": "p"}
    assert decode_auth("") == {} and decode_auth("%%%") == {}
    assert parse_challenge('Bearer realm="http://h/token",service="reg",scope="repository:a/b:pull"') == (
        "bearer", {"realm": "http://h/token", "service": "reg", "scope": "repository:a/b:pull"})
    assert all(is_insecure(h) for h in ("127.0.0.1:5000", "localhost", "[::1]:5000", "127.9.9.9"))
    assert not any(is_insecure(h) for h in ("registry-1.docker.io", "10.0.0.1:5000", "example.com"))
