"""The hostile layer corpus through refimpld: `POST /images/load` and a pull from a registry.

One refimpld (its own data root, socket and bridge `dshd…`) and one
refimpl-registry on 127.0.0.1 serve the whole module. Every archive of the
corpus is wrapped as a one-layer image twice: in a `docker save` tar posted to
/images/load, and pushed to the registry and pulled through /images/create.
A refused layer must give a one-line error (a 4xx answer for load, an
`errorDetail` line in the pull stream), and leave the data root as it was; an
accepted one loads, and its removal leaves the data root as it was. The
sentinel tree beside the data root never changes, and the daemon's log holds
no traceback. Cases go four at a time (which also has the store unpack
hostile layers side by side); the data root is compared once all are done.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import tarfile
from concurrent.futures import ThreadPoolExecutor
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


def load_case(daemon, case) -> str | None:
    """Load one case; the problem with the answer, or None."""
    tag = f"hostile/{case.name}:load"
    status, body, headers = daemon.api("POST", "/v1.44/images/load", save_tar(case.data, tag, case.name),
                                       {"Content-Type": "application/x-tar"})
    if case.expect == ERROR:
        if not (400 <= status < 500 and headers.get("content-type") == "application/json"
                and one_line(json.loads(body)["message"])):
            return f"{status} {body[:300]!r}"
    elif status != 200 or f"Loaded image: {tag}" not in body.decode():
        return f"{status} {body[:300]!r}"
    elif daemon.api("DELETE", f"/v1.44/images/{quote(tag)}")[0] != 200:
        return "could not remove the loaded image"
    return None


def pull_case(daemon, host, case) -> str | None:
    """Push one case as an image, pull it; the problem with the answer, or None."""
    config = config_for(case.data, case.name)
    manifest = mf.build_manifest(config, [mf.Descriptor(mf.DOCKER_LAYER, sha(case.data), len(case.data))],
                                 mf.DOCKER_MANIFEST)
    repo = f"hostile/{case.name}"
    push_raw(host, repo, "latest", {sha(config): config, sha(case.data): case.data}, manifest, mf.DOCKER_MANIFEST)
    status, body, _ = daemon.api("POST", f"/v1.44/images/create?fromImage={host}/{repo}&tag=latest")
    if status != 200:
        return f"{status} {body[:300]!r}"
    last = json_lines(body)[-1]
    if case.expect == ERROR:
        if "errorDetail" not in last or not one_line(last["errorDetail"]["message"]):
            return f"no one-line error: {last}"
    elif last != {"status": f"Status: Downloaded newer image for {host}/{repo}:latest"}:
        return f"not pulled: {last}"
    elif daemon.api("DELETE", f"/v1.44/images/{host}/{repo}:latest")[0] != 200:
        return "could not remove the pulled image"
    return None


def run_corpus(env, one) -> None:
    """Every case, four at a time; then the data root and everything around it must be
    exactly as before (refused layers left nothing, accepted ones were removed again)."""
    daemon, host, work, sentinel = env
    cases = corpus(str(sentinel))
    before, around = data_tree(daemon), outside(work, daemon)
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = dict(zip((c.name for c in cases), pool.map(one, cases)))
    problems = {name: p for name, p in results.items() if p}
    assert not problems, problems
    assert data_tree(daemon) == before, "the data root kept something"
    assert outside(work, daemon) == around, "something outside the data root changed"


def test_load(env):
    daemon = env[0]
    run_corpus(env, lambda case: load_case(daemon, case))


def test_pull(env):
    daemon, host = env[:2]
    run_corpus(env, lambda case: pull_case(daemon, host, case))


def test_daemon_log_has_no_traceback(env):
    daemon, *_ = env
    log = (daemon.dir / "daemon.log").read_text(errors="replace")
    assert "Traceback" not in log, log[-3000:]
