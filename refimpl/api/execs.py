"""Exec routes: POST /containers/{id}/exec, POST /exec/{id}/start (hijacked), GET /exec/{id}/json,
POST /exec/{id}/resize.

Start leaves HTTP as attach does: after `101 UPGRADED` the client's bytes go to the
process's stdin (its half-close ends stdin) and the process's output comes back raw
with a TTY, in stdcopy frames without. The connection closes when the process has
exited and its output is drained; the CLI then reads the exit code from
`GET /exec/{id}/json`.
"""

from __future__ import annotations

import asyncio
import struct

from ..httpd import HTTPError, Response, json_response
from ..runtime import nsexec
from . import query_int

MULTIPLEXED = "application/vnd.docker.multiplexed-stream"
RAW = "application/vnd.docker.raw-stream"


def register(router, engine) -> None:
    def svc():
        if getattr(engine, "execs", None) is None:
            from ..engine.execs import ExecService
            if engine.containers is None:
                raise HTTPError(501, "containers are not available in this engine")
            engine.execs = ExecService(engine)
        return engine.execs

    processes: dict[str, nsexec.ExecProcess] = {}

    @router.route("POST", r"/containers/(?P<id>[^/]+)/exec")
    async def create(req):
        return json_response({"Id": svc().create(req.params["id"], await req.json())}, 201)

    @router.route("GET", r"/exec/(?P<id>[^/]+)/json")
    async def inspect(req):
        return json_response(svc().inspect(req.params["id"]))

    @router.route("POST", r"/exec/(?P<id>[^/]+)/resize")
    async def resize(req):
        e = svc().get(req.params["id"])
        p = processes.get(e.id)
        if p is not None:
            p.resize(query_int(req, "h", 24) or 24, query_int(req, "w", 80) or 80)
        return Response(200)

    @router.route("POST", r"/exec/(?P<id>[^/]+)/start")
    async def start(req):
        body = await req.json() or {}
        if not isinstance(body, dict):
            raise HTTPError(400, "invalid exec start configuration: expected a JSON object")
        e, spec = svc().prepare(req.params["id"])
        try:
            proc = await nsexec.spawn(spec, e.tty, e.stdin and not body.get("Detach"))
        except OSError as exc:
            svc().finished(e, 126)
            raise HTTPError(500, f"exec failed: {exc.strerror or exc}") from None
        processes[e.id] = proc
        e.pid = proc.proc.pid

        async def reap():
            code = await proc.wait()
            svc().finished(e, code)
            processes.pop(e.id, None)

        if body.get("Detach"):
            async def drain():
                async for _ in proc.output():
                    pass
            asyncio.get_running_loop().create_task(drain())
            asyncio.get_running_loop().create_task(reap())
            return Response(200)

        reader, writer, trailing = await req.hijack(content_type=RAW if e.tty else MULTIPLEXED)

        async def up():
            try:
                if trailing:
                    await proc.write(trailing)
                while data := await reader.read(65536):
                    await proc.write(data)
            except (ConnectionError, OSError):
                pass
            proc.close_stdin()

        pump = asyncio.get_running_loop().create_task(up()) if e.stdin else None
        try:
            async for tag, data in proc.output():
                if not e.tty:
                    data = struct.pack(">BxxxI", tag, len(data)) + data
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            await reap()
            if pump is not None:
                pump.cancel()
            writer.close()
        return None
