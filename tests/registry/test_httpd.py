"""refimpl.httpd on real sockets: keep-alive, streamed bodies both ways, hijack, errors."""
from __future__ import annotations

import asyncio
import json
import http.client
import logging
import os
import socket
import stat
import threading

import pytest

from refimpl.httpd import (BackgroundServer, HTTPError, Response, Router, json_response,
                           parse_address)

router = Router()
seen: dict = {}


@router.route("GET", r"/peer")
async def peer(req):
    return json_response({"peer": list(req.remote) if req.remote else None})


@router.route("POST", r"/count")
async def count(req):
    total, biggest = 0, 0
    async for chunk in req:
        total, biggest = total + len(chunk), max(biggest, len(chunk))
    return json_response({"total": total, "biggest": biggest,
                          "te": req.header("transfer-encoding")})


@router.route("GET", r"/items/(?P<name>.+)/info")
async def info(req):
    return json_response({"name": req.params["name"], "q": req.query})


@router.route("GET", r"/progress")
async def progress(req):
    stream = await req.stream(200, {"Content-Type": "application/json"})
    await stream.write(b'{"status":"first"}\n')
    await asyncio.get_running_loop().run_in_executor(None, seen["first_read"].wait, 5)
    await stream.write(b'{"status":"second"}\n')


@router.route("POST", r"/attach")
async def attach(req):
    body = await req.body()
    reader, writer, trailing = await req.hijack()
    received = trailing
    while chunk := await reader.read(65536):      # until the client half-closes
        received += chunk
    writer.write(b"body=" + body + b" got=" + received + b" bye")
    await writer.drain()


class Teapot(Exception):
    pass


@router.route("GET", r"/teapot")
async def teapot(req):
    raise Teapot("short and stout")


@router.route("GET", r"/crash")
async def crash(req):
    raise ValueError("first line\nsecond line")


@router.route("GET", r"/gone")
async def gone(req):
    raise HTTPError(410, "it went away", {"X-Why": "test"})


def hook(exc):
    if isinstance(exc, Teapot):
        return json_response({"message": f"teapot: {exc}"}, 418)
    return None


@pytest.fixture
def server(workdir):
    sock = str(workdir / "api.sock")
    with BackgroundServer(router, ["127.0.0.1:0", f"unix://{sock}"], error_hook=hook) as bg:
        bg.sock = sock
        yield bg


def connect(server) -> http.client.HTTPConnection:
    host, port = server.urls[0][len("http://"):].rsplit(":", 1)
    return http.client.HTTPConnection(host, int(port), timeout=10)


def raw(server, data: bytes, half_close: bool = False) -> bytes:
    host, port = server.urls[0][len("http://"):].rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(data)
        if half_close:
            s.shutdown(socket.SHUT_WR)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
        return out


def test_keep_alive_serves_many_requests_on_one_connection(server):
    conn = connect(server)
    peers = set()
    for _ in range(3):
        conn.request("GET", "/peer")
        r = conn.getresponse()
        peers.add(tuple(json.loads(r.read())["peer"]))
    assert len(peers) == 1


def test_streamed_chunked_upload_is_read_piece_by_piece(server):
    conn = connect(server)
    pieces = (os.urandom(1 << 20) for _ in range(16))           # 16 MiB, chunked
    conn.request("POST", "/count", body=pieces)
    result = json.loads(conn.getresponse().read())
    assert result["total"] == 16 << 20 and result["te"] == "chunked"
    assert result["biggest"] <= 1 << 20
    conn.request("POST", "/count", body=b"x" * 5000)             # Content-Length
    assert json.loads(conn.getresponse().read())["total"] == 5000


def test_streamed_response_flushes_each_chunk(server):
    seen["first_read"] = threading.Event()
    conn = connect(server)
    conn.request("GET", "/progress")
    r = conn.getresponse()
    assert r.getheader("transfer-encoding") == "chunked"
    assert r.readline() == b'{"status":"first"}\n'            # before the handler goes on
    seen["first_read"].set()
    assert r.readline() == b'{"status":"second"}\n'
    assert r.read() == b""


