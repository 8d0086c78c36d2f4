"""System routes: /_ping, /version, /info."""

from __future__ import annotations

from ..httpd import Response, json_response
from . import API_VERSION, MIN_API_VERSION


def register(router, engine) -> None:
    def ping_headers() -> dict[str, str]:
        return {"Api-Version": API_VERSION, "Ostype": "linux", "Builder-Version": "1",
                "Docker-Experimental": "false", "Cache-Control": "no-cache, no-store, must-revalidate",
                "Pragma": "no-cache", "Server": f"refimpl/{engine.version()['Version']} (linux)"}

    @router.route("GET,HEAD", "/_ping")
    async def ping(req):
        return Response(200, b"OK", {"Content-Type": "text/plain; charset=utf-8", **ping_headers()})

    @router.route("GET", "/version")
    async def version(req):
        v = engine.version()
        return json_response({**v, "ApiVersion": API_VERSION, "MinAPIVersion": MIN_API_VERSION})

    @router.route("GET", "/info")
    async def info(req):
        return json_response(engine.info())
