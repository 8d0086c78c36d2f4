"""Image routes: pull (/images/create), list, inspect, history, tag, delete, save (/get), load.

Names in paths carry slashes and colons (`/images/127.0.0.1:5000/dockspec/busybox:latest/json`),
so the routes with a suffix (`/json`, `/history`, `/tag`, `/get`) are registered
before the bare `DELETE /images/{name}` and every name group is `.+`.

Pulling and loading run in a worker thread (they block on the registry and the
disk). A pull's answer waits for the first thing the worker says: an error
before any progress is a plain `{"message"}` answer with its status (404 for an
unknown manifest, 400 for a bad reference), which is what the docker CLI turns
into its error line; once progress has started, a later error is sent in the
stream as `{"errorDetail": {"message": ...}, "error": ...}`, as dockerd does.
"""
from __future__ import annotations

import asyncio
import json
import os
import tempfile

from ..engine import archive, imageops
from ..engine.pull import pull
from ..engine.push import push
from ..httpd import HTTPError, Response, json_response
from ..image import digest as digest_mod
from ..image import reference as ref_mod
from ..registry.client import decode_auth
from . import query_bool

CHUNK = 256 * 1024
_NAME = r"/images/(?P<name>.+)"


def _json_line(obj) -> bytes:
    return json.dumps(obj).encode() + b"\r\n"


def _filters(req) -> dict[str, list[str]]:
    """`filters` as JSON: {"key": ["v", ...]} or the older {"key": {"v": true}}."""
    raw = req.query.get("filters")
    if not raw:
        return {}
    try:
        doc = json.loads(raw)
    except ValueError:
        raise HTTPError(400, f"invalid filters: {raw!r} is not JSON") from None
    if not isinstance(doc, dict):
        raise HTTPError(400, "invalid filters: expected a JSON object")
    out = {}
    for key, value in doc.items():
        if isinstance(value, dict):
            value = [k for k, v in value.items() if v]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise HTTPError(400, f"invalid filters: values of {key!r} must be strings")
        out[key] = value
    return out


