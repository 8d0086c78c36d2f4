"""Steps that speak the distribution API (/v2/) to a registry directly, and log in to one.

The registry-only feature (features/distribution.feature) needs no engine: each
scenario holds a `Dist`, a small state of its own (the client, the blobs and
manifests it made, the current upload's Location, the last reply), and talks to
the suite's registry, or to the authenticated registry after "I use the
authenticated registry ...".

The authenticated registry is started once per run, of the same kind as the
suite's registry (DOCKSPEC_REGISTRY_KIND), with Basic auth, one user and a
random password, and deletion disabled. The login scenarios in
features/registry.feature drive the engine's CLI against it with a client
configuration directory of the scenario's own (DOCKER_CONFIG), so that the
host's ~/.docker/config.json is never read or written.

Placeholders set here: {$auth_registry} (host:port) and {$auth_user}.
Repository names `{repo}`, `{repo2}`, ... are unique per scenario.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from .. import registries, services
from ..registries import Client, Reply, sha256, with_query
from .common import Q, step, text
from .world import World

DOCKER_IMAGE = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_IMAGE = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
KINDS = {  # manifest kind → (media type, config media type, layer media type)
    "Docker image": (DOCKER_IMAGE, "application/vnd.docker.container.image.v1+json",
                     "application/vnd.docker.image.rootfs.diff.tar.gzip"),
    "OCI image": (OCI_IMAGE, "application/vnd.oci.image.config.v1+json",
                  "application/vnd.oci.image.layer.v1.tar+gzip"),
    "Docker manifest list": (DOCKER_LIST, "", ""),
    "OCI index": (OCI_INDEX, "", ""),
}
NAME = r'"(?P<{}>[\w-]+)"'      # a blob or manifest name, local to the scenario


@dataclass
class Dist:
    world: World
    client: Client
    blobs: dict[str, bytes] = field(default_factory=dict)
    manifests: dict[str, tuple[bytes, str]] = field(default_factory=dict)   # name → (bytes, media type)
    location: str = ""            # the current upload session
    last: Reply | None = None

    def send(self, method: str, path: str, body=None, headers=None, chunked=False) -> Reply:
        self.last = self.client.request(method, path, body, headers, chunked)
        if self.last.status == 202 and "location" in self.last.headers and "/blobs/uploads/" in path:
            self.location = self.last.headers["location"]
        return self.last

    def reply(self) -> Reply:
        assert self.last is not None, "no request was sent to the registry yet"
        return self.last

    def repo(self, text_: str) -> str:
        return self.world.sub(text_)

    def digest(self, name: str) -> str:
        return sha256(self.manifests[name][0] if name in self.manifests else self.blobs[name])


@pytest.fixture
def dist(world) -> Dist:
    for key in ("repo", "repo2", "repo3"):    # repository names: nothing to clean up locally
        world.names.setdefault(key, f"ds-{key}-{world.token}")
        world.kinds.setdefault(key, "repository")
    return Dist(world, Client(world.registry))


@pytest.fixture(scope="session")
def auth_registry():
    """A registry that asks for credentials (Basic) and refuses deletes, started on first use."""
    started: list[registries.RegistryProcess] = []

    def get() -> registries.RegistryProcess:
        if not started:
            try:
                started.append(registries.start(services.registry_kind(), auth=True, delete=False))
            except services.ServiceError as e:
                pytest.fail(f"cannot start an authenticated registry: {e}", pytrace=False)
        return started[0]
    yield get
    for reg in started:
        reg.stop()


def _use_auth_registry(world, auth_registry) -> registries.RegistryProcess:
    reg = auth_registry()
    world.saved["auth_registry"], world.saved["auth_user"] = reg.address, reg.user
    return reg


# --------------------------------------------------------------------------- which registry

@step(r"I use the authenticated registry (?P<how>with|without) its credentials")
def use_auth(dist, world, auth_registry, how):
    reg = _use_auth_registry(world, auth_registry)
    dist.client = Client(reg.address, (reg.user, reg.password) if how == "with" else None)


# --------------------------------------------------------------------------- requests and replies

@step(r"I send " + Q.format("req") + r" to the registry")
def send(dist, req):
    method, path = text(dist.world, req).split(" ", 1)
    dist.send(method, path, b"" if method in ("POST", "PUT", "PATCH") else None)


@step(r"the registry answers (?P<code>\d+)")
def answers(dist, code):
    r = dist.reply()
    assert r.status == int(code), f"expected HTTP {code}, got {r.describe()}"


@step(r"the registry answers (?P<code>\d+) with the error code (?P<err>[A-Z_]+)")
def answers_error(dist, code, err):
    r = dist.reply()
    assert r.status == int(code) and err in r.codes, f"expected HTTP {code} {err}, got {r.describe()}"


@step(r"the registry refuses the repository name")
def refuses_name(dist):
    """The spec's NAME_INVALID (400), or a 404: docker/distribution routes only valid names."""
    r = dist.reply()
    ok = (r.status == 400 and "NAME_INVALID" in r.codes) or r.status == 404
    assert ok, f"expected 400 NAME_INVALID or 404, got {r.describe()}"


