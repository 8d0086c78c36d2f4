"""The registry client: the pull half of the distribution API, as dockerd speaks it.

    client = RegistryClient("127.0.0.1:5000", auth={"username": ..., "password": ...})
    raw, media_type, digest = client.manifest("dockspec/busybox", "latest")
    with client.blob("dockspec/busybox", digest) as resp: ... resp.read(n) ...

Why our own and not urllib: a pull needs the 401 challenge dance (Basic, or a
Bearer token fetched from the realm for a scope), a fixed Accept list on every
manifest request, redirects for blobs that drop credentials when they leave the
registry's host, and the registry's JSON error codes turned into the sentences
dockerd prints. That is a hundred lines over http.client.

Transport: plain HTTP for 127.0.0.0/8, ::1 and `localhost` (as dockerd treats
them as insecure registries), HTTPS for everything else. Docker Hub's domain
`docker.io` is served by `registry-1.docker.io` (refimpl.image.reference).

Every error is a RegistryClientError with an HTTP status the Engine API can
answer with and one line of text. Digests are not checked here (the caller
streams blobs to the BlobStore, which verifies), except a manifest fetched by
digest, which `manifest()` checks before returning.
"""
from __future__ import annotations

import base64
import binascii
import http.client
import ipaddress
import json
import re
import socket
import ssl
from urllib.parse import urlencode, urljoin, urlsplit

from ..image import digest as digest_mod
from ..image import manifest as manifest_mod

TIMEOUT = 30
MANIFEST_LIMIT = 4 * 1024 * 1024
USER_AGENT = "refimpl (linux)"
# The registry error codes dockerd words specially (distribution/errors.go: notFoundError).
_NOT_FOUND = {"MANIFEST_UNKNOWN", "NAME_UNKNOWN", "DENIED", "UNAUTHORIZED"}


class RegistryClientError(Exception):
    """A failed registry exchange; `status` is what the Engine API answers with."""

    def __init__(self, message: str, status: int = 500, code: str = ""):
        super().__init__(message)
        self.status, self.code = status, code


def decode_auth(header: str | None) -> dict:
    """The `X-Registry-Auth` header: base64url JSON {username, password, serveraddress} or
    {identitytoken}. Empty or "{}" means anonymous; garbage is anonymous too, as dockerd does."""
    if not header:
        return {}
    try:
        data = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))
    except (ValueError, binascii.Error):
        return {}
    return data if isinstance(data, dict) else {}


def is_insecure(host: str) -> bool:
    """Hosts spoken to in plain HTTP: loopback addresses and `localhost` (port ignored)."""
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    name = name.strip("[]")
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


# RFC 7235: challenge = auth-scheme [ 1*SP ( token68 / #auth-param ) ]
#           auth-param = token BWS "=" BWS ( token / quoted-string )
_PARAM_RE = re.compile(r'([A-Za-z0-9_-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))')


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """'Bearer realm="…",service="…",scope="…"' -> ("bearer", {...})."""
    scheme, _, rest = header.strip().partition(" ")
    params = {m.group(1).lower(): m.group(2) if m.group(2) is not None else m.group(3)
              for m in _PARAM_RE.finditer(rest)}
    return scheme.lower(), params


