import io
import multiprocessing
import os
import tempfile
import threading

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from refimpl.image.digest import DigestMismatch, sha256
from refimpl.image.store import BlobNotFound, BlobStore


@pytest.fixture
def store(tmp_path):
    return BlobStore(tmp_path / "content")


def leftovers(store):
    d = os.path.join(store.root, "blobs", "sha256")
    return [n for n in os.listdir(d) if n.startswith(".tmp-")]


def test_put_get_exists_delete_iterate(store):
    a, b = store.put(b"alpha"), store.put(b"beta", expected=sha256(b"beta"))
    assert store.get(a) == b"alpha" and store.size(b) == 4 and a in store
    assert store.path(a).endswith("/blobs/sha256/" + a.encoded)
    assert list(store) == sorted([a, b])
    assert store.verify(a)
    assert store.delete(a) and not store.delete(a) and not store.exists(a)
    with pytest.raises(BlobNotFound, match="not found"):
        store.get(a)
    assert list(store) == [b]


def test_size_mismatch_is_refused(store):
    with pytest.raises(DigestMismatch):
        store.ingest(io.BytesIO(b"abc"), sha256(b"abc"), size=4)
    assert list(store) == [] and leftovers(store) == []


def test_interrupted_write_leaves_only_a_temp_file_that_clean_removes(store):
    class Broken(io.RawIOBase):
        def read(self, n=-1):
            raise OSError("connection reset")
    with pytest.raises(OSError):
        store.ingest(Broken())
    assert list(store) == [] and leftovers(store) == []
    open(os.path.join(store.root, "blobs", "sha256", ".tmp-crash"), "w").close()
    assert list(store) == [] and store.clean() == 1


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=5000), st.binary(min_size=1, max_size=50))
def test_any_bytes_round_trip_and_wrong_digest_never_stored(tmp_path, data, other):
    # a store per example: one kept across examples may hold data + other from an earlier one
    store = BlobStore(tempfile.mkdtemp(dir=tmp_path))
    d = store.put(data, expected=sha256(data))
    assert store.get(d) == data and d == sha256(data)
    wrong = sha256(data + other)
    with pytest.raises(DigestMismatch):
        store.put(data, expected=wrong)
    assert not store.exists(wrong) and leftovers(store) == []
    assert store.get(d) == data


def _writer(root, data, n):
    s = BlobStore(root)
    for _ in range(n):
        s.put(data, expected=sha256(data))


def test_concurrent_writers_of_one_blob(store):
    data = os.urandom(3 << 20)   # several chunks, so writes interleave
    threads = [threading.Thread(target=_writer, args=(store.root, data, 3)) for _ in range(4)]
    procs = [multiprocessing.get_context("fork").Process(target=_writer, args=(store.root, data, 3)) for _ in range(2)]
    for w in threads + procs:
        w.start()
    for t in threads:
        t.join()
    for p in procs:
        p.join()
        assert p.exitcode == 0
    assert list(store) == [sha256(data)] and store.get(sha256(data)) == data
    assert leftovers(store) == [] and store.verify(sha256(data))
