"""The registry's storage: plain files under one root, readable with ls and cat.

    blobs/sha256/ab/ab12…ef                              blob bytes, named by digest, immutable
    uploads/<uuid>/data                                  bytes of an upload in progress
    uploads/<uuid>/repository                            the repository it was started in
    repositories/<name>/_layers/sha256/<hex>             (empty) the blob is in this repository
    repositories/<name>/_manifests/revisions/sha256/<hex>  the manifest's media type
    repositories/<name>/_manifests/tags/<tag>            the digest the tag points at

Manifests are blobs too (their bytes, kept exactly as pushed). Repository names
cannot collide with the `_layers`/`_manifests` directories: a name component
starts with [a-z0-9].

Crash safety: an upload is written to uploads/, which is on the same file system
as blobs/; it is hashed as it arrives, its digest is checked, it is fsynced, and
only then renamed into blobs/. A blob path therefore only ever holds complete,
verified content. Small files (tags, links) are replaced atomically the same way.
Deleting only unlinks from a repository; unreferenced blobs stay until a garbage
collection (not implemented).
"""
from __future__ import annotations

import hashlib
import os
import shutil
import uuid as uuidlib
from pathlib import Path

from . import manifests
from .errors import RegistryError
from .grammar import check_name, check_tag, is_digest, parse_digest

CHUNK = 1024 * 1024


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuidlib.uuid4().hex}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _hash_file(path: Path, algorithm: str):
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h


