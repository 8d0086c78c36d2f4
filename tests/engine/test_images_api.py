"""The image half of the Engine API, driven by the real docker CLI and by raw HTTP
against refimpld on a UNIX socket; save/load and removal rules at the engine level."""
from __future__ import annotations

import io
import json
import shutil
import tarfile
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from refimpl.engine import archive, imageops
from refimpl.engine.errors import Conflict
from refimpl.engine.images import ImageService

from .imagekit import (DOCKER, Daemon, gz, json_lines, layer_tar, make_image, push_image, sha,
                       start_registry, tree, workdir)
from .test_pull import BASE, TOP, Liar

pytestmark = pytest.mark.skipif(not Path(DOCKER).exists(), reason="the docker CLI is not installed")


@pytest.fixture(scope="module")
def env():
    d = workdir("api")
    server, host = start_registry(d / "registry")
    app, shared = make_image([BASE, TOP], labels={"tier": "web"}), make_image([BASE])
    push_image(host, "dockspec/app", "latest", app)
    push_image(host, "dockspec/base", "latest", shared)
    daemon = Daemon(d).start()
    yield daemon, host, app, shared
    daemon.stop()
    server.stop()
    shutil.rmtree(d, ignore_errors=True)


def out(r) -> str:
    return r.stdout.decode() + r.stderr.decode()


def test_cli_pull_images_inspect_history(env):
    daemon, host, app, _ = env
    r = daemon.docker("pull", f"{host}/dockspec/app")
    assert r.returncode == 0, out(r)
    text = out(r)
    assert "Pull complete" in text and f"Digest: {app.digest}" in text
    assert f"Status: Downloaded newer image for {host}/dockspec/app:latest" in text
    r = daemon.docker("images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}")
    assert f"{host}/dockspec/app:latest {app.id.split(':')[1][:12]}" in out(r)
    r = daemon.docker("image", "inspect", "--format", "{{.Id}} {{json .RepoDigests}} {{.RootFS.Type}} "
                      "{{len .RootFS.Layers}} {{.GraphDriver.Name}} {{.Created}}", f"{host}/dockspec/app")
    assert out(r).split() == [app.id, json.dumps([f"{host}/dockspec/app@{app.digest}"]).replace(" ", ""),
                              "layers", "2", "overlay2", "0001-01-01T00:00:00Z"]
    r = daemon.docker("history", "--no-trunc", "--format", "{{.ID}}|{{.CreatedBy}}", f"{host}/dockspec/app")
    assert out(r).splitlines() == [f"{app.id}|layer 1", "<missing>|layer 0"]
    r = daemon.docker("pull", f"{host}/dockspec/app")
    assert "Image is up to date" in out(r)


def test_cli_pull_unknown_tag_and_invalid_reference(env):
    daemon, host, _, _ = env
    r = daemon.docker("pull", f"{host}/dockspec/app:nope")
    assert r.returncode != 0
    assert f"manifest for {host}/dockspec/app:nope not found: manifest unknown" in out(r)
    r = daemon.docker("pull", f"{host}/dockspec/nothing")
    assert r.returncode != 0 and "not found" in out(r)
    r = daemon.docker("pull", "Invalid//Name")
    assert r.returncode != 0 and "invalid reference format" in out(r)
    status, body, headers = daemon.api("POST", "/v1.44/images/create?fromImage=a%2F%2Fb&tag=latest")
    assert status == 400 and json.loads(body) == {"message": "invalid reference format"}
    assert headers["content-type"] == "application/json"
    status, body, _ = daemon.api("POST", f"/v1.44/images/create?fromImage={host}/dockspec/app&tag=nope")
    assert status == 404 and "manifest unknown" in json.loads(body)["message"]


def test_pull_error_after_progress_goes_in_the_stream(env):
    daemon = env[0]
    from refimpl.httpd import BackgroundServer
    fresh = make_image([layer_tar({"only/here": b"never pulled before"})])
    with BackgroundServer(Liar(fresh, "layer"), ["127.0.0.1:0"]) as liar:
        host = liar.urls[0].split("//")[1]
        before = tree(daemon.data)
        status, body, _ = daemon.api("POST", f"/images/create?fromImage={host}/liar/x&tag=latest")
        assert status == 200
        last = json_lines(body)[-1]
        assert "verification failed" in last["error"] and last["errorDetail"]["message"] == last["error"]
        r = daemon.docker("pull", f"{host}/liar/x")
        assert r.returncode != 0 and "verification failed" in out(r)
        assert tree(daemon.data) == before


