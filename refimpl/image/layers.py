"""Layer tars: apply one onto a directory safely, and turn an overlayfs upper dir back into one.

A layer is a tar of changes (uncompressed, or gzip: detected by magic bytes, not
by name). Applying it is the one place an image's author writes to our disk, so
every path is resolved *inside the root*, the way a chroot would see it:
- entry names and hardlink targets are cleaned lexically; one that climbs out
  (`../x`) is refused; a leading `/` just means "from the root" (`/../x` is `/x`);
- no directory deeper than MAX_DEPTH levels (a deeper tree cannot be removed by
  a recursive walk); header numbers no syscall accepts are refused, not raised;
- overlayfs' own xattrs (`trusted.overlay.*`: redirects, metacopy) in an archive
  are dropped: only the opaque marker we derive from `.wh..wh..opq` is set;
- parent directories are walked component by component from an fd of the root;
  a symlink met on the way is followed with the root as `/` (an absolute target
  starts again at the root, `..` stops at the root), and the final open of each
  directory uses O_NOFOLLOW, so nothing is ever written through a link to outside;
- the entry itself is never followed: an existing file, link or directory in its
  place is removed first (a directory over a directory is kept);
- relative symlinks whose target climbs out of the root are refused (as Docker
  does); hardlinks must point at an existing non-directory inside the root;
- char/block devices are skipped unless `devices=True`; fifos are fine.
Any refusal is a LayerError naming the entry, in one line.

Whiteouts (AUFS/OCI): `.wh.NAME` deletes NAME from the layers below and
`.wh..wh..opq` hides everything below in that directory. In *flatten* mode they
are applied to the directory; in *overlay* mode the directory becomes an
overlayfs lower/upper layer, where a whiteout is a 0:0 char device and an opaque
dir carries `trusted.overlay.opaque=y` (both need root). `diff_tar` is the reverse:
an overlayfs upper dir to a layer tar, sorted and optionally with a fixed mtime, so
that commit and build are reproducible. The DiffID (sha256 of the uncompressed
tar) is computed in passing both ways.
"""
from __future__ import annotations

import errno
import gzip
import os
import posixpath
import queue
import shutil
import stat
import tarfile
import tempfile
import threading
import zlib
from dataclasses import dataclass
from typing import BinaryIO

from .digest import Digest, Verifier

WHITEOUT_PREFIX = ".wh."
WHITEOUT_META_PREFIX = ".wh..wh."
WHITEOUT_OPAQUE = ".wh..wh..opq"
OPAQUE_XATTR = "trusted.overlay.opaque"
OVERLAY_XATTRS = "trusted.overlay."     # overlayfs' own (redirect, metacopy): never from an archive
XATTR_PAX = "SCHILY.xattr."
GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
MAX_SYMLINKS = 40
MAX_DEPTH = 512         # directory levels; deeper trees cannot even be removed recursively
FLATTEN, OVERLAY = "flatten", "overlay"


class LayerError(ValueError):
    """A layer that cannot be applied; the message names the entry."""


@dataclass(frozen=True)
class LayerResult:
    diff_id: Digest     # sha256 of the uncompressed tar
    size: int           # its length in bytes


class _Prefixed:
    """Give back the bytes read to sniff the compression, then the rest."""

    def __init__(self, head: bytes, raw):
        self.head, self.raw = head, raw

    def read(self, n: int = -1) -> bytes:
        if self.head:
            if n < 0:
                data, self.head = self.head + self.raw.read(), b""
                return data
            data, self.head = self.head[:n], self.head[n:]
            return data
        return self.raw.read(n)


def decompress(stream: BinaryIO) -> BinaryIO:
    """The uncompressed tar stream of a layer blob, whatever its compression."""
    head = b""
    while len(head) < 4:
        more = stream.read(4 - len(head))
        if not more:
            break
        head += more
    raw = _Prefixed(head, stream)
    if head.startswith(GZIP_MAGIC):
        return gzip.GzipFile(fileobj=raw, mode="rb")
    if head.startswith(ZSTD_MAGIC):
        raise LayerError("zstd-compressed layers are not supported")
    return raw


CHUNK = 1 << 20            # compressed bytes read at a time
OUT_CHUNK = 256 * 1024     # uncompressed bytes produced at a time (bounds a gzip bomb's memory)
QUEUE_DEPTH = 8            # uncompressed chunks a producer thread may run ahead


