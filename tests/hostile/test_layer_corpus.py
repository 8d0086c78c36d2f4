"""The hostile layer corpus applied straight through refimpl.image.layers.

Each archive is extracted (overlay mode, as the image store does) into a fresh
layer root placed where the store puts one, with a sentinel tree a few `..`
above it. A refused archive must raise one LayerError of one line and leave no
directory behind; an accepted one must have written only inside its root; in
both cases nothing outside the layer roots changes.
"""
from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from refimpl.image.layers import OVERLAY, LayerError, extract_layer

from .conftest import make_sentinel, snapshot, special_files
from .corpus import CONTAINED, ERROR, corpus


def test_corpus_is_large_and_varied():
    cases = corpus("/SENTINEL")
    assert len(cases) >= 50
    assert len({c.name for c in cases}) == len(cases)
    assert {c.expect for c in cases} == {ERROR, CONTAINED}
    assert corpus.__wrapped__("/SENTINEL") == cases          # deterministic


@pytest.fixture(scope="module")
def arena(tmp_path_factory):
    work = tmp_path_factory.mktemp("hostile-layers")
    layers = work / "data" / "image" / "layers"
    layers.mkdir(parents=True)
    sentinel = make_sentinel(work)
    return work, layers, sentinel


CASES = corpus("/SENTINEL")        # names for the parametrisation; the data is rebuilt per arena


@pytest.mark.parametrize("name", [c.name for c in CASES])
def test_hostile_layer(arena, name, needs_root):
    work, layers, sentinel = arena
    case = next(c for c in corpus(str(sentinel)) if c.name == name)
    before = snapshot(work, layers)
    dest = layers / f"case-{name}" / "diff"
    dest.parent.mkdir()
    try:
        if case.expect == ERROR:
            with pytest.raises(LayerError) as info:
                extract_layer(io.BytesIO(case.data), dest, mode=OVERLAY)
            message = str(info.value)
            assert message and "\n" not in message and "Traceback" not in message
            assert os.listdir(dest.parent) == [], "a refused layer left files behind"
        else:
            extract_layer(io.BytesIO(case.data), dest, mode=OVERLAY)
            assert dest.is_dir()
            assert special_files(dest) == []
        assert snapshot(work, layers) == before, "something outside the layer root changed"
    finally:
        import shutil
        shutil.rmtree(dest.parent, ignore_errors=True)


def test_contained_writes_land_inside_the_root(arena, needs_root):
    """Absolute names and absolute symlinks resolve against the layer root, as in a chroot."""
    work, layers, sentinel = arena
    cases = {c.name: c for c in corpus(str(sentinel))}
    root = layers / "inside" / "diff"
    root.parent.mkdir()
    extract_layer(io.BytesIO(cases["symlink-abs-write-through"].data), root, mode=OVERLAY)
    assert (root / str(sentinel).lstrip("/") / "pwned").read_bytes() == b"pwned\n"
    assert os.readlink(root / "esc") == str(sentinel)
    root2 = layers / "inside" / "diff2"
    extract_layer(io.BytesIO(cases["absolute-dotdot"].data), root2, mode=OVERLAY)
    assert (root2 / "pwned").read_bytes() == b"pwned\n"
    assert os.stat(root2 / "hl").st_ino == os.stat(root2 / "pwned").st_ino
    assert not Path(sentinel, "pwned").exists() and not (work / "pwned").exists()


def test_a_directory_replaced_mid_archive_is_resolved_again(tmp_path):
    """Entries after `a/` was replaced by a symlink (or a file) must follow the new `a`,
    not the directory the applier resolved a moment earlier."""
    from .corpus import d, f, sym, tar
    data = tar(d("a"), f("a/one"), sym("a", "/b"), f("a/two"), d("c"), f("c/x"), f("c"), d("c"), f("c/y"))
    root = tmp_path / "root"
    extract_layer(io.BytesIO(data), root, chown=False)
    assert os.readlink(root / "a") == "/b" and (root / "b" / "two").exists()
    assert sorted(os.listdir(root / "c")) == ["y"] and not (root / "one").exists()
