"""Content digests (`sha256:<hex>`) and a streaming verifier.

Everything in an image is addressed by the digest of its bytes, so a digest is
checked wherever bytes enter: a registry blob, a manifest, a layer on disk. The
rules and error texts follow opencontainers/go-digest, which Docker uses, so an
invalid digest fails here with the same words it would fail with in dockerd.
"""
from __future__ import annotations

import hashlib
import re

# go-digest: DigestRegexp = `[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+`
DIGEST_RE = re.compile(r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+")
# go-digest: algorithm.Validate for hex algorithms: `^[a-f0-9]{N}$`
ALGORITHMS = {"sha256": 64, "sha384": 96, "sha512": 128}
_HEX_RE = re.compile(r"[a-f0-9]+")


class DigestError(ValueError):
    """A malformed digest string (one-line message, go-digest's wording)."""


class DigestMismatch(ValueError):
    """Bytes did not hash to the digest they were announced with."""

    def __init__(self, expected: str, actual: str):
        super().__init__(f"digest mismatch: expected {expected}, got {actual}")
        self.expected, self.actual = expected, actual


class Digest(str):
    """A validated digest string; `algorithm` and `encoded` split it."""

    __slots__ = ()

    def __new__(cls, value: str) -> "Digest":
        if isinstance(value, Digest):
            return value
        if not isinstance(value, str):
            raise DigestError("invalid checksum digest format")
        i = value.find(":")
        if i <= 0 or i + 1 == len(value):
            raise DigestError("invalid checksum digest format")
        algorithm, encoded = value[:i], value[i + 1:]
        if algorithm not in ALGORITHMS:
            if not DIGEST_RE.fullmatch(value):
                raise DigestError("invalid checksum digest format")
            raise DigestError("unsupported digest algorithm")
        if len(encoded) != ALGORITHMS[algorithm]:
            raise DigestError("invalid checksum digest length")
        if not _HEX_RE.fullmatch(encoded):
            raise DigestError("invalid checksum digest format")
        return super().__new__(cls, value)

    @property
    def algorithm(self) -> str:
        return self.split(":", 1)[0]

    @property
    def encoded(self) -> str:
        return self.split(":", 1)[1]

    def short(self) -> str:
        """The 12-character form `docker images` shows."""
        return self.encoded[:12]


def parse(value: str) -> Digest:
    return Digest(value)


def is_digest(value: str) -> bool:
    try:
        Digest(value)
        return True
    except DigestError:
        return False


def sha256(data: bytes) -> Digest:
    return Digest("sha256:" + hashlib.sha256(data).hexdigest())


class Verifier:
    """Hash bytes as they stream past; `verify()` raises DigestMismatch (and a size
    mismatch the same way) unless they match what was expected."""

    def __init__(self, expected: str | None = None, algorithm: str = "sha256"):
        self.expected = Digest(expected) if expected is not None else None
        self._h = hashlib.new(self.expected.algorithm if self.expected else algorithm)
        self.size = 0

    def update(self, chunk: bytes) -> None:
        self._h.update(chunk)
        self.size += len(chunk)

    def digest(self) -> Digest:
        return Digest(f"{self._h.name}:{self._h.hexdigest()}")

    def verified(self) -> bool:
        return self.expected is None or self.digest() == self.expected

    def verify(self, size: int | None = None) -> Digest:
        actual = self.digest()
        if self.expected is not None and actual != self.expected:
            raise DigestMismatch(self.expected, actual)
        if size is not None and size != self.size:
            raise DigestMismatch(f"{self.expected or actual} ({size} bytes)",
                                 f"{actual} ({self.size} bytes)")
        return actual


class HashingReader:
    """A file-like wrapper that hashes everything read through it."""

    def __init__(self, raw, algorithm: str = "sha256"):
        self.raw, self.verifier = raw, Verifier(algorithm=algorithm)

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        self.verifier.update(data)
        return data

    def drain(self, chunk: int = 1 << 16) -> None:
        while self.read(chunk):
            pass

    def digest(self) -> Digest:
        return self.verifier.digest()

    @property
    def size(self) -> int:
        return self.verifier.size
