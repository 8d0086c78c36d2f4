"""The layer stream apply_layer reads from: gzip inflated by zlib in a thread of its own.

It must read every blob GzipFile reads, the same way (members one after another, zero
padding, CRC and length checked), refuse what GzipFile refuses, hash exactly the bytes
it hands out, keep its memory bounded whatever the compression ratio, and never leave
its thread running once apply_layer has returned or raised.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
import threading
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from refimpl.image.layers import OUT_CHUNK, LayerError, _inflate, _TarStream, apply_layer, extract_layer


def tar_of(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, data in files.items():
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def gzip_reference(blob: bytes) -> bytes | None:
    """What GzipFile makes of a blob; None where it refuses it."""
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(blob)) as g:
            return g.read()
    except (EOFError, OSError, zlib.error):
        return None


def stream_read(blob: bytes, thread: bool, size: int) -> bytes | None:
    s = _TarStream(io.BytesIO(blob), thread=thread)
    out = []
    try:
        while chunk := s.read(size):
            out.append(chunk)
    except (EOFError, OSError, zlib.error):
        return None
    finally:
        s.close()
    data = b"".join(out)
    assert s.size == len(data) and s.digest() == "sha256:" + hashlib.sha256(data).hexdigest()
    return data


def no_inflater() -> bool:
    return not any(t.name == "layer-inflate" for t in threading.enumerate())


member = st.binary(max_size=3000).map(lambda b: gzip.compress(b, mtime=0))
pieces = st.one_of(member, st.just(b"\0" * 7), st.just(b"\0"), st.binary(min_size=1, max_size=6))


@given(parts=st.lists(pieces, min_size=1, max_size=5), cut=st.integers(0, 40), thread=st.booleans(),
       size=st.sampled_from([1, 7, 512, 10240, 1 << 20]))
@settings(max_examples=150, deadline=None)
def test_reads_what_gzipfile_reads_and_refuses_what_it_refuses(parts, cut, thread, size):
    blob = b"".join(parts)
    blob = blob[:len(blob) - cut] if cut < len(blob) else blob
    if not blob.startswith(b"\x1f\x8b"):
        return   # sniffed as a plain tar: given back as it is (test below)
    assert stream_read(blob, thread, size) == gzip_reference(blob)
    assert no_inflater()


@given(data=st.binary(max_size=5000), size=st.sampled_from([1, 512, 1 << 20]))
@settings(max_examples=50, deadline=None)
def test_a_plain_blob_is_given_back_as_it_is(data, size):
    if data.startswith((b"\x1f\x8b", b"\x28\xb5\x2f\xfd")):
        return
    assert stream_read(data, True, size) == data


def test_a_gzip_bomb_is_inflated_a_bounded_chunk_at_a_time():
    blob = gzip.compress(b"\0" * (16 << 20))     # 16 MB from ~16 kB
    kind = [None]
    assert max(len(c) for c in _inflate(io.BytesIO(blob), kind)) <= OUT_CHUNK and kind == ["gzip"]


def test_members_and_padding_make_one_layer(tmp_path):
    tar = tar_of({"a": b"one", "b": b"two" * 1000})
    blob = gzip.compress(tar[:1000], mtime=0) + b"\0" * 512 + gzip.compress(tar[1000:], mtime=0) + b"\0" * 3
    res = apply_layer(io.BytesIO(blob), tmp_path)
    assert res.diff_id == "sha256:" + hashlib.sha256(tar).hexdigest() and res.size == len(tar)
    assert (tmp_path / "b").read_bytes() == b"two" * 1000


@pytest.mark.parametrize("damage", ["truncated", "bad crc", "garbage after", "zstd"])
def test_a_damaged_blob_is_refused_and_leaves_nothing(tmp_path, damage):
    blob = gzip.compress(tar_of({"f": bytes(range(256)) * 400}), mtime=0)
    blob = {"truncated": blob[:-100], "bad crc": blob[:-8] + bytes(4) + blob[-4:],
            "garbage after": blob + b"junk", "zstd": b"\x28\xb5\x2f\xfd" + blob}[damage]
    dest = tmp_path / "layer"
    with pytest.raises(LayerError) as e:
        extract_layer(io.BytesIO(blob), dest)
    assert "\n" not in str(e.value)
    assert list(tmp_path.iterdir()) == [] and no_inflater()


def test_an_empty_blob_is_an_empty_layer(tmp_path):
    res = apply_layer(io.BytesIO(b""), tmp_path)
    assert res.size == 0 and res.diff_id == "sha256:" + hashlib.sha256(b"").hexdigest()


class Failing(io.RawIOBase):
    """A source that fails after some bytes, as a dropped connection does."""

    def __init__(self, data: bytes, after: int):
        self.data, self.after, self.pos = data, after, 0

    def readable(self):
        return True

    def read(self, n=-1):
        if self.pos >= self.after:
            raise OSError("connection reset by peer")
        n = min(n if n >= 0 else len(self.data), self.after - self.pos)
        chunk = self.data[self.pos:self.pos + n]
        self.pos += len(chunk)
        return chunk


def test_a_source_that_fails_midway_is_refused_in_one_line(tmp_path):
    blob = gzip.compress(tar_of({f"f{i}": bytes(range(256)) * 200 for i in range(40)}), mtime=0)
    with pytest.raises(LayerError, match="connection reset by peer"):
        extract_layer(Failing(blob, len(blob) // 2), tmp_path / "layer")
    assert list(tmp_path.iterdir()) == [] and no_inflater()


def test_a_refused_entry_stops_the_inflating_thread(tmp_path):
    """The applier refuses an entry while the thread still has megabytes to inflate."""
    files = {"../escape": b"x"}
    files.update({f"big{i}": bytes(range(256)) * 4096 for i in range(20)})
    blob = gzip.compress(tar_of(files), mtime=0)
    with pytest.raises(LayerError, match="escapes"):
        extract_layer(io.BytesIO(blob), tmp_path / "layer")
    assert list(tmp_path.iterdir()) == [] and no_inflater()