def test_router_names_with_slashes_query_head_and_405(server):
    conn = connect(server)
    conn.request("GET", "/items/localhost:5000/foo/bar/info?x=1&y=a%20b")
    assert json.loads(conn.getresponse().read()) == \
        {"name": "localhost:5000/foo/bar", "q": {"x": "1", "y": "a b"}}
    conn.request("HEAD", "/items/a/info")
    r = conn.getresponse()
    assert r.status == 200 and r.read() == b"" and int(r.getheader("content-length")) > 0
    conn.request("DELETE", "/items/a/info")
    r = conn.getresponse()
    assert r.status == 405 and r.getheader("allow") == "GET"
    r.read()
    conn.request("GET", "/nowhere")
    r = conn.getresponse()
    assert r.status == 404 and r.getheader("content-type") == "application/json"
    assert "message" in json.loads(r.read())


def test_hijack_with_upgrade_then_half_close(server):
    request = (b"POST /attach HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n"
               b"Content-Length: 4\r\n\r\nstdi" b"early-bytes ")
    out = raw(server, request + b"late-bytes", half_close=True)
    head, _, rest = out.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101 UPGRADED\r\n")
    assert b"Upgrade: tcp" in head and b"Content-Type: application/vnd.docker.raw-stream" in head
    assert rest == b"body=stdi got=early-bytes late-bytes bye"


def test_expect_100_continue(server):
    host, port = server.urls[0][len("http://"):].rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(b"POST /count HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
                  b"Expect: 100-continue\r\n\r\n")
        assert s.recv(4096) == b"HTTP/1.1 100 Continue\r\n\r\n"
        s.sendall(b"abc")
        assert s.recv(4096).startswith(b"HTTP/1.1 200 OK\r\n")


def test_hijack_without_upgrade_answers_200(server):
    out = raw(server, b"POST /attach HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\nabc",
              half_close=True)
    assert out.startswith(b"HTTP/1.1 200 OK\r\n") and out.endswith(b"got=abc bye")


def test_errors_become_json_and_never_show_a_traceback(server, caplog):
    conn = connect(server)
    conn.request("GET", "/teapot")
    r = conn.getresponse()
    assert (r.status, json.loads(r.read())) == (418, {"message": "teapot: short and stout"})
    conn.request("GET", "/gone")
    r = conn.getresponse()
    assert r.status == 410 and r.getheader("x-why") == "test"
    assert json.loads(r.read()) == {"message": "it went away"}
    with caplog.at_level(logging.ERROR, logger="refimpl.httpd"):
        conn.request("GET", "/crash")
        r = conn.getresponse()
        body = r.read()
    assert r.status == 500 and r.getheader("content-type") == "application/json"
    assert b"Traceback" not in body and b"second line" not in body and b"\n" == body[-1:]
    assert json.loads(body)["message"] == "internal server error: first line"
    assert any(rec.exc_info for rec in caplog.records)          # the traceback went to the log
    conn.request("GET", "/peer")                                 # and the connection lives on
    assert conn.getresponse().status == 200


def test_malformed_request_gets_400(server):
    out = raw(server, b"NOT HTTP AT ALL\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 400 ")


def test_unix_socket_mode_and_requests(server):
    assert stat.S_IMODE(os.stat(server.sock).st_mode) == 0o660
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(10)
        s.connect(server.sock)
        s.sendall(b"GET /items/x/info HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n")
        out = b""
        while chunk := s.recv(4096):
            out += chunk
    assert out.startswith(b"HTTP/1.1 200 ") and out.endswith(b'{"name": "x", "q": {}}\n')


def test_parse_address():
    assert parse_address("unix:///run/x.sock") == ("unix", "/run/x.sock", 0)
    assert parse_address("tcp://0.0.0.0:2375") == ("tcp", "0.0.0.0", 2375)
    assert parse_address("127.0.0.1:0") == ("tcp", "127.0.0.1", 0)
    assert parse_address(":5000") == ("tcp", "127.0.0.1", 5000)
    assert parse_address("[::1]:80") == ("tcp", "::1", 80)
    for bad in ("nonsense", "host:99999", "unix://", "host:"):
        with pytest.raises(ValueError, match="invalid address"):
            parse_address(bad)


def test_response_bodies_from_iterables(workdir):
    async def app(req):
        if req.path == "/sync":
            return Response(200, iter([b"a", b"b"]))

        async def gen():
            yield b"c"
            yield b"d"
        return Response(201, gen(), {"Content-Length": "2"})
    with BackgroundServer(app, ["127.0.0.1:0"]) as bg:
        conn = connect(bg)
        conn.request("GET", "/sync")
        assert conn.getresponse().read() == b"ab"
        conn.request("GET", "/async")
        r = conn.getresponse()
        assert (r.status, r.getheader("content-length"), r.read()) == (201, "2", b"cd")
