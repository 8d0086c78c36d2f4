"""A layer is unpacked while it downloads, and kept only if its blob proves to be what the
manifest says: a blob that lies leaves nothing (no blob, no layer, no reference), however
far its unpacking got, and the error names the verification, as dockerd's does."""
from __future__ import annotations

import gzip
import shutil

import pytest

from refimpl.engine.images import ImageService
from refimpl.engine.pull import PullError, pull
from refimpl.httpd import BackgroundServer, Response, Router, json_response

from .imagekit import gz, layer_tar, make_image, sha, tree, workdir
from .test_pull import BASE, TOP

HOSTILE = layer_tar({"../escape": b"out\n"})


class Swapper:
    """A registry serving an image's manifest and config truthfully, and, for its top layer's
    digest, other bytes."""

    def __init__(self, img, top: bytes):
        self.img, self.top = img, top
        self.router = Router()
        self.router.add("GET", r"/v2/", lambda req: self._json())
        self.router.add("GET", r"/v2/(?P<name>.+)/manifests/(?P<ref>[^/]+)", self.manifest)
        self.router.add("GET", r"/v2/(?P<name>.+)/blobs/(?P<digest>[^/]+)", self.blob)

    async def _json(self):
        return json_response({})

    async def __call__(self, req):
        return await self.router(req)

    async def manifest(self, req):
        return Response(200, self.img.manifest, {"Content-Type": self.img.media_type,
                                                 "Docker-Content-Digest": self.img.digest})

    async def blob(self, req):
        data = self.img.blobs()[req.params["digest"]]
        if req.params["digest"] == sha(self.img.layers[-1]):
            data = self.top
        return Response(200, data, {"Content-Type": "application/octet-stream"})


@pytest.fixture
def store():
    d = workdir("pullstream")
    yield ImageService(d / "image")
    shutil.rmtree(d, ignore_errors=True)


def swapped(img) -> dict[str, bytes]:
    blob = img.layers[-1]
    return {
        # the same tar (so the same DiffID) compressed otherwise: unpacked and checked in full,
        # refused only by the blob's digest
        "recompressed": gzip.compress(TOP, compresslevel=1, mtime=1),
        "another layer": gz(BASE),                      # a DiffID the config does not name
        "truncated": blob[:len(blob) // 2],
        "hostile": gz(HOSTILE),                         # refused by the unpacking first
        "longer": blob + b"\0" * 64,                    # the layer then padding: too many bytes
    }


@pytest.mark.parametrize("case", ["recompressed", "another layer", "truncated", "hostile", "longer"])
def test_a_blob_that_lies_leaves_nothing_however_far_it_was_unpacked(store, case):
    img = make_image([BASE, TOP])
    with BackgroundServer(Swapper(img, swapped(img)[case]), ["127.0.0.1:0"]) as server:
        host = server.urls[0].split("//")[1]
        before = tree(store.root)
        with pytest.raises(PullError, match="verification failed for digest " + sha(img.layers[-1])) as e:
            pull(store, f"{host}/swap/img:latest", None, lambda m: None)
        assert "\n" not in str(e.value)
        assert tree(store.root) == before
        assert store.refs == {} and store.images() == []


def test_a_streamed_layer_records_its_blob(store):
    img = make_image([BASE, TOP])
    with BackgroundServer(Swapper(img, img.layers[-1]), ["127.0.0.1:0"]) as server:
        host = server.urls[0].split("//")[1]
        got = pull(store, f"{host}/swap/img:latest", None, lambda m: None)
        for chain, blob in zip(got.chain_ids, img.layers):
            assert store.layer_blob(chain) == sha(blob) and store.blobs.get(sha(blob)) == blob
        assert (store.layer_path(got.chain_ids[-1]) / "diff" / "app" / "run").read_bytes() == b"hello\n"
