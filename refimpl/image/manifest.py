"""Manifests, indexes and image configs: the JSON documents that name an image's blobs.

Two families describe the same thing: Docker's v2 schema 2 (manifest and manifest
list) and OCI's image manifest and index. A pull receives either; a manifest is
addressed by the digest of its exact bytes, so parsed documents keep `raw` and are
stored and served byte-for-byte, never re-serialised.

The identities are arithmetic on digests, as the image spec defines them:
- image ID  = sha256(config bytes)
- ChainID(L0) = DiffID(L0);  ChainID(Ln) = sha256(ChainID(Ln-1) + " " + DiffID(Ln))
`build_config` and `build_manifest` produce canonical JSON (fixed key order, no
whitespace) so that commit and build give the same IDs for the same inputs.
"""
from __future__ import annotations

import json
import platform as _platform
from dataclasses import dataclass, field

from .digest import Digest, DigestError, sha256

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_SCHEMA1 = ("application/vnd.docker.distribution.manifest.v1+json",
                  "application/vnd.docker.distribution.manifest.v1+prettyjws")
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_FOREIGN_LAYER = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = OCI_LAYER + "+gzip"
OCI_LAYER_ZSTD = OCI_LAYER + "+zstd"
OCI_LAYER_NONDIST = "application/vnd.oci.image.layer.nondistributable.v1.tar"

MANIFEST_TYPES = (DOCKER_MANIFEST, OCI_MANIFEST)
INDEX_TYPES = (DOCKER_MANIFEST_LIST, OCI_INDEX)
CONFIG_TYPES = (DOCKER_CONFIG, OCI_CONFIG)
LAYER_TYPES = (DOCKER_LAYER, DOCKER_FOREIGN_LAYER, OCI_LAYER, OCI_LAYER_GZIP, OCI_LAYER_ZSTD,
               OCI_LAYER_NONDIST, OCI_LAYER_NONDIST + "+gzip", OCI_LAYER_NONDIST + "+zstd")
# What a client sends in Accept when asking a registry for a manifest.
ACCEPT = ", ".join(MANIFEST_TYPES + INDEX_TYPES)


class ManifestError(ValueError):
    """A document that is not a usable manifest, index or config (one line)."""


def layer_compression(media_type: str) -> str | None:
    """`"gzip"`, `"zstd"` or None (uncompressed) for a layer media type."""
    if media_type not in LAYER_TYPES:
        raise ManifestError(f"unsupported layer media type {media_type!r}")
    if media_type.endswith("+zstd"):
        return "zstd"
    if media_type.endswith("gzip"):
        return "gzip"
    return None


@dataclass(frozen=True)
class Platform:
    os: str = "linux"
    architecture: str = "amd64"
    variant: str = ""

    @classmethod
    def parse(cls, spec: str) -> "Platform":
        """`linux/arm64/v8` or `linux/amd64` (the `--platform` flag's form)."""
        parts = spec.split("/")
        if not 2 <= len(parts) <= 3 or not all(parts):
            raise ManifestError(f"invalid platform {spec!r}: expected os/arch[/variant]")
        return cls(*parts).normalized()

    def normalized(self) -> "Platform":
        """containerd's platforms.Normalize: common aliases and default variants."""
        arch, variant = self.architecture.lower(), self.variant.lower()
        arch = {"x86_64": "amd64", "x86-64": "amd64", "aarch64": "arm64", "i386": "386"}.get(arch, arch)
        if arch == "armhf":
            arch, variant = "arm", "v7"
        elif arch == "armel":
            arch, variant = "arm", "v6"
        if arch == "arm64" and variant in ("8", "v8"):
            variant = ""
        if arch == "arm" and variant in ("", "7"):
            variant = "v7"
        if arch == "amd64" and variant == "v1":
            variant = ""
        return Platform(self.os.lower(), arch, variant)

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)


