"""A Docker Engine API client on the standard library alone: http.client over a UNIX
socket or TCP, API version negotiation, JSON errors as one-line exceptions, JSON
progress streams, and the hijacked raw stream of attach and exec.

Why no requests/urllib3: `attach` needs the socket itself after `101 UPGRADED`, and a
UNIX socket is one `connect` away from http.client. The client speaks the version the
daemon and we both know: `GET /_ping` returns `Api-Version`; every later path is
prefixed `/v{min(ours, theirs)}`. Nothing here knows which engine answers.
"""
from __future__ import annotations

import http.client
import json
import os
import socket
from typing import Iterator
from urllib.parse import urlencode, quote, urlsplit

API_VERSION = "1.44"          # the newest version this client speaks
DEFAULT_HOST = "unix:///var/run/docker.sock"


class CLIError(Exception):
    """An error to print as one line, with the exit status to leave with."""

    def __init__(self, message: str, status: int = 1):
        super().__init__(message)
        self.status = status


class DaemonError(CLIError):
    """The daemon answered with an error status; `message` is its text, verbatim."""

    def __init__(self, code: int, message: str):
        super().__init__(f"Error response from daemon: {message}")
        self.code, self.message = code, message


def _vtuple(v: str) -> tuple[int, ...]:
    return tuple(int(p) for p in v.split("."))


def resolve_host(host: str | None) -> str:
    return host or os.environ.get("DOCKER_HOST") or DEFAULT_HOST


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float | None):
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self) -> None:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        try:
            s.connect(self.path)
        except OSError:
            s.close()
            raise
        self.sock = s


class Client:
    """One daemon endpoint. Each request opens its own connection: simple, and
    long-lived streams (wait, attach, logs -f) never block one another."""

    def __init__(self, host: str | None = None):
        self.host = resolve_host(host)
        u = urlsplit(self.host)
        if u.scheme == "unix":
            self._addr = ("unix", u.path)
        elif u.scheme in ("tcp", "http"):
            if not u.hostname:
                raise CLIError(f"invalid host: {self.host}")
            self._addr = ("tcp", (u.hostname, u.port or 2375))
        else:
            raise CLIError(f"unsupported host scheme: {self.host} (use unix:// or tcp://)")
        self._version: str | None = None

    # ------------------------------------------------------------ connections
    def _conn(self, timeout: float | None = None) -> http.client.HTTPConnection:
        kind, addr = self._addr
        if kind == "unix":
            return _UnixConnection(addr, timeout)
        return http.client.HTTPConnection(addr[0], addr[1], timeout=timeout)

    def _unreachable(self) -> CLIError:
        return CLIError(f"Cannot connect to the Docker daemon at {self.host}. Is the docker daemon running?")

    def ping(self) -> dict[str, str]:
        """GET /_ping (unversioned); the response headers."""
        try:
            c = self._conn(timeout=30)
            c.request("GET", "/_ping")
            r = c.getresponse()
            r.read()
            c.close()
        except OSError:
            raise self._unreachable() from None
        return {k.lower(): v for k, v in r.getheaders()}

    @property
    def version(self) -> str:
        """The negotiated API version: the lower of ours and the daemon's."""
        if self._version is None:
            theirs = self.ping().get("api-version", API_VERSION)
            self._version = min(API_VERSION, theirs, key=_vtuple)
        return self._version

    def path(self, path: str, query: dict | None = None) -> str:
        q = {k: v for k, v in (query or {}).items() if v is not None and v is not False}
        q = {k: ("1" if v is True else v) for k, v in q.items()}
        return f"/v{self.version}{path}" + (("?" + urlencode(q, doseq=True)) if q else "")

    # ---------------------------------------------------------------- requests
    def open(self, method: str, path: str, query: dict | None = None, body=None,
             headers: dict | None = None, timeout: float | None = None) -> http.client.HTTPResponse:
        """Send a request; return the response once its headers are in. Error
        statuses become DaemonError (the body's `message`, verbatim)."""
        url = self.path(path, query)
        hdrs = {"User-Agent": "refimpl-cli", **(headers or {})}
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            hdrs["Content-Type"] = "application/json"
        try:
            c = self._conn(timeout)
            c.request(method, url, body=body, headers=hdrs)
            r = c.getresponse()
        except ConnectionRefusedError:
            raise self._unreachable() from None
        except FileNotFoundError:
            raise self._unreachable() from None
        except OSError as e:
            raise CLIError(f"error during connect: {e}") from None
        if r.status >= 400:
            raise error_from(r.status, r.read())
        return r

    def call(self, method: str, path: str, query: dict | None = None, body=None,
             headers: dict | None = None):
        """A request whose answer is JSON (or nothing): the decoded value."""
        r = self.open(method, path, query, body, headers)
        data = r.read()
        if not data:
            return None
        try:
            return json.loads(data)
        except ValueError:
            return data.decode(errors="replace")

    def get(self, path: str, **query):
        return self.call("GET", path, query)

    def post(self, path: str, body=None, **query):
        return self.call("POST", path, query, body)

    # ----------------------------------------------------------------- streams
    def hijack(self, path: str, query: dict | None = None, body=None) -> "RawStream":
        """POST with `Connection: Upgrade` / `Upgrade: tcp`; after `101` the socket
        carries the container's streams both ways."""
        c = self._conn()
        try:
            c.connect()
        except OSError:
            raise self._unreachable() from None
        sock = c.sock
        data = json.dumps(body).encode() if body is not None else b""
        head = (f"POST {self.path(path, query)} HTTP/1.1\r\nHost: localhost\r\n"
                "User-Agent: refimpl-cli\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n")
        sock.sendall(head.encode() + data)
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = sock.recv(65536)
            if not chunk:
                raise CLIError("error attaching: connection closed before the response")
            buf += chunk
        head_bytes, rest = buf.split(b"\r\n\r\n", 1)
        status_line, *header_lines = head_bytes.decode("latin-1").split("\r\n")
        status = int(status_line.split()[1])
        if status not in (101, 200):
            headers = dict(h.split(":", 1) for h in header_lines if ":" in h)
            length = int(headers.get("Content-Length", headers.get("content-length", "0")).strip() or 0)
            while len(rest) < length:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                rest += chunk
            sock.close()
            raise error_from(status, rest)
        return RawStream(sock, rest)