@step(r"the registry does not accept it")
def not_accepted(dist):
    r = dist.reply()
    assert not 200 <= r.status < 300, f"the registry accepted it: {r.describe()}"


@step(r"the registry response header " + Q.format("name") + r" is " + Q.format("value"))
def header_is(dist, name, value):
    got = dist.reply().headers.get(name.lower())
    assert got == text(dist.world, value), f"{name} is {got!r}, expected {value!r}: {dist.reply().describe()}"


@step(r"the registry response header " + Q.format("name") + r" starts with " + Q.format("value"))
def header_starts(dist, name, value):
    got = dist.reply().headers.get(name.lower()) or ""
    assert got.startswith(text(dist.world, value)), f"{name} is {got!r}: {dist.reply().describe()}"


@step(r"the response carries the digest of (?:blob|manifest) " + NAME.format("name"))
def carries_digest(dist, name):
    got = dist.reply().headers.get("docker-content-digest")
    assert got == dist.digest(name), f"Docker-Content-Digest is {got!r}, expected {dist.digest(name)}"


# --------------------------------------------------------------------------- content

@step(r"a random blob " + NAME.format("name") + r" of (?P<n>\d+) bytes")
def random_blob(dist, name, n):
    dist.blobs[name] = os.urandom(int(n))


@step(r"the blob " + NAME.format("name") + r" is uploaded to " + Q.format("repo"))
def blob_uploaded(dist, name, repo):
    r = dist.client.upload(dist.repo(repo), dist.blobs[name])
    assert r.status == 201, f"upload of {name}: {r.describe()}"


def _image_manifest(dist: Dist, kind: str, name: str, repo: str, upload_layer: bool) -> None:
    media, config_type, layer_type = KINDS[kind]
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []},
                         "config": {"Labels": {"scenario": name}}}).encode()
    layer = os.urandom(1500)
    dist.blobs[f"{name}-config"], dist.blobs[f"{name}-layer"] = config, layer
    for blob in [config, layer] if upload_layer else [config]:
        r = dist.client.upload(dist.repo(repo), blob)
        assert r.status == 201, f"upload for manifest {name}: {r.describe()}"
    doc = {"schemaVersion": 2, "mediaType": media,
           "config": {"mediaType": config_type, "size": len(config), "digest": sha256(config)},
           "layers": [{"mediaType": layer_type, "size": len(layer), "digest": sha256(layer)}]}
    # Indented, with a trailing newline: a registry that re-serialises would change the digest.
    dist.manifests[name] = (json.dumps(doc, indent=3).encode() + b"\n", media)


