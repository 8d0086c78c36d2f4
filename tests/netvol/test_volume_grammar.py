"""The mount grammars: `-v SRC:DST[:MODE]`, HostConfig.Mounts objects, `--mount` CSV."""
from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from refimpl.cli.units import UnitError, parse_mount
from refimpl.engine.errors import InvalidParameter
from refimpl.engine.volumes import NAME, parse_bind, parse_mount as engine_mount, parse_volumes_from

names = st.from_regex(r"[a-zA-Z0-9][a-zA-Z0-9_.-]{1,20}", fullmatch=True)
paths = st.lists(st.from_regex(r"[a-z0-9_]{1,8}", fullmatch=True), min_size=1, max_size=4).map(
    lambda parts: "/" + "/".join(parts))


@settings(max_examples=60)
@given(names, paths, st.sampled_from(["", "ro", "rw", "ro,nocopy", "z"]))
def test_named_volume_binds(name, dst, mode):
    p = parse_bind(f"{name}:{dst}" + (f":{mode}" if mode else ""))
    assert p["Type"] == "volume" and p["Name"] == name and p["Destination"] == dst
    assert p["RW"] == ("ro" not in mode.split(","))
    assert p["CopyUp"] == ("nocopy" not in mode)


@settings(max_examples=60)
@given(paths, paths, st.booleans())
def test_host_path_binds(src, dst, ro):
    p = parse_bind(f"{src}:{dst}" + (":ro" if ro else ""))
    assert (p["Type"], p["Source"], p["Destination"], p["RW"]) == ("bind", src, dst, not ro)
    assert p["Propagation"] == "rprivate"


@settings(max_examples=100)
@given(st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=30))
def test_any_bind_parses_or_fails_cleanly(text):
    try:
        p = parse_bind(text)
    except InvalidParameter as e:
        assert "\n" not in str(e)
        return
    assert p["Destination"].startswith("/")
    assert p["Type"] == "bind" or NAME.fullmatch(p["Name"])


@pytest.mark.parametrize("bad", ["vol", "vol:rel", "a/b:/x", ":/x", "vol:/x:bogus", "vol:/x:ro,rw",
                                 "a:b:c:d"])
def test_bad_binds(bad):
    with pytest.raises(InvalidParameter):
        parse_bind(bad)


def test_mount_csv():
    m = parse_mount("type=volume,src=data,dst=/d,readonly,volume-nocopy")
    assert m == {"Type": "volume", "Source": "data", "Target": "/d", "ReadOnly": True,
                 "VolumeOptions": {"NoCopy": True}}
    m = parse_mount("type=tmpfs,destination=/t,tmpfs-size=1m,tmpfs-mode=1770")
    assert m["TmpfsOptions"] == {"SizeBytes": 1 << 20, "Mode": 0o1770}
    assert engine_mount(m)["Options"] == "size=1048576,mode=1770"
    assert parse_mount("target=/x")["Type"] == "volume"
    for bad in ("src=x", "type=volume,dst=/x,bogus=1", "dst=/x,readonly=maybe", "dst"):
        with pytest.raises(UnitError):
            parse_mount(bad)


def test_engine_mount_objects(tmp_path):
    assert engine_mount({"Type": "bind", "Source": str(tmp_path), "Target": "/x"})["Source"] == str(tmp_path)
    for bad in ({"Type": "bind", "Source": str(tmp_path / "none"), "Target": "/x"},
                {"Type": "bind", "Target": "/x"}, {"Type": "volume", "Source": "a/b", "Target": "/x"},
                {"Type": "tmpfs", "Source": "x", "Target": "/x"}, {"Type": "nfs", "Target": "/x"},
                {"Type": "volume", "Target": "rel"}, "nope"):
        with pytest.raises(InvalidParameter):
            engine_mount(bad)


def test_volumes_from():
    assert parse_volumes_from("c1") == ("c1", "")
    assert parse_volumes_from("c1:ro") == ("c1", "ro")
    with pytest.raises(InvalidParameter):
        parse_volumes_from("c1:xx")