class RegistryClient:
    def __init__(self, registry: str, auth: dict | None = None, timeout: float = TIMEOUT):
        self.registry = registry                      # host[:port] of the registry API
        self.scheme = "http" if is_insecure(registry) else "https"
        self.base = f"{self.scheme}://{registry}"
        self.auth = auth or {}
        self.timeout = timeout
        self._authorization: dict[str, str] = {}      # scope -> Authorization header value
        self._challenge: tuple[str, dict] | None = None

    # ------------------------------------------------------------------ plumbing
    def _open(self, method: str, url: str, headers: dict[str, str], body=None) -> http.client.HTTPResponse:
        """One request, following redirects (credentials dropped when leaving the host)."""
        for _ in range(6):
            parts = urlsplit(url)
            try:
                if parts.scheme == "https":
                    conn = http.client.HTTPSConnection(parts.netloc, timeout=self.timeout,
                                                       context=ssl.create_default_context())
                else:
                    conn = http.client.HTTPConnection(parts.netloc, timeout=self.timeout)
                path = parts.path + (f"?{parts.query}" if parts.query else "")
                conn.request(method, path, body=body, headers={"User-Agent": USER_AGENT, **headers})
                resp = conn.getresponse()
            except (OSError, http.client.HTTPException) as e:
                raise RegistryClientError(f'{method} "{url}": {_describe(e, parts.hostname)}',
                                          500) from None
            if resp.status in (301, 302, 303, 307, 308) and resp.getheader("Location"):
                resp.read()
                conn.close()
                target = urljoin(url, resp.getheader("Location"))
                if urlsplit(target).netloc != parts.netloc:
                    headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
                url = target
                continue
            return resp
        raise RegistryClientError(f'{method} "{url}": stopped after 5 redirects', 500)

    def request(self, method: str, path: str, scope: str | None, headers: dict | None = None,
                body: bytes | None = None):
        """A request to the registry, answering a 401 challenge once with credentials or a token."""
        url = path if path.startswith(("http://", "https://")) else self.base + path
        headers = dict(headers or {})
        for attempt in range(2):
            if scope in self._authorization:
                headers["Authorization"] = self._authorization[scope]
            resp = self._open(method, url, headers, body)
            if resp.status != 401 or attempt == 1:
                return resp
            challenge = resp.getheader("WWW-Authenticate") or ""
            resp.read()
            self._authorize(method, url, scope, challenge)
        return resp

    def _authorize(self, method: str, url: str, scope: str | None, challenge: str) -> None:
        scheme, params = parse_challenge(challenge)
        user, password = self.auth.get("username") or "", self.auth.get("password") or ""
        if scheme == "basic":
            if not user:
                raise RegistryClientError(f'{method} "{url}": no basic auth credentials', 401)
            value = base64.b64encode(f"{user}:{password}".encode()).decode()
            self._authorization[scope] = f"Basic {value}"
        elif scheme == "bearer" and params.get("realm"):
            self._authorization[scope] = f"Bearer {self._token(params, scope)}"
        else:
            raise RegistryClientError(f'{method} "{url}": unsupported authentication challenge '
                                      f'{challenge or "(none)"!r}', 401)

    def _token(self, params: dict, scope: str | None) -> str:
        """Fetch a bearer token from the challenge's realm for `scope`."""
        realm = params["realm"]
        query = {"service": params.get("service", "")}
        if scope or params.get("scope"):
            query["scope"] = scope or params["scope"]
        token = self.auth.get("identitytoken")
        if token:                         # OAuth2 refresh-token grant, as dockerd sends it
            query.update(grant_type="refresh_token", refresh_token=token, client_id="docker")
            body = urlencode(query).encode()
            resp = self._post(realm, body)
        else:
            headers = {}
            if self.auth.get("username"):
                creds = f"{self.auth['username']}:{self.auth.get('password', '')}".encode()
                headers["Authorization"] = "Basic " + base64.b64encode(creds).decode()
            url = realm + ("&" if "?" in realm else "?") + urlencode(query)
            resp = self._open("GET", url, headers)
        data = resp.read(1 << 20)
        if resp.status != 200:          # wrong credentials: said as is, never "not found"
            e = _error_from(resp.status, data, f'GET "{realm}"')
            text = str(e) if str(e).startswith("GET ") else f'GET "{realm}": {e}'
            raise RegistryClientError(text, 401 if resp.status == 401 else 500)
        try:
            doc = json.loads(data)
            return doc.get("token") or doc["access_token"]
        except (ValueError, KeyError, TypeError, AttributeError):
            raise RegistryClientError(f"token service at {realm} gave no token", 500) from None

    def _post(self, url: str, body: bytes) -> http.client.HTTPResponse:
        parts = urlsplit(url)
        cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        try:
            conn = cls(parts.netloc, timeout=self.timeout)
            conn.request("POST", parts.path + (f"?{parts.query}" if parts.query else ""), body,
                         {"Content-Type": "application/x-www-form-urlencoded", "User-Agent": USER_AGENT})
            return conn.getresponse()
        except (OSError, http.client.HTTPException) as e:
            raise RegistryClientError(f'POST "{url}": {_describe(e)}', 500) from None

    # ------------------------------------------------------------------ the API
    def ping(self) -> None:
        """`GET /v2/`: is this a registry at all? (A 401 is fine: it answers later.)"""
        resp = self._open("GET", self.base + "/v2/", {})
        data = resp.read(1 << 16)
        if resp.status not in (200, 401):
            raise _error_from(resp.status, data, f'GET "{self.base}/v2/"')

    def manifest(self, repo: str, reference: str) -> tuple[bytes, str, digest_mod.Digest]:
        """(exact bytes, media type, digest of the bytes) of a manifest or index."""
        scope = f"repository:{repo}:pull"
        path = f"/v2/{repo}/manifests/{reference}"
        resp = self.request("GET", path, scope, {"Accept": manifest_mod.ACCEPT})
        data = resp.read(MANIFEST_LIMIT + 1)
        if resp.status != 200:
            raise _error_from(resp.status, data, f'GET "{self.base}{path}"')
        if len(data) > MANIFEST_LIMIT:
            raise RegistryClientError(f"manifest {repo}:{reference} is larger than 4 MiB", 500)
        actual = digest_mod.sha256(data)
        claimed = reference if digest_mod.is_digest(reference) else resp.getheader("Docker-Content-Digest")
        if claimed and claimed != actual:
            raise RegistryClientError(f"manifest verification failed for digest {claimed}", 500)
        media_type = (resp.getheader("Content-Type") or "").split(";")[0].strip()
        return data, media_type, actual

    def blob(self, repo: str, digest: str) -> http.client.HTTPResponse:
        """An open response streaming the blob's bytes (read() it, then close())."""
        path = f"/v2/{repo}/blobs/{digest}"
        resp = self.request("GET", path, f"repository:{repo}:pull")
        if resp.status != 200:
            raise _error_from(resp.status, resp.read(1 << 16), f'GET "{self.base}{path}"')
        return resp


    # ------------------------------------------------------------------ the push half
    def has_blob(self, repo: str, digest: str) -> bool:
        resp = self.request("HEAD", f"/v2/{repo}/blobs/{digest}", f"repository:{repo}:push,pull")
        resp.read()
        if resp.status in (200, 404):
            return resp.status == 200
        raise _error_from(resp.status, b"", f'HEAD "{self.base}/v2/{repo}/blobs/{digest}"')

    def mount_blob(self, repo: str, digest: str, source_repo: str) -> bool:
        """Cross-repository mount: True when the registry linked the blob without an upload."""
        path = f"/v2/{repo}/blobs/uploads/?mount={digest}&from={source_repo}"
        resp = self.request("POST", path, f"repository:{repo}:push,pull", {"Content-Length": "0"}, b"")
        resp.read()
        return resp.status == 201

    def upload_blob(self, repo: str, digest: str, data: bytes) -> None:
        """POST an upload session, then PUT the whole blob with its digest (monolithic)."""
        scope = f"repository:{repo}:push,pull"
        resp = self.request("POST", f"/v2/{repo}/blobs/uploads/", scope, {"Content-Length": "0"}, b"")
        body = resp.read(1 << 16)
        if resp.status != 202 or not resp.getheader("Location"):
            raise _error_from(resp.status, body, f'POST "{self.base}/v2/{repo}/blobs/uploads/"')
        location = urljoin(self.base + "/", resp.getheader("Location"))
        location += ("&" if "?" in location else "?") + urlencode({"digest": digest})
        resp = self.request("PUT", location, scope, {"Content-Type": "application/octet-stream",
                                                     "Content-Length": str(len(data))}, data)
        body = resp.read(1 << 16)
        if resp.status != 201:
            raise _error_from(resp.status, body, f'PUT "{location}"')

    def put_manifest(self, repo: str, reference: str, raw: bytes, media_type: str) -> str:
        """Store a manifest under a tag or digest; returns the digest the registry names it by."""
        path = f"/v2/{repo}/manifests/{reference}"
        resp = self.request("PUT", path, f"repository:{repo}:push,pull",
                            {"Content-Type": media_type, "Content-Length": str(len(raw))}, raw)
        body = resp.read(1 << 16)
        if resp.status != 201:
            raise _error_from(resp.status, body, f'PUT "{self.base}{path}"')
        return resp.getheader("Docker-Content-Digest") or str(digest_mod.sha256(raw))