@step(r"an? (?P<kind>Docker image|OCI image) manifest " + NAME.format("name") +
      r" whose (?P<which>blobs are|layer is not) in " + Q.format("repo"))
def image_manifest(dist, kind, name, which, repo):
    _image_manifest(dist, kind, name, repo, upload_layer=which == "blobs are")


@step(r"an? (?P<kind>Docker manifest list|OCI index) " + NAME.format("name") +
      r" of the manifests " + NAME.format("a") + r" and " + NAME.format("b"))
def index_manifest(dist, kind, name, a, b):
    media = KINDS[kind][0]
    platforms = [{"architecture": "amd64", "os": "linux"}, {"architecture": "arm64", "os": "linux"}]
    children = [{"mediaType": dist.manifests[m][1], "size": len(dist.manifests[m][0]),
                 "digest": dist.digest(m), "platform": p} for m, p in zip((a, b), platforms)]
    doc = {"schemaVersion": 2, "mediaType": media, "manifests": children}
    dist.manifests[name] = (json.dumps(doc, indent=3).encode() + b"\n", media)


@step(r"I push manifest " + NAME.format("name") + r" to " + Q.format("repo") + r" as " + Q.format("ref"))
def push_manifest(dist, name, repo, ref):
    data, media = dist.manifests[name]
    dist.last = dist.client.put_manifest(dist.repo(repo), text(dist.world, ref), data, media)


@step(r"I push manifest " + NAME.format("name") + r" to " + Q.format("repo") + r" by digest")
def push_manifest_by_digest(dist, name, repo):
    data, media = dist.manifests[name]
    dist.last = dist.client.put_manifest(dist.repo(repo), sha256(data), data, media)
    assert dist.last.status == 201, f"push of manifest {name}: {dist.last.describe()}"


@step(r"manifest " + NAME.format("name") + r" is tagged " + Q.format("tags") + r" in " + Q.format("repo"))
def tag_many(dist, name, tags, repo):
    data, media = dist.manifests[name]
    for tag in tags.split():
        r = dist.client.put_manifest(dist.repo(repo), tag, data, media)
        assert r.status == 201, f"tag {tag}: {r.describe()}"


@step(r"the registry serves manifest " + NAME.format("name") + r" from " + Q.format("repo") + r" as " +
      Q.format("ref") + r" and by digest, byte for byte")
def serves_manifest(dist, name, repo, ref):
    data, media = dist.manifests[name]
    for reference in (text(dist.world, ref), sha256(data)):
        r = dist.client.get_manifest(dist.repo(repo), reference)
        assert r.status == 200, f"GET manifest {reference}: {r.describe()}"
        assert r.body == data, f"GET manifest {reference}: the bytes differ from those pushed"
        assert r.headers.get("content-type") == media, f"Content-Type {r.headers.get('content-type')}"
        assert r.headers.get("docker-content-digest") == sha256(data), r.describe()


@step(r"the registry has no manifest " + NAME.format("name") + r" in " + Q.format("repo"))
def no_manifest(dist, name, repo):
    r = dist.client.get_manifest(dist.repo(repo), dist.digest(name))
    assert r.status == 404 and "MANIFEST_UNKNOWN" in r.codes, f"GET by digest: {r.describe()}"


@step(r"the tag " + Q.format("tag") + r" of " + Q.format("repo") + r" does not exist")
def no_tag(dist, tag, repo):
    r = dist.client.get_manifest(dist.repo(repo), tag)
    assert r.status == 404, f"GET {tag}: {r.describe()}"


@step(r"I delete manifest " + NAME.format("name") + r" from " + Q.format("repo"))
def delete_manifest(dist, name, repo):
    dist.send("DELETE", f"/v2/{dist.repo(repo)}/manifests/{dist.digest(name)}")


# --------------------------------------------------------------------------- uploads

