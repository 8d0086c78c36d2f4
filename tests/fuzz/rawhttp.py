"""A raw HTTP/1.1 client over a UNIX socket that sends exactly the bytes it is given.

http.client refuses to send a wrong Content-Length or a broken request line;
a fuzzer must. `exchange` sends the bytes, half-closes, and reads the answer
until the server closes (requests carry `Connection: close`); `parse` splits
status, headers and body (chunked bodies are decoded).
"""
from __future__ import annotations

import socket
from dataclasses import dataclass


@dataclass
class Answer:
    status: int | None          # None: the server closed without answering
    headers: dict[str, str]
    body: bytes
    raw: bytes


def request(method: str, target: str, headers: dict[str, str] | None = None, body: bytes | None = None,
            content_length: str | None = "auto") -> bytes:
    lines = [f"{method} {target} HTTP/1.1", "Host: refimpl", "Connection: close"]
    for k, v in (headers or {}).items():
        lines.append(f"{k}: {v}")
    if content_length == "auto":
        if body is not None:
            lines.append(f"Content-Length: {len(body)}")
    elif content_length is not None:
        lines.append(f"Content-Length: {content_length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape") + (body or b"")


def exchange(path: str, data: bytes, timeout: float = 20) -> Answer:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(path)
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass                        # the server answered early and closed: read what it said
        parts = []
        try:
            while chunk := s.recv(65536):
                parts.append(chunk)
        except ConnectionResetError:
            pass
    return parse(b"".join(parts))


def parse(raw: bytes) -> Answer:
    while raw.startswith(b"HTTP/1.1 1"):            # 100 Continue and friends
        raw = raw.split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in raw else b""
    if not raw:
        return Answer(None, {}, b"", raw)
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = _dechunk(body)
    return Answer(status, headers, body, raw)


def _dechunk(data: bytes) -> bytes:
    out = []
    while data:
        size_line, _, rest = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out.append(rest[:size])
        data = rest[size + 2:]
    return b"".join(out)