def _inflate(stream: BinaryIO, kind: list):
    """Yield the uncompressed tar stream of a layer blob in chunks; `kind[0]` is set to
    "gzip" or "plain" once the magic bytes are read. Gzip as GzipFile reads it: members
    one after another, zero padding between or after them allowed, anything else after a
    member is an error, CRC and length checked (zlib's gzip mode does both)."""
    head = b""
    while len(head) < 4:
        more = stream.read(4 - len(head))
        if not more:
            break
        head += more
    if head.startswith(ZSTD_MAGIC):
        raise LayerError("zstd-compressed layers are not supported")
    if not head.startswith(GZIP_MAGIC):
        kind[0] = "plain"
        if head:
            yield head
        while chunk := stream.read(CHUNK):
            yield chunk
        return
    kind[0] = "gzip"
    d, data = zlib.decompressobj(31), head
    while True:
        if not data:
            data = stream.read(CHUNK)
            if not data:
                if not d.eof:
                    raise EOFError("Compressed file ended before the end-of-stream marker was reached")
                return
        if d.eof:                       # between members: zero padding, then another member or the end
            data = data.lstrip(b"\0")
            if not data:
                continue
            if len(data) < 2:
                more = stream.read(CHUNK)
                if more:
                    data += more
                    continue
            if not data.startswith(GZIP_MAGIC):
                raise gzip.BadGzipFile(f"Not a gzipped file ({data[:2]!r})")
            d = zlib.decompressobj(31)
        out = d.decompress(data, OUT_CHUNK)
        data = d.unused_data if d.eof else d.unconsumed_tail
        if out:
            yield out


class _TarStream:
    """The uncompressed tar stream of a layer blob for tarfile, hashed (the DiffID) as it
    is produced. With `thread`, reading, inflating and hashing run in a thread of their
    own (zlib and hashlib let go of the GIL) while the caller unpacks; errors of that
    thread come out of `read` in order. `close` stops it."""

    def __init__(self, raw: BinaryIO, thread: bool = True):
        self.verifier = Verifier()
        self._kind = [None]
        self._chunks = self._hashed(_inflate(raw, self._kind))
        self._buf, self._pos, self._done = b"", 0, False
        self._thread = None
        if thread:
            self._q: queue.Queue = queue.Queue(QUEUE_DEPTH)
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._produce, name="layer-inflate", daemon=True)
            self._thread.start()

    def _hashed(self, chunks):
        for chunk in chunks:
            self.verifier.update(chunk)
            yield chunk

    @property
    def plain(self) -> bool:
        return self._kind[0] == "plain"

    @property
    def size(self) -> int:
        return self.verifier.size

    def digest(self) -> Digest:
        return self.verifier.digest()

    def _produce(self) -> None:
        try:
            for chunk in self._chunks:
                if not self._put(chunk):
                    return
            self._put(None)
        except BaseException as e:  # noqa: BLE001 - handed to the reader, raised there
            self._put(e)

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _next(self) -> bytes | None:
        if self._thread is None:
            return next(self._chunks, None)
        item = self._q.get()
        if isinstance(item, BaseException):
            self._done = True
            raise item
        return item

    def read(self, n: int = -1) -> bytes:
        avail = len(self._buf) - self._pos
        while (n < 0 or avail < n) and not self._done:
            chunk = self._next()
            if chunk is None:
                self._done = True
                break
            self._buf = self._buf[self._pos:] + chunk if avail else chunk
            self._pos, avail = 0, len(self._buf)
        if n < 0 or n >= avail:
            data = self._buf[self._pos:] if self._pos else self._buf
            self._buf, self._pos = b"", 0
            return data
        data = self._buf[self._pos:self._pos + n]
        self._pos += n
        return data

    def drain(self) -> None:
        while self.read(CHUNK):
            pass

    def close(self) -> None:
        if self._thread is not None:
            self._stop.set()
            while self._thread.is_alive():
                try:
                    self._q.get(timeout=0.1)
                except queue.Empty:
                    pass
            self._thread.join()
            self._thread = None


