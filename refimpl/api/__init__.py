"""refimpl/api: the Docker Engine API over refimpl/httpd, and nothing else.

Routes turn HTTP into calls on the engine and the engine's answers into JSON,
progress streams and hijacked connections. No engine logic and no syscalls
live here. Each module registers its routes on the shared router:

    system.py      /_ping, /version, /info, /events
    images.py      /images/...
    containers.py  /containers/...
    networks.py    /networks/...
    volumes.py     /volumes/...

Every path may carry a `/vX.Y` prefix (`/v1.44/containers/json`); a version
above ours is refused as Docker refuses it. Errors from the engine carry their
HTTP status (`refimpl.engine.errors`); the error hook answers
`{"message": ...}` with `Content-Type: application/json`, one line, no traceback.
"""

from __future__ import annotations

import re

from ..httpd import HTTPError, Request, Response, Router, json_response

API_VERSION = "1.44"
MIN_API_VERSION = "1.24"
_VERSIONED = re.compile(r"/v(?P<v>[0-9]+\.[0-9]+)(?P<rest>/.*)")


def _vtuple(v: str) -> tuple[int, ...]:
    return tuple(int(x) for x in v.split("."))


class App:
    """The request handler given to httpd.Server."""

    def __init__(self, engine):
        from . import build, containers, execs, images, networks, system, volumes
        self.engine = engine
        self.router = Router()
        for module in (system, images, containers, execs, networks, volumes, build):
            module.register(self.router, engine)

    async def __call__(self, req: Request):
        m = _VERSIONED.fullmatch(req.path)
        req.api_version = API_VERSION
        if m:
            version = m.group("v")
            if _vtuple(version) > _vtuple(API_VERSION):
                raise HTTPError(400, f"client version {version} is too new. "
                                     f"Maximum supported API version is {API_VERSION}")
            if _vtuple(version) < _vtuple(MIN_API_VERSION):
                raise HTTPError(400, f"client version {version} is too old. "
                                     f"Minimum supported API version is {MIN_API_VERSION}, "
                                     f"please upgrade your client to a newer version")
            req.path, req.api_version = m.group("rest"), version
        return await self.router(req)


def error_hook(exc: BaseException) -> Response | None:
    """Engine errors (anything with an int `status`) → Docker's error answer."""
    from ..image.reference import ReferenceError as BadReference
    if isinstance(exc, HTTPError):
        return None
    status = getattr(exc, "status", None)
    if isinstance(exc, BadReference):
        status = 400
    if not isinstance(status, int):
        return None
    if status == 304:
        return Response(304, b"")
    message = (str(exc).splitlines() or [type(exc).__name__])[0]
    return json_response({"message": message}, status)


def query_bool(req: Request, name: str, default: bool = False) -> bool:
    """Docker's boolean query values: 1/true/True/yes are true; empty or absent is the default."""
    value = req.query.get(name)
    if value is None or value == "":
        return default
    return value.lower() not in ("0", "false", "no", "off")


def query_int(req: Request, name: str, default: int | None = None) -> int | None:
    value = req.query.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise HTTPError(400, f"invalid value for {name}: {value!r} is not an integer") from None
