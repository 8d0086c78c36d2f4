"""The hostile layer corpus through refimpld: `POST /images/load` and a pull from a registry.

One refimpld (its own data root, socket and bridge `dshd…`) and one
refimpl-registry on 127.0.0.1 serve the whole module. Every archive of the
corpus is wrapped as a one-layer image twice: in a `docker save` tar posted to
/images/load, and pushed to the registry and pulled through /images/create.
A refused layer must give a one-line error (a 4xx answer for load, an
`errorDetail` line in the pull stream), and leave the data root as it was; an
accepted one loads, and its removal leaves the data root as it was. The
sentinel tree beside the data root never changes, and the daemon's log holds
no traceback.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import tarfile
from pathlib import Path
from urllib.parse import quote

import pytest

from refimpl.image import manifest as mf

from ..engine.imagekit import DOCKER, Daemon, json_lines, push_raw, start_registry, workdir
from .conftest import make_sentinel, snapshot
from .corpus import CONTAINED, ERROR, corpus


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def diff_id(blob: bytes) -> str:
    """The DiffID a well-meaning config would claim: the sha256 of the uncompressed tar."""
    if blob.startswith(b"\x1f\x8b"):
        try:
            return sha(gzip.decompress(blob))
        except (OSError, EOFError, ValueError):
            pass
    return sha(blob)


def config_for(blob: bytes, name: str) -> bytes:
    return mf.canonical_json({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["sh"]},
                              "rootfs": {"type": "layers", "diff_ids": [diff_id(blob)]},
                              "history": [{"created_by": f"hostile {name}"}]})


def save_tar(blob: bytes, tag: str, name: str) -> bytes:
    config = config_for(blob, name)
    files = {"manifest.json": json.dumps([{"Config": "config.json", "RepoTags": [tag],
                                           "Layers": ["layer/layer.tar"]}]).encode(),
             "config.json": config, "layer/layer.tar": blob}
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for n, data in files.items():
            ti = tarfile.TarInfo(n)
            ti.size = len(data)
            t.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


@pytest.fixture(scope="module")
def env():
    if os.geteuid() != 0:
        pytest.skip("refimpld unpacks layers with owners and whiteout devices: needs root")
    if not Path(DOCKER).exists():
        pytest.skip("the docker CLI is not installed")
    work = workdir("hostile")
    sentinel = make_sentinel(work)
    server, host = start_registry(work / "registry")
    daemon = Daemon(work)
    daemon.bridge = "dshd" + os.urandom(3).hex()
    daemon.extra = ["--bridge", daemon.bridge]
    daemon.start()
    # Warm-up: one benign load and removal, so the store's directories exist in the baseline.
    status, body, _ = daemon.api("POST", "/v1.44/images/load", save_tar(b"", "warm:up", "warm"),
                                 {"Content-Type": "application/x-tar"})
    assert status == 200, body
    assert daemon.api("DELETE", "/v1.44/images/warm:up")[0] == 200
    yield daemon, host, work, sentinel
    daemon.stop()
    server.stop()
    shutil.rmtree(work, ignore_errors=True)


def data_tree(daemon) -> set[str]:
    skip = {"refs.json"}
    return {str(p.relative_to(daemon.data)) for p in daemon.data.rglob("*") if p.name not in skip}


def outside(work: Path, daemon) -> dict:
    snap = snapshot(work, daemon.data, work / "registry", daemon.exec_root)
    return {k: v for k, v in snap.items() if k != "daemon.log"}      # the log grows


def one_line(message: str) -> bool:
    return bool(message) and "\n" not in message.strip() and "Traceback" not in message


NAMES = [c.name for c in corpus("/SENTINEL")]


@pytest.mark.parametrize("name", NAMES)
def test_load(env, name):
    daemon, _, work, sentinel = env
    case = next(c for c in corpus(str(sentinel)) if c.name == name)
    before, around = data_tree(daemon), outside(work, daemon)
    tag = f"hostile/{name}:load"
    status, body, headers = daemon.api("POST", "/v1.44/images/load", save_tar(case.data, tag, name),
                                       {"Content-Type": "application/x-tar"})
    if case.expect == ERROR:
        assert 400 <= status < 500, (status, body)
        assert headers["content-type"] == "application/json"
        assert one_line(json.loads(body)["message"])
    else:
        assert status == 200, body
        assert f"Loaded image: {tag}" in body.decode()
        assert daemon.api("DELETE", f"/v1.44/images/{quote(tag)}")[0] == 200
    assert data_tree(daemon) == before, "the data root kept something"
    assert outside(work, daemon) == around, "something outside the data root changed"


@pytest.mark.parametrize("name", NAMES)
def test_pull(env, name):
    daemon, host, work, sentinel = env
    case = next(c for c in corpus(str(sentinel)) if c.name == name)
    config = config_for(case.data, name)
    manifest = mf.build_manifest(config, [mf.Descriptor(mf.DOCKER_LAYER, sha(case.data), len(case.data))],
                                 mf.DOCKER_MANIFEST)
    repo = f"hostile/{name}"
    push_raw(host, repo, "latest", {sha(config): config, sha(case.data): case.data}, manifest, mf.DOCKER_MANIFEST)
    before, around = data_tree(daemon), outside(work, daemon)
    status, body, _ = daemon.api("POST", f"/v1.44/images/create?fromImage={host}/{repo}&tag=latest")
    assert status == 200, body
    lines = json_lines(body)
    if case.expect == ERROR:
        assert "errorDetail" in lines[-1], lines[-3:]
        assert one_line(lines[-1]["errorDetail"]["message"])
    else:
        assert lines[-1] == {"status": f"Status: Downloaded newer image for {host}/{repo}:latest"}, lines[-3:]
        assert daemon.api("DELETE", f"/v1.44/images/{host}/{repo}:latest")[0] == 200
    assert data_tree(daemon) == before, "the data root kept something"
    assert outside(work, daemon) == around, "something outside the data root changed"


def test_daemon_log_has_no_traceback(env):
    daemon, *_ = env
    log = (daemon.dir / "daemon.log").read_text(errors="replace")
    assert "Traceback" not in log, log[-3000:]
