"""A small HTTP/1.1 server: asyncio owns the sockets, h11 speaks the protocol.

Why not http.server or aiohttp? Two things the engine and the registry need are
awkward there and a few lines here:

* hijacking: `docker attach`/`exec` ask for `Connection: Upgrade, Upgrade: tcp`;
  the daemon answers `101 UPGRADED` and from then on the connection is a raw
  byte pipe in both directions, where the client's half-close (EOF) means
  "stdin is done" while output keeps flowing;
* streaming bodies: registry uploads of layers (Content-Length or chunked) go
  to disk piece by piece, and progress answers (JSON lines) go out one flushed
  chunk at a time.

h11 is sans-IO: it parses and frames, and tells us what it did not consume
(`trailing_data`) when we leave HTTP behind. The pieces, top to bottom:

    Router           method + full-match regex -> handler; groups -> req.params
    Request          what a handler gets: method, path, query, headers, params,
                     the body as an async stream, stream() and hijack()
    Response         status, headers, body (bytes or an (async) iterable)
    HTTPError        raise it for a short {"message": ...} error answer
    Server           UNIX socket (mode 0660) and/or TCP listeners, keep-alive
    BackgroundServer a Server on its own event-loop thread (tests, embedding)

A handler is `async def handler(req) -> Response | None` (None once it has
streamed or hijacked). Exceptions become answers through the app's
`error_hook(exc) -> Response | None`; anything unhandled is a 500 with a
one-line message, and the traceback goes to the log, never to the client.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import threading
from http import HTTPStatus
from dataclasses import dataclass, field
from typing import Any, AsyncIterable, Awaitable, Callable, Iterable
from urllib.parse import parse_qs, unquote, urlsplit

import h11

log = logging.getLogger("refimpl.httpd")
READ_SIZE = 256 * 1024
DRAIN_LIMIT = 4 * 1024 * 1024       # unread request body we swallow to keep a connection alive
RAW_STREAM = "application/vnd.docker.raw-stream"


class HTTPError(Exception):
    """An error answer: `raise HTTPError(404, "no such container: x")`."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


@dataclass
class Response:
    """A whole answer. `body` is bytes, or an iterable / async iterable of bytes
    that is sent chunk by chunk (chunked encoding unless headers give a
    Content-Length)."""
    status: int = 200
    body: bytes | Iterable[bytes] | AsyncIterable[bytes] = b""
    headers: dict[str, str] = field(default_factory=dict)


