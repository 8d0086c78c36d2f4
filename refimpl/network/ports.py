"""Published ports (`-p`, `-P`): a userland TCP proxy per published port.

Docker publishes a port twice over: DNAT rules for traffic that arrives from
outside, and docker-proxy, a userland proxy, for what the rules cannot see
(connections to 127.0.0.1 from the host itself). A userland proxy alone does
the whole job, for every address a client may use, so that is what the engine
runs: a listening socket on HostIp:HostPort in the daemon, and for each
accepted connection a connection to the container's address and port, with
bytes copied both ways (half-closes passed on) until both sides are done. The
listener exists from just before the container starts until it stops; a port
already taken fails the start with Docker's message. TCP only.
"""

from __future__ import annotations

import asyncio
import socket


class PortError(RuntimeError):
    """A port that cannot be published; the message is one line fit for a user."""


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        pass


async def publish(host_ip: str, host_port: int, target_ip: str, target_port: int) -> asyncio.AbstractServer:
    """Listen on host_ip:host_port (0: any free port) and relay each connection to the target."""
    async def handle(reader, writer):
        try:
            up_r, up_w = await asyncio.open_connection(target_ip, target_port)
        except OSError:
            writer.close()
            return
        try:
            await asyncio.gather(_pipe(reader, up_w), _pipe(up_r, writer))
        finally:
            writer.close()
            up_w.close()

    addr = host_ip or "0.0.0.0"
    try:
        return await asyncio.start_server(handle, addr, host_port, family=socket.AF_INET, reuse_address=True)
    except OSError as e:
        if e.errno == 98:       # EADDRINUSE
            raise PortError(f"Bind for {addr}:{host_port} failed: port is already allocated") from None
        raise PortError(f"cannot publish {addr}:{host_port}: {e.strerror}") from None


def bound_port(server: asyncio.AbstractServer) -> int:
    return server.sockets[0].getsockname()[1]