def test_cli_shared_layer_already_exists(env):
    daemon, host, _, _ = env
    daemon.docker("rmi", "-f", f"{host}/dockspec/app")
    assert daemon.docker("pull", f"{host}/dockspec/base").returncode == 0
    r = daemon.docker("pull", f"{host}/dockspec/app")
    assert r.returncode == 0 and "Already exists" in out(r), out(r)


def test_cli_tag_rmi(env):
    daemon, host, app, _ = env
    assert daemon.docker("pull", "-q", f"{host}/dockspec/app").returncode == 0
    assert daemon.docker("tag", f"{host}/dockspec/app", "mine/app:v2").returncode == 0
    r = daemon.docker("image", "inspect", "--format", "{{.Id}}", "mine/app:v2")
    assert out(r).strip() == app.id
    r = daemon.docker("rmi", "mine/app:v2")
    assert out(r).strip() == "Untagged: mine/app:v2"
    r = daemon.docker("rmi", "nope/never")
    assert r.returncode != 0 and "No such image: nope/never" in out(r)
    r = daemon.docker("tag", f"{host}/dockspec/app", "Bad:Tag::x")
    assert r.returncode != 0


def test_api_routes_with_slashes_list_and_filters(env):
    daemon, host, app, _ = env
    daemon.docker("pull", "-q", f"{host}/dockspec/app")
    status, body, _ = daemon.api("GET", f"/v1.44/images/{host}/dockspec/app:latest/json")
    assert status == 200 and json.loads(body)["Id"] == app.id
    status, body, _ = daemon.api("GET", f"/v1.44/images/{host}/dockspec/app:latest/history")
    assert status == 200 and json.loads(body)[0]["Id"] == app.id
    status, body, _ = daemon.api("GET", "/v1.44/images/json")
    rows = json.loads(body)
    row = next(r for r in rows if r["Id"] == app.id)
    assert set(row) >= {"Id", "ParentId", "RepoTags", "RepoDigests", "Created", "Size", "SharedSize",
                        "VirtualSize", "Labels", "Containers"}
    assert row["Labels"] == {"tier": "web"} and isinstance(row["Created"], int)

    def listed(filters) -> list[str]:
        status, body, _ = daemon.api("GET", "/v1.44/images/json?filters=" + quote(json.dumps(filters)))
        assert status == 200, body
        return [r["Id"] for r in json.loads(body)]
    assert app.id in listed({"reference": [f"{host}/dockspec/app"]})
    assert app.id in listed({"reference": [f"{host}/dockspec/*:latest"]})
    assert app.id not in listed({"reference": ["other/*"]})
    assert app.id in listed({"label": ["tier=web"]}) and app.id not in listed({"label": ["tier=db"]})
    assert app.id not in listed({"dangling": ["true"]})
    status, body, _ = daemon.api("GET", "/v1.44/images/json?filters=" + quote('{"bogus":["x"]}'))
    assert status == 400 and "bogus" in json.loads(body)["message"]
    status, _, _ = daemon.api("GET", "/v1.44/images/nothing/here/json")
    assert status == 404


def test_cli_save_and_load(env):
    daemon, host, app, _ = env
    daemon.docker("pull", "-q", f"{host}/dockspec/app")
    saved = daemon.docker("save", f"{host}/dockspec/app")
    assert saved.returncode == 0, out(saved)
    with tarfile.open(fileobj=io.BytesIO(saved.stdout)) as tar:
        names = tar.getnames()
        manifest = json.load(tar.extractfile("manifest.json"))
        assert json.load(tar.extractfile("repositories"))
        for layer, tar_bytes in zip(manifest[0]["Layers"], [BASE, TOP]):
            assert tar.extractfile(layer).read() == tar_bytes     # uncompressed: sha256 = DiffID
    assert f"{app.id.split(':')[1]}.json" in names
    assert manifest[0]["RepoTags"] == [f"{host}/dockspec/app:latest"]
    r = daemon.docker("rmi", f"{host}/dockspec/app")
    assert f"Deleted: {app.id}" in out(r)
    r = daemon.docker("load", input=saved.stdout)
    assert r.returncode == 0 and f"Loaded image: {host}/dockspec/app:latest" in out(r)
    r = daemon.docker("image", "inspect", "--format", "{{.Id}}", f"{host}/dockspec/app")
    assert out(r).strip() == app.id