def _clean(name: str, entry: str) -> str:
    """Lexically clean an archive path to a root-relative one ("" is the root)."""
    if "\0" in name:
        raise LayerError(f"{entry!r}: NUL byte in path")
    if not name.strip("/"):
        return ""
    # A leading `/` is the root, so `/../x` is `/x` (Go's filepath.Clean, as dockerd reads names).
    clean = (posixpath.normpath(name).lstrip("/") or ".") if name.startswith("/") else posixpath.normpath(name)
    if clean == ".." or clean.startswith("../"):
        raise LayerError(f"{entry!r}: path escapes the layer root")
    return "" if clean == "." else clean


class _Applier:
    def __init__(self, root: str, mode: str, devices: bool, chown: bool | None):
        if mode not in (FLATTEN, OVERLAY):
            raise ValueError(f"unknown layer mode {mode!r}")
        self.mode, self.devices = mode, devices
        self.chown = os.geteuid() == 0 if chown is None else chown
        self.root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        self._last: tuple[str, int] | None = None     # the last directory resolved, and its fd
        self.unpacked: set[str] = set()
        self.dirs: dict[str, tarfile.TarInfo] = {}

    def close(self) -> None:
        self._forget()
        os.close(self.root_fd)

    def _forget(self) -> None:
        """Drop the cached directory fd: called before anything is removed, since a removal
        may take away a directory on the cached path."""
        if self._last is not None:
            os.close(self._last[1])
            self._last = None

    # -- resolution inside the root ------------------------------------------
    def _dir(self, rel: str, entry: str, create: bool) -> int | None:
        """An fd for directory `rel`, resolving symlinks with the root as `/`;
        None if it does not exist and `create` is false. Entries of one directory
        come together in a tar, so the last answer is kept (nothing but a removal
        can change what an existing path resolves to: see _forget)."""
        if self._last is not None and self._last[0] == rel:
            return os.dup(self._last[1])
        todo = [c for c in reversed(rel.split("/")) if c]
        stack: list[str] = []
        links = 0
        while todo:
            c = todo.pop()
            if c == ".":
                continue
            if c == "..":
                if stack:
                    stack.pop()
                continue
            p = "/".join(stack + [c])
            try:
                st = os.lstat(p, dir_fd=self.root_fd)
            except FileNotFoundError:
                if not create:
                    return None
                if len(stack) >= MAX_DEPTH:
                    raise LayerError(f"{entry!r}: more than {MAX_DEPTH} directory levels")
                os.mkdir(p, 0o755, dir_fd=self.root_fd)
                stack.append(c)
                continue
            if stat.S_ISLNK(st.st_mode):
                links += 1
                if links > MAX_SYMLINKS:
                    raise LayerError(f"{entry!r}: too many levels of symbolic links")
                target = os.readlink(p, dir_fd=self.root_fd)
                if target.startswith("/"):
                    stack = []
                todo.extend(c for c in reversed(target.split("/")) if c)
            elif stat.S_ISDIR(st.st_mode):
                stack.append(c)
                if len(stack) > MAX_DEPTH:
                    raise LayerError(f"{entry!r}: more than {MAX_DEPTH} directory levels")
            else:
                raise LayerError(f"{entry!r}: {p} is not a directory")
        fd = os.dup(self.root_fd)
        try:
            for c in stack:
                nfd = os.open(c, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
                os.close(fd)
                fd = nfd
        except OSError as e:
            os.close(fd)
            raise LayerError(f"{entry!r}: {e.strerror} while opening its directory") from None
        self._forget()
        self._last = (rel, os.dup(fd))
        return fd

    @staticmethod
    def _lstat(name: str, dfd: int):
        try:
            return os.lstat(name, dir_fd=dfd)
        except FileNotFoundError:
            return None

    def _remove(self, name: str, dfd: int) -> None:
        st = self._lstat(name, dfd)
        if st is None:
            return
        self._forget()
        if stat.S_ISDIR(st.st_mode):
            shutil.rmtree(name, dir_fd=dfd)
        else:
            os.unlink(name, dir_fd=dfd)

    # -- entries ---------------------------------------------------------------
    def apply(self, m: tarfile.TarInfo, tar: tarfile.TarFile) -> None:
        name = _clean(m.name, m.name)
        if not name:
            return  # the root itself: its metadata belongs to whoever owns the root
        if name.startswith(WHITEOUT_META_PREFIX):
            return  # AUFS bookkeeping at the root (.wh..wh.plnk, .wh..wh.aufs): not content
        parent, base = posixpath.split(name)
        if base.startswith(WHITEOUT_PREFIX):
            return self._whiteout(m, parent, base)
        dfd = self._dir(parent, m.name, create=True)
        try:
            self._make(m, tar, name, parent, base, dfd)
        finally:
            os.close(dfd)
        while name and name not in self.unpacked:   # the entry and the parents it implies
            self.unpacked.add(name)
            name = posixpath.dirname(name)

    def _whiteout(self, m: tarfile.TarInfo, parent: str, base: str) -> None:
        if base == WHITEOUT_OPAQUE:
            if self.mode == OVERLAY:
                dfd = self._dir(parent, m.name, create=True)
                try:
                    os.setxattr(dfd, OPAQUE_XATTR, b"y")
                finally:
                    os.close(dfd)
            else:
                dfd = self._dir(parent, m.name, create=False)
                if dfd is not None:
                    try:
                        self._purge(dfd, parent)
                    finally:
                        os.close(dfd)
            return
        if base.startswith(WHITEOUT_META_PREFIX):
            return  # other AUFS bookkeeping: not content
        target = base[len(WHITEOUT_PREFIX):]
        if target in ("", ".", ".."):
            raise LayerError(f"{m.name!r}: invalid whiteout")
        dfd = self._dir(parent, m.name, create=self.mode == OVERLAY)
        if dfd is None:
            return
        try:
            self._remove(target, dfd)
            if self.mode == OVERLAY:
                os.mknod(target, stat.S_IFCHR | 0o600, os.makedev(0, 0), dir_fd=dfd)
                if self.chown:
                    os.chown(target, m.uid, m.gid, dir_fd=dfd, follow_symlinks=False)
        finally:
            os.close(dfd)

    def _purge(self, dfd: int, rel: str) -> None:
        """Opaque dir in flatten mode: remove what lower layers put here, keep this layer's."""
        for child in os.listdir(dfd):
            path = posixpath.join(rel, child)
            if path not in self.unpacked:
                self._remove(child, dfd)
            elif stat.S_ISDIR(os.lstat(child, dir_fd=dfd).st_mode):
                cfd = os.open(child, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=dfd)
                try:
                    self._purge(cfd, path)
                finally:
                    os.close(cfd)

    def _make(self, m, tar, name, parent, base, dfd) -> None:
        old = self._lstat(base, dfd)
        if old is not None and not (m.isdir() and stat.S_ISDIR(old.st_mode)):
            self._remove(base, dfd)
        if m.isdir():
            if old is None or not stat.S_ISDIR(old.st_mode):
                os.mkdir(base, 0o700, dir_fd=dfd)
            self._owner(m, base, dfd)
            self._xattrs(m, base, dfd)
            self.dirs[name] = m          # mode and mtime at the end: children change them
            return
        if m.isreg():
            fd = os.open(base, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dfd)
            try:
                if m.size:
                    src = tar.extractfile(m)
                    while chunk := src.read(CHUNK):
                        _write_all(fd, chunk)
                if self.chown:
                    os.fchown(fd, m.uid, m.gid)
                os.fchmod(fd, m.mode & 0o7777)
                self._xattrs_fd(m, fd)
                os.utime(fd, ns=(_ns(m.mtime),) * 2)
            finally:
                os.close(fd)
            return
        if m.issym():
            if not m.linkname.startswith("/"):
                resolved = posixpath.normpath(posixpath.join(parent, m.linkname))
                if resolved == ".." or resolved.startswith("../"):
                    raise LayerError(f"{m.name!r}: symlink to {m.linkname!r} escapes the layer root")
            os.symlink(m.linkname, base, dir_fd=dfd)
            self._owner(m, base, dfd)
            os.utime(base, ns=(_ns(m.mtime),) * 2, dir_fd=dfd, follow_symlinks=False)
            return
        if m.islnk():
            return self._hardlink(m, base, dfd)
        if m.ischr() or m.isblk():
            if not self.devices:
                return
            kind = stat.S_IFCHR if m.ischr() else stat.S_IFBLK
            os.mknod(base, kind | 0o600, os.makedev(m.devmajor, m.devminor), dir_fd=dfd)
        elif m.isfifo():
            os.mkfifo(base, 0o600, dir_fd=dfd)
        else:
            raise LayerError(f"{m.name!r}: unsupported tar entry type {m.type!r}")
        self._owner(m, base, dfd)
        os.chmod(base, m.mode & 0o7777, dir_fd=dfd)
        os.utime(base, ns=(_ns(m.mtime),) * 2, dir_fd=dfd, follow_symlinks=False)

    def _hardlink(self, m, base, dfd) -> None:
        target = _clean(m.linkname, m.name)
        tparent, tbase = posixpath.split(target)
        tfd = self._dir(tparent, m.name, create=False) if tbase else None
        try:
            st = self._lstat(tbase, tfd) if tfd is not None else None
            if st is None:
                raise LayerError(f"{m.name!r}: hardlink target {m.linkname!r} does not exist in the layer root")
            if stat.S_ISDIR(st.st_mode):
                raise LayerError(f"{m.name!r}: hardlink target {m.linkname!r} is a directory")
            os.link(tbase, base, src_dir_fd=tfd, dst_dir_fd=dfd, follow_symlinks=False)
        finally:
            if tfd is not None:
                os.close(tfd)

    def _owner(self, m, base, dfd) -> None:
        if self.chown:
            os.chown(base, m.uid, m.gid, dir_fd=dfd, follow_symlinks=False)

    def _xattrs(self, m, base, dfd) -> None:
        if any(k.startswith(XATTR_PAX) for k in m.pax_headers):
            fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=dfd)
            try:
                self._xattrs_fd(m, fd)
            finally:
                os.close(fd)

    @staticmethod
    def _xattrs_fd(m, fd) -> None:
        for key, value in m.pax_headers.items():
            if key.startswith(XATTR_PAX) and not key.startswith(XATTR_PAX + OVERLAY_XATTRS):
                try:
                    os.setxattr(fd, key[len(XATTR_PAX):], value.encode("utf-8", "surrogateescape"))
                except OSError as e:
                    if e.errno not in (errno.ENOTSUP, errno.EPERM):
                        raise

    def finish(self) -> None:
        for name, m in sorted(self.dirs.items(), reverse=True):
            parent, base = posixpath.split(name)
            dfd = self._dir(parent, m.name, create=False)
            if dfd is None:
                continue  # removed again later in the same layer
            try:
                st = self._lstat(base, dfd)
                if st is not None and stat.S_ISDIR(st.st_mode):
                    os.chmod(base, m.mode & 0o7777, dir_fd=dfd)
                    os.utime(base, ns=(_ns(m.mtime),) * 2, dir_fd=dfd, follow_symlinks=False)
            finally:
                os.close(dfd)