def json_response(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(obj).encode() + b"\n"
    return Response(status, body, {"Content-Type": "application/json", **(headers or {})})


class Stream:
    """The open body of a streamed answer: each write() goes out as one chunk, flushed."""

    def __init__(self, conn: "_Conn"):
        self._conn = conn

    async def write(self, data: bytes) -> None:
        if data and not self._conn.head:
            await self._conn.send(h11.Data(data=data))


class Request:
    def __init__(self, conn: "_Conn", event: h11.Request):
        self._conn = conn
        self.method = event.method.decode("ascii")
        self.target = event.target.decode("latin-1")
        split = urlsplit(self.target)
        self.path = unquote(split.path)
        self.query_all: dict[str, list[str]] = parse_qs(split.query, keep_blank_values=True)
        self.query = {k: v[-1] for k, v in self.query_all.items()}
        self.headers: dict[str, str] = {}
        for name, value in event.headers:
            key, val = name.decode("latin-1").lower(), value.decode("latin-1")
            self.headers[key] = f"{self.headers[key]}, {val}" if key in self.headers else val
        self.params: dict[str, str] = {}     # filled by the Router
        self.remote = conn.writer.get_extra_info("peername")
        self.started = self.hijacked = False
        self.status: int | None = None
        self._eof = False

    # -- the request body, streamed -------------------------------------------------------
    async def read(self) -> bytes:
        """The next piece of the body as it arrives (Content-Length or chunked), b"" at the end."""
        h = self._conn.h11
        while not self._eof:
            if h.they_are_waiting_for_100_continue:
                await self._conn.send(h11.InformationalResponse(status_code=100, headers=[],
                                                                reason=b"Continue"))
            event = await self._conn.next_event()
            if isinstance(event, h11.Data):
                if event.data:
                    return bytes(event.data)
            elif isinstance(event, h11.EndOfMessage) or event is h11.PAUSED:
                self._eof = True
            else:   # ConnectionClosed mid-body (h11 raises for a short Content-Length body)
                raise ConnectionResetError("client went away before the end of the request body")
        return b""

    def __aiter__(self):
        return self

    async def __anext__(self) -> bytes:
        chunk = await self.read()
        if not chunk:
            raise StopAsyncIteration
        return chunk

    async def body(self, limit: int = 16 * 1024 * 1024) -> bytes:
        """The whole body in memory, for small JSON bodies; HTTPError 413 past `limit`."""
        parts, size = [], 0
        async for chunk in self:
            size += len(chunk)
            if size > limit:
                raise HTTPError(413, f"request body larger than {limit} bytes")
            parts.append(chunk)
        return b"".join(parts)

    async def json(self, limit: int = 16 * 1024 * 1024) -> Any:
        raw = await self.body(limit)
        try:
            return json.loads(raw) if raw.strip() else None
        except ValueError as exc:
            raise HTTPError(400, f"invalid JSON body: {exc}") from None

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name.lower(), default)

    # -- answers ------------------------------------------------------------------------
    async def stream(self, status: int = 200, headers: dict[str, str] | None = None) -> Stream:
        """Send the status line and headers now; the body follows through Stream.write()."""
        self.started, self.status = True, status
        await self._conn.send(h11.Response(status_code=status, headers=_pairs(headers or {}),
                                           reason=_reason(status)))
        return Stream(self._conn)

    async def send(self, resp: Response) -> None:
        headers = dict(resp.headers)
        if isinstance(resp.body, (bytes, bytearray)) and not _has(headers, "content-length"):
            headers["Content-Length"] = str(len(resp.body))
        stream = await self.stream(resp.status, headers)
        if isinstance(resp.body, (bytes, bytearray)):
            await stream.write(bytes(resp.body))
        elif hasattr(resp.body, "__aiter__"):
            async for chunk in resp.body:
                await stream.write(chunk)
        else:
            for chunk in resp.body:
                await stream.write(chunk)

    async def hijack(self, headers: dict[str, str] | None = None, content_type: str = RAW_STREAM):
        """Leave HTTP: answer `101 UPGRADED` (if the client asked for `Upgrade: tcp`) or a
        bare `200 OK`, then return (reader, writer, trailing) – the raw asyncio streams and
        the bytes that already followed the request. Reader EOF = the client half-closed."""
        while not self._eof:       # the request body belongs to HTTP: consume it first
            await self.read()
        conn, extra = self._conn, {"Content-Type": content_type, **(headers or {})}
        if conn.h11.their_state is h11.MIGHT_SWITCH_PROTOCOL:
            extra = {"Connection": "Upgrade", "Upgrade": "tcp", **extra}
            await conn.send(h11.InformationalResponse(status_code=101, headers=_pairs(extra),
                                                      reason=b"UPGRADED"))
        else:
            head = "HTTP/1.1 200 OK\r\n" + "".join(f"{k}: {v}\r\n" for k, v in extra.items())
            conn.writer.write(head.encode("latin-1") + b"\r\n")
            await conn.writer.drain()
        self.started = self.hijacked = True
        self.status = 101 if conn.h11.our_state is h11.SWITCHED_PROTOCOL else 200
        return conn.reader, conn.writer, conn.h11.trailing_data[0]


def _reason(status: int) -> bytes:
    try:
        return HTTPStatus(status).phrase.encode()
    except ValueError:
        return b""


