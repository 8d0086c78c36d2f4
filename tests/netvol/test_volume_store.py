"""The volume store on a real directory: records, filters, in-use refusal, prune, copy-up."""
from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from refimpl.engine.errors import Conflict, InvalidParameter, NotFound
from refimpl.engine.volumes import ANON_LABEL, VolumeService


def test_create_inspect_list_remove(tmp_path):
    vs = VolumeService(tmp_path)
    v = vs.create("data", labels={"a": "1"})
    assert v["Name"] == "data" and v["Driver"] == "local" and v["Scope"] == "local"
    assert os.path.isdir(v["Mountpoint"]) and v["Mountpoint"].endswith("/volumes/data/_data")
    assert vs.create("data") == v                     # creating it again answers the same volume
    anon = vs.create()["Name"]
    assert len(anon) == 64 and ANON_LABEL in vs.inspect(anon)["Labels"]
    names = lambda f: [x["Name"] for x in vs.list(f)["Volumes"]]  # noqa: E731
    assert names('{"label": ["a=1"]}') == ["data"]
    assert names('{"name": ["dat"]}') == ["data"]
    vs.users = lambda n: ["c1"] if n == "data" else []
    assert names('{"dangling": ["true"]}') == [anon]
    with pytest.raises(Conflict, match="volume is in use"):
        vs.remove("data")
    with pytest.raises(InvalidParameter):
        vs.list('{"bogus": ["x"]}')
    assert vs.prune()["VolumesDeleted"] == [anon]     # only anonymous volumes by default
    assert vs.prune('{"all": ["true"]}')["VolumesDeleted"] is None     # data is in use
    vs.users = lambda n: []
    vs.remove("data")
    with pytest.raises(NotFound):
        vs.inspect("data")
    vs.remove("data", force=True)
    for bad in ("a", "a/b", "../x", "-x"):
        with pytest.raises(InvalidParameter):
            vs.create(bad)
    with pytest.raises(NotFound):
        vs.create("x1", driver="nfs-plugin")
    assert vs.names() == []


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sets(st.from_regex(r"[a-z0-9][a-z0-9_.-]{1,12}", fullmatch=True), max_size=6))
def test_listing_is_what_was_created(tmp_path, names):
    vs = VolumeService(tmp_path / os.urandom(4).hex())
    for n in names:
        vs.create(n)
    assert vs.names() == sorted(names)
    assert VolumeService(vs.root.parent).names() == sorted(names)     # records survive a restart
    for n in names:
        vs.remove(n)
    assert vs.names() == []


def test_copy_up_reads_the_merged_layers(tmp_path):
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    (lower / "etc" / "sub").mkdir(parents=True)
    (lower / "etc" / "passwd").write_text("root:x:0:0\n")
    (lower / "etc" / "gone").write_text("hidden by a whiteout\n")
    (lower / "etc" / "sub" / "f").write_text("f")
    os.symlink("passwd", lower / "etc" / "link")
    (upper / "etc").mkdir(parents=True)
    os.mknod(upper / "etc" / "gone", 0o600 | 0o020000, os.makedev(0, 0))    # overlay whiteout
    (upper / "etc" / "new").write_text("new")
    os.chmod(upper / "etc", 0o750)        # the top-most directory gives the attributes
    vs = VolumeService(tmp_path / "root")
    vs.create("v1")
    vs.copy_up(vs.mountpoint("v1"), [str(upper), str(lower)], "/etc")
    data = vs.root / "v1" / "_data"
    assert sorted(os.listdir(data)) == ["link", "new", "passwd", "sub"]
    assert (data / "sub" / "f").read_text() == "f" and os.readlink(data / "link") == "passwd"
    assert oct(os.stat(data).st_mode & 0o777) == "0o750"
    (data / "passwd").write_text("changed")
    vs.copy_up(vs.mountpoint("v1"), [str(upper), str(lower)], "/etc")         # not empty any more: left alone
    assert (data / "passwd").read_text() == "changed"
