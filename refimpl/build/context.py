"""The build context: .dockerignore rules, the context tar, sources of COPY, content hashes.

`.dockerignore` follows Docker's pattern rules (moby/patternmatcher): one pattern
a line, `#` comments, surrounding blanks trimmed, paths cleaned and a leading `/`
dropped; `*` and `?` never cross `/`, `**` matches any number of directories;
a pattern that matches a directory matches everything below it; `!pattern`
re-includes; the last matching line wins. The matcher is pure (property-tested);
the rest reads and writes the context directory on the builder's behalf.

The context tar comes from the client, so it is unpacked with
refimpl.image.layers (entries that climb out are refused); sources named by
COPY are resolved lexically inside the context, and one that leaves it
(`../x`) is "forbidden path outside the build context".
"""
from __future__ import annotations

import fnmatch
import hashlib
import io
import os
import posixpath
import re
import shutil
import stat
import tarfile
from typing import BinaryIO, Iterable

from ..image import layers as layers_mod


class ContextError(ValueError):
    """A bad context or a source that cannot be copied; one line."""


# --------------------------------------------------------------------------- .dockerignore
def read_patterns(text: str) -> list[str]:
    """The patterns of a .dockerignore file, cleaned, in order."""
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        neg = line.startswith("!")
        body = line[1:].strip() if neg else line
        body = posixpath.normpath(body).lstrip("/") if body else body
        if body in ("", "."):
            body = "."
        out.append(("!" if neg else "") + body)
    return out


def _regex(pattern: str) -> re.Pattern:
    # patternmatcher: "**" matches any number of directories (including none), "*" any run of
    # non-separator characters, "?" one non-separator character; "[...]" a class, as filepath.Match.
    out, i = "", 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**", i):
            i += 2
            if pattern.startswith("/", i):
                out += "(?:.*/)?"
                i += 1
            else:
                out += ".*"
            continue
        if c == "*":
            out += "[^/]*"
        elif c == "?":
            out += "[^/]"
        elif c == "[":
            j = pattern.find("]", i + 1)
            if j < 0:
                out += re.escape(c)
            else:
                cls = pattern[i + 1:j]
                out += "[" + ("^" + cls[1:] if cls.startswith(("!", "^")) else cls).replace("\\", "\\\\") + "]"
                i = j
        elif c == "\\" and i + 1 < len(pattern):
            i += 1
            out += re.escape(pattern[i])
        else:
            out += re.escape(c)
        i += 1
    return re.compile(out)


class Ignore:
    """Compiled .dockerignore patterns: `ignored("a/b.txt")`."""

    def __init__(self, patterns: Iterable[str]):
        self.rules = [(p.startswith("!"), _regex(p.lstrip("!"))) for p in patterns]

    def ignored(self, path: str) -> bool:
        path = posixpath.normpath(path).lstrip("/")
        parts = path.split("/")
        prefixes = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
        result = False
        for negated, rx in self.rules:
            if any(rx.fullmatch(p) for p in prefixes):
                result = not negated
        return result


# --------------------------------------------------------------------------- the context tar
def unpack(stream: BinaryIO, dest: str) -> None:
    """Unpack a context tar (plain or gzip) into the new directory `dest`."""
    try:
        layers_mod.extract_layer(stream, dest, chown=False)
    except layers_mod.LayerError as e:
        raise ContextError(f"invalid build context: {e}") from None


def apply_dockerignore(root: str, keep: Iterable[str] = ()) -> None:
    """Remove what .dockerignore excludes (except the Dockerfile and .dockerignore, always kept)."""
    path = os.path.join(root, ".dockerignore")
    if not os.path.isfile(path):
        return
    with open(path, encoding="utf-8", errors="replace") as f:
        ign = Ignore(read_patterns(f.read()))
    keep = {posixpath.normpath(k).lstrip("/") for k in keep} | {".dockerignore"}
    for dirpath, dirnames, filenames in os.walk(root, topdown=True):
        rel_dir = os.path.relpath(dirpath, root)
        for name in list(dirnames) + filenames:
            rel = name if rel_dir == "." else f"{rel_dir}/{name}"
            if rel in keep or not ign.ignored(rel):
                continue
            full = os.path.join(dirpath, name)
            if name in dirnames and not os.path.islink(full):
                if any(k.startswith(rel + "/") for k in keep):
                    continue
                shutil.rmtree(full)
                dirnames.remove(name)
            else:
                os.unlink(full)


