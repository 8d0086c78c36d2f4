"""Network routes: /networks list (filters), inspect, create, rm, connect, disconnect, prune."""

from __future__ import annotations

import json

from ..engine.container_config import parse_filters
from ..httpd import HTTPError, Response, json_response

FILTERS = ("name", "id", "driver", "label", "type", "scope", "dangling")
ID = r"/networks/(?P<id>[^/]+)"


async def _json(req) -> dict:
    raw = await req.body()
    try:
        body = json.loads(raw or b"{}")
    except ValueError as e:
        raise HTTPError(400, f"invalid JSON: {e}") from None
    if not isinstance(body, dict):
        raise HTTPError(400, "invalid JSON: the body must be an object")
    return body


def register(router, engine) -> None:
    def nets():
        if engine.networks is None or engine.containers is None:
            raise HTTPError(501, "networks are not available in this engine")
        return engine.networks

    @router.route("GET", "/networks")
    async def ls(req):
        f = parse_filters(req.query.get("filters"), FILTERS)
        return json_response(nets().list(f, engine.containers.network_containers))

    @router.route("POST", "/networks/create")
    async def create(req):
        body = await _json(req)
        ipam = body.get("IPAM") or {}
        if ipam.get("Driver") not in (None, "", "default"):
            raise HTTPError(404, f"plugin \"{ipam['Driver']}\" not found")
        return json_response(nets().create(
            body.get("Name") or "", driver=body.get("Driver") or "bridge",
            internal=bool(body.get("Internal")), labels=body.get("Labels"), options=body.get("Options"),
            ipam_config=ipam.get("Config"), attachable=bool(body.get("Attachable"))), 201)

    @router.route("POST", "/networks/prune")
    async def prune(req):
        f = parse_filters(req.query.get("filters"), ("label", "until"))
        return json_response({"NetworksDeleted": nets().prune(f) or None})

    @router.route("GET", ID)
    async def inspect(req):
        name = nets().resolve(req.params["id"])
        return json_response(nets().inspect(name, engine.containers.network_containers(name)))

    @router.route("DELETE", ID)
    async def rm(req):
        nets().remove(req.params["id"])
        return Response(204)

    @router.route("POST", ID + "/connect")
    async def connect(req):
        body = await _json(req)
        await engine.containers.connect(req.params["id"], body.get("Container") or "",
                                        body.get("EndpointConfig"))
        return Response(200)

    @router.route("POST", ID + "/disconnect")
    async def disconnect(req):
        body = await _json(req)
        await engine.containers.disconnect(req.params["id"], body.get("Container") or "",
                                           bool(body.get("Force")))
        return Response(200)