def _tar(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in members.items():
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tar.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def test_hostile_load_is_refused_and_leaves_nothing(env):
    daemon = env[0]
    config = make_image([layer_tar({"claimed": b"by the config"})]).config
    cases = {
        "climbs out": _tar({"manifest.json": json.dumps([{"Config": "../../etc/passwd", "Layers": []}]).encode()}),
        "lying layer": _tar({"c.json": config, "l/layer.tar": layer_tar({"evil": b"x"}),
                             "manifest.json": json.dumps([{"Config": "c.json", "RepoTags": ["evil:1"],
                                                           "Layers": ["l/layer.tar"]}]).encode()}),
        "escaping layer": _tar({"c.json": make_image([_escaping_layer()]).config,
                                "l/layer.tar": _escaping_layer(),
                                "manifest.json": json.dumps([{"Config": "c.json", "RepoTags": ["evil:2"],
                                                              "Layers": ["l/layer.tar"]}]).encode()}),
        "not a tar": b"hello",
    }
    for what, data in cases.items():
        before = tree(daemon.data)
        r = daemon.docker("load", input=data)
        assert r.returncode != 0, what
        assert "invalid archive" in out(r) and len(out(r).strip().splitlines()) == 1, (what, out(r))
        assert tree(daemon.data) == before, what


def _escaping_layer() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        ti = tarfile.TarInfo("../outside")
        ti.size = 1
        tar.addfile(ti, io.BytesIO(b"x"))
    return buf.getvalue()


# ---------------------------------------------------------------------- engine level
class Users:
    """The one question image removal asks of the container service."""

    def __init__(self, mapping: dict[str, list[str]]):
        self.mapping = mapping

    def image_users(self, image_id: str) -> list[str]:
        return self.mapping.get(image_id, [])


def test_remove_rules(tmp_path):
    store = ImageService(tmp_path / "image")
    img = make_image([BASE])
    got = store.add_image(img.config, [io.BytesIO(img.layers[0])])
    store.tag(got.id, "busybox")
    users = Users({got.id: ["c0ffee" * 10 + "abcd"]})
    with pytest.raises(Conflict) as e:
        imageops.remove(store, "busybox", containers=users)
    assert str(e.value) == ('conflict: unable to remove repository reference "busybox" (must force) - '
                            f"container c0ffeec0ffee is using its referenced image {got.short_id}")
    store.tag(got.id, "other:1")
    assert imageops.remove(store, "other:1", containers=users) == [{"Untagged": "other:1"}]
    with pytest.raises(Conflict, match="must be forced"):
        imageops.remove(store, got.short_id, containers=users)
    assert imageops.remove(store, "busybox", force=True, containers=users) == [{"Untagged": "busybox:latest"}]
    assert store.has_layer(got.chain_ids[0])                       # still used by the container
    store.tag(got.id, "a:1")
    store.tag(got.id, "b:1")
    with pytest.raises(Conflict, match="referenced in multiple repositories"):
        imageops.remove(store, got.id)
    records = imageops.remove(store, got.id, force=True)
    assert records[-2:] == [{"Deleted": got.id}, {"Deleted": got.chain_ids[0]}]
    assert store.images() == [] and not store.has_layer(got.chain_ids[0])


files = st.dictionaries(st.from_regex(r"[a-z]{1,8}(/[a-z]{1,8})?", fullmatch=True),
                        st.binary(max_size=64), min_size=1, max_size=4)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(layers=st.lists(files, min_size=1, max_size=3), compress=st.booleans(),
       tags=st.lists(st.from_regex(r"[a-z]{1,6}:[a-z0-9]{1,4}", fullmatch=True), max_size=2, unique=True))
def test_save_then_load_round_trips_image_ids(tmp_path_factory, layers, compress, tags):
    root = tmp_path_factory.mktemp("rt")
    tars = [layer_tar({k: v for k, v in f.items() if not any(o.startswith(k + "/") for o in f)})
            for f in layers]
    img = make_image(tars)
    src = ImageService(root / "src")
    got = src.add_image(img.config, [io.BytesIO(gz(t) if compress else t) for t in tars])
    for t in tags:
        src.tag(got.id, t)
    buf = io.BytesIO()
    archive.save(src, [got.id] + tags, buf)
    dst = ImageService(root / "dst")
    lines = archive.load(dst, io.BytesIO(buf.getvalue()))
    loaded = dst.resolve(got.id)
    assert loaded.id == got.id == sha(img.config)
    assert sorted(loaded.repo_tags) == sorted(src.get(got.id).repo_tags)
    assert lines == ([f"Loaded image: {t}" for t in tags] or [f"Loaded image ID: {got.id}"])
    buf2 = io.BytesIO()
    archive.save(dst, [got.id], buf2)
    with tarfile.open(fileobj=io.BytesIO(buf2.getvalue())) as tar:
        for name, t in zip(json.load(tar.extractfile("manifest.json"))[0]["Layers"], tars):
            assert tar.extractfile(name).read() == t
    shutil.rmtree(root, ignore_errors=True)


def test_pull_with_x_registry_auth_against_a_token_registry(env):
    import base64

    from refimpl.registry.auth import Auth, Htpasswd
    daemon = env[0]
    d = daemon.dir / "tokenreg"
    d.mkdir()
    (d / "htpasswd").write_text("bob:{PLAIN}pw\n")
    img = make_image([layer_tar({"secret/file": b"only for bob"})])
    server, host = start_registry(d / "root")
    push_image(host, "team/secret", "latest", img)
    server.stop()
    server, host = start_registry(d / "root", Auth("token", Htpasswd(str(d / "htpasswd"))))
    try:
        path = f"/v1.44/images/create?fromImage={host}/team/secret&tag=latest"
        status, body, _ = daemon.api("POST", path)
        assert status == 404 and "pull access denied" in json.loads(body)["message"]
        auth = base64.urlsafe_b64encode(json.dumps({"username": "bob", "password": "pw",
                                                    "serveraddress": host}).encode()).decode()
        status, body, headers = daemon.api("POST", path, headers={"X-Registry-Auth": auth})
        lines = json_lines(body)
        assert status == 200 and headers["content-type"] == "application/json"
        assert lines[0] == {"status": "Pulling from team/secret", "id": "latest"}
        assert lines[-1] == {"status": f"Status: Downloaded newer image for {host}/team/secret:latest"}
        r = daemon.docker("image", "inspect", "--format", "{{.Id}}", f"{host}/team/secret")
        assert out(r).strip() == img.id
    finally:
        server.stop()


def test_load_an_oci_layout(tmp_path):
    from refimpl.image import manifest as mf
    img = make_image([BASE, TOP], oci=True)
    index = mf.build_index([mf.Descriptor(mf.OCI_MANIFEST, sha(img.manifest), len(img.manifest),
                                          annotations={"io.containerd.image.name": "example.org/oci/app:1"})])
    members = {"oci-layout": b'{"imageLayoutVersion":"1.0.0"}', "index.json": index}
    for data in [img.manifest, img.config, *img.layers]:
        members[f"blobs/sha256/{sha(data).split(':')[1]}"] = data
    store = ImageService(tmp_path / "image")
    assert archive.load(store, io.BytesIO(_tar(members))) == ["Loaded image: example.org/oci/app:1"]
    assert store.resolve("example.org/oci/app:1").id == img.id


def test_invalid_reference_is_a_400_everywhere(env):
    daemon = env[0]
    for method, path, body in [("POST", "/v1.44/containers/create", b'{"Image": "Not//Valid"}'),
                               ("GET", "/v1.44/images/Not__Valid::x/json", None)]:
        status, data, headers = daemon.api(method, path, body, {"Content-Type": "application/json"})
        assert status == 400, (path, status, data)
        assert json.loads(data)["message"].startswith("invalid reference format")