def tar_directory(root: str, out: BinaryIO, ignore: Ignore | None = None, keep: Iterable[str] = ()) -> None:
    """The client side: a context directory as a tar, .dockerignore applied (the Dockerfile kept)."""
    keep = set(keep)
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            rel_dir = os.path.relpath(dirpath, root)
            for name in sorted(dirnames) + sorted(filenames):
                rel = name if rel_dir == "." else f"{rel_dir}/{name}"
                if ignore and rel not in keep and ignore.ignored(rel):
                    if name in dirnames:
                        dirnames.remove(name)
                    continue
                ti = tar.gettarinfo(os.path.join(dirpath, name), rel)
                ti.uid = ti.gid = 0
                ti.uname = ti.gname = ""
                if ti.isreg():
                    with open(os.path.join(dirpath, name), "rb") as f:
                        tar.addfile(ti, f)
                else:
                    tar.addfile(ti)


# --------------------------------------------------------------------------- COPY sources
def resolve_sources(root: str, pattern: str) -> list[str]:
    """Context-relative paths named by one COPY source (wildcards as filepath.Match)."""
    norm = posixpath.normpath(pattern)
    if norm == ".." or norm.startswith("../"):
        raise ContextError(f"forbidden path outside the build context: {pattern} ()")
    rel = norm.lstrip("/") or "."
    if any(ch in rel for ch in "*?["):
        found = []
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            base = os.path.relpath(dirpath, root)
            for name in sorted(dirnames + filenames):
                cand = name if base == "." else f"{base}/{name}"
                if cand.count("/") == rel.count("/") and fnmatch.fnmatchcase(cand, rel):
                    found.append(cand)
        if not found:
            raise ContextError("COPY failed: no source files were specified")
        return found
    if not os.path.lexists(os.path.join(root, rel)):
        raise ContextError(f"COPY failed: file not found in build context or excluded by .dockerignore: "
                           f"stat {rel}: file does not exist")
    return [rel]


def content_hash(root: str, rels: Iterable[str]) -> str:
    """A digest of the named files and everything under them: names, types, modes, link
    targets and contents; not mtimes nor owners (COPY resets owners)."""
    h = hashlib.sha256()

    def one(rel: str) -> None:
        full = os.path.join(root, rel)
        st = os.lstat(full)
        h.update(f"{rel}\0{stat.S_IFMT(st.st_mode)}\0{stat.S_IMODE(st.st_mode)}\0".encode())
        if stat.S_ISLNK(st.st_mode):
            h.update(os.readlink(full).encode())
        elif stat.S_ISREG(st.st_mode):
            with open(full, "rb") as f:
                while chunk := f.read(1 << 20):
                    h.update(chunk)
        elif stat.S_ISDIR(st.st_mode):
            for child in sorted(os.listdir(full)):
                one(f"{rel}/{child}" if rel != "." else child)
        h.update(b"\0")

    for rel in rels:
        one(rel)
    return "sha256:" + h.hexdigest()


def is_archive(path: str) -> bool:
    """Does this file look like a tar (plain, gzip, bzip2, xz) that ADD unpacks?"""
    try:
        with open(path, "rb") as f:
            head = f.read(512)
    except OSError:
        return False
    if head[:2] == b"\x1f\x8b" or head[:3] == b"BZh" or head[:6] == b"\xfd7zXZ\x00":
        return True
    return len(head) == 512 and head[257:262] == b"ustar"


def open_archive(path: str) -> BinaryIO:
    """A local archive as an uncompressed tar stream (for ADD's auto-extraction)."""
    import bz2
    import lzma
    with open(path, "rb") as f:
        head = f.read(6)
    if head[:3] == b"BZh":
        return io.BufferedReader(bz2.open(path, "rb"))
    if head[:6] == b"\xfd7zXZ\x00":
        return io.BufferedReader(lzma.open(path, "rb"))
    return open(path, "rb")           # plain, or gzip (the layer reader detects it)
