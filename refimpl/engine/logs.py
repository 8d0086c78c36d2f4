"""Reading a container's json-file log: pure functions over its lines.

The supervisor writes one `{"log", "stream", "time"}` object per line
(refimpl/runtime/shim.py, Docker's json-file driver). `docker logs` asks for
stdout and/or stderr, `tail` (the last N entries), `since`/`until` (unix
seconds) and `timestamps`; each entry goes out as raw bytes with a TTY, else in
an 8-byte stdcopy frame (stream byte, three zeros, big-endian length).
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass

from .container_config import parse_time


@dataclass
class Entry:
    stream: str          # "stdout" | "stderr"
    data: bytes
    time: str            # RFC 3339 with nanoseconds


def parse_line(line: bytes) -> Entry | None:
    """One log line -> Entry; a torn or foreign line -> None."""
    try:
        obj = json.loads(line)
        return Entry(obj["stream"], obj["log"].encode(), obj["time"])
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def select(entries: list[Entry], *, stdout: bool = True, stderr: bool = True, tail: int | None = None,
           since: float = 0.0, until: float = 0.0) -> list[Entry]:
    out = []
    for e in entries:
        if (e.stream == "stdout" and not stdout) or (e.stream == "stderr" and not stderr):
            continue
        t = parse_time(e.time) if since or until else 0.0
        if (since and t < since) or (until and t > until):
            continue
        out.append(e)
    if tail is not None and tail >= 0:
        out = out[len(out) - tail:] if tail else []
    return out


def frame(stream: str, data: bytes) -> bytes:
    return struct.pack(">BxxxI", 2 if stream == "stderr" else 1, len(data)) + data


def render(e: Entry, *, tty: bool, timestamps: bool = False) -> bytes:
    data = (e.time.encode() + b" " + e.data) if timestamps else e.data
    return data if tty else frame(e.stream, data)


def parse_since(value: str | None) -> float:
    """Docker's since/until: unix seconds with an optional fraction ("1700000000.5"); "" -> 0."""
    if not value:
        return 0.0
    try:
        return float(value)
    except ValueError:
        try:
            return parse_time(value)
        except ValueError:
            from .errors import InvalidParameter
            raise InvalidParameter(f"invalid value for since/until: {value!r}") from None
