"""Volume routes: /volumes create, list (filters), inspect, rm (409 while in use), prune."""

from __future__ import annotations

import json

from ..httpd import HTTPError, Response, json_response
from . import query_bool


def register(router, engine) -> None:
    def svc():
        if getattr(engine, "volumes", None) is None:
            raise HTTPError(501, "volumes are not available in this engine")
        return engine.volumes

    @router.route("POST", "/volumes/create")
    async def create(req):
        raw = await req.body()
        try:
            body = json.loads(raw or b"{}")
        except ValueError as e:
            raise HTTPError(400, f"invalid JSON: {e}") from None
        if not isinstance(body, dict):
            raise HTTPError(400, "invalid JSON: the body must be an object")
        return json_response(svc().create(body.get("Name") or None, body.get("Driver") or None,
                                          body.get("Labels"), body.get("DriverOpts")), 201)

    @router.route("GET", "/volumes")
    async def ls(req):
        return json_response(svc().list(req.query.get("filters")))

    @router.route("POST", "/volumes/prune")
    async def prune(req):
        return json_response(svc().prune(req.query.get("filters")))

    @router.route("GET", r"/volumes/(?P<name>[^/]+)")
    async def inspect(req):
        return json_response(svc().inspect(req.params["name"]))

    @router.route("DELETE", r"/volumes/(?P<name>[^/]+)")
    async def rm(req):
        svc().remove(req.params["name"], query_bool(req, "force"))
        return Response(204)
