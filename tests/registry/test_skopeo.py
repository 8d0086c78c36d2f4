"""skopeo, a real distribution client, copies an OCI layout into the registry and back."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from refimpl.registry.auth import Auth, Htpasswd

from . import content

SKOPEO = shutil.which("skopeo")
pytestmark = pytest.mark.skipif(not SKOPEO, reason="skopeo is not installed")


def write_layout(path: Path, img: dict, tag: str) -> None:
    blobs = path / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    for d, data in {**img["blobs"], content.digest(img["manifest"]): img["manifest"]}.items():
        (blobs / d[7:]).write_bytes(data)
    (path / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (path / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [{
        "mediaType": img["media_type"], "digest": content.digest(img["manifest"]),
        "size": len(img["manifest"]), "annotations": {"org.opencontainers.image.ref.name": tag}}]}))


def skopeo(*args: str, home: Path) -> None:
    proc = subprocess.run([SKOPEO, "--insecure-policy", *args], capture_output=True, text=True,
                          timeout=60, env={"PATH": "/usr/bin:/bin", "HOME": str(home)})
    assert proc.returncode == 0, proc.stderr


def test_skopeo_converts_to_docker_schema2_on_push(registry, workdir):
    """skopeo rewrites the manifest as Docker's v2 schema 2: stored and served as that type."""
    img = content.image(oci=True)
    write_layout(workdir / "in", img, "v1")
    remote = f"docker://{registry.url[len('http://'):]}/team/docker:v1"
    skopeo("copy", "--format", "v2s2", "--dest-tls-verify=false",
           f"oci:{workdir / 'in'}:v1", remote, home=workdir)
    r = registry.client().request("GET", "/v2/team/docker/manifests/v1")
    assert r.headers["content-type"] == content.DOCKER_MANIFEST
    assert json.loads(r.body)["mediaType"] == content.DOCKER_MANIFEST
    assert r.headers["docker-content-digest"] == content.digest(r.body)
    skopeo("copy", "--src-tls-verify=false", remote, f"oci:{workdir / 'out'}:v1", home=workdir)
    assert (workdir / "out" / "index.json").exists()


@pytest.mark.parametrize("auth", ["none", "token"])
def test_skopeo_round_trip_preserves_digests(make_registry, workdir, auth):
    creds = []
    if auth == "token":
        (workdir / "htpasswd").write_text("pusher:secret\n")
        reg = make_registry(Auth("token", Htpasswd(str(workdir / "htpasswd"))))
        creds = ["--dest-creds", "pusher:secret"]
    else:
        reg = make_registry()
    img = content.image(oci=True)
    write_layout(workdir / "in", img, "v1")
    remote = f"docker://{reg.url[len('http://'):]}/team/app:v1"
    skopeo("copy", "--preserve-digests", "--dest-tls-verify=false", *creds,
           f"oci:{workdir / 'in'}:v1", remote, home=workdir)
    client = reg.client()
    if auth == "token":                              # skopeo fetched a token; so can we
        r = client.request("GET", "/v2/team/app/manifests/v1")
        assert r.status == 401 and r.headers["www-authenticate"].startswith("Bearer ")
    else:
        r = client.request("GET", "/v2/team/app/manifests/v1")
        assert r.body == img["manifest"] and r.headers["content-type"] == content.OCI_MANIFEST
    skopeo("copy", "--src-tls-verify=false", *(["--src-creds", "pusher:secret"] if creds else []),
           remote, f"oci:{workdir / 'out'}:v1", home=workdir)
    index = json.loads((workdir / "out" / "index.json").read_text())
    assert index["manifests"][0]["digest"] == content.digest(img["manifest"])
    for d, data in img["blobs"].items():
        assert (workdir / "out" / "blobs" / "sha256" / d[7:]).read_bytes() == data
