"""A real registry on 127.0.0.1 (a BackgroundServer thread) and a plain http.client for it."""
from __future__ import annotations

import http.client
import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from refimpl.httpd import BackgroundServer
from refimpl.registry.server import Registry
from refimpl.registry.store import Store

from .content import digest


@dataclass
class Resp:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self):
        return json.loads(self.body)

    @property
    def codes(self) -> list[str]:
        return [e["code"] for e in self.json()["errors"]]


class Client:
    """One keep-alive connection to the registry."""

    def __init__(self, url: str):
        split = urlsplit(url)
        self.conn = http.client.HTTPConnection(split.hostname, split.port, timeout=20)

    def request(self, method: str, path: str, body=None, headers: dict | None = None) -> Resp:
        self.conn.request(method, path, body=body, headers=headers or {})
        r = self.conn.getresponse()
        return Resp(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())

    def push_blob(self, repo: str, data: bytes, headers: dict | None = None) -> str:
        d = digest(data)
        r = self.request("POST", f"/v2/{repo}/blobs/uploads/?digest={d}", data, headers)
        assert r.status == 201, r
        return d

    def push_image(self, repo: str, tag: str, img: dict, headers: dict | None = None) -> str:
        for data in img["blobs"].values():
            self.push_blob(repo, data, headers)
        r = self.request("PUT", f"/v2/{repo}/manifests/{tag}", img["manifest"],
                         {"Content-Type": img["media_type"], **(headers or {})})
        assert r.status == 201, r
        return r.headers["docker-content-digest"]


@dataclass
class Running:
    url: str
    root: Path
    store: Store
    server: BackgroundServer

    def client(self) -> Client:
        return Client(self.url)


@pytest.fixture
def workdir():
    path = Path(tempfile.mkdtemp(prefix="wt-registry-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def make_registry(workdir):
    running: list[Running] = []

    def make(auth=None) -> Running:
        root = workdir / f"root{len(running)}"
        store = Store(root)
        server = BackgroundServer(Registry(store, auth), ["127.0.0.1:0"],
                                  error_hook=Registry.error_hook).start()
        running.append(Running(server.urls[0], root, store, server))
        return running[-1]
    yield make
    for r in running:
        r.server.stop()


@pytest.fixture
def registry(make_registry) -> Running:
    return make_registry()


@pytest.fixture
def client(registry) -> Client:
    return registry.client()
