"""`docker cp` out of a container (GET|HEAD /containers/{id}/archive): a path's stat and a tar of it, read through the layers.

A stopped container's overlay root is not mounted anywhere, so rather than
mount it, the merged view is computed the way overlayfs computes it: the layers
are searched top-most first (the container's upper dir, then the image's
layers); a 0:0 character device is a whiteout that hides the name in every
lower layer; a directory with `trusted.overlay.opaque=y` hides the lower
layers' directories of the same path; a non-directory hides whatever lies
below it. A running container is read through `/proc/<pid>/root` as one layer.

The stat goes to the client base64-encoded in `X-Docker-Container-Path-Stat`,
with Go's os.FileMode bits, as Docker sends it.
"""

from __future__ import annotations

import os
import stat
import tarfile
import tempfile
import time
from typing import Iterator

from ..image.layers import OPAQUE_XATTR

# Go os.FileMode type bits
GO_DIR, GO_SYMLINK, GO_DEVICE, GO_PIPE, GO_SOCKET = 1 << 31, 1 << 27, 1 << 26, 1 << 25, 1 << 24
GO_SETUID, GO_SETGID, GO_CHARDEV, GO_STICKY = 1 << 23, 1 << 22, 1 << 21, 1 << 20


def _whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def _opaque(path: str) -> bool:
    try:
        return os.getxattr(path, OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


def resolve(layers: list[str], parts: list[str]) -> list[str]:
    """The host paths that make up `parts` in the merged view, top-most first
    (more than one only for a directory merged from several layers); [] if absent."""
    cands = list(layers)
    for part in parts:
        found: list[str] = []
        for base in cands:
            p = os.path.join(base, part)
            try:
                st = os.lstat(p)
            except (FileNotFoundError, NotADirectoryError):
                continue
            if _whiteout(st):
                break
            if not stat.S_ISDIR(st.st_mode):
                if not found:
                    found = [p]
                break
            found.append(p)
            if _opaque(p):
                break
        if not found:
            return []
        cands = found
    return cands


def go_mode(st: os.stat_result) -> int:
    m = st.st_mode
    mode = stat.S_IMODE(m) & 0o777
    for bit, go in ((stat.S_ISUID, GO_SETUID), (stat.S_ISGID, GO_SETGID), (stat.S_ISVTX, GO_STICKY)):
        if m & bit:
            mode |= go
    if stat.S_ISDIR(m):
        mode |= GO_DIR
    elif stat.S_ISLNK(m):
        mode |= GO_SYMLINK
    elif stat.S_ISCHR(m):
        mode |= GO_DEVICE | GO_CHARDEV
    elif stat.S_ISBLK(m):
        mode |= GO_DEVICE
    elif stat.S_ISFIFO(m):
        mode |= GO_PIPE
    elif stat.S_ISSOCK(m):
        mode |= GO_SOCKET
    return mode


def split(path: str) -> list[str]:
    """A container path's components; ".." cannot climb above the root."""
    parts: list[str] = []
    for p in path.split("/"):
        if p in ("", "."):
            continue
        if p == "..":
            if parts:
                parts.pop()
        else:
            parts.append(p)
    return parts


def path_stat(layers: list[str], path: str) -> tuple[dict, list[str]] | None:
    found = resolve(layers, split(path))
    if not found:
        return None
    st = os.lstat(found[0])
    link = os.readlink(found[0]) if stat.S_ISLNK(st.st_mode) else ""
    name = split(path)[-1] if split(path) else "/"
    return ({"name": name, "size": st.st_size, "mode": go_mode(st),
             "mtime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(st.st_mtime)),
             "linkTarget": link}, found)


def tar_stream(found: list[str], path: str, chunk: int = 256 * 1024) -> Iterator[bytes]:
    """A tar of the merged entry `found` (from path_stat), named after the path's last
    component ("." for a path ending in "/." : the directory's contents only)."""
    parts = split(path)
    top = "." if path.rstrip("/").endswith("/.") or not parts else parts[-1]
    with tempfile.SpooledTemporaryFile(max_size=8 << 20) as buf:
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
            _add(tar, found, top)
        buf.seek(0)
        while data := buf.read(chunk):
            yield data


def _add(tar: tarfile.TarFile, found: list[str], arcname: str) -> None:
    info = tar.gettarinfo(found[0], arcname)
    if info is None:           # a socket: tar has no way to say it
        return
    if info.isreg():
        with open(found[0], "rb") as f:
            tar.addfile(info, f)
        return
    tar.addfile(info)
    if not info.isdir():
        return
    names: list[str] = []
    seen = set()
    for d in found:
        try:
            listing = sorted(os.listdir(d))
        except OSError:
            continue
        for n in listing:
            if n not in seen:
                seen.add(n)
                names.append(n)
    for n in sorted(names):
        child = resolve(found, [n])
        if child:
            _add(tar, child, f"{arcname}/{n}")