def error_from(status: int, body: bytes) -> DaemonError:
    try:
        message = json.loads(body)["message"]
    except (ValueError, KeyError, TypeError):
        message = body.decode(errors="replace").strip() or http.client.responses.get(status, str(status))
    return DaemonError(status, message)


class RawStream:
    """The socket of a hijacked connection, with the bytes read past the headers."""

    def __init__(self, sock: socket.socket, pending: bytes = b""):
        self.sock, self.pending = sock, pending

    def recv(self, n: int = 65536) -> bytes:
        if self.pending:
            data, self.pending = self.pending, b""
            return data
        try:
            return self.sock.recv(n)
        except OSError:
            return b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def close_write(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def close(self) -> None:
        self.sock.close()


def json_stream(resp: http.client.HTTPResponse) -> Iterator[dict]:
    """The objects of a JSON progress stream (one object per line, as dockerd and
    refimpld send them; concatenated objects are split too)."""
    dec = json.JSONDecoder()
    buf = ""
    while True:
        chunk = resp.read1(65536) if hasattr(resp, "read1") else resp.read(65536)
        if not chunk:
            break
        buf += chunk.decode(errors="replace")
        while True:
            buf = buf.lstrip()
            if not buf:
                break
            try:
                obj, end = dec.raw_decode(buf)
            except ValueError:
                break
            buf = buf[end:]
            yield obj


def quote_name(name: str) -> str:
    """A container, exec or volume name as one path segment."""
    return quote(name, safe="")


def quote_ref(name: str) -> str:
    """Names go into paths with their slashes kept (`/images/127.0.0.1:5000/a/b/json`)."""
    return quote(name, safe="/:@")
