"""A deterministic corpus of hostile layer archives.

Each case is a layer blob (the bytes a registry or a `docker save` tar would
carry) and what applying it must do:

* "error": refused with a LayerError (one line) and nothing left behind;
* "contained": applied, with every write inside the layer root (absolute names
  and absolute symlinks are read the way a chroot reads them).

The archives aim at a sentinel tree outside the layer root: `../` chains of
every depth, absolute paths naming the sentinel, symlinks to it followed by
writes through them, hardlinks to it, whiteouts through symlinks. The rest
attack the parser: huge or lying headers, long names, truncated and garbage
streams, gzip bombs (kept within a few tens of megabytes), overflowing numbers
and overlayfs' own xattrs.
"""
from __future__ import annotations

import functools
import gzip
import io
import random
import tarfile
import zlib
from dataclasses import dataclass

ERROR, CONTAINED = "error", "contained"


@dataclass(frozen=True)
class Case:
    name: str
    data: bytes
    expect: str


def _ti(name: str, kind: bytes = tarfile.REGTYPE, **kw) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.type, ti.mtime, ti.mode, ti.uid, ti.gid = kind, 1_000_000, 0o755 if kind == tarfile.DIRTYPE else 0o644, 0, 0
    for k, v in kw.items():
        setattr(ti, k, v)
    return ti


