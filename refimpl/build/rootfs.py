"""An image's filesystem read straight from its unpacked layers, without mounting it.

COPY --from and COPY's destination checks need to look into an image: which
file a path names, what is in a directory, who owns a parent directory. The
layers are overlayfs layers (top-most first), so a path is found in the first
layer that has it, unless a layer above hides it: a whiteout (0:0 char device)
at the path or at one of its parents, a non-directory at a parent, or an opaque
parent directory (trusted.overlay.opaque=y) that does not hold it. Symlinks in
the middle of a path are not followed (COPY --from names real paths).
"""
from __future__ import annotations

import os
import posixpath
import shutil
import stat

OPAQUE_XATTR = "trusted.overlay.opaque"


def _whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def _opaque(path: str) -> bool:
    try:
        return os.getxattr(path, OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


class RootView:
    def __init__(self, layer_dirs: list[str]):
        self.layers = list(layer_dirs)          # top-most first

    def lookup(self, path: str) -> str | None:
        """The host path holding `path` (absolute in the image), or None."""
        parts = [p for p in posixpath.normpath("/" + path).split("/") if p]
        for layer in self.layers:
            cur, hidden = layer, False
            for n, part in enumerate(parts):
                cur = os.path.join(cur, part)
                try:
                    st = os.lstat(cur)
                except FileNotFoundError:
                    parent = os.path.dirname(cur)
                    if n > 0 and os.path.isdir(parent) and _opaque(parent):
                        return None              # an opaque directory hides the layers below
                    break
                if _whiteout(st):
                    return None
                if n < len(parts) - 1 and not stat.S_ISDIR(st.st_mode):
                    hidden = True                # a file where a directory should be
                    break
            else:
                return cur if parts else layer
            if hidden:
                return None
        return None if parts else (self.layers[0] if self.layers else None)

    def listdir(self, path: str) -> list[str]:
        """The merged entries of a directory in the image."""
        names: set[str] = set()
        gone: set[str] = set()
        rel = posixpath.normpath("/" + path).lstrip("/")
        for layer in self.layers:
            d = os.path.join(layer, rel) if rel else layer
            if not os.path.isdir(d) or os.path.islink(d):
                if os.path.lexists(d):
                    break
                continue
            for name in os.listdir(d):
                if name in names or name in gone:
                    continue
                (gone if _whiteout(os.lstat(os.path.join(d, name))) else names).add(name)
            if _opaque(d):
                break
        return sorted(names)

    def copy_out(self, path: str, dest: str) -> None:
        """Copy `path` (file, link or directory, merged) to the host path `dest`."""
        src = self.lookup(path)
        if src is None:
            raise FileNotFoundError(path)
        st = os.lstat(src)
        if stat.S_ISDIR(st.st_mode):
            os.makedirs(dest, exist_ok=True)
            for name in self.listdir(path):
                self.copy_out(posixpath.join(path, name), os.path.join(dest, name))
            shutil.copystat(src, dest)
            os.chown(dest, st.st_uid, st.st_gid)
        elif stat.S_ISLNK(st.st_mode):
            os.symlink(os.readlink(src), dest)
            os.lchown(dest, st.st_uid, st.st_gid)
        else:
            shutil.copy2(src, dest, follow_symlinks=False)
            os.chown(dest, st.st_uid, st.st_gid)
