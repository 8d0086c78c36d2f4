"""The embedded DNS server: the wire format (properties) and a real UDP server on 127.0.0.1."""
from __future__ import annotations

import asyncio
import socket
import struct

from hypothesis import given, settings, strategies as st

from refimpl.network import dns

labels = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?", fullmatch=True)
names = st.lists(labels, min_size=1, max_size=4).map(".".join)
addresses = st.lists(st.ip_addresses(v=4).map(str), max_size=4)


def query(name: str, qtype: int = dns.TYPE_A, qid: int = 0x1234) -> bytes:
    qname = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    return struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + qname + struct.pack("!HH", qtype, 1)


def read_answers(packet: bytes, question_end: int) -> list[str]:
    count = struct.unpack("!H", packet[6:8])[0]
    at, out = question_end, []
    for _ in range(count):
        _, rtype, _, _, rdlen = struct.unpack("!HHHIH", packet[at:at + 12])
        at += 12
        assert rtype == dns.TYPE_A and rdlen == 4
        out.append(socket.inet_ntoa(packet[at:at + 4]))
        at += 4
    return out


@settings(max_examples=80)
@given(names, addresses, st.integers(0, 0xFFFF))
def test_answer_round_trip(name, addrs, qid):
    q = query(name.upper(), qid=qid)
    got_id, got_name, qtype, qclass, end = dns.parse_question(q)
    assert (got_id, got_name, qtype, qclass, end) == (qid, name, dns.TYPE_A, 1, len(q))
    reply = dns.answer(q, addrs)
    assert struct.unpack("!H", reply[:2])[0] == qid and reply[2] & 0x80       # same id, a response
    assert reply[12:end] == q[12:end]                                         # the question echoed
    assert read_answers(reply, end) == addrs


@settings(max_examples=100)
@given(st.binary(max_size=40))
def test_garbage_is_refused_not_crashed(data):
    try:
        dns.parse_question(data)
    except ValueError:
        pass


def test_aaaa_gets_no_records_and_nxdomain_is_flagged():
    reply = dns.answer(query("web", dns.TYPE_AAAA), ["10.0.0.2"])
    assert struct.unpack("!H", reply[6:8])[0] == 0
    assert dns.answer(query("x"), [], dns.RCODE_NXDOMAIN)[3] & 0xF == dns.RCODE_NXDOMAIN


def test_server_answers_and_forwards():
    async def main():
        table = {"web": ["10.9.0.2"]}
        upstream = await dns.serve("127.0.0.1", lambda n: table.get(n, []), port=0, upstream=[])
        port = upstream.get_extra_info("sockname")[1]
        server = await dns.serve("127.0.0.1", lambda n: table.get(n, []), port=0,
                                 upstream=["127.0.0.1"])
        sport = server.get_extra_info("sockname")[1]
        loop = asyncio.get_running_loop()
        try:
            async def ask(p, name):
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                    s.setblocking(False)
                    await loop.sock_connect(s, ("127.0.0.1", p))
                    q = query(name)
                    await loop.sock_sendall(s, q)
                    reply = await asyncio.wait_for(loop.sock_recv(s, 512), 5)
                    return reply[3] & 0xF, read_answers(reply, len(q))
            assert await ask(sport, "web") == (0, ["10.9.0.2"])
            assert await ask(port, "nothing") == (dns.RCODE_NXDOMAIN, [])
            # an unknown dotted name goes upstream: port 53 of 127.0.0.1 is what it asks, so the
            # answer is either the host's own resolver's or a SERVFAIL, never silence
            rcode, _ = await ask(sport, "example.invalid")
            assert rcode in (0, dns.RCODE_NXDOMAIN, dns.RCODE_SERVFAIL)
        finally:
            server.close()
            upstream.close()
    asyncio.run(main())
