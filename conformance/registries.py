"""Registries of our own: started for one purpose, in a temporary directory, then stopped.

The suite's main registry (services.ensure_registry) is open to everyone and lets
clients delete. Some behaviour needs another one: the login scenarios need a
registry that asks for credentials, and the benchmark wants each kind side by
side. `start()` starts either kind with the same options:

* "distribution": Debian's docker-registry, configured by a YAML file; users from
  an htpasswd file with bcrypt lines (the only hash it accepts).
* "refimpl": refimpl-registry, `--auth basic --htpasswd FILE`.

Both listen on a free port of 127.0.0.1 over plain HTTP (real Docker talks plain
HTTP to registries on 127.0.0.0/8). The process, its storage and its log live in
one temporary directory that `stop()` removes.

`Client` is a small distribution API client on http.client, for the scenarios
that speak to a registry directly and for the benchmark's pull; the suite's push
client is conformance.images.push.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode, urlsplit

from . import services

KINDS = services.REGISTRY_KINDS

DISTRIBUTION_CONFIG = """\
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {root}
  delete:
    enabled: {delete}
http:
  addr: {address}
"""

DISTRIBUTION_AUTH = """\
auth:
  htpasswd:
    realm: {realm}
    path: {path}
"""


def bcrypt_line(user: str, password: str, cost: int = 5) -> str:
    """`user:$2b$…`, an htpasswd line both registries accept (what `htpasswd -B` writes).
    Low cost on purpose: the registry checks the hash on every request."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt                                   # deprecated, still in 3.11/3.12
    hashed = crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=2 ** cost))
    if not hashed or not hashed.startswith("$2"):
        raise services.ServiceError("this C library's crypt(3) cannot make bcrypt hashes")
    return f"{user}:{hashed}"


@dataclass
class RegistryProcess:
    kind: str
    address: str                  # 127.0.0.1:PORT
    workdir: Path
    proc: subprocess.Popen
    user: str = ""                # set when the registry asks for credentials
    password: str = ""
    delete: bool = True

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.workdir, ignore_errors=True)


def start(kind: str, auth: bool = False, delete: bool = True, timeout: float = 30.0) -> RegistryProcess:
    """Start a registry of `kind`; with `auth`, one user with a random password (basic auth)."""
    if kind not in KINDS:
        raise services.ServiceError(f"unknown registry kind {kind!r} (expected {' or '.join(KINDS)})")
    workdir = Path(tempfile.mkdtemp(prefix=f"dockspec-{kind}-registry-"))
    address = f"127.0.0.1:{services.free_port()}"
    user, password = ("dockspec", secrets.token_urlsafe(12)) if auth else ("", "")
    htpasswd = workdir / "htpasswd"
    try:
        if auth:
            htpasswd.write_text(bcrypt_line(user, password) + "\n")
        if kind == "refimpl":
            argv = [sys.executable, "-m", "refimpl.registry.server", "--root", str(workdir / "data"),
                    "--listen", address]
            argv += ["--auth", "basic", "--htpasswd", str(htpasswd)] if auth else []
            argv += [] if delete else ["--no-delete"]
        else:
            config = DISTRIBUTION_CONFIG.format(root=workdir / "data", address=address,
                                                delete="true" if delete else "false")
            if auth:
                config += DISTRIBUTION_AUTH.format(realm="dockspec", path=htpasswd)
            (workdir / "config.yml").write_text(config)
            argv = ["docker-registry", "serve", str(workdir / "config.yml")]
        log = workdir / "registry.log"
        proc = services._spawn(f"{kind} registry", argv, log)
    except Exception:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    reg = RegistryProcess(kind, address, workdir, proc, user, password, delete)
    try:
        services.wait_until(lambda: services.answers(reg.url, "/v2/"), f"{kind} registry", timeout, proc, log)
    except services.ServiceError:
        reg.stop()
        raise
    return reg


# --------------------------------------------------------------------------- a client

MANIFEST_TYPES = ("application/vnd.docker.distribution.manifest.v2+json",
                  "application/vnd.docker.distribution.manifest.list.v2+json",
                  "application/vnd.oci.image.manifest.v1+json",
                  "application/vnd.oci.image.index.v1+json")

# RFC 8288 (was 5988) link-value = "<" URI-Reference ">" *( OWS ";" OWS link-param );
# the distribution API sends one link with rel="next" for the following page.
LINK_NEXT = re.compile(r'<(?P<url>[^>]*)>\s*;\s*(?:[^,]*;\s*)?rel="?next"?', re.I)


def next_link(header: str | None) -> str | None:
    """The URL of the next page from a `Link` header, or None."""
    m = LINK_NEXT.search(header or "")
    return m.group("url") if m else None