def _pairs(headers: dict[str, str]) -> list[tuple[str, str]]:
    return [(k, str(v)) for k, v in headers.items()]


def _has(headers: dict[str, str], name: str) -> bool:
    return any(k.lower() == name for k in headers)


class _Conn:
    """One client connection: the h11 state machine plus its asyncio streams."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.h11 = h11.Connection(h11.SERVER)
        self.reader, self.writer = reader, writer
        self.head = False

    async def next_event(self):
        while True:
            event = self.h11.next_event()
            if event is not h11.NEED_DATA:
                return event
            self.h11.receive_data(await self.reader.read(READ_SIZE))

    async def send(self, event) -> None:
        data = self.h11.send(event)
        if data:
            self.writer.write(data)
            await self.writer.drain()


class Router:
    """Routes by method and a full-match regex on the decoded path. Patterns may use
    `(?P<name>.+)` for names that contain slashes (`localhost:5000/foo/bar`); HEAD falls
    back to the GET route (the server drops the body); a path that matches with another
    method is a 405."""

    def __init__(self):
        self.routes: list[tuple[str, re.Pattern, Callable[[Request], Awaitable]]] = []

    def add(self, methods: str, pattern: str, handler) -> None:
        for method in methods.split(","):
            self.routes.append((method.strip().upper(), re.compile(pattern), handler))

    def route(self, methods: str, pattern: str):
        def decorate(handler):
            self.add(methods, pattern, handler)
            return handler
        return decorate

    async def __call__(self, req: Request):
        allowed = []
        for wanted in [req.method] + (["GET"] if req.method == "HEAD" else []):
            for method, rx, handler in self.routes:
                match = rx.fullmatch(req.path)
                if match and method == wanted:
                    req.params = {k: v for k, v in match.groupdict().items() if v is not None}
                    return await handler(req)
                if match:
                    allowed.append(method)
        if allowed:
            raise HTTPError(405, f"method {req.method} not allowed on {req.path}",
                            {"Allow": ", ".join(sorted(set(allowed)))})
        raise HTTPError(404, f"page not found: {req.path}")


def one_line(text: str) -> str:
    """An error message as one line: line breaks that came in with a client's input
    (a decoded `%0A` in a path) are shown escaped."""
    return text.replace("\r", "\\r").replace("\n", "\\n")


def default_error_response(exc: BaseException) -> Response:
    if isinstance(exc, HTTPError):
        return json_response({"message": one_line(exc.message)}, exc.status, exc.headers)
    log.error("unhandled error in handler", exc_info=exc)
    line = (str(exc).splitlines() or [""])[0] or type(exc).__name__
    return json_response({"message": f"internal server error: {line}"}, 500)


def parse_address(text: str) -> tuple[str, str, int]:
    """`unix:///path`, `tcp://host:port`, `host:port` or `:port` -> (kind, host-or-path, port)."""
    if text.startswith("unix://"):
        if not text[7:]:
            raise ValueError(f"invalid address {text!r}: no socket path")
        return "unix", text[7:], 0
    rest = text[6:] if text.startswith("tcp://") else text
    m = re.fullmatch(r"\[?([^\]]*?)\]?:(\d{1,5})", rest)
    if not m or int(m.group(2)) > 65535:
        raise ValueError(f"invalid address {text!r}: expected host:port or unix:///path")
    return "tcp", m.group(1) or "127.0.0.1", int(m.group(2))


class Server:
    def __init__(self, app: Callable[[Request], Awaitable[Response | None]], *,
                 error_hook: Callable[[BaseException], Response | None] | None = None):
        self.app, self.error_hook = app, error_hook
        self._servers: list[asyncio.AbstractServer] = []
        self._sockets: list[str] = []           # UNIX socket files to remove on close
        self._tasks: set[asyncio.Task] = set()

    async def listen(self, address: str, ssl=None) -> str:
        """Start listening; return the URL actually bound (port 0 picks a free port)."""
        kind, host, port = parse_address(address)
        if kind == "unix":
            return await self.listen_unix(host)
        host, port = await self.listen_tcp(host, port, ssl)
        return f"{'https' if ssl else 'http'}://{host}:{port}"

    async def listen_unix(self, path: str, mode: int = 0o660) -> str:
        if os.path.exists(path) and not os.path.isdir(path):
            os.unlink(path)                     # a stale socket from an earlier run
        self._servers.append(await asyncio.start_unix_server(self._serve, path))
        os.chmod(path, mode)
        self._sockets.append(path)
        return f"unix://{path}"

    async def listen_tcp(self, host: str = "127.0.0.1", port: int = 0, ssl=None) -> tuple[str, int]:
        server = await asyncio.start_server(self._serve, host, port, ssl=ssl)
        self._servers.append(server)
        return server.sockets[0].getsockname()[:2]

    async def close(self) -> None:
        for server in self._servers:
            server.close()
        for path in self._sockets:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        self._tasks.add(task)
        conn = _Conn(reader, writer)
        try:
            while await self._one_exchange(conn):
                conn.h11.start_next_cycle()
        except h11.RemoteProtocolError as exc:
            if conn.h11.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                resp = json_response({"message": f"bad request: {exc}"}, exc.error_status_hint)
                try:
                    await conn.send(h11.Response(status_code=resp.status, headers=_pairs(
                        {**resp.headers, "Content-Length": str(len(resp.body))})))
                    await conn.send(h11.Data(data=resp.body))
                    await conn.send(h11.EndOfMessage())
                except (h11.LocalProtocolError, ConnectionError):
                    pass
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            self._tasks.discard(task)
            writer.close()

    async def _one_exchange(self, conn: _Conn) -> bool:
        """Read one request, answer it; True if the connection may carry another."""
        event = await conn.next_event()
        if not isinstance(event, h11.Request):
            return False
        req = Request(conn, event)
        conn.head = req.method == "HEAD"
        try:
            resp = await self.app(req)
            if resp is not None and not req.started:
                await req.send(resp)
            elif not req.started:
                raise RuntimeError(f"handler for {req.method} {req.path} gave no response")
        except (ConnectionError, asyncio.CancelledError, h11.RemoteProtocolError):
            raise                      # the client broke the exchange: nobody to answer
        except Exception as exc:
            if req.started:            # too late for an error answer: just drop the connection
                log.error("error after the response started: %s", exc, exc_info=exc)
                return False
            resp = (self.error_hook(exc) if self.error_hook else None) or default_error_response(exc)
            await req.send(resp)
        log.info("%s %s -> %s", req.method, req.target, req.status)
        if req.hijacked:
            return False
        await conn.send(h11.EndOfMessage())
        h = conn.h11
        drained = 0
        while h.their_state is h11.SEND_BODY and drained <= DRAIN_LIMIT and not \
                h.they_are_waiting_for_100_continue:   # swallow what the handler left unread
            drained += len(await req.read() or b"")
        return h.our_state is h11.DONE and h.their_state is h11.DONE


class BackgroundServer:
    """A Server on a private event loop in a daemon thread:

        with BackgroundServer(app, ["127.0.0.1:0", "unix:///tmp/x.sock"]) as bg:
            bg.urls   # ["http://127.0.0.1:41234", "unix:///tmp/x.sock"]
    """

    def __init__(self, app, addresses: list[str], **server_kw):
        self.server = Server(app, **server_kw)
        self.addresses, self.urls = addresses, []
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def start(self) -> "BackgroundServer":
        self._thread.start()
        for address in self.addresses:
            future = asyncio.run_coroutine_threadsafe(self.server.listen(address), self.loop)
            self.urls.append(future.result(10))
        return self

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()

    def __enter__(self) -> "BackgroundServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
