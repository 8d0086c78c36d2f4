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
        v = Verifier(expected)
        algorithm = v.expected.algorithm if v.expected else "sha256"
        directory = os.path.join(self.root, "blobs", algorithm)
        os.makedirs(directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=directory)
        try:
            with os.fdopen(fd, "wb") as f:
                while chunk := stream.read(CHUNK):
                    v.update(chunk)
                    f.write(chunk)
                f.flush()
                os.fchmod(f.fileno(), 0o444)
                os.fsync(f.fileno())
            digest = v.verify(size)
            os.replace(tmp, os.path.join(directory, digest.encoded))
        except BaseException:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise
        _fsync_dir(directory)
        return digest

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


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


__all__ = ["BlobStore", "BlobNotFound", "DigestMismatch"]
