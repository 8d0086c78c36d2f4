"""What the registry needs to know about a manifest it is asked to store.

The registry keeps manifests byte-exact (their digest is the hash of the exact
bytes pushed) and serves them back with the media type they were pushed with.
It only looks inside to refuse what it could not serve: a body that is not a
JSON object, a known manifest type with the wrong shape, and (in the store)
references to blobs or manifests the repository does not hold.
"""
from __future__ import annotations

import json

from .errors import RegistryError
from .grammar import parse_digest

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
IMAGE_TYPES = (DOCKER_MANIFEST, OCI_MANIFEST)
INDEX_TYPES = (DOCKER_LIST, OCI_INDEX)
GENERIC_TYPES = ("", "application/json", "application/octet-stream")


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";")[0].strip().lower()


def inspect(data: bytes, content_type: str | None) -> tuple[str, list[str], list[str]]:
    """-> (media type, blob digests, manifest digests) the manifest refers to.
    Raises MANIFEST_INVALID for a body we must not accept."""
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RegistryError("MANIFEST_INVALID", f"manifest is not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise RegistryError("MANIFEST_INVALID", "manifest is not a JSON object")
    declared = doc.get("mediaType") if isinstance(doc.get("mediaType"), str) else ""
    media_type = _media_type(content_type)
    if media_type in GENERIC_TYPES:
        media_type = declared or (OCI_INDEX if "manifests" in doc else OCI_MANIFEST
                                  if "config" in doc else media_type or "application/json")
    known = IMAGE_TYPES + INDEX_TYPES
    if declared and media_type in known and declared in known and declared != media_type:
        raise RegistryError("MANIFEST_INVALID",
                            f"mediaType {declared!r} does not match Content-Type {media_type!r}")
    if media_type in known and doc.get("schemaVersion") != 2:
        raise RegistryError("MANIFEST_INVALID", "schemaVersion must be 2")
    blobs = _descriptors(doc, "config", single=True, required=media_type in IMAGE_TYPES)
    blobs += _descriptors(doc, "layers", required=media_type in IMAGE_TYPES)
    blobs += _descriptors(doc, "blobs")
    manifests = _descriptors(doc, "manifests", required=media_type in INDEX_TYPES)
    return media_type, blobs, manifests


def _descriptors(doc: dict, key: str, single: bool = False, required: bool = False) -> list[str]:
    value = doc.get(key)
    if value is None:
        if required:
            raise RegistryError("MANIFEST_INVALID", f"manifest has no {key!r}")
        return []
    items = [value] if single else value
    if not isinstance(items, list) or not all(isinstance(d, dict) for d in items):
        raise RegistryError("MANIFEST_INVALID", f"{key!r} must hold descriptors")
    digests = []
    for desc in items:
        try:
            parse_digest(desc.get("digest"))
        except (RegistryError, TypeError):
            raise RegistryError("MANIFEST_INVALID",
                                f"bad digest in {key!r}: {desc.get('digest')!r}") from None
        foreign = any(w in str(desc.get("mediaType", "")) for w in ("foreign", "nondistributable"))
        if not foreign:        # foreign layers live elsewhere (their "urls"), not here
            digests.append(desc["digest"])
    return digests
