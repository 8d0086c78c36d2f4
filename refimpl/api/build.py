"""Build and commit routes: POST /build (the classic builder), POST /build/prune, POST /commit,
and the container filesystem routes beside them: GET /containers/{id}/export and /changes,
and import (POST /images/create?fromSrc=-, handed over by the images routes).

`POST /build` takes the context as a tar body (plain or gzip), spooled to a
temp file, and answers with Docker's JSON message stream: `{"stream": "Step
1/3 : ..."}` lines, `{"aux": {"ID": ...}}`, and on failure `{"errorDetail":
{"code": N, "message": ...}, "error": ...}` (the docker CLI exits with that
code). An error before the first message (a bad tag, a malformed Dockerfile,
a missing Dockerfile) is a plain `{"message"}` answer with status 400.
"""
from __future__ import annotations

import asyncio
import json
import tempfile

from ..build.builder import BuildError, BuildOptions, Builder, prune
from ..engine import commit as commit_mod
from ..httpd import HTTPError, Response, json_response
from . import query_bool


def _json_line(obj) -> bytes:
    return json.dumps(obj).encode() + b"\r\n"


def _json_query(req, name: str, what: str) -> dict:
    raw = req.query.get(name)
    if not raw:
        return {}
    try:
        doc = json.loads(raw)
    except ValueError:
        raise HTTPError(400, f"invalid {what}: {raw!r} is not JSON") from None
    if not isinstance(doc, dict):
        raise HTTPError(400, f"invalid {what}: expected a JSON object")
    return doc


def register(router, engine) -> None:
    @router.route("POST", r"/build")
    async def build(req):
        if req.query.get("remote"):
            raise HTTPError(400, "remote build contexts are not supported: send the context as a tar")
        opts = BuildOptions(dockerfile=req.query.get("dockerfile") or "Dockerfile",
                            tags=req.query_all.get("t", []),
                            buildargs=_json_query(req, "buildargs", "build args"),
                            nocache=query_bool(req, "nocache"), target=req.query.get("target", ""),
                            labels=_json_query(req, "labels", "labels"), quiet=query_bool(req, "q"),
                            pull=query_bool(req, "pull"))
        ctx = tempfile.TemporaryFile(dir=engine.data_root)
        try:
            async for chunk in req:
                await asyncio.to_thread(ctx.write, chunk)
            ctx.seek(0)
            return await _stream(req, lambda say: Builder(engine, say).build(ctx, opts))
        finally:
            ctx.close()

    @router.route("POST", r"/build/prune")
    async def build_prune(req):
        return json_response(await asyncio.to_thread(prune, engine))

    @router.route("POST", r"/commit")
    async def commit(req):
        ref = req.query.get("container", "")
        if not ref:
            raise HTTPError(400, "container is required")
        override = commit_mod.container_config_from_body(await req.body())
        image_id = await asyncio.to_thread(
            commit_mod.commit, engine, ref, repo=req.query.get("repo", ""), tag=req.query.get("tag", ""),
            author=req.query.get("author", ""), comment=req.query.get("comment", ""),
            changes=req.query_all.get("changes", []), pause=query_bool(req, "pause", True),
            config_override=override)
        return json_response({"Id": image_id}, 201)

    @router.route("GET", r"/containers/(?P<id>[^/]+)/changes")
    async def changes(req):
        return json_response(await asyncio.to_thread(commit_mod.changes, engine, req.params["id"]) or None)

    @router.route("GET", r"/containers/(?P<id>[^/]+)/export")
    async def export(req):
        engine.containers.get(req.params["id"])              # 404 before anything is sent
        tmp = tempfile.TemporaryFile(dir=engine.data_root)
        try:
            await asyncio.to_thread(commit_mod.export, engine, req.params["id"], tmp)
            size = tmp.tell()
            tmp.seek(0)
            stream = await req.stream(200, {"Content-Type": "application/x-tar", "Content-Length": str(size)})
            while chunk := await asyncio.to_thread(tmp.read, 256 * 1024):
                await stream.write(chunk)
        finally:
            tmp.close()
        return None


async def import_image(req, engine):
    """POST /images/create?fromSrc=- : the body is a tar that becomes a one-layer image."""
    if req.query.get("fromSrc") != "-":
        raise HTTPError(400, "only fromSrc=- (the request body) is supported: no remote sources")
    tmp = tempfile.TemporaryFile(dir=engine.data_root)
    try:
        async for chunk in req:
            await asyncio.to_thread(tmp.write, chunk)
        tmp.seek(0)
        image_id = await asyncio.to_thread(
            commit_mod.import_image, engine, tmp, repo=req.query.get("repo", ""), tag=req.query.get("tag", ""),
            message=req.query.get("message", ""), changes_=req.query_all.get("changes", []))
    finally:
        tmp.close()
    return Response(200, _json_line({"status": image_id}), {"Content-Type": "application/json"})


async def _stream(req, work):
    """Run `work(say)` in a thread; an error before its first message (or its `say(None)`,
    which only starts the stream) is a plain answer."""
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

    fut = loop.run_in_executor(None, run)
    kind, value = await queue.get()
    if kind == "error":
        await fut
        raise value
    stream = await req.stream(200, {"Content-Type": "application/json"})
    while kind != "done":
        if kind == "error":
            message = (str(value).splitlines() or [type(value).__name__])[0]
            detail = {"message": message}
            if isinstance(value, BuildError):
                detail["code"] = value.code
            await stream.write(_json_line({"errorDetail": detail, "error": message}))
            break
        if value is not None:           # None only marks the start of the build
            await stream.write(_json_line(value))
        kind, value = await queue.get()
    await fut
    return None
