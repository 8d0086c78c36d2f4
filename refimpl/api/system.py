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

    register_auth(router, engine)


def register_auth(router, engine) -> None:
    """POST /auth: check credentials against a registry (what `docker login` calls)."""
    import asyncio

    from ..engine.errors import EngineError
    from ..registry.client import RegistryClient, RegistryClientError

    class LoginError(EngineError):
        status = 401

    @router.route("POST", "/auth")
    async def auth(req):
        body = await req.json() or {}
        if not isinstance(body, dict):
            raise LoginError("invalid auth configuration: expected a JSON object")
        server = str(body.get("serveraddress") or "docker.io")
        host = server.split("://", 1)[-1].rstrip("/").split("/", 1)[0]
        if host in ("index.docker.io", "docker.io"):
            host = "registry-1.docker.io"
        creds = {"username": body.get("username") or "", "password": body.get("password") or "",
                 "identitytoken": body.get("identitytoken") or ""}
        client = RegistryClient(host, {k: v for k, v in creds.items() if v})

        def check() -> None:
            resp = client.request("GET", "/v2/", "registry:catalog:*")
            resp.read()
            if resp.status == 401:
                raise LoginError(f'Get "{client.base}/v2/": unauthorized: incorrect username or password')
            if resp.status >= 400:
                raise LoginError(f"login attempt to {client.base}/v2/ failed with status: {resp.status}")

        try:
            await asyncio.to_thread(check)
        except RegistryClientError as e:
            if e.status == 401:
                raise LoginError(f'Get "{client.base}/v2/": unauthorized: incorrect username or '
                                 f'password') from None
            raise LoginError(str(e)) from None
        return json_response({"Status": "Login Succeeded", "IdentityToken": ""})
