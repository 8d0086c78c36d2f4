"""Start-up recovery of the image store and of JSON records (refimpl.engine.images
ImageService.clean, refimpl.engine.persist.sweep): what a crash can leave, laid out by
hand, and what must survive it."""
from __future__ import annotations

import io
import os
import shutil

import pytest

from refimpl.engine import persist
from refimpl.engine.images import ImageService

from .imagekit import layer_tar, make_image, workdir

BASE = layer_tar({"bin/tool": b"#!/bin/sh\n"})
MID = layer_tar({"etc/mid": b"mid\n"})
TOP = layer_tar({"app/run": b"run\n"})


@pytest.fixture
def root():
    d = workdir("recovery")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def test_sweep_removes_only_write_json_temporaries(root):
    persist.write_json(root / "rec.json", {"a": 1})
    (root / ".rec.json.tmp-abcd1234").write_text('{"a": ')        # a write cut short
    (root / ".hidden").write_text("not ours")
    (root / "other.tmp-x").write_text("not ours either")
    assert persist.sweep(root) == 1
    assert sorted(os.listdir(root)) == [".hidden", "other.tmp-x", "rec.json"]
    assert persist.read_json(root / "rec.json") == {"a": 1}
    assert persist.sweep(root / "missing") == 0


def test_clean_removes_what_a_crash_leaves_and_keeps_what_is_needed(root):
    data = root / "data"
    store = ImageService(data / "image")
    kept = store.add_image(make_image([BASE]).config, [io.BytesIO(BASE)])
    store.tag(kept.id, "kept:1")
    # an image only the build cache knows (an intermediate step), and one only a container uses
    cached_img = make_image([BASE, MID])
    _, c1 = store.register_layer(io.BytesIO(BASE), None)
    _, cached_chain = store.register_layer(io.BytesIO(MID), c1)
    cached = store.blobs.put(cached_img.config)
    persist.write_json(data / "build" / "cache.json", {"k": str(cached)})
    used_img = make_image([BASE, TOP])
    _, used_chain = store.register_layer(io.BytesIO(TOP), c1)
    used = store.blobs.put(used_img.config)
    store.mark_image(str(used))
    persist.write_json(data / "containers" / ("c" * 64) / "config.v2.json", {"image_id": str(used)})
    (data / "image" / "images" / str(used).split(":")[1]).unlink()   # an rmi -f while in use
    # what a crash leaves: a layer no image needs (unpacked, never recorded as an image;
    # without its blob.json), a half-unpacked layer, a half-removed one, a partial blob,
    # temporary records
    orphan_diff, orphan = store.register_layer(io.BytesIO(layer_tar({"x": b"x"})), None)
    (store.layers_root / f"tmp-{'0' * 32}" / "diff").mkdir(parents=True)
    half = store.layers_root / ("e" * 64)
    (half / "diff" / "a").mkdir(parents=True)                        # layer.json gone already
    blobs_dir = data / "image" / "blobs" / "blobs" / "sha256"
    (blobs_dir / ".tmp-partial").write_bytes(b"half a layer")
    (data / "image" / ".refs.json.tmp-12345678").write_text("{")
    (store.layer_path(kept.chain_ids[0]) / ".blob.json.tmp-12345678").write_text("{")
    download = store.blobs.put(b"a complete download")

    again = ImageService(data / "image")                              # start-up
    layers = sorted(p.name for p in again.layers_root.iterdir())
    assert layers == sorted(c.split(":")[1] for c in {kept.chain_ids[0], cached_chain, used_chain})
    assert not again.has_layer(orphan) and orphan_diff
    assert not (blobs_dir / ".tmp-partial").exists()
    assert not list((data / "image").glob(".refs.json.tmp-*"))
    assert not list(again.layer_path(kept.chain_ids[0]).glob(".*"))
    assert again.resolve("kept:1").id == kept.id
    assert download in again.blobs                                    # a retried pull reuses it
    assert again.layer_blob(kept.chain_ids[0]) is not None


def test_removed_layers_go_through_a_tmp_name(root, monkeypatch):
    """rmi removes a layer by renaming it to tmp-* first: a crash in the middle of the
    removal leaves a tmp-* directory (which start-up removes), never half a layer under
    its chain ID."""
    store = ImageService(root / "image")
    img = store.add_image(make_image([BASE]).config, [io.BytesIO(BASE)])
    seen = []
    real_rmtree = shutil.rmtree

    def spy(path, *a, **kw):
        seen.append(os.path.basename(str(path)))
        return real_rmtree(path, *a, **kw)
    monkeypatch.setattr(shutil, "rmtree", spy)
    store.delete_image(img.id)
    monkeypatch.undo()
    assert seen and all(name.startswith("tmp-") for name in seen)
    assert not list(store.layers_root.iterdir())