class Upload:
    """An open upload session: write() appends and hashes; close() when the request ends."""

    def __init__(self, store: "Store", uuid: str, path: Path, size: int, hasher):
        self.store, self.uuid, self.path, self.size, self._hasher = store, uuid, path, size, hasher
        self._file = open(path, "ab")
        store._open.add(uuid)

    def truncate(self, size: int) -> None:
        """Undo a bad chunk: back to `size` bytes (and rehash them)."""
        self._file.truncate(size)
        self._file.flush()
        self.size, self._hasher = size, _hash_file(self.path, "sha256")

    def write(self, chunk: bytes) -> None:
        self._file.write(chunk)
        self._hasher.update(chunk)
        self.size += len(chunk)

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()
            self.store._hashers[self.uuid] = (self.size, self._hasher)
            self.store._open.discard(self.uuid)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Store:
    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        for sub in ("blobs", "uploads", "repositories"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self._hashers: dict[str, tuple[int, object]] = {}   # uuid -> (size hashed, sha256)
        self._open: set[str] = set()                        # uploads a request is writing to

    # -- blobs ---------------------------------------------------------------------------
    def blob_path(self, digest: str) -> Path:
        algorithm, encoded = parse_digest(digest)
        return self.root / "blobs" / algorithm / encoded[:2] / encoded

    def has_blob(self, digest: str) -> bool:
        return self.blob_path(digest).is_file()

    def put_blob(self, data: bytes, algorithm: str = "sha256") -> str:
        digest = f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"
        if not self.has_blob(digest):
            path = self.blob_path(digest)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.root / "uploads" / f".put-{uuidlib.uuid4().hex}"
            with open(tmp, "wb") as f:
                f.write(data)
                os.fsync(f.fileno())
            os.replace(tmp, path)
        return digest

    def read_blob(self, digest: str) -> bytes:
        return self.blob_path(digest).read_bytes()

    # -- blobs as seen by a repository ---------------------------------------------------
    def _repo(self, name: str) -> Path:
        return self.root / "repositories" / check_name(name)

    def _link(self, name: str, kind: str, digest: str) -> Path:
        algorithm, encoded = parse_digest(digest)
        return self._repo(name) / kind / algorithm / encoded

    def link_blob(self, name: str, digest: str) -> None:
        link = self._link(name, "_layers", digest)
        if not link.exists():
            _write_atomic(link, b"")

    def blob_in(self, name: str, digest: str) -> Path:
        """Path of a blob this repository holds; BLOB_UNKNOWN otherwise."""
        path = self.blob_path(digest)
        if not (self._link(name, "_layers", digest).exists() and path.is_file()):
            raise RegistryError("BLOB_UNKNOWN", digest)
        return path

    def unlink_blob(self, name: str, digest: str) -> None:
        self.blob_in(name, digest)
        self._link(name, "_layers", digest).unlink()

    # -- uploads -------------------------------------------------------------------------
    def start_upload(self, name: str) -> str:
        uuid = str(uuidlib.uuid4())
        folder = self.root / "uploads" / uuid
        folder.mkdir()
        (folder / "repository").write_text(check_name(name))
        (folder / "data").touch()
        self._hashers[uuid] = (0, hashlib.sha256())
        return uuid

    def _upload_data(self, name: str, uuid: str) -> Path:
        folder = self.root / "uploads" / uuid
        try:
            if str(uuidlib.UUID(uuid)) == uuid and (folder / "repository").read_text() == name:
                return folder / "data"
        except (ValueError, OSError):
            pass
        raise RegistryError("BLOB_UPLOAD_UNKNOWN", uuid[:100])

    def upload_size(self, name: str, uuid: str) -> int:
        return self._upload_data(name, uuid).stat().st_size

    def open_upload(self, name: str, uuid: str) -> Upload:
        path = self._upload_data(name, uuid)
        if uuid in self._open:
            raise RegistryError("BLOB_UPLOAD_INVALID", "another request is writing to this upload")
        size = path.stat().st_size
        hashed, hasher = self._hashers.pop(uuid, (-1, None))
        if hashed != size:             # e.g. after a restart: hash what is on disk so far
            hasher = _hash_file(path, "sha256")
        return Upload(self, uuid, path, size, hasher)

    def cancel_upload(self, name: str, uuid: str) -> None:
        self._upload_data(name, uuid)
        self._hashers.pop(uuid, None)
        shutil.rmtree(self.root / "uploads" / uuid, ignore_errors=True)

    def commit_upload(self, name: str, uuid: str, digest: str) -> None:
        """Verify the upload against `digest` and move it into the blob store. On a
        mismatch the upload is discarded (DIGEST_INVALID) and nothing is stored."""
        algorithm, encoded = parse_digest(digest)
        path = self._upload_data(name, uuid)
        hashed, hasher = self._hashers.get(uuid, (-1, None))
        if algorithm != "sha256" or hashed != path.stat().st_size:
            hasher = _hash_file(path, algorithm)
        if hasher.hexdigest() != encoded:
            self.cancel_upload(name, uuid)
            raise RegistryError("DIGEST_INVALID", f"content does not match {digest}")
        with open(path, "rb+") as f:
            os.fsync(f.fileno())
        target = self.blob_path(digest)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, target)
        self.cancel_upload(name, uuid)
        self.link_blob(name, digest)

    # -- manifests and tags --------------------------------------------------------------
    def put_manifest(self, name: str, reference: str, data: bytes, content_type: str | None) -> str:
        check_name(name)
        algorithm = parse_digest(reference)[0] if is_digest(reference) else "sha256"
        if not is_digest(reference):
            check_tag(reference)
        digest = f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"
        if is_digest(reference) and reference != digest:
            raise RegistryError("DIGEST_INVALID", f"manifest digest is {digest}, not {reference}")
        media_type, blobs, children = manifests.inspect(data, content_type)
        missing = [d for d in blobs if not (self._link(name, "_layers", d).exists()
                                            and self.has_blob(d))]
        missing += [d for d in children if not self._link(name, "_manifests/revisions", d).exists()]
        if missing:
            raise RegistryError("MANIFEST_BLOB_UNKNOWN", missing[0])
        self.put_blob(data, algorithm)
        _write_atomic(self._link(name, "_manifests/revisions", digest), media_type.encode())
        if not is_digest(reference):
            _write_atomic(self._repo(name) / "_manifests" / "tags" / reference, digest.encode())
        return digest

    def resolve(self, name: str, reference: str) -> str:
        """Tag or digest -> digest of a manifest in this repository; MANIFEST_UNKNOWN else."""
        if is_digest(reference):
            digest = reference
        else:
            try:
                digest = (self._repo(name) / "_manifests" / "tags" / check_tag(reference)).read_text()
            except FileNotFoundError:
                raise RegistryError("MANIFEST_UNKNOWN", {"tag": reference}) from None
        if not self._link(name, "_manifests/revisions", digest).exists():
            raise RegistryError("MANIFEST_UNKNOWN", {"digest": digest})
        return digest

    def get_manifest(self, name: str, reference: str) -> tuple[bytes, str, str]:
        """-> (bytes exactly as pushed, media type, digest)."""
        digest = self.resolve(name, reference)
        media_type = self._link(name, "_manifests/revisions", digest).read_text()
        return self.read_blob(digest), media_type, digest

    def delete_manifest(self, name: str, reference: str) -> None:
        """By tag: remove that tag. By digest: remove the manifest and every tag on it."""
        digest = self.resolve(name, reference)
        tags = self._repo(name) / "_manifests" / "tags"
        if not is_digest(reference):
            (tags / reference).unlink()
            return
        for tag in self.tags(name):
            if (tags / tag).read_text() == digest:
                (tags / tag).unlink()
        self._link(name, "_manifests/revisions", digest).unlink()

    def tags(self, name: str) -> list[str]:
        repo = self._repo(name)
        if not (repo / "_manifests").is_dir():
            raise RegistryError("NAME_UNKNOWN", {"name": name})
        folder = repo / "_manifests" / "tags"
        return sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")) \
            if folder.is_dir() else []

    def repositories(self) -> list[str]:
        top, found = self.root / "repositories", []
        for folder, subdirs, _ in os.walk(top):
            if "_manifests" in subdirs:
                found.append(os.path.relpath(folder, top))
            subdirs[:] = [d for d in subdirs if not d.startswith("_")]   # only name components
        return sorted(found)