def _describe(e: BaseException, host: str | None = None) -> str:
    if isinstance(e, socket.gaierror):
        return f"dial tcp: lookup {host}: {e.strerror}"
    if isinstance(e, ConnectionRefusedError):
        return "dial tcp: connect: connection refused"
    if isinstance(e, (socket.timeout, TimeoutError)):
        return "net/http: request canceled (timeout)"
    if isinstance(e, ssl.SSLError):
        return f"tls: {e.reason or e}"
    return (str(e).splitlines() or [type(e).__name__])[0] or type(e).__name__


def _error_from(status: int, body: bytes, what: str) -> RegistryClientError:
    """A registry's error answer -> RegistryClientError with its first error code."""
    code, message = "", ""
    try:
        first = json.loads(body)["errors"][0]
        code, message = str(first.get("code", "")), str(first.get("message", ""))
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        pass
    if not code:
        code = {401: "UNAUTHORIZED", 403: "DENIED", 404: "NAME_UNKNOWN"}.get(status, "")
        message = message or {401: "authentication required",
                              403: "requested access to the resource is denied"}.get(status, "")
    if code:
        text = f"{code.lower().replace('_', ' ')}: {message or code.lower().replace('_', ' ')}"
        return RegistryClientError(text if code in _NOT_FOUND else f"{what}: {text}",
                                   404 if code in _NOT_FOUND else 500, code)
    snippet = body[:100].decode("utf-8", "replace").strip().replace("\n", " ")
    return RegistryClientError(f"{what}: unexpected status {status}" + (f": {snippet}" if snippet else ""),
                               500)
