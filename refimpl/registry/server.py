"""refimpl-registry: an OCI distribution server (the /v2/ API) on refimpl.httpd.

    refimpl-registry --root DIR [--listen 127.0.0.1:5000 | unix:///path]
                     [--htpasswd FILE] [--auth none|basic|token] [--no-delete]

Enough of the distribution spec for dockerd, skopeo and refimpl to push and
pull: blobs (HEAD/GET with Range, DELETE), every upload style (monolithic POST
with ?digest=, POST then PUT, PATCH chunks with Content-Range, the single
streamed PATCH that dockerd sends, cross-repository mount), manifests of any
media type by tag or digest kept byte-exact, tag lists and the catalog with
pagination. Storage and its crash safety live in store.py, grammars in
grammar.py, auth in auth.py; this module is routing and HTTP headers only.
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import re
import signal
import sys
from urllib.parse import parse_qs, quote

from ..httpd import HTTPError, Request, Response, Router, Server, json_response, parse_address
from .auth import SERVICE, Auth, Htpasswd, basic_credentials
from .errors import RegistryError
from .grammar import check_name, parse_digest
from .store import Store

API_HEADER = {"Docker-Distribution-API-Version": "registry/2.0"}
MANIFEST_LIMIT = 4 * 1024 * 1024        # the spec: registries SHOULD accept at least 4 MiB
READ_CHUNK = 64 * 1024
log = logging.getLogger("refimpl.registry")


def _range(size: int) -> str:
    """The upload progress header: `Range: 0-<last byte>` (0-0 when empty, as distribution)."""
    return f"0-{max(size - 1, 0)}"


def _page(req: Request, items: list[str], path: str) -> tuple[list[str], dict[str, str]]:
    """`n` and `last` pagination with an RFC 5988 `Link` header to the next page."""
    last, n = req.query.get("last"), req.query.get("n")
    if last:
        items = [i for i in items if i > last]
    if n is None or n == "":
        return items, {}
    if not n.isdigit():
        raise HTTPError(400, f"invalid page size n={n!r}")
    if len(items) <= int(n):
        return items, {}
    items = items[:int(n)]
    if not items:
        return items, {}
    return items, {"Link": f'<{path}?n={n}&last={quote(items[-1], safe="")}>; rel="next"'}


class Registry:
    """The application: `await Registry(store, auth)(request)`."""

    def __init__(self, store: Store, auth: Auth | None = None, delete: bool = True):
        self.store, self.auth, self.delete = store, auth or Auth(), delete
        r = self.router = Router()
        r.add("GET", r"/v2/?", self.base)
        r.add("GET", r"/v2/_catalog", self.catalog)
        r.add("GET", r"/v2/(?P<name>.+)/tags/list", self.tags)
        r.add("GET,PUT,DELETE", r"/v2/(?P<name>.+)/manifests/(?P<ref>[^/]+)", self.manifest)
        r.add("POST", r"/v2/(?P<name>.+)/blobs/uploads/?", self.start_upload)
        r.add("GET,PATCH,PUT,DELETE", r"/v2/(?P<name>.+)/blobs/uploads/(?P<uuid>[^/]+)", self.upload)
        r.add("GET,DELETE", r"/v2/(?P<name>.+)/blobs/(?P<digest>[^/]+)", self.blob)
        r.add("GET,POST", r"/token", self.token)

    async def __call__(self, req: Request) -> Response | None:
        resp = await self.router(req)
        if resp is not None:
            resp.headers.update(API_HEADER)
        return resp

    @staticmethod
    def error_hook(exc: BaseException) -> Response | None:
        if isinstance(exc, HTTPError) and exc.status == 405:
            exc = RegistryError("UNSUPPORTED", exc.message, exc.headers)
        if isinstance(exc, RegistryError):
            return json_response(exc.body(), exc.status, {**exc.headers, **API_HEADER})
        return None

    def _allow(self, req: Request, action: str) -> str:
        """Check the repository name in the path and that the caller may do `action` on it."""
        name = check_name(req.params["name"])
        self.auth.check(req.headers, ("repository", name, action))
        if action == "delete" and not self.delete:   # as distribution with delete disabled
            raise RegistryError("UNSUPPORTED", "deletion is disabled on this registry")
        return name

    # -- base, catalog, tags -------------------------------------------------------------
    async def base(self, req: Request) -> Response:
        self.auth.check(req.headers, None)
        return json_response({})

    async def catalog(self, req: Request) -> Response:
        self.auth.check(req.headers, ("registry", "catalog", "*"))
        repos, headers = _page(req, self.store.repositories(), "/v2/_catalog")
        return json_response({"repositories": repos}, 200, headers)

    async def tags(self, req: Request) -> Response:
        name = self._allow(req, "pull")
        tags, headers = _page(req, self.store.tags(name), f"/v2/{name}/tags/list")
        return json_response({"name": name, "tags": tags}, 200, headers)

    # -- manifests -----------------------------------------------------------------------
    async def manifest(self, req: Request) -> Response:
        ref = req.params["ref"]
        if req.method == "PUT":
            name = self._allow(req, "push")
            data = await req.body(MANIFEST_LIMIT)
            digest = self.store.put_manifest(name, ref, data, req.header("content-type"))
            return Response(201, b"", {"Location": f"/v2/{name}/manifests/{digest}",
                                       "Docker-Content-Digest": digest})
        if req.method == "DELETE":
            self.store.delete_manifest(self._allow(req, "delete"), ref)
            return Response(202)
        data, media_type, digest = self.store.get_manifest(self._allow(req, "pull"), ref)
        return Response(200, data, {"Content-Type": media_type, "Docker-Content-Digest": digest,
                                    "ETag": f'"{digest}"'})

    # -- blobs ---------------------------------------------------------------------------
    async def blob(self, req: Request) -> Response:
        digest = req.params["digest"]
        parse_digest(digest)
        if req.method == "DELETE":
            self.store.unlink_blob(self._allow(req, "delete"), digest)
            return Response(202)
        path = self.store.blob_in(self._allow(req, "pull"), digest)
        size = path.stat().st_size
        headers = {"Content-Type": "application/octet-stream", "Docker-Content-Digest": digest,
                   "Accept-Ranges": "bytes", "ETag": f'"{digest}"'}
        start, end, status = 0, size - 1, 200
        if req.header("range"):
            m = re.fullmatch(r"bytes=(\d*)-(\d*)", req.header("range").strip())
            if m and m.group(1):
                start, end = int(m.group(1)), min(int(m.group(2) or end), end)
            elif m and m.group(2):                      # suffix range: the last N bytes
                start = max(size - int(m.group(2)), 0)
            if not m or m.group(1) == m.group(2) == "" or start > end:
                raise HTTPError(416, f"range {req.header('range')!r} not satisfiable",
                                {"Content-Range": f"bytes */{size}"})
            status, headers["Content-Range"] = 206, f"bytes {start}-{end}/{size}"
        headers["Content-Length"] = str(end - start + 1)
        if req.method == "HEAD":
            return Response(status, b"", headers)

        async def content():
            with open(path, "rb") as f:
                f.seek(start)
                left = end - start + 1
                while left > 0 and (chunk := f.read(min(READ_CHUNK, left))):
                    left -= len(chunk)
                    yield chunk
        return Response(status, content(), headers)

    # -- uploads -------------------------------------------------------------------------
    def _upload_headers(self, name: str, uuid: str) -> dict[str, str]:
        return {"Location": f"/v2/{name}/blobs/uploads/{uuid}", "Docker-Upload-UUID": uuid,
                "Range": _range(self.store.upload_size(name, uuid))}

    @staticmethod
    def _created(name: str, digest: str) -> Response:
        return Response(201, b"", {"Location": f"/v2/{name}/blobs/{digest}",
                                   "Docker-Content-Digest": digest})

    async def _receive(self, req: Request, name: str, uuid: str,
                       start: int | None = None, end: int | None = None) -> None:
        """Stream the request body onto the end of upload `uuid`; for a chunk with a
        Content-Range, check it starts where the upload ends and is as long as it says."""
        with self.store.open_upload(name, uuid) as upload:
            if start is not None and start != upload.size:
                raise RegistryError("RANGE_INVALID", f"upload is at {upload.size}, not {start}",
                                    self._upload_headers(name, uuid))
            async for chunk in req:
                upload.write(chunk)
            if end is not None and upload.size != end + 1:
                upload.truncate(start)
                raise RegistryError("SIZE_INVALID", f"chunk {start}-{end} has the wrong length")

    async def start_upload(self, req: Request) -> Response:
        name = self._allow(req, "push")
        mount, source, digest = req.query.get("mount"), req.query.get("from"), req.query.get("digest")
        if mount and source:
            parse_digest(mount)
            try:
                if self.auth.allowed(req.headers, ("repository", check_name(source), "pull")):
                    self.store.blob_in(source, mount)
                    self.store.link_blob(name, mount)
                    return self._created(name, mount)
            except RegistryError:
                pass                        # not mountable: fall back to a plain upload
        if digest is not None:              # monolithic: the whole blob in this request
            parse_digest(digest)
            uuid = self.store.start_upload(name)
            try:
                await self._receive(req, name, uuid)
                self.store.commit_upload(name, uuid, digest)
            finally:
                try:
                    self.store.cancel_upload(name, uuid)
                except RegistryError:
                    pass                    # committed (or discarded) already
            return self._created(name, digest)
        uuid = self.store.start_upload(name)
        return Response(202, b"", self._upload_headers(name, uuid))

    async def upload(self, req: Request) -> Response:
        name, uuid = self._allow(req, "push"), req.params["uuid"]
        if req.method == "GET":
            return Response(204, b"", self._upload_headers(name, uuid))
        if req.method == "DELETE":
            self.store.cancel_upload(name, uuid)
            return Response(204)
        if req.method == "PATCH":
            start = end = None
            if req.header("content-range"):   # a chunk: "<start>-<end>"; absent = streamed
                m = re.fullmatch(r"(?:bytes[ =])?(\d+)-(\d+)(?:/\*|/\d+)?",
                                 req.header("content-range").strip())
                if not m or int(m.group(2)) < int(m.group(1)):
                    raise RegistryError("RANGE_INVALID", req.header("content-range"))
                start, end = int(m.group(1)), int(m.group(2))
            await self._receive(req, name, uuid, start, end)
            return Response(202, b"", self._upload_headers(name, uuid))
        digest = req.query.get("digest")      # PUT: the last bytes (maybe none), then commit
        if not digest:
            raise RegistryError("DIGEST_INVALID", "a digest query parameter is required")
        parse_digest(digest)
        self.store.upload_size(name, uuid)
        await self._receive(req, name, uuid)
        self.store.commit_upload(name, uuid, digest)
        return self._created(name, digest)

    # -- the token service ---------------------------------------------------------------
    async def token(self, req: Request) -> Response:
        if self.auth.mode != "token":
            raise HTTPError(404, "no token service: the registry runs without --auth token")
        creds, scopes = basic_credentials(req.header("authorization")), req.query_all.get("scope", [])
        if req.method == "POST":              # OAuth2 password grant, as `docker login` may use
            form = parse_qs((await req.body(64 * 1024)).decode("utf-8", "replace"))
            if form.get("grant_type") == ["password"]:
                creds = (form.get("username", [""])[0], form.get("password", [""])[0])
            scopes = [s for value in form.get("scope", []) for s in value.split(" ")]
        scopes = [s for value in scopes for s in value.split(" ") if s]
        return json_response(self.auth.issue(creds, scopes))


async def serve(registry: Registry, addresses: list[str]) -> None:
    server = Server(registry, error_hook=Registry.error_hook)
    for address in addresses:
        print(f"refimpl-registry listening on {await server.listen(address)}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="refimpl-registry", description="An OCI distribution "
                                     "(Docker registry v2) server storing its content under --root.")
    parser.add_argument("--root", required=True, help="storage directory (created if missing)")
    parser.add_argument("--listen", action="append", metavar="ADDR",
                        help="host:port or unix:///path (repeatable; default 127.0.0.1:5000)")
    parser.add_argument("--htpasswd", metavar="FILE", help="users for basic or token auth")
    parser.add_argument("--auth", choices=["none", "basic", "token"],
                        help="default: basic with --htpasswd, else none")
    parser.add_argument("--service", default=SERVICE, help="service name in token challenges")
    parser.add_argument("--realm", help="token realm URL (default http://<Host header>/token)")
    parser.add_argument("--no-delete", action="store_true",
                        help="refuse manifest and blob deletes (405 UNSUPPORTED)")
    parser.add_argument("--log-level", default="WARNING")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(message)s")
    mode = args.auth or ("basic" if args.htpasswd else "none")
    try:
        addresses = args.listen or ["127.0.0.1:5000"]
        for address in addresses:
            parse_address(address)            # refuse bad input before touching --root
        users = Htpasswd(args.htpasswd) if args.htpasswd else None
        auth = Auth(mode, users, service=args.service, realm=args.realm)
        registry = Registry(Store(args.root), auth, delete=not args.no_delete)
        asyncio.run(serve(registry, addresses))
    except (OSError, ValueError) as exc:
        print(f"refimpl-registry: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
