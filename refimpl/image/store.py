"""A content-addressable blob store on the filesystem: `<root>/blobs/sha256/<hex>`.

The name of a blob is the hash of its bytes, so a blob is either wholly present
and correct or absent. Writes go to a temporary file in the blob's own directory,
are hashed as they stream in, fsynced, checked against the digest the caller
expected, and only then renamed into place (rename is atomic within a directory).
A mismatch or a crash leaves no blob behind, only a `.tmp-*` file that readers
ignore and `clean()` removes. Two writers of the same blob each write their own
temporary file and rename over one another; both renames install identical bytes.
The layout is the OCI image-layout's `blobs/` directory.
"""
from __future__ import annotations

import io
import os
import tempfile
from typing import BinaryIO, Iterator

from .digest import ALGORITHMS, Digest, DigestError, DigestMismatch, Verifier

CHUNK = 1 << 20


class BlobNotFound(KeyError):
    def __str__(self) -> str:
        return f"blob {self.args[0]} not found"


class BlobStore:
    def __init__(self, root: str | os.PathLike):
        self.root = os.fspath(root)
        os.makedirs(os.path.join(self.root, "blobs", "sha256"), exist_ok=True)

    def path(self, digest: str) -> str:
        d = Digest(digest)
        return os.path.join(self.root, "blobs", d.algorithm, d.encoded)

    def exists(self, digest: str) -> bool:
        return os.path.isfile(self.path(digest))

    def size(self, digest: str) -> int:
        try:
            return os.stat(self.path(digest)).st_size
        except FileNotFoundError:
            raise BlobNotFound(digest) from None

    def open(self, digest: str) -> BinaryIO:
        try:
            return open(self.path(digest), "rb")
        except FileNotFoundError:
            raise BlobNotFound(digest) from None

    def get(self, digest: str) -> bytes:
        with self.open(digest) as f:
            return f.read()

    def put(self, data: bytes, expected: str | None = None) -> Digest:
        return self.ingest(io.BytesIO(data), expected, len(data))

    def ingest(self, stream: BinaryIO, expected: str | None = None, size: int | None = None) -> Digest:
        """Copy `stream` into the store; raise DigestMismatch (storing nothing) when the
        bytes do not hash to `expected` or do not number `size`."""
        w = self.writer(stream, expected, size)
        try:
            w.drain()
            return w.commit()
        finally:
            w.discard()

    def writer(self, stream: BinaryIO, expected: str | None = None, size: int | None = None) -> "BlobWriter":
        """A reader of `stream` that stores what is read through it (see BlobWriter)."""
        return BlobWriter(self, stream, expected, size)

    def delete(self, digest: str) -> bool:
        try:
            os.unlink(self.path(digest))
            return True
        except FileNotFoundError:
            return False

    def __iter__(self) -> Iterator[Digest]:
        blobs = os.path.join(self.root, "blobs")
        for algorithm in sorted(os.listdir(blobs)):
            if algorithm not in ALGORITHMS:
                continue
            for name in sorted(os.listdir(os.path.join(blobs, algorithm))):
                try:
                    yield Digest(f"{algorithm}:{name}")
                except DigestError:
                    continue  # temporary files and strays

    def __contains__(self, digest: str) -> bool:
        return self.exists(digest)

    def verify(self, digest: str) -> bool:
        """Re-hash a stored blob (detects on-disk corruption)."""
        v = Verifier(digest)
        with self.open(digest) as f:
            while chunk := f.read(CHUNK):
                v.update(chunk)
        return v.verified()

    def clean(self) -> int:
        """Remove temporary files left by interrupted writes; return how many."""
        n = 0
        blobs = os.path.join(self.root, "blobs")
        for algorithm in os.listdir(blobs):
            d = os.path.join(blobs, algorithm)
            for name in os.listdir(d):
                if name.startswith(".tmp-"):
                    os.unlink(os.path.join(d, name))
                    n += 1
        return n


class BlobWriter:
    """Store a blob as it is read: `read` gives the bytes of `stream` and copies them, hashed,
    to a `.tmp-` file beside the blob's final name; `commit` (once the stream is read to its
    end) checks the digest and the size, and only then renames the file into place; a
    mismatch raises DigestMismatch and stores nothing. `discard` removes whatever is not
    committed. A reader can thus use a blob's bytes (unpack a layer) while it downloads,
    and keep the result only if the blob proves to be what it claimed."""

    def __init__(self, store: BlobStore, stream: BinaryIO, expected: str | None, size: int | None):
        self.stream, self.size = stream, size
        self.verifier = Verifier(expected)
        algorithm = self.verifier.expected.algorithm if self.verifier.expected else "sha256"
        self.directory = os.path.join(store.root, "blobs", algorithm)
        os.makedirs(self.directory, exist_ok=True)
        fd, self.tmp = tempfile.mkstemp(prefix=".tmp-", dir=self.directory)
        self.file = os.fdopen(fd, "wb")
        self.committed: Digest | None = None

    def read(self, n: int = -1) -> bytes:
        chunk = self.stream.read(n)
        if chunk:
            self.verifier.update(chunk)
            self.file.write(chunk)
        return chunk

    def drain(self) -> None:
        while self.read(CHUNK):
            pass

    def matches(self) -> bool:
        """Do the bytes read so far hash to the expected digest (and number `size`)?"""
        try:
            self.verifier.verify(self.size)
            return True
        except DigestMismatch:
            return False

    def commit(self) -> Digest:
        f = self.file
        f.flush()
        os.fchmod(f.fileno(), 0o444)
        os.fsync(f.fileno())
        f.close()
        digest = self.verifier.verify(self.size)
        os.replace(self.tmp, os.path.join(self.directory, digest.encoded))
        self.committed = digest
        _fsync_dir(self.directory)
        return digest

    def discard(self) -> None:
        if self.committed is None:
            self.file.close()
            try:
                os.unlink(self.tmp)
            except FileNotFoundError:
                pass


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


__all__ = ["BlobStore", "BlobNotFound", "BlobWriter", "DigestMismatch"]