@step(r"I start an upload in " + Q.format("repo"))
def start_upload(dist, repo):
    r = dist.send("POST", f"/v2/{dist.repo(repo)}/blobs/uploads/", b"", {"Content-Length": "0"})
    assert r.status == 202 and "location" in r.headers, f"POST upload: {r.describe()}"


@step(r"I send bytes (?P<a>\d+) to (?P<b>\d+) of blob " + NAME.format("name") + r" as a chunk")
def send_chunk(dist, a, b, name):
    a, b = int(a), int(b)
    dist.send("PATCH", dist.location, dist.blobs[name][a:b + 1],
              {"Content-Range": f"{a}-{b}", "Content-Type": "application/octet-stream"})


@step(r"I stream blob " + NAME.format("name") + r" in one PATCH without a Content-Range")
def stream_blob(dist, name):
    data = dist.blobs[name]
    pieces = [data[i:i + 4096] for i in range(0, len(data), 4096)]
    dist.send("PATCH", dist.location, pieces, {"Content-Type": "application/octet-stream"}, chunked=True)


@step(r"I ask for the status of the upload")
def upload_status(dist):
    dist.last = dist.client.request("GET", dist.location)


@step(r'I finish the upload with (?:the whole of blob "(?P<body>[\w-]+)" and )?the digest of blob ' +
      NAME.format("name"))
def finish_upload(dist, name, body=None):
    data = dist.blobs[body] if body else b""
    dist.last = dist.client.request("PUT", with_query(dist.location, digest=sha256(dist.blobs[name])), data,
                                    {"Content-Type": "application/octet-stream"})


@step(r"I mount blob " + NAME.format("name") + r" into " + Q.format("repo") + r" from " + Q.format("src"))
def mount_blob(dist, name, repo, src):
    d = sha256(dist.blobs[name])
    dist.send("POST", f"/v2/{dist.repo(repo)}/blobs/uploads/?mount={d}&from={dist.repo(src)}", b"")


@step(r"the blob " + NAME.format("name") + r" is in " + Q.format("repo"))
def blob_is_in(dist, name, repo):
    data, path = dist.blobs[name], f"/v2/{dist.repo(repo)}/blobs/{sha256(dist.blobs[name])}"
    head = dist.client.request("HEAD", path)
    assert head.status == 200, f"HEAD blob {name}: {head.describe()}"
    assert head.headers.get("content-length") == str(len(data)), f"HEAD blob {name}: {head.describe()}"
    assert head.headers.get("docker-content-digest") == sha256(data), f"HEAD blob {name}: {head.describe()}"
    got = dist.client.request("GET", path)
    assert got.status == 200 and got.body == data, f"GET blob {name}: HTTP {got.status}, {len(got.body)} bytes"


@step(r"the blob " + NAME.format("name") + r" is not in " + Q.format("repo"))
def blob_not_in(dist, name, repo):
    r = dist.client.request("HEAD", f"/v2/{dist.repo(repo)}/blobs/{sha256(dist.blobs[name])}")
    assert r.status == 404, f"HEAD blob {name}: {r.describe()}"


@step(r"I fetch bytes (?P<a>\d+) to (?P<b>\d+) of blob " + NAME.format("name") + r" from " + Q.format("repo"))
def fetch_range(dist, a, b, name, repo):
    dist.send("GET", f"/v2/{dist.repo(repo)}/blobs/{sha256(dist.blobs[name])}", None,
              {"Range": f"bytes={a}-{b}"})


@step(r"the body is bytes (?P<a>\d+) to (?P<b>\d+) of blob " + NAME.format("name"))
def body_is_range(dist, a, b, name):
    want = dist.blobs[name][int(a):int(b) + 1]
    assert dist.reply().body == want, f"body is {len(dist.reply().body)} bytes: {dist.reply().describe()}"


# --------------------------------------------------------------------------- listings