def tar(*entries, fmt=tarfile.PAX_FORMAT) -> bytes:
    """entries: TarInfo, or (TarInfo, payload bytes) for regular files."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as t:
        for e in entries:
            ti, data = (e, None) if isinstance(e, tarfile.TarInfo) else e
            if data is not None:
                ti.size = len(data)
                t.addfile(ti, io.BytesIO(data))
            else:
                t.addfile(ti)
    return buf.getvalue()


def f(name: str, data: bytes = b"pwned\n", **kw):
    return (_ti(name, **kw), data)


def d(name: str, **kw):
    return _ti(name, tarfile.DIRTYPE, **kw)


def sym(name: str, target: str):
    return _ti(name, tarfile.SYMTYPE, linkname=target, mode=0o777)


def hard(name: str, target: str):
    return _ti(name, tarfile.LNKTYPE, linkname=target)


def gz(data: bytes, level: int = 6) -> bytes:
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0, compresslevel=level) as g:
        g.write(data)
    return out.getvalue()


def _gz_zeros(n: int) -> bytes:
    """gzip of n zero bytes, produced in pieces (the bomb never sits in memory here)."""
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0, compresslevel=9) as g:
        block = bytes(1 << 20)
        for _ in range(n >> 20):
            g.write(block)
    return out.getvalue()


def _bomb_file(size: int) -> bytes:
    """A layer holding one file of `size` zero bytes, gzip-compressed, built without
    the uncompressed tar in memory."""
    head = tarfile.TarInfo("zeros")
    head.size, head.mtime, head.mode = size, 1_000_000, 0o644
    raw = head.tobuf(tarfile.PAX_FORMAT)
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)      # 31: gzip wrapper
    parts = [comp.compress(raw)]
    block = bytes(1 << 20)
    for _ in range(size >> 20):
        parts.append(comp.compress(block))
    parts.append(comp.compress(bytes(1024 + (-size) % 512)))   # padding + end-of-archive
    parts.append(comp.flush())
    return b"".join(parts)


@functools.lru_cache(maxsize=4)
def corpus(sentinel: str) -> tuple[Case, ...]:
    """The hostile cases, aimed at the absolute directory `sentinel` (which holds `victim`)."""
    s = sentinel.rstrip("/")
    cases: list[Case] = []

    def add(name, data, expect):
        cases.append(Case(name, data, expect))

    # -- climbing out with `..` ---------------------------------------------------------------
    for n in range(1, 9):
        add(f"dotdot-{n}", tar(f("../" * n + "sentinel/pwned")), ERROR)
    add("dotdot-inner", tar(f("a/../../pwned")), ERROR)
    add("dotdot-dot-prefix", tar(f("./../pwned")), ERROR)
    add("dotdot-deep-inner", tar(d("a"), d("a/b"), f("a/b/../../../pwned")), ERROR)
    add("dotdot-dir-entry", tar(d("../pwned-dir")), ERROR)
    add("dotdot-alone", tar(d("..")), ERROR)
    add("dotdot-gnu-longname", tar(f("../" * 60 + "pwned"), fmt=tarfile.GNU_FORMAT), ERROR)
    add("dotdot-after-good", tar(f("ok"), f("../pwned")), ERROR)
    # -- absolute names: rooted, never the host's ---------------------------------------------
    add("absolute", tar(f("/pwned")), CONTAINED)
    add("absolute-sentinel", tar(f(s + "/pwned"), f(s + "/victim")), CONTAINED)
    add("absolute-double-slash", tar(f("//etc/pwned")), CONTAINED)
    add("absolute-dotdot", tar(f("/../../pwned"), hard("hl", "/../pwned")), CONTAINED)
    # -- symlinks, then writes through them ---------------------------------------------------
    add("symlink-abs-write-through", tar(sym("esc", s), f("esc/pwned")), CONTAINED)
    add("symlink-abs-dir-write-through", tar(sym("esc", s), d("esc/sub"), f("esc/sub/pwned")), CONTAINED)
    add("symlink-abs-overwrite-victim", tar(sym("esc", s), f("esc/victim")), CONTAINED)
    add("symlink-file-then-file", tar(sym("x", s + "/victim"), f("x")), CONTAINED)
    add("symlink-then-dir", tar(sym("x", s), d("x"), f("x/pwned")), CONTAINED)
    add("symlink-slashdotdot", tar(sym("esc", "/.."), f("esc/pwned")), CONTAINED)
    add("symlink-chain-abs", tar(sym("a", "b"), sym("b", s), f("a/pwned")), CONTAINED)
    add("symlink-self-loop", tar(sym("a", "."), f("a/a/a/a/pwned")), CONTAINED)
    add("symlink-rel-escape", tar(sym("esc", "../../../../../../../.."), f("esc/pwned")), ERROR)
    add("symlink-rel-escape-nested", tar(d("dir"), sym("dir/esc", "../../sentinel"), f("dir/esc/pwned")), ERROR)
    add("symlink-rel-escape-lexical", tar(sym("esc", "sub/../.."), f("esc/pwned")), ERROR)
    add("symlink-loop", tar(sym("l1", "l2"), sym("l2", "l1"), f("l1/pwned")), ERROR)
    add("symlink-to-file-as-dir", tar(f("file"), sym("l", "file"), f("l/pwned")), ERROR)
    add("symlink-dotdot-lexical-write", tar(sym("esc", s), f("esc/../pwned")), CONTAINED)
    # -- hardlinks ----------------------------------------------------------------------------
    add("hardlink-dotdot", tar(hard("hl", "../../../../../../etc/passwd")), ERROR)
    add("hardlink-abs-host", tar(hard("hl", "/etc/passwd")), ERROR)
    add("hardlink-abs-sentinel", tar(hard("hl", s + "/victim")), ERROR)
    add("hardlink-via-symlink", tar(sym("esc", s), hard("hl", "esc/victim")), ERROR)
    add("hardlink-to-dir", tar(d("dir"), hard("hl", "dir")), ERROR)
    add("hardlink-to-self", tar(hard("hl", "hl")), ERROR)
    add("hardlink-to-symlink", tar(sym("l", s + "/victim"), hard("hl", "l")), CONTAINED)
    add("hardlink-then-write", tar(f("a", b"one"), hard("b", "a"), f("b", b"two")), CONTAINED)
    # -- device nodes and other types ---------------------------------------------------------
    add("device-char-mem", tar(d("dev"), _ti("dev/mem", tarfile.CHRTYPE, devmajor=1, devminor=1)), CONTAINED)
    add("device-block", tar(_ti("sda", tarfile.BLKTYPE, devmajor=8, devminor=0)), CONTAINED)
    add("device-through-symlink", tar(sym("esc", s), _ti("esc/kmem", tarfile.CHRTYPE, devmajor=1, devminor=2)),
        CONTAINED)
    add("fifo", tar(_ti("fifo", tarfile.FIFOTYPE)), CONTAINED)
    add("unknown-type", tar(_ti("odd", b"Z")), ERROR)
    add("setuid-root-file", tar(f("su", mode=0o4755)), CONTAINED)
    # -- whiteouts ----------------------------------------------------------------------------
    add("whiteout-dotdot", tar(f(".wh..."), ), ERROR)
    add("whiteout-empty", tar(d("a"), f("a/.wh.")), ERROR)
    add("whiteout-climb", tar(f("../.wh.victim")), ERROR)
    add("whiteout-through-symlink", tar(sym("esc", s), f("esc/.wh.victim")), CONTAINED)
    add("opaque-through-symlink", tar(sym("esc", s), f("esc/.wh..wh..opq")), CONTAINED)
    add("whiteout-of-symlink", tar(sym("esc", s), f(".wh.esc")), CONTAINED)
    # -- overlayfs' own xattrs (redirects, metacopy) are not the archive's to set -------------
    add("xattr-overlay-redirect", tar(_ti("d", tarfile.DIRTYPE, pax_headers={
        "SCHILY.xattr.trusted.overlay.redirect": "/../../../" + s.lstrip("/")})), CONTAINED)
    add("xattr-overlay-metacopy", tar((_ti("m", pax_headers={
        "SCHILY.xattr.trusted.overlay.metacopy": "", "SCHILY.xattr.trusted.overlay.origin": "x"}), b"x")),
        CONTAINED)
    # -- headers: huge, lying, overflowing ----------------------------------------------------
    add("pax-huge-comment", tar((_ti("big", pax_headers={"comment": "x" * (2 << 20)}), b"x")), CONTAINED)
    add("pax-long-path", tar(f("a" * 5000)), ERROR)
    add("gnu-long-component", tar(f("b" * 300), fmt=tarfile.GNU_FORMAT), ERROR)
    add("deep-nesting", tar(f("d/" * 100 + "leaf")), CONTAINED)
    add("too-deep-path", tar(f("d/" * 600 + "leaf")), ERROR)
    add("too-deep-via-symlink", tar(f("d/" * 260 + "x"), sym("s", "/" + "d/" * 260), f("s/" + "e/" * 260 + "leaf")),
        ERROR)
    big = _ti("big")
    big.size = 8 << 30
    add("size-8g-no-data", big.tobuf(tarfile.GNU_FORMAT) + bytes(1024), ERROR)
    add("pax-size-lie", tar(_ti("p", pax_headers={"size": str(10 ** 15)})), ERROR)
    add("pax-mtime-huge", tar((_ti("t", pax_headers={"mtime": "1e30"}), b"x")), ERROR)
    add("pax-mtime-nan", tar((_ti("t", pax_headers={"mtime": "nan"}), b"x")), ERROR)
    add("pax-uid-huge", tar((_ti("u", pax_headers={"uid": str(2 ** 40)}), b"x")), ERROR)
    add("pax-nul-in-path", tar((_ti("n", pax_headers={"path": "a\0b"}), b"x")), ERROR)
    add("pax-nul-in-linkname", tar(_ti("l", tarfile.LNKTYPE, pax_headers={"linkpath": "a\0b"})), ERROR)
    add("pax-undecodable-path", tar((_ti("u", pax_headers={"path": "caf\udce9"}), b"x")), CONTAINED)
    add("root-entries", tar(d("."), d("./"), d("/")), CONTAINED)
    bad = bytearray(tar(f("ok")))
    bad[148:156] = b"0000000\0"                       # a header checksum that does not add up
    add("bad-checksum", bytes(bad), ERROR)
    # -- truncated and garbage ----------------------------------------------------------------
    rnd = random.Random(4)
    whole = tar(f("a", bytes(range(256)) * 40), f("b", b"b" * 3000))
    add("empty-blob", b"", CONTAINED)
    add("only-end-blocks", bytes(1024), CONTAINED)
    add("garbage", bytes(rnd.getrandbits(8) for _ in range(4096)), ERROR)
    add("garbage-tiny", b"\x00\x01", ERROR)
    add("truncated-mid-data", whole[:5000], ERROR)
    add("truncated-mid-header", whole[:700], ERROR)
    add("gzip-truncated", gz(whole)[:200], ERROR)
    corrupt = bytearray(gz(whole))
    corrupt[-8] ^= 0xFF                                # CRC32 mismatch
    add("gzip-bad-crc", bytes(corrupt), ERROR)
    add("gzip-of-garbage", gz(bytes(rnd.getrandbits(8) for _ in range(4096))), ERROR)
    add("gzip-nested", gz(gz(whole)), ERROR)
    add("gzip-trailing-garbage", gz(whole) + b"not gzip at all", ERROR)
    add("zstd", b"\x28\xb5\x2f\xfd" + bytes(64), ERROR)
    # -- bombs, within reason -----------------------------------------------------------------
    add("gzip-bomb-file-16m", _bomb_file(16 << 20), CONTAINED)
    add("gzip-bomb-zero-blocks-16m", _gz_zeros(16 << 20), CONTAINED)
    add("many-entries", tar(*[f(f"m/{i:05d}", b"") for i in range(300)]), CONTAINED)
    return tuple(cases)