def host_platform() -> Platform:
    return Platform("linux", _platform.machine()).normalized()


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: Digest
    size: int
    platform: Platform | None = None
    annotations: dict = field(default_factory=dict, compare=False)
    urls: tuple = ()

    @classmethod
    def from_json(cls, d, where: str) -> "Descriptor":
        if not isinstance(d, dict):
            raise ManifestError(f"{where}: descriptor must be an object")
        try:
            dig = Digest(d.get("digest"))
        except DigestError as e:
            raise ManifestError(f"{where}: {e}") from None
        size = d.get("size")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise ManifestError(f"{where}: size must be a non-negative integer")
        mt = d.get("mediaType", "")
        if not isinstance(mt, str):
            raise ManifestError(f"{where}: mediaType must be a string")
        p = d.get("platform")
        plat = None
        if isinstance(p, dict):
            plat = Platform(str(p.get("os", "")), str(p.get("architecture", "")), str(p.get("variant", "")))
        return cls(mt, dig, size, plat, d.get("annotations") or {}, tuple(d.get("urls") or ()))

    def to_json(self) -> dict:
        d = {"mediaType": self.media_type, "digest": str(self.digest), "size": self.size}
        if self.urls:
            d["urls"] = list(self.urls)
        if self.annotations:
            d["annotations"] = dict(self.annotations)
        if self.platform:
            d["platform"] = {"architecture": self.platform.architecture, "os": self.platform.os}
            if self.platform.variant:
                d["platform"]["variant"] = self.platform.variant
        return d


@dataclass(frozen=True)
class Manifest:
    media_type: str
    config: Descriptor
    layers: tuple[Descriptor, ...]
    raw: bytes = field(repr=False)

    @property
    def digest(self) -> Digest:
        return sha256(self.raw)


@dataclass(frozen=True)
class Index:
    media_type: str
    manifests: tuple[Descriptor, ...]
    raw: bytes = field(repr=False)

    @property
    def digest(self) -> Digest:
        return sha256(self.raw)


def parse_manifest(raw: bytes, content_type: str | None = None) -> Manifest | Index:
    """Parse a manifest or an index, keeping the exact bytes. `content_type` is the
    registry's Content-Type, used when the document does not name its own type."""
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise ManifestError(f"manifest is not valid JSON: {e}") from None
    if not isinstance(doc, dict):
        raise ManifestError("manifest must be a JSON object")
    ct = (content_type or "").split(";")[0].strip()
    mt = doc.get("mediaType") or (ct if ct and ct != "application/json" else "")
    if mt in DOCKER_SCHEMA1 or doc.get("schemaVersion") == 1:
        raise ManifestError("Docker image manifest schema 1 is not supported")
    if doc.get("schemaVersion") != 2:
        raise ManifestError("manifest schemaVersion must be 2")
    if not mt:  # OCI makes mediaType optional: infer from the shape
        mt = OCI_INDEX if "manifests" in doc else OCI_MANIFEST
    if mt in INDEX_TYPES:
        items = doc.get("manifests")
        if not isinstance(items, list):
            raise ManifestError("index: manifests must be a list")
        return Index(mt, tuple(Descriptor.from_json(d, f"manifests[{i}]") for i, d in enumerate(items)), bytes(raw))
    if mt in MANIFEST_TYPES:
        layers = doc.get("layers")
        if not isinstance(layers, list):
            raise ManifestError("manifest: layers must be a list")
        config = Descriptor.from_json(doc.get("config"), "config")
        return Manifest(mt, config, tuple(Descriptor.from_json(d, f"layers[{i}]") for i, d in enumerate(layers)), bytes(raw))
    raise ManifestError(f"unsupported manifest media type {mt!r}")


