"""Test image content made here: small tar layers, a config, manifests of each media type."""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def layer(files: dict[str, bytes]) -> tuple[bytes, bytes]:
    """-> (gzipped tar, uncompressed tar) with fixed mtimes, so digests are stable."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), mtime=0), raw.getvalue()


def image(tag: str = "v1", oci: bool = False) -> dict:
    """Blobs and a manifest for a two-layer image: {"blobs": {digest: bytes}, "manifest": bytes,
    "media_type": str, "config": bytes}."""
    layers = [layer({"etc/hello": f"hello {tag}\n".encode()}),
              layer({"bin/tool": b"#!/bin/sh\necho tool\n" * 50})]
    config = json.dumps({
        "architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["/bin/tool"]},
        "rootfs": {"type": "layers", "diff_ids": [digest(raw) for _, raw in layers]},
    }, separators=(",", ":")).encode()
    kind = "oci" if oci else "docker"
    media = {"docker": (DOCKER_MANIFEST, "application/vnd.docker.container.image.v1+json",
                        "application/vnd.docker.image.rootfs.diff.tar.gzip"),
             "oci": (OCI_MANIFEST, "application/vnd.oci.image.config.v1+json",
                     "application/vnd.oci.image.layer.v1.tar+gzip")}[kind]
    manifest = {"schemaVersion": 2, "mediaType": media[0],
                "config": {"mediaType": media[1], "size": len(config), "digest": digest(config)},
                "layers": [{"mediaType": media[2], "size": len(gz), "digest": digest(gz)}
                           for gz, _ in layers]}
    # indented on purpose: the registry must keep these exact bytes
    body = json.dumps(manifest, indent=3).encode() + b"\n"
    blobs = {digest(config): config, **{digest(gz): gz for gz, _ in layers}}
    return {"blobs": blobs, "manifest": body, "media_type": media[0], "config": config}


def index(manifests: list[tuple[bytes, str]], oci: bool = True) -> tuple[bytes, str]:
    media_type = OCI_INDEX if oci else DOCKER_LIST
    doc = {"schemaVersion": 2, "mediaType": media_type, "manifests": [
        {"mediaType": mt, "size": len(m), "digest": digest(m),
         "platform": {"architecture": "amd64", "os": "linux"}} for m, mt in manifests]}
    return json.dumps(doc).encode(), media_type