def with_query(location: str, **params: str) -> str:
    """`location` (an opaque upload URL, maybe with a query of its own) plus `params`."""
    extra = urlencode(params)
    return location + ("&" if "?" in location else "?") + extra if extra else location


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class Reply:
    status: int
    headers: dict[str, str]       # names in lower case
    body: bytes

    def json(self):
        return json.loads(self.body or b"null")

    @property
    def codes(self) -> list[str]:
        """The distribution error codes in the body ({"errors": [{"code": ...}]})."""
        try:
            return [e.get("code") for e in self.json().get("errors", [])]
        except (ValueError, AttributeError):
            return []

    def describe(self) -> str:
        return f"HTTP {self.status} {dict(sorted(self.headers.items()))} {self.body[:400]!r}"


class Client:
    """A plain distribution API client over http.client: one request, one connection.

    Paths are relative to the registry (`/v2/...`); an absolute upload Location on
    the same registry is accepted as well. `auth` = (user, password) for Basic auth.
    Bodies may be bytes or, with `chunked`, an iterable of bytes sent with chunked
    transfer encoding (what dockerd does for a streamed layer upload).
    """

    def __init__(self, address: str, auth: tuple[str, str] | None = None, timeout: float = 60.0):
        self.address, self.timeout = address, timeout
        self.auth_header = {}
        if auth:
            token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
            self.auth_header = {"Authorization": f"Basic {token}"}

    def request(self, method: str, path: str, body=None, headers: dict | None = None,
                chunked: bool = False, sink=None) -> Reply:
        if path.startswith(("http://", "https://")):
            split = urlsplit(path)
            path = split.path + (f"?{split.query}" if split.query else "")
        host, port = self.address.rsplit(":", 1)
        conn = http.client.HTTPConnection(host, int(port), timeout=self.timeout)
        try:
            conn.request(method, path, body=iter(body) if chunked else body,
                         headers={**self.auth_header, **(headers or {})}, encode_chunked=chunked)
            resp = conn.getresponse()
            if sink is not None and resp.status < 300:   # stream a large body away
                while chunk := resp.read(1 << 20):
                    sink(chunk)
                data = b""
            else:
                data = resp.read()
            return Reply(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data)
        finally:
            conn.close()

    # -- the usual sequences ---------------------------------------------------------
    def upload(self, repo: str, data: bytes) -> Reply:
        """POST then PUT with the whole blob (the spec's monolithic upload)."""
        r = self.request("POST", f"/v2/{repo}/blobs/uploads/", b"")
        if r.status != 202:
            return r
        return self.request("PUT", with_query(r.headers["location"], digest=sha256(data)), data,
                            {"Content-Type": "application/octet-stream"})

    def put_manifest(self, repo: str, ref: str, data: bytes, media_type: str) -> Reply:
        return self.request("PUT", f"/v2/{repo}/manifests/{ref}", data, {"Content-Type": media_type})

    def get_manifest(self, repo: str, ref: str, method: str = "GET") -> Reply:
        return self.request(method, f"/v2/{repo}/manifests/{ref}", headers={"Accept": ", ".join(MANIFEST_TYPES)})

    def pull(self, repo: str, ref: str, sink=None) -> int:
        """GET the manifest and every blob it names (config and layers); returns the bytes read.
        Each blob is checked against its digest."""
        r = self.get_manifest(repo, ref)
        if r.status != 200:
            raise RegistryClientError(f"GET manifest {repo}:{ref}: {r.describe()}")
        doc = r.json()
        total = len(r.body)
        for desc in [doc["config"], *doc["layers"]]:
            h = hashlib.sha256()

            def take(chunk, h=h):
                h.update(chunk)
                if sink:
                    sink(chunk)
            b = self.request("GET", f"/v2/{repo}/blobs/{desc['digest']}", sink=take)
            if b.status != 200 or "sha256:" + h.hexdigest() != desc["digest"]:
                raise RegistryClientError(f"GET blob {desc['digest']}: HTTP {b.status} or wrong digest")
            total += desc["size"]
        return total

    def copy_image(self, source: "Client", src_repo: str, ref: str, repo: str, tag: str) -> str:
        """Copy one image manifest and its blobs from `source` into this registry; returns its digest."""
        r = source.get_manifest(src_repo, ref)
        if r.status != 200:
            raise RegistryClientError(f"GET manifest {src_repo}:{ref}: {r.describe()}")
        doc = r.json()
        for desc in [doc["config"], *doc["layers"]]:
            blob = source.request("GET", f"/v2/{src_repo}/blobs/{desc['digest']}")
            up = self.upload(repo, blob.body)
            if up.status != 201:
                raise RegistryClientError(f"upload of {desc['digest']} to {repo}: {up.describe()}")
        put = self.put_manifest(repo, tag, r.body, r.headers["content-type"])
        if put.status != 201:
            raise RegistryClientError(f"PUT manifest {repo}:{tag}: {put.describe()}")
        return put.headers.get("docker-content-digest", sha256(r.body))


class RegistryClientError(RuntimeError):
    """A registry did not do what a set-up step needed; the message is one line."""