async def _run_streaming(req, work, first_status: int = 200):
    """Run `work(say)` in a thread; answer with the first message or the early error,
    then stream every later message as a JSON line."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()

    def say(msg) -> None:
        loop.call_soon_threadsafe(queue.put_nowait, ("msg", msg))

    def run() -> None:
        try:
            work(say)
            loop.call_soon_threadsafe(queue.put_nowait, ("done", None))
        except BaseException as e:          # handed to the event loop, answered there
            loop.call_soon_threadsafe(queue.put_nowait, ("error", e))

    loop.run_in_executor(None, run)
    kind, value = await queue.get()
    if kind == "error":
        raise value
    stream = await req.stream(first_status, {"Content-Type": "application/json"})
    while kind != "done":
        if kind == "error":
            message = (str(value).splitlines() or [type(value).__name__])[0]
            await stream.write(_json_line({"errorDetail": {"message": message}, "error": message}))
            break
        await stream.write(_json_line(value))
        kind, value = await queue.get()
    return None


def register(router, engine) -> None:
    images = engine.images

    def summary(img) -> dict:
        size = images.size(img)
        return {"Id": img.id, "ParentId": "", "RepoTags": list(img.repo_tags),
                "RepoDigests": list(img.repo_digests), "Created": imageops.created_unix(img),
                "Size": size, "SharedSize": -1, "VirtualSize": size,
                "Labels": imageops.labels(img) or None, "Containers": -1}

    def inspect(img) -> dict:
        c = img.config
        dirs = images.layer_dirs(img)        # top-most first
        data = {}
        if dirs:
            top = os.path.dirname(dirs[0])
            data = {"MergedDir": os.path.join(top, "merged"), "UpperDir": dirs[0],
                    "WorkDir": os.path.join(top, "work")}
            if len(dirs) > 1:
                data["LowerDir"] = ":".join(dirs[1:])
        out = {"Id": img.id, "RepoTags": list(img.repo_tags), "RepoDigests": list(img.repo_digests),
               "Parent": "", "Comment": str(c.get("comment", "")), "Created": imageops.created_text(img),
               "DockerVersion": str(c.get("docker_version", "")), "Author": str(c.get("author", "")),
               "Config": c.get("config") or None, "Architecture": c.get("architecture", ""),
               "Os": c.get("os", ""), "Size": images.size(img),
               "GraphDriver": {"Name": "overlay2", "Data": data},
               "RootFS": {"Type": "layers", "Layers": list(img.diff_ids)},
               "Metadata": {"LastTagTime": "0001-01-01T00:00:00Z"}}
        if c.get("variant"):
            out["Variant"] = c["variant"]
        return out

    # -- pull ----------------------------------------------------------------------------
    @router.route("POST", r"/images/create")
    async def create(req):
        name, tag = req.query.get("fromImage", ""), req.query.get("tag", "")
        if not name:
            if req.query.get("fromSrc"):
                from .build import import_image
                return await import_image(req, engine)
            raise HTTPError(400, "fromImage or fromSrc is required")
        ref = ref_mod.parse_normalized(name)
        if tag:
            ref = ref.with_digest(tag) if digest_mod.is_digest(tag) else ref.with_tag(tag)
        auth = decode_auth(req.header("x-registry-auth"))
        platform = req.query.get("platform") or None
        return await _run_streaming(req, lambda say: pull(images, str(ref), auth, say, platform))

    # -- push ----------------------------------------------------------------------------
    @router.route("POST", _NAME + r"/push")
    async def push_route(req):
        name, tag = req.params["name"], req.query.get("tag") or None
        images.resolve(name if not tag else f"{name}:{tag}")    # 404 before anything is sent
        auth = decode_auth(req.header("x-registry-auth"))
        return await _run_streaming(req, lambda say: push(images, name, tag, auth, say))

    # -- list, inspect, history ----------------------------------------------------------
    @router.route("GET", r"/images/json")
    async def listing(req):
        filters = _filters(req)
        found = await asyncio.to_thread(images.images)
        found = imageops.filter_images(images, found, filters)
        rows = [summary(i) for i in found]
        rows.sort(key=lambda r: r["Created"], reverse=True)
        return json_response(rows)

    @router.route("GET", r"/images/get")
    async def save_many(req):
        names = req.query_all.get("names", [])
        if not names:
            raise HTTPError(400, "names is required")
        return await _save(req, names)

    @router.route("GET", _NAME + r"/json")
    async def inspect_route(req):
        return json_response(inspect(images.resolve(req.params["name"])))

    @router.route("GET", _NAME + r"/history")
    async def history(req):
        return json_response(imageops.history(images, images.resolve(req.params["name"])))

    @router.route("GET", _NAME + r"/get")
    async def save_one(req):
        return await _save(req, [req.params["name"]])

    async def _save(req, names):
        for n in names:
            images.resolve(n)               # 404 before anything is sent
        tmp = tempfile.TemporaryFile(dir=images.root)
        try:
            await asyncio.to_thread(archive.save, images, names, tmp)
            size = tmp.tell()
            tmp.seek(0)
            stream = await req.stream(200, {"Content-Type": "application/x-tar",
                                            "Content-Length": str(size)})
            while chunk := await asyncio.to_thread(tmp.read, CHUNK):
                await stream.write(chunk)
        finally:
            tmp.close()
        return None

    # -- tag, delete ---------------------------------------------------------------------
    @router.route("POST", _NAME + r"/tag")
    async def tag(req):
        img = images.resolve(req.params["name"])
        repo, tag = req.query.get("repo", ""), req.query.get("tag", "")
        if not repo:
            raise HTTPError(400, "repository name (repo) is required")
        ref = ref_mod.parse_normalized(repo)
        if ref.digest:
            raise HTTPError(400, "refusing to create a tag with a digest reference")
        if tag:
            if ref.tag:
                raise HTTPError(400, "refusing to create an ambiguous tag using digest reference")
            ref = ref.with_tag(tag)
        images.tag(img.id, str(ref.tagged_or_latest()))
        return Response(201, b"")

    @router.route("DELETE", _NAME)
    async def delete(req):
        records = imageops.remove(images, req.params["name"], force=query_bool(req, "force"),
                                  prune=not query_bool(req, "noprune"),
                                  containers=engine.containers)
        return json_response(records)

    # -- load ----------------------------------------------------------------------------
    @router.route("POST", r"/images/load")
    async def load(req):
        tmp = tempfile.TemporaryFile(dir=images.root)
        try:
            async for chunk in req:
                await asyncio.to_thread(tmp.write, chunk)
            tmp.seek(0)
            lines = await asyncio.to_thread(archive.load, images, tmp)
        finally:
            tmp.close()
        body = b"".join(_json_line({"stream": line + "\n"}) for line in lines)   # same when quiet
        return Response(200, body, {"Content-Type": "application/json"})
