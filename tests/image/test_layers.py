import gzip
import hashlib
import io
import os
import shutil
import stat
import tarfile
import tempfile

import pytest
from hypothesis import HealthCheck, example, given, settings, strategies as st

from refimpl.image.layers import (LayerError, OVERLAY, apply_layer, decompress, diff_tar, extract_layer)

ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not ROOT, reason="overlay whiteouts need CAP_MKNOD and trusted.* xattrs (root)")


def tar_bytes(*entries, gz=False) -> bytes:
    """entries: (name, kind, payload, mode) with kind in file|dir|sym|link|fifo|chr."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for e in entries:
            name, kind, payload, mode = (list(e) + [None, None])[:4]
            ti = tarfile.TarInfo(name)
            ti.mtime = 1_000_000
            ti.uid = ti.gid = 0
            if kind == "file":
                data = payload or b""
                ti.size, ti.mode = len(data), mode or 0o644
                t.addfile(ti, io.BytesIO(data))
                continue
            ti.type = {"dir": tarfile.DIRTYPE, "sym": tarfile.SYMTYPE, "link": tarfile.LNKTYPE,
                       "fifo": tarfile.FIFOTYPE, "chr": tarfile.CHRTYPE}[kind]
            ti.mode = mode or 0o755
            if kind in ("sym", "link"):
                ti.linkname = payload
            if kind == "chr":
                ti.devmajor, ti.devminor = 1, 3
            t.addfile(ti)
    data = buf.getvalue()
    return gzip.compress(data, mtime=0) if gz else data


def apply(data: bytes, root, **kw):
    return apply_layer(io.BytesIO(data), root, **kw)


def tree(root) -> dict:
    """A comparable picture of a directory tree (type, mode, content or link)."""
    out = {}
    for dirpath, dirs, files in os.walk(root):
        for n in dirs + files:
            p = os.path.join(dirpath, n)
            st = os.lstat(p)
            rel = os.path.relpath(p, root)
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("l", os.readlink(p))
            elif stat.S_ISREG(st.st_mode):
                out[rel] = ("f", stat.S_IMODE(st.st_mode), open(p, "rb").read())
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("d", stat.S_IMODE(st.st_mode))
            else:
                out[rel] = ("o", st.st_mode, st.st_rdev)
    return out


@pytest.fixture
def root(tmp_path):
    r = tmp_path / "root"
    r.mkdir()
    return r


def test_apply_plain_and_gzip_and_diff_id(root, tmp_path):
    layer = tar_bytes(("etc/", "dir", None, 0o750), ("etc/hosts", "file", b"127.0.0.1 x\n", 0o640),
                      ("bin/sh", "file", b"#!", 0o4755), ("bin/ash", "link", "bin/sh"),
                      ("bin/rel", "sym", "sh"), ("run/fifo", "fifo"))
    res = apply(layer, root)
    assert res.diff_id == "sha256:" + hashlib.sha256(layer).hexdigest() and res.size == len(layer)
    assert (root / "etc/hosts").read_bytes() == b"127.0.0.1 x\n"
    assert stat.S_IMODE(os.stat(root / "etc").st_mode) == 0o750
    assert stat.S_IMODE(os.stat(root / "etc/hosts").st_mode) == 0o640
    assert stat.S_IMODE(os.stat(root / "bin/sh").st_mode) == 0o4755
    assert os.stat(root / "bin/ash").st_ino == os.stat(root / "bin/sh").st_ino
    assert os.readlink(root / "bin/rel") == "sh"
    assert stat.S_ISFIFO(os.lstat(root / "run/fifo").st_mode)
    assert os.stat(root / "etc/hosts").st_mtime == 1_000_000 and os.stat(root / "etc").st_mtime == 1_000_000
    other = tmp_path / "gz"
    other.mkdir()
    assert apply(tar_bytes(*[], gz=True), other).size == len(tar_bytes())
    assert apply(gzip.compress(layer), other).diff_id == res.diff_id   # DiffID is of the uncompressed tar
    assert tree(other) == tree(root)


def test_zstd_and_garbage_are_refused(root):
    with pytest.raises(LayerError, match="^zstd-compressed layers are not supported$"):
        apply(b"\x28\xb5\x2f\xfd" + b"\0" * 100, root)
    with pytest.raises(LayerError, match="^invalid layer archive"):
        apply(b"\x1f\x8b not really gzip", root)
    with pytest.raises(LayerError, match="^invalid layer archive"):
        apply(tar_bytes(("a", "file", b"x" * 5000))[:1500], root)


def test_empty_blob_is_an_empty_layer(root):
    assert apply(b"", root).diff_id == "sha256:" + hashlib.sha256(b"").hexdigest()
    assert os.listdir(root) == []
    with pytest.raises(LayerError):
        apply(b"\x1f\x8b", root)


def test_decompress_gives_back_sniffed_bytes():
    assert decompress(io.BytesIO(b"ab")).read() == b"ab"
    assert decompress(io.BytesIO(gzip.compress(b"hello"))).read() == b"hello"


def test_replacing_entries(root):
    apply(tar_bytes(("a/x", "file", b"1"), ("b", "file", b"2"), ("c", "dir")), root)
    apply(tar_bytes(("a", "file", b"now a file"), ("b/", "dir"), ("c/", "dir", None, 0o700)), root)
    assert (root / "a").read_bytes() == b"now a file" and (root / "b").is_dir()
    assert stat.S_IMODE(os.stat(root / "c").st_mode) == 0o700


@pytest.mark.parametrize("entries,msg", [
    ((("../evil", "file", b"x"),), "'../evil': path escapes the layer root"),
    ((("a/../../evil", "file", b"x"),), "'a/../../evil': path escapes the layer root"),
    ((("l", "sym", "../../etc"),), "'l': symlink to '../../etc' escapes the layer root"),
    ((("d/l", "sym", "../../x"),), "'d/l': symlink to '../../x' escapes the layer root"),
    ((("h", "link", "../outside"),), "'h': path escapes the layer root"),
    ((("h", "link", "nope"),), "'h': hardlink target 'nope' does not exist in the layer root"),
    ((("d", "dir"), ("h", "link", "d")), "'h': hardlink target 'd' is a directory"),
    ((("f", "file", b""), ("f/g", "file", b"")), "'f/g': f is not a directory"),
    ((("l", "sym", "l"), ("l/x", "file", b"")), "'l/x': too many levels of symbolic links"),
    ((("d/.wh.", "file", b""),), "'d/.wh.': invalid whiteout"),
])
def test_hostile_entries_name_the_entry(root, entries, msg):
    with pytest.raises(LayerError) as e:
        apply(tar_bytes(*entries), root)
    assert str(e.value) == msg


def test_writes_through_symlinks_stay_inside(root, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("keep")
    layer = tar_bytes(("abs", "sym", str(outside)), ("abs/new", "file", b"in root"),
                      ("up", "sym", "/.."), ("up/etc/passwd", "file", b"in root too"),
                      ("lnk", "sym", str(outside / "secret")), ("lnk", "file", b"replaces the link"),
                      ("h", "link", "abs/new"))
    apply(layer, root)
    assert sorted(os.listdir(outside)) == ["secret"] and (outside / "secret").read_text() == "keep"
    assert (root / str(outside).lstrip("/") / "new").read_bytes() == b"in root"
    assert (root / "etc/passwd").read_bytes() == b"in root too"
    assert (root / "lnk").read_bytes() == b"replaces the link" and not (root / "lnk").is_symlink()
    with pytest.raises(LayerError, match="hardlink target .* does not exist"):
        apply(tar_bytes(("h2", "link", "abs/secret")), root)   # resolves inside the root: no such file


def test_absolute_names_are_rooted(root):
    apply(tar_bytes(("/etc/x", "file", b"1"), ("//y", "file", b"2"), ("./z", "file", b"3"), ("./", "dir")), root)
    assert sorted(tree(root)) == ["etc", "etc/x", "y", "z"]


def test_devices_skipped_unless_asked(root):
    apply(tar_bytes(("dev/null", "chr"), ("dev/fifo", "fifo")), root)
    assert sorted(os.listdir(root / "dev")) == ["fifo"]
    if ROOT:
        apply(tar_bytes(("dev/null", "chr"),), root, devices=True)
        st_ = os.lstat(root / "dev/null")
        assert stat.S_ISCHR(st_.st_mode) and os.major(st_.st_rdev) == 1 and os.minor(st_.st_rdev) == 3


def test_whiteouts_flatten(root):
    apply(tar_bytes(("a/1", "file", b""), ("a/2", "file", b""), ("b/sub/x", "file", b""), ("b/y", "file", b""),
                    ("c", "file", b"")), root)
    apply(tar_bytes(("a/.wh.1", "file"), (".wh.c", "file"), ("b/", "dir"), ("b/sub/new", "file", b"n"),
                    ("b/.wh..wh..opq", "file"), (".wh..wh.plnk/x", "file"), ("missing/.wh.q", "file")), root)
    assert tree(root).keys() == {"a", "a/2", "b", "b/sub", "b/sub/new"}


def test_extract_layer_is_all_or_nothing(tmp_path):
    dest = tmp_path / "layer"
    with pytest.raises(LayerError):
        extract_layer(io.BytesIO(tar_bytes(("ok", "file", b"1"), ("../bad", "file", b"2"))), dest)
    assert os.listdir(tmp_path) == []
    extract_layer(io.BytesIO(tar_bytes(("ok", "file", b"1"))), dest)
    assert (dest / "ok").read_bytes() == b"1"


def test_diff_tar_round_trip_and_determinism(root, tmp_path):
    layer = tar_bytes(("d/", "dir", None, 0o711), ("d/f", "file", b"data", 0o600), ("d/h", "link", "d/f"),
                      ("s", "sym", "d/f"), ("p", "fifo"), ("e/", "dir"))
    apply(layer, root)
    out1, out2 = io.BytesIO(), io.BytesIO()
    r1 = diff_tar(root, out1, mtime=0)
    os.utime(root / "d/f", (5, 5))
    r2 = diff_tar(root, out2, mtime=0)
    assert out1.getvalue() == out2.getvalue() and r1 == r2
    assert r1.diff_id == "sha256:" + hashlib.sha256(out1.getvalue()).hexdigest()
    names = tarfile.open(fileobj=io.BytesIO(out1.getvalue())).getnames()
    assert names == ["d", "d/f", "d/h", "e", "p", "s"]
    again = tmp_path / "again"
    again.mkdir()
    apply(out1.getvalue(), again)
    assert tree(again) == tree(root)
    assert os.stat(again / "d/h").st_ino == os.stat(again / "d/f").st_ino


@needs_root
def test_overlay_mode_and_diff_tar_whiteouts(root, tmp_path):
    layer = tar_bytes(("a/.wh.gone", "file"), ("o/", "dir"), ("o/.wh..wh..opq", "file"), ("o/keep", "file", b"k"))
    apply(layer, root, mode=OVERLAY)
    st_ = os.lstat(root / "a/gone")
    assert stat.S_ISCHR(st_.st_mode) and st_.st_rdev == 0
    assert os.getxattr(root / "o", "trusted.overlay.opaque") == b"y"
    out = io.BytesIO()
    diff_tar(root, out, mtime=0)
    assert tarfile.open(fileobj=io.BytesIO(out.getvalue())).getnames() == \
        ["a", "a/.wh.gone", "o", "o/.wh..wh..opq", "o/keep"]
    lower = tmp_path / "lower"
    lower.mkdir()
    apply(tar_bytes(("a/gone", "file", b""), ("a/stay", "file", b""), ("o/old", "file", b"")), lower)
    apply(out.getvalue(), lower)   # the same changes, flattened
    assert tree(lower).keys() == {"a", "a/stay", "o", "o/keep"}


# --- property: hostile archives never touch anything outside the root ------
def snapshot(base, skip):
    pic = {}
    for dirpath, dirs, files in os.walk(base):
        dirs[:] = [d for d in dirs if os.path.join(dirpath, d) != skip]
        for n in dirs + files + ["."]:
            p = os.path.normpath(os.path.join(dirpath, n))
            if p == skip:
                continue
            s = os.lstat(p)
            body = open(p, "rb").read() if stat.S_ISREG(s.st_mode) else (
                os.readlink(p) if stat.S_ISLNK(s.st_mode) else None)
            pic[p] = (s.st_mode, s.st_nlink, s.st_uid, s.st_mtime_ns, body)
    return pic


# "SENT" stands for the absolute path of a sentinel dir beside the root.
parts = st.sampled_from(["l", "a", "..", "secret", "sub", ".", ".wh.a", ".wh..wh..opq"])
names = st.tuples(st.sampled_from(["", "/", "./", "SENT/", "../"]), st.lists(parts, min_size=1, max_size=3)) \
    .map(lambda t: t[0] + "/".join(t[1]))
targets = st.one_of(st.sampled_from(["SENT", "SENT/secret", "SENT/sub", "/", "..", "../..", "../sentinel/secret",
                                     "l", "/l", "l/secret", "a/../../.."]), names)
kinds = st.sampled_from(["sym", "sym", "file", "file", "dir", "link", "link", "fifo", "chr"])
entries = st.lists(st.tuples(names, kinds, targets), min_size=2, max_size=10)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@example([("l", "sym", "SENT"), ("l/secret", "file", "")], "flatten", False)
@example([("l", "sym", "SENT/secret"), ("h", "link", "l")], "flatten", False)
@given(entries, st.sampled_from(["flatten", "overlay"] if ROOT else ["flatten"]), st.booleans())
def test_hostile_archives_stay_inside_root(tmp_path, spec, mode, devices):
    base = tempfile.mkdtemp(dir=tmp_path)
    try:
        sentinel = os.path.join(base, "sentinel")
        os.makedirs(os.path.join(sentinel, "sub"))
        with open(os.path.join(sentinel, "secret"), "w") as f:
            f.write("secret")
        os.symlink("/etc", os.path.join(sentinel, "etc-link"))
        root = os.path.join(base, "root")
        os.mkdir(root)
        fix = lambda s: s.replace("SENT", sentinel)
        ents = []
        for name, kind, target in spec:
            payload = b"pwned" if kind == "file" else fix(target)
            ents.append((fix(name), kind, payload, 0o777 if kind == "dir" else None))
        data = tar_bytes(*ents)
        before = snapshot(base, root)
        try:
            apply(data, root, mode=mode, devices=devices)
        except LayerError as e:
            assert "\n" not in str(e)
        assert snapshot(base, root) == before
    finally:
        shutil.rmtree(base)


def test_owners_and_xattrs(root):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, kind in (("d", tarfile.DIRTYPE), ("d/f", tarfile.REGTYPE)):
            ti = tarfile.TarInfo(name)
            ti.type, ti.uid, ti.gid, ti.mode = kind, 1234, 4321, 0o755
            ti.pax_headers = {"SCHILY.xattr.user.origin": "layer"}
            t.addfile(ti, io.BytesIO(b""))
    apply(buf.getvalue(), root)
    for p in (root / "d", root / "d/f"):
        try:
            assert os.getxattr(p, "user.origin") == b"layer"
        except OSError:
            pytest.skip("this filesystem has no user xattrs")
        if ROOT:
            assert (os.stat(p).st_uid, os.stat(p).st_gid) == (1234, 4321)
    out = io.BytesIO()
    diff_tar(root, out)
    members = tarfile.open(fileobj=io.BytesIO(out.getvalue())).getmembers()
    assert all(m.pax_headers.get("SCHILY.xattr.user.origin") == "layer" for m in members)


@needs_root
def test_overlay_mode_layers_mount_as_overlayfs(tmp_path):
    """The overlay-mode output is what the kernel expects of a lower layer."""
    import subprocess
    lower0, lower1, upper, work, merged = (tmp_path / n for n in ("l0", "l1", "up", "work", "merged"))
    for d in (lower0, lower1, upper, work, merged):
        d.mkdir()
    apply(tar_bytes(("a/gone", "file", b"x"), ("a/stay", "file", b"s"), ("o/old", "file", b"")), lower0, mode=OVERLAY)
    apply(tar_bytes(("a/.wh.gone", "file"), ("o/", "dir"), ("o/.wh..wh..opq", "file"), ("o/new", "file", b"n")),
          lower1, mode=OVERLAY)
    opts = f"lowerdir={lower1}:{lower0},upperdir={upper},workdir={work}"
    r = subprocess.run(["mount", "-t", "overlay", "overlay", "-o", opts, str(merged)], capture_output=True, text=True)
    if r.returncode:
        pytest.skip(f"cannot mount overlayfs here: {r.stderr.strip()}")
    try:
        assert sorted(tree(merged)) == ["a", "a/stay", "o", "o/new"]
        (merged / "a/stay").unlink()              # the kernel writes a whiteout into upper...
        out = io.BytesIO()
        diff_tar(upper, out, mtime=0)             # ...which diff_tar turns back into .wh.
        assert "a/.wh.stay" in tarfile.open(fileobj=io.BytesIO(out.getvalue())).getnames()
    finally:
        subprocess.run(["umount", str(merged)], check=True)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=3000), st.booleans())
def test_arbitrary_bytes_apply_or_fail_cleanly(tmp_path, junk, as_tar_tail):
    data = tar_bytes(("a", "file", b"x"))[:512] + junk if as_tar_tail else junk
    root = tempfile.mkdtemp(dir=tmp_path)
    try:
        apply(data, root)
    except LayerError as e:
        assert "\n" not in str(e)
    finally:
        shutil.rmtree(root)