def _write_all(fd: int, data: bytes) -> None:
    n = os.write(fd, data)
    if n < len(data):
        view = memoryview(data)
        while n < len(view):
            n += os.write(fd, view[n:])


def _ns(mtime) -> int:
    return int(mtime * 1_000_000_000)


def apply_layer(stream: BinaryIO, root: str | os.PathLike, *, mode: str = FLATTEN,
                devices: bool = False, chown: bool | None = None) -> LayerResult:
    """Apply a layer blob (plain or gzip tar) onto the existing directory `root`.
    `chown` defaults to "when running as root". On LayerError the directory is
    left part-written: apply into a fresh directory, or use `extract_layer`."""
    applier = _Applier(os.fspath(root), mode, devices, chown)
    entry = "<archive>"
    reader = None
    try:
        reader = _TarStream(stream)
        with tarfile.open(fileobj=reader, mode="r|") as tar:
            for m in tar:
                entry = m.name
                applier.apply(m, tar)
            entry = "<archive>"
            applier.finish()
        reader.drain()
        return LayerResult(reader.digest(), reader.size)
    except LayerError:
        raise
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as e:
        if reader is not None and reader.size == 0 and reader.plain:
            return LayerResult(reader.digest(), 0)    # an empty blob is an empty layer
        raise LayerError(f"invalid layer archive (at {entry!r}): {e}") from None
    except OSError as e:
        raise LayerError(f"{entry!r}: {e.strerror or e}") from None
    except (OverflowError, ValueError) as e:      # a header number no syscall takes (uid 2**40, mtime 1e30)
        raise LayerError(f"{entry!r}: invalid header value: {e}") from None
    finally:
        if reader is not None:
            reader.close()
        applier.close()


