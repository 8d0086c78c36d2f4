"""Moving bytes between the terminal and a hijacked attach/exec connection.

Without a TTY the daemon multiplexes stdout and stderr on one stream in frames
(moby's stdcopy): an 8-byte header — stream byte (0 stdin, 1 stdout, 2 stderr,
3 system error), three zero bytes, big-endian uint32 length — then the payload.
With a TTY the bytes are raw, the local terminal goes into raw mode, and window
size changes (SIGWINCH) are forwarded as `resize` requests.

Stdin is copied until EOF, then the socket is half-closed (SHUT_WR) so the
container sees EOF while its output keeps flowing back.
"""
from __future__ import annotations

import os
import signal
import struct
import sys
import termios
import threading
import tty as _tty
from contextlib import contextmanager

from .client import CLIError, RawStream

STDIN, STDOUT, STDERR, SYSERR = 0, 1, 2, 3
HEADER = struct.Struct(">BxxxI")


def frame(stream: int, payload: bytes) -> bytes:
    """One stdcopy frame (what a daemon writes; used by tests)."""
    return HEADER.pack(stream, len(payload)) + payload


class Demuxer:
    """Incremental stdcopy decoder: feed bytes, get (stream, payload) frames."""

    def __init__(self) -> None:
        self.buf = b""

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        self.buf += data
        out = []
        while len(self.buf) >= HEADER.size:
            stream, size = HEADER.unpack_from(self.buf)
            if stream > SYSERR:
                raise CLIError(f"Unrecognized input header: {stream}")
            if len(self.buf) < HEADER.size + size:
                break
            out.append((stream, self.buf[HEADER.size:HEADER.size + size]))
            self.buf = self.buf[HEADER.size + size:]
        return out


def _write(fd: int, data: bytes) -> None:
    while data:
        try:
            n = os.write(fd, data)
        except BrokenPipeError:
            return
        data = data[n:]


def copy_output(recv, tty: bool, out_fd: int = 1, err_fd: int = 2) -> None:
    """Copy a stream to the local fds until EOF; `recv()` returns b"" at the end."""
    demux = None if tty else Demuxer()
    while True:
        data = recv()
        if not data:
            return
        if demux is None:
            _write(out_fd, data)
            continue
        for stream, payload in demux.feed(data):
            if stream == SYSERR:
                raise CLIError(payload.decode(errors="replace").strip())
            _write(err_fd if stream == STDERR else out_fd, payload)


def copy_input(stream: RawStream, fd: int = 0) -> threading.Thread:
    """Copy local stdin to the stream in a background thread; half-close at EOF."""
    def pump() -> None:
        try:
            while True:
                data = os.read(fd, 65536)
                if not data:
                    break
                stream.send(data)
        except OSError:
            pass
        stream.close_write()
    t = threading.Thread(target=pump, daemon=True)
    t.start()
    return t


@contextmanager
def raw_terminal(fd: int):
    """Put a terminal in raw mode for the duration (no-op if fd is not a tty)."""
    if not os.isatty(fd):
        yield
        return
    saved = termios.tcgetattr(fd)
    try:
        # TCSANOW, not tty.setraw's default TCSAFLUSH: what the user typed before
        # the container was attached is input for it, not to be thrown away.
        _tty.setraw(fd, termios.TCSANOW)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


@contextmanager
def forward_resize(resize, fd: int = 1):
    """Call `resize(h, w)` now and on every SIGWINCH while inside the block."""
    if not os.isatty(fd):
        yield
        return

    def send(*_):
        try:
            w, h = os.get_terminal_size(fd)
            resize(h, w)
        except (OSError, CLIError):
            pass
    old = signal.signal(signal.SIGWINCH, send)
    send()
    try:
        yield
    finally:
        signal.signal(signal.SIGWINCH, old)


def interact(stream: RawStream, tty: bool, stdin: bool, resize=None) -> None:
    """The whole attached session: stdin in (if asked), output out, until the
    daemon closes the stream. `resize(h, w)` is called for TTY sessions."""
    in_fd = sys.stdin.fileno() if stdin else None
    with raw_terminal(in_fd) if (tty and in_fd is not None) else _null(), \
            forward_resize(resize) if (tty and resize) else _null():
        if in_fd is not None:
            copy_input(stream, in_fd)
        copy_output(stream.recv, tty)
    stream.close()


@contextmanager
def _null():
    yield
