"""Build contexts: .dockerignore rules, COPY sources, content hashes, hostile context tars."""
from __future__ import annotations

import io
import os
import tarfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from refimpl.build import context as ctx


@pytest.mark.parametrize("patterns, path, ignored", [
    (["secret.txt"], "secret.txt", True),
    (["secret.txt"], "keep.txt", False),
    (["*.txt"], "a.txt", True),
    (["*.txt"], "dir/a.txt", False),            # * does not cross /
    (["**/*.txt"], "dir/sub/a.txt", True),
    (["**/*.txt"], "a.txt", True),
    (["dir"], "dir/sub/a.txt", True),           # a directory takes its contents along
    (["*", "!keep*"], "keep.txt", False),       # the last matching line wins
    (["!keep*", "*"], "keep.txt", True),
    (["/abs/./x/../y"], "abs/y", True),         # cleaned, leading / dropped
    (["?.md"], "a.md", True),
    (["?.md"], "ab.md", False),
    (["[ab].c"], "b.c", True),
    (["# comment", ""], "# comment", False),
])
def test_dockerignore_rules(patterns, path, ignored):
    assert ctx.Ignore(ctx.read_patterns("\n".join(patterns))).ignored(path) is ignored


seg = st.from_regex(r"[a-z0-9_]{1,6}", fullmatch=True)


@settings(max_examples=60)
@given(st.lists(seg, min_size=1, max_size=4), st.lists(seg, min_size=0, max_size=3))
def test_an_ignored_directory_ignores_everything_below_it(parts, below):
    path = "/".join(parts)
    ign = ctx.Ignore([path])
    assert ign.ignored(path) and ign.ignored("/".join(parts + below))
    assert not ctx.Ignore(["!" + path]).ignored(path)


@settings(max_examples=60)
@given(st.lists(seg, min_size=1, max_size=4))
def test_double_star_matches_any_depth(parts):
    assert ctx.Ignore(["**/" + parts[-1]]).ignored("/".join(parts))


def test_sources_outside_the_context_are_refused(tmp_path):
    (tmp_path / "a.txt").write_text("a")
    with pytest.raises(ctx.ContextError, match="forbidden path outside the build context: ../x"):
        ctx.resolve_sources(str(tmp_path), "../x")
    assert ctx.resolve_sources(str(tmp_path), "/a.txt") == ["a.txt"]
    assert ctx.resolve_sources(str(tmp_path), "*.txt") == ["a.txt"]
    with pytest.raises(ctx.ContextError, match="file not found in build context"):
        ctx.resolve_sources(str(tmp_path), "missing")


def test_content_hash_ignores_mtime_but_not_content_or_mode(tmp_path):
    f = tmp_path / "f"
    f.write_text("one")
    h1 = ctx.content_hash(str(tmp_path), ["f"])
    os.utime(f, (1, 1))
    assert ctx.content_hash(str(tmp_path), ["f"]) == h1
    os.chmod(f, 0o600)
    h2 = ctx.content_hash(str(tmp_path), ["f"])
    assert h2 != h1
    f.write_text("two")
    assert ctx.content_hash(str(tmp_path), ["f"]) != h2


def _tar(entries: dict[str, bytes]) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for name, data in entries.items():
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            t.addfile(ti, io.BytesIO(data))
    buf.seek(0)
    return buf


def test_a_hostile_context_tar_is_refused_and_leaves_nothing(tmp_path):
    with pytest.raises(ctx.ContextError, match=r"invalid build context: .*\.\./escape"):
        ctx.unpack(_tar({"ok.txt": b"x", "../escape": b"x"}), str(tmp_path / "ctx"))
    assert not (tmp_path / "ctx").exists() and not (tmp_path / "escape").exists()
    assert os.listdir(tmp_path) == []


def test_tar_directory_applies_dockerignore_but_keeps_the_dockerfile(tmp_path):
    for name in ("Dockerfile", "keep.txt", "secret.txt", "sub/x.log"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(name)
    out = io.BytesIO()
    ctx.tar_directory(str(tmp_path), out, ctx.Ignore(["secret.txt", "sub", "Dockerfile"]), keep={"Dockerfile"})
    out.seek(0)
    with tarfile.open(fileobj=out) as t:
        assert sorted(t.getnames()) == ["Dockerfile", "keep.txt"]