@step(r"an image is pushed to each of " + Q.format("repos"))
def image_in_each(dist, repos):
    for repo in text(dist.world, repos).split():
        _image_manifest(dist, "Docker image", "each", repo, upload_layer=True)
        data, media = dist.manifests["each"]
        r = dist.client.put_manifest(repo, "latest", data, media)
        assert r.status == 201, f"push to {repo}: {r.describe()}"


@step(r"I list (?P<what>the tags of " + Q.format("repo") + r"|the catalog) with " + Q.format("query"))
def list_page(dist, what, query, repo=None):
    path = f"/v2/{dist.repo(repo)}/tags/list" if repo else "/v2/_catalog"
    dist.send("GET", f"{path}?{text(dist.world, query)}")


@step(r"I follow the link to the next page")
def follow_link(dist):
    url = registries.next_link(dist.reply().headers.get("link"))
    assert url, f"no Link to a next page: {dist.reply().describe()}"
    dist.send("GET", url)


@step(r"the response has no link to a next page")
def no_link(dist):
    assert registries.next_link(dist.reply().headers.get("link")) is None, dist.reply().describe()


@step(r"the (?P<key>tags|repositories) listed (?P<how>are|start with) " + Q.format("items"))
def listed(dist, key, how, items):
    r = dist.reply()
    assert r.status == 200, r.describe()
    got, want = r.json().get(key) or [], text(dist.world, items).split()
    ok = got == want if how == "are" else got[:len(want)] == want
    assert ok, f"{key} listed: {got}, expected {'' if how == 'are' else 'to start with '}{want}"


# --------------------------------------------------------------------------- logging in with the CLI

def _client_env(world) -> dict[str, str]:
    config = world.tmp / "client-config"
    config.mkdir(exist_ok=True)
    if not (config / "config.json").exists():     # podman wants the auth file to exist
        (config / "config.json").write_text('{"auths": {}}\n')
    # docker reads $DOCKER_CONFIG/config.json; podman keeps its logins in $REGISTRY_AUTH_FILE.
    env = {"DOCKER_CONFIG": str(config), "REGISTRY_AUTH_FILE": str(config / "config.json")}
    if world.target.service == "podman" and "auth_registry" in world.saved:
        # podman talks plain HTTP only to registries its registries.conf calls insecure.
        conf = config / "registries.conf"
        conf.write_text("".join(f'[[registry]]\nlocation = "{r}"\ninsecure = true\n'
                                for r in (world.registry, world.saved["auth_registry"])))
        env["CONTAINERS_REGISTRIES_CONF"] = str(conf)
    return env


@step(r"an authenticated registry is running")
def auth_running(world, auth_registry):
    _use_auth_registry(world, auth_registry)


@step(r"the authenticated registry holds the image " + Q.format("image") + r" as " + Q.format("ref"))
def auth_holds(world, auth_registry, image, ref):
    reg = _use_auth_registry(world, auth_registry)
    info = world.session.images[image]
    src_repo = info["repo"].split("/", 1)[1]
    repo, _, tag = world.sub(ref).rpartition(":")
    Client(reg.address, (reg.user, reg.password)).copy_image(Client(info["registry"]), src_repo, "latest",
                                                            repo, tag)


@step(r"I run " + Q.format("cmd") + r" with the scenario's client configuration(?P<pw> and the password on stdin)?")
def run_with_config(world, auth_registry, cmd, pw=None):
    password = auth_registry().password + "\n" if pw else None
    world.result = world.target.run(world.args(cmd), input=password, env=_client_env(world))


@step(r"the client configuration (?P<how>holds|holds no) credentials for " + Q.format("registry"))
def config_credentials(world, how, registry):
    path = Path(_client_env(world)["DOCKER_CONFIG"]) / "config.json"
    auths = json.loads(path.read_text()).get("auths", {}) if path.exists() else {}
    host = world.sub(registry)
    has = any(k.removeprefix("http://").removeprefix("https://").rstrip("/") == host for k in auths)
    assert has == (how == "holds"), f"{path}: auths {sorted(auths)}"
