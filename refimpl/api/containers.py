"""Container routes: create, start, attach, wait, resize, stop, kill, restart, pause,
unpause, rm, prune, list, inspect, logs, rename, top, archive.

Attach is the one route that leaves HTTP: after `101 UPGRADED` the connection is
a byte pipe to the container's supervisor. Output goes to the client as the
supervisor sends it (raw with a TTY, stdcopy frames without); the client's bytes
go to the container's stdin, and the client's half-close is passed on as a
half-close, which ends the container's stdin (StdinOnce) while output keeps
flowing. Two asyncio copy loops, one per direction; the attach ends when the
supervisor closes its side (the container has exited and its output is drained).
"""

from __future__ import annotations

import asyncio
import base64
import json

from ..httpd import HTTPError, Response, json_response
from . import query_bool, query_int

ID = r"/containers/(?P<id>[^/]+)"
MULTIPLEXED = "application/vnd.docker.multiplexed-stream"
RAW = "application/vnd.docker.raw-stream"


def register(router, engine) -> None:
    def svc():
        if engine.containers is None:
            raise HTTPError(501, "containers are not available in this engine")
        return engine.containers

    @router.route("POST", "/containers/create")
    async def create(req):
        raw = await req.body()
        return json_response(svc().create(raw, req.query.get("name") or None), 201)

    @router.route("POST", "/containers/prune")
    async def prune(req):
        return json_response(await svc().prune(req.query.get("filters")))

    @router.route("GET", "/containers/json")
    async def ps(req):
        return json_response(svc().list(query_bool(req, "all"), query_int(req, "limit"),
                                         query_bool(req, "size"), req.query.get("filters")))

    @router.route("GET", ID + "/json")
    async def inspect(req):
        return json_response(svc().inspect(req.params["id"], query_bool(req, "size")))

    @router.route("POST", ID + "/start")
    async def start(req):
        await svc().start(req.params["id"])
        return Response(204)

    @router.route("POST", ID + "/stop")
    async def stop(req):
        await svc().stop(req.params["id"], query_int(req, "t"), req.query.get("signal") or None)
        return Response(204)

    @router.route("POST", ID + "/restart")
    async def restart(req):
        await svc().restart(req.params["id"], query_int(req, "t"), req.query.get("signal") or None)
        return Response(204)

    @router.route("POST", ID + "/kill")
    async def kill(req):
        await svc().kill(req.params["id"], req.query.get("signal") or None)
        return Response(204)

    @router.route("POST", ID + "/pause")
    async def pause(req):
        svc().pause(req.params["id"])
        return Response(204)

    @router.route("POST", ID + "/unpause")
    async def unpause(req):
        svc().unpause(req.params["id"])
        return Response(204)

    @router.route("DELETE", r"/containers/(?P<id>[^/]+)")
    async def remove(req):
        await svc().remove(req.params["id"], query_bool(req, "force"), query_bool(req, "v"))
        return Response(204)

    @router.route("POST", ID + "/rename")
    async def rename(req):
        svc().rename(req.params["id"], req.query.get("name", ""))
        return Response(204)

    @router.route("POST", ID + "/resize")
    async def resize(req):
        svc().resize(req.params["id"], query_int(req, "h", 0), query_int(req, "w", 0))
        return Response(200, b"")

    @router.route("GET", ID + "/top")
    async def top(req):
        return json_response(await svc().top(req.params["id"], req.query.get("ps_args") or "-ef"))

    @router.route("POST", ID + "/wait")
    async def wait(req):
        fut = svc().waiter(req.params["id"], req.query.get("condition", "not-running"))
        stream = await req.stream(200, {"Content-Type": "application/json"})
        code = await fut
        await stream.write(json.dumps({"StatusCode": code, "Error": None}).encode() + b"\n")

    @router.route("GET", ID + "/logs")
    async def logs(req):
        from ..engine.logs import parse_since
        tail = req.query.get("tail", "all")
        try:
            tail_n = None if tail in ("", "all") else int(tail)
        except ValueError:
            raise HTTPError(400, f"invalid value for tail: {tail!r}") from None
        tty, body = svc().logs(req.params["id"], stdout=query_bool(req, "stdout"),
                               stderr=query_bool(req, "stderr"), follow=query_bool(req, "follow"),
                               timestamps=query_bool(req, "timestamps"), tail=tail_n,
                               since=parse_since(req.query.get("since")),
                               until=parse_since(req.query.get("until")))
        return Response(200, body, {"Content-Type": RAW if tty else MULTIPLEXED})

    @router.route("POST", ID + "/attach")
    async def attach(req):
        c, replay, fut = svc().attach_prepare(
            req.params["id"], stdin=query_bool(req, "stdin"), stdout=query_bool(req, "stdout"),
            stderr=query_bool(req, "stderr"), logs=query_bool(req, "logs"),
            stream=query_bool(req, "stream"))
        reader, writer, trailing = await req.hijack(content_type=RAW if c.tty else MULTIPLEXED)
        try:
            if replay:
                writer.write(replay)
                await writer.drain()
            att = await fut if fut is not None else None
            if att is not None:
                await _pipe(reader, writer, trailing, att.sock)
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    @router.route("GET,HEAD", ID + "/archive")
    async def archive(req):
        path = req.query.get("path", "")
        stat, body = await svc().archive(req.params["id"], path, head=req.method == "HEAD")
        header = base64.b64encode(json.dumps(stat).encode()).decode()
        headers = {"X-Docker-Container-Path-Stat": header, "Content-Type": "application/x-tar"}
        return Response(200, b"" if body is None else body, headers)


async def _pipe(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter, trailing: bytes,
                sock) -> None:
    """Copy client -> supervisor and supervisor -> client until the supervisor closes."""
    sock.setblocking(False)
    shim_r, shim_w = await asyncio.open_unix_connection(sock=sock)

    async def up():
        try:
            if trailing:
                shim_w.write(trailing)
            while data := await client_r.read(65536):
                shim_w.write(data)
                await shim_w.drain()
            if shim_w.can_write_eof():
                shim_w.write_eof()                 # stdin EOF, output keeps flowing
        except (ConnectionError, OSError):
            pass

    task = asyncio.get_running_loop().create_task(up())
    try:
        while data := await shim_r.read(65536):
            client_w.write(data)
            await client_w.drain()
    finally:
        task.cancel()
        shim_w.close()
