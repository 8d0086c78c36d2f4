"""The embedded DNS server of a user-defined network.

Docker answers name queries of containers on a user-defined network at
127.0.0.11 inside each container (NAT rules in the container's namespace send
port 53 there to the daemon). We keep it simpler: the daemon listens on the
network's gateway address, port 53/UDP, and the container's resolv.conf names
that address. The answer is the same: an A record for a container's name, its
aliases and its short ID on that network, and every other query forwarded to
the host's resolvers (read from the host's resolv.conf), so names outside keep
working. The default bridge network has no such server, as in Docker.

Only what a stub resolver needs is parsed: the header, the first question; an
answer is the query echoed back with the answer records appended.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import struct
from typing import Callable

from .files import nameservers

TYPE_A, TYPE_AAAA, CLASS_IN = 1, 28, 1
RCODE_NXDOMAIN, RCODE_SERVFAIL = 3, 2
TTL = 600


def parse_question(packet: bytes) -> tuple[int, str, int, int, int]:
    """(id, lowercased name without the trailing dot, qtype, qclass, end of the question)."""
    if len(packet) < 12:
        raise ValueError("short DNS packet")
    qid, flags, qdcount = struct.unpack("!HHH", packet[:6])
    if flags & 0x8000 or qdcount < 1:
        raise ValueError("not a query")
    labels, at = [], 12
    while True:
        if at >= len(packet):
            raise ValueError("truncated name")
        n = packet[at]
        at += 1
        if n == 0:
            break
        if n & 0xC0 or at + n > len(packet):
            raise ValueError("bad label")
        labels.append(packet[at:at + n].decode("ascii", "replace"))
        at += n
    if at + 4 > len(packet):
        raise ValueError("truncated question")
    qtype, qclass = struct.unpack("!HH", packet[at:at + 4])
    return qid, ".".join(labels).lower(), qtype, qclass, at + 4


def answer(query: bytes, addresses: list[str], rcode: int = 0) -> bytes:
    """The response to `query` (its first question only) with A records for `addresses`."""
    qid, _, qtype, _, end = parse_question(query)
    flags = 0x8000 | 0x0400 | 0x0100 | 0x0080 | rcode  # QR, AA, RD (echoed), RA
    records = b"" if qtype != TYPE_A else b"".join(
        struct.pack("!HHHIH", 0xC00C, TYPE_A, CLASS_IN, TTL, 4) + ipaddress.IPv4Address(a).packed
        for a in addresses)
    count = len(addresses) if qtype == TYPE_A else 0
    return struct.pack("!HHHHHH", qid, flags, 1, count, 0, 0) + query[12:end] + records


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, lookup: Callable[[str], list[str]], upstream: list[str]):
        self.lookup, self.upstream = lookup, upstream
        self.transport = None
        self.pending: set[asyncio.Task] = set()     # asyncio keeps only weak references to tasks

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        try:
            _, name, qtype, qclass, _ = parse_question(data)
        except ValueError:
            return
        found = self.lookup(name) if qclass == CLASS_IN else []
        if found:
            self.transport.sendto(answer(data, found if qtype == TYPE_A else []), addr)
        elif "." not in name and not self.upstream:
            self.transport.sendto(answer(data, [], RCODE_NXDOMAIN), addr)
        else:
            task = asyncio.get_running_loop().create_task(self._forward(data, addr))
            self.pending.add(task)
            task.add_done_callback(self.pending.discard)

    async def _forward(self, data: bytes, addr) -> None:
        loop = asyncio.get_running_loop()
        for server in self.upstream:
            try:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                    s.setblocking(False)
                    await loop.sock_connect(s, (server, 53))
                    await loop.sock_sendall(s, data)
                    reply = await asyncio.wait_for(loop.sock_recv(s, 4096), 3)
                self.transport.sendto(reply, addr)
                return
            except (OSError, asyncio.TimeoutError):
                continue
        try:
            self.transport.sendto(answer(data, [], RCODE_SERVFAIL), addr)
        except ValueError:
            pass


def host_resolvers(path: str = "/etc/resolv.conf") -> list[str]:
    try:
        with open(path) as f:
            return [s for s in nameservers(f.read()) if ":" not in s]
    except OSError:
        return []


async def serve(address: str, lookup: Callable[[str], list[str]], port: int = 53,
                upstream: list[str] | None = None) -> asyncio.DatagramTransport:
    """Answer on address:port/UDP until the returned transport is closed."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.SOL_IP, 15, 1)        # IP_FREEBIND: the bridge address may come later
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((address, port))
    except OSError:
        sock.close()
        raise
    transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
        lambda: _Protocol(lookup, host_resolvers() if upstream is None else upstream), sock=sock)
    return transport