def extract_layer(stream: BinaryIO, dest: str | os.PathLike, **kw) -> LayerResult:
    """Apply a layer into the new directory `dest`, all or nothing: it is built
    beside `dest` and renamed into place only when the whole layer applied."""
    dest = os.fspath(dest)
    tmp = tempfile.mkdtemp(prefix=os.path.basename(dest) + ".tmp-", dir=os.path.dirname(dest) or ".")
    os.chmod(tmp, 0o755)
    try:
        result = apply_layer(stream, tmp, **kw)
        os.rename(tmp, dest)
        return result
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


class _HashingWriter:
    def __init__(self, out):
        self.out, self.verifier = out, Verifier()

    def write(self, data) -> int:
        self.verifier.update(bytes(data))
        self.out.write(data)
        return len(data)


def diff_tar(upper: str | os.PathLike, out: BinaryIO, *, mtime: int | None = None) -> LayerResult:
    """Write the layer tar of an overlayfs upper dir to `out` (uncompressed):
    0:0 char devices become `.wh.NAME`, opaque dirs get `.wh..wh..opq`, entries are
    sorted, owner names are left empty and `mtime` (if given) replaces every
    timestamp, so equal trees give equal bytes and equal DiffIDs."""
    upper = os.fspath(upper)
    w = _HashingWriter(out)
    seen: dict[tuple[int, int], str] = {}
    with tarfile.open(fileobj=w, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        def header(name, st, kind) -> tarfile.TarInfo:
            ti = tarfile.TarInfo(name)
            ti.type, ti.mode, ti.uid, ti.gid = kind, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid
            ti.mtime = mtime if mtime is not None else int(st.st_mtime)
            ti.uname = ti.gname = ""
            return ti

        def walk(rel: str) -> None:
            for child in sorted(os.listdir(os.path.join(upper, rel) if rel else upper)):
                name = posixpath.join(rel, child) if rel else child
                path = os.path.join(upper, name)
                st = os.lstat(path)
                if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                    wh = posixpath.join(rel, WHITEOUT_PREFIX + child) if rel else WHITEOUT_PREFIX + child
                    tar.addfile(header(wh, st, tarfile.REGTYPE))
                    continue
                if stat.S_ISSOCK(st.st_mode):
                    continue
                kind = {stat.S_IFDIR: tarfile.DIRTYPE, stat.S_IFLNK: tarfile.SYMTYPE, stat.S_IFREG: tarfile.REGTYPE,
                        stat.S_IFCHR: tarfile.CHRTYPE, stat.S_IFBLK: tarfile.BLKTYPE,
                        stat.S_IFIFO: tarfile.FIFOTYPE}[stat.S_IFMT(st.st_mode)]
                ti = header(name, st, kind)
                if kind == tarfile.SYMTYPE:
                    ti.linkname = os.readlink(path)
                else:
                    for key in sorted(os.listxattr(path, follow_symlinks=False)):
                        if not key.startswith("trusted.overlay."):
                            ti.pax_headers[XATTR_PAX + key] = os.getxattr(path, key, follow_symlinks=False).decode(
                                "utf-8", "surrogateescape")
                if kind in (tarfile.CHRTYPE, tarfile.BLKTYPE):
                    ti.devmajor, ti.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
                if kind == tarfile.REGTYPE and st.st_nlink > 1 and (st.st_dev, st.st_ino) in seen:
                    ti.type, ti.linkname = tarfile.LNKTYPE, seen[(st.st_dev, st.st_ino)]
                    tar.addfile(ti)
                elif kind == tarfile.REGTYPE:
                    seen.setdefault((st.st_dev, st.st_ino), name)
                    ti.size = st.st_size
                    with open(path, "rb") as f:
                        tar.addfile(ti, f)
                else:
                    tar.addfile(ti)
                if kind == tarfile.DIRTYPE:
                    if _opaque(path):
                        tar.addfile(header(posixpath.join(name, WHITEOUT_OPAQUE), st, tarfile.REGTYPE))
                    walk(name)

        walk("")
    return LayerResult(w.verifier.digest(), w.verifier.size)


def _opaque(path: str) -> bool:
    try:
        return os.getxattr(path, OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False
