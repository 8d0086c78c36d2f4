"""The layers directory is a top of hierarchies for ext2/3/4's inode allocator (`chattr +T`),
so each layer is unpacked in block groups of its own; elsewhere the hint is simply absent."""
from __future__ import annotations

import fcntl
import os
import struct
import subprocess
import tempfile
from pathlib import Path

import pytest

from refimpl.engine.images import FS_IOC_GETFLAGS, FS_TOPDIR_FL, ImageService, spread_subdirs


def flags(path) -> int | None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        buf = bytearray(8)
        fcntl.ioctl(fd, FS_IOC_GETFLAGS, buf, True)
        return struct.unpack_from("i", buf)[0]
    except OSError:
        return None
    finally:
        os.close(fd)


def fs_type(path) -> str:
    return subprocess.run(["stat", "-f", "-c", "%T", str(path)], capture_output=True, text=True).stdout.strip()


def test_the_layers_directory_spreads_its_layers(tmp_path):
    if not fs_type(tmp_path).startswith("ext2/ext3"):
        pytest.skip(f"the flag is ext2/3/4's; {tmp_path} is on {fs_type(tmp_path)}")
    parent = flags(tmp_path)
    (tmp_path / "image" / "layers").mkdir(parents=True)
    before = flags(tmp_path / "image" / "layers")
    svc = ImageService(tmp_path / "image")
    assert flags(svc.layers_root) == before | FS_TOPDIR_FL      # the flag added, the others kept
    assert flags(tmp_path) == parent                             # only the layers directory is marked
    assert spread_subdirs(svc.layers_root)                       # again: nothing to change, still true
    assert flags(svc.layers_root) == before | FS_TOPDIR_FL


def test_where_there_is_no_such_flag_nothing_changes():
    shm = Path("/dev/shm")
    if not shm.is_dir() or fs_type(shm) != "tmpfs":
        pytest.skip("no tmpfs at /dev/shm")
    with tempfile.TemporaryDirectory(prefix="dsp-", dir=shm) as d:
        assert spread_subdirs(d) is False
        svc = ImageService(Path(d) / "image")             # an image store on tmpfs still works
        assert svc.layers_root.is_dir() and svc.images() == []
    assert spread_subdirs("/nonexistent/dockspec") is False