def select_platform(index: Index, want: Platform | str | None = None) -> Descriptor:
    """Pick the manifest for `want` (default: this host) from an index. An exact
    variant beats an unspecified one; attestation entries (`unknown/unknown`) never match."""
    want = Platform.parse(want) if isinstance(want, str) else (want or host_platform())
    want = want.normalized()
    best, best_score = None, -1
    for d in index.manifests:
        if d.platform is None or d.media_type not in MANIFEST_TYPES + INDEX_TYPES + ("",):
            continue
        p = d.platform.normalized()
        if (p.os, p.architecture) != (want.os, want.architecture):
            continue
        if p.variant == want.variant:
            score = 2
        elif not p.variant or not want.variant:
            score = 1
        else:
            continue
        if score > best_score:
            best, best_score = d, score
    if best is None:
        have = ", ".join(str(d.platform) for d in index.manifests if d.platform) or "none"
        raise ManifestError(f"no matching manifest for {want} in the manifest list entries (have: {have})")
    return best


def chain_ids(diff_ids: list[str]) -> list[Digest]:
    """ChainID for each prefix of the layer stack (what layer stores key on)."""
    out: list[Digest] = []
    for diff in diff_ids:
        diff = Digest(diff)
        out.append(diff if not out else sha256(f"{out[-1]} {diff}".encode()))
    return out


def chain_id(diff_ids: list[str]) -> Digest | None:
    ids = chain_ids(diff_ids)
    return ids[-1] if ids else None


def image_id(config_bytes: bytes) -> Digest:
    return sha256(config_bytes)


def canonical_json(doc) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def parse_config(raw: bytes) -> dict:
    """Parse an image config and check the parts the engine relies on."""
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise ManifestError(f"image config is not valid JSON: {e}") from None
    rootfs = doc.get("rootfs") if isinstance(doc, dict) else None
    if not isinstance(rootfs, dict) or rootfs.get("type") != "layers" or not isinstance(rootfs.get("diff_ids"), list):
        raise ManifestError("image config: rootfs must be {\"type\": \"layers\", \"diff_ids\": [...]}")
    try:
        [Digest(d) for d in rootfs["diff_ids"]]
    except DigestError as e:
        raise ManifestError(f"image config: rootfs.diff_ids: {e}") from None
    return doc


def build_config(diff_ids: list[str], config: dict | None = None, *, history: list[dict] | None = None,
                 created: str = "1970-01-01T00:00:00Z", architecture: str = "amd64", os: str = "linux",
                 variant: str = "", author: str = "", extra: dict | None = None) -> bytes:
    """A canonical image config (OCI and Docker share the format). `config` is the
    run config (Env, Cmd, Entrypoint, WorkingDir, User, Labels, ExposedPorts, ...)."""
    doc = {"architecture": architecture, "os": os, "created": created,
           "config": dict(config or {}),
           "rootfs": {"type": "layers", "diff_ids": [str(Digest(d)) for d in diff_ids]},
           "history": list(history or [])}
    if variant:
        doc["variant"] = variant
    if author:
        doc["author"] = author
    doc.update(extra or {})
    return canonical_json(doc)


def build_manifest(config: bytes, layers: list[Descriptor], media_type: str = OCI_MANIFEST,
                   annotations: dict | None = None) -> bytes:
    """A canonical manifest for a config and its layer blobs."""
    if media_type not in MANIFEST_TYPES:
        raise ManifestError(f"unsupported manifest media type {media_type!r}")
    config_type = OCI_CONFIG if media_type == OCI_MANIFEST else DOCKER_CONFIG
    doc = {"schemaVersion": 2, "mediaType": media_type,
           "config": Descriptor(config_type, sha256(config), len(config)).to_json(),
           "layers": [d.to_json() for d in layers]}
    if annotations:
        doc["annotations"] = dict(annotations)
    return canonical_json(doc)


def build_index(manifests: list[Descriptor], media_type: str = OCI_INDEX) -> bytes:
    if media_type not in INDEX_TYPES:
        raise ManifestError(f"unsupported index media type {media_type!r}")
    return canonical_json({"schemaVersion": 2, "mediaType": media_type,
                           "manifests": [d.to_json() for d in manifests]})
