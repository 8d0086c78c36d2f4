"""Shared pieces of the hostile-input tests: a sentinel tree beside the data root and
snapshots that show nothing outside the layer roots changed."""
from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest


def snapshot(base: Path, *skip: Path) -> dict[str, tuple]:
    """path -> (type and mode, owner, size, nlink, content digest or link target), for
    everything under base except the subtrees `skip`."""
    out = {}
    skipped = {os.fspath(p) for p in skip}
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames[:] = [n for n in dirnames if os.path.join(dirpath, n) not in skipped]
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            if p in skipped:
                continue
            st = os.lstat(p)
            extra = ""
            if stat.S_ISREG(st.st_mode):
                with open(p, "rb") as f:
                    extra = hashlib.sha256(f.read()).hexdigest()
            elif stat.S_ISLNK(st.st_mode):
                extra = os.readlink(p)
            out[os.path.relpath(p, base)] = (st.st_mode, st.st_uid, st.st_gid, st.st_size, st.st_nlink, extra)
    return out


def make_sentinel(workdir: Path) -> Path:
    s = workdir / "sentinel"
    (s / "sub").mkdir(parents=True)
    (s / "victim").write_text("the sentinel's own content\n")
    (s / "sub" / "inner").write_text("inner\n")
    os.symlink("victim", s / "link")
    return s


def special_files(root: Path) -> list[str]:
    """Device nodes other than overlay whiteouts (0:0), and overlayfs xattrs other than
    the opaque marker: what a layer root must never hold after a hostile archive."""
    bad = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            if (stat.S_ISCHR(st.st_mode) and st.st_rdev != 0) or stat.S_ISBLK(st.st_mode):
                bad.append(f"device {p}")
            if not stat.S_ISLNK(st.st_mode):
                for key in os.listxattr(p, follow_symlinks=False):
                    if key.startswith("trusted.overlay.") and key != "trusted.overlay.opaque":
                        bad.append(f"xattr {key} on {p}")
    return bad


@pytest.fixture(scope="session")
def needs_root():
    if os.geteuid() != 0:
        pytest.skip("layer roots with owners, whiteout devices and trusted.* xattrs need root")
