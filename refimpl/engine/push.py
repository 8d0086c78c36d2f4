"""Pushing an image to a registry, as dockerd does it.

For each layer (bottom first) the exact blob the image was made from is sent,
unless the registry already has it ("Layer already exists"); then the config;
then a Docker v2 schema 2 manifest under the tag. The digest the registry
names the manifest by becomes one of the image's RepoDigests.

Progress messages follow dockerd's: `The push refers to repository [X]`, per
layer `Preparing` / `Waiting` / `Pushing` / `Pushed` or `Layer already exists`,
then `<tag>: digest: sha256:… size: N` and an `aux` record with the same.
"""

from __future__ import annotations

import json
from typing import Callable

from ..image import manifest as manifest_mod
from ..image import reference as ref_mod
from ..registry.client import RegistryClient, RegistryClientError
from .errors import EngineError, InvalidParameter, NotFound
from .images import ImageService

Progress = Callable[[dict], None]

DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_LAYER_TAR = "application/vnd.docker.image.rootfs.diff.tar"


class PushError(EngineError):
    def __init__(self, message: str, status: int = 500):
        super().__init__(message)
        self.status = status


def push(images: ImageService, name: str, tag: str | None = None, auth: dict | None = None,
         progress: Progress = lambda msg: None, client: RegistryClient | None = None) -> str:
    """Push `name` (with `tag`, default its own tag or latest); returns the manifest digest."""
    ref = ref_mod.parse_normalized(name)
    if tag:
        ref = ref.with_tag(tag)
    ref = ref.tagged_or_latest()
    if ref.digest:
        raise InvalidParameter("cannot push a digest reference")
    image = images.resolve(str(ref))
    client = client or RegistryClient(ref.registry, auth)
    repo = ref.path
    say = progress
    say({"status": f"The push refers to repository [{ref.name}]"})
    try:
        layers = []
        for chain in image.chain_ids:
            blob = images.layer_blob(chain)
            if blob is None:
                raise NotFound(f"layer {chain} has no stored content to push")
            layers.append((chain, blob))
        short = lambda d: d.split(":", 1)[1][:12]  # noqa: E731
        for _, blob in reversed(layers):
            say({"status": "Preparing", "progressDetail": {}, "id": short(blob)})
        descriptors = []
        for chain, blob in layers:
            data = images.blobs.get(blob)
            media = DOCKER_LAYER_GZIP if data[:2] == b"\x1f\x8b" else DOCKER_LAYER_TAR
            descriptors.append({"mediaType": media, "size": len(data), "digest": blob})
            if client.has_blob(repo, blob):
                say({"status": "Layer already exists", "progressDetail": {}, "id": short(blob)})
                continue
            say({"status": "Pushing", "progressDetail": {"current": 0, "total": len(data)},
                 "id": short(blob)})
            client.upload_blob(repo, blob, data)
            say({"status": "Pushed", "progressDetail": {}, "id": short(blob)})
        if not client.has_blob(repo, image.id):
            client.upload_blob(repo, image.id, image.raw_config)
        manifest = {
            "schemaVersion": 2, "mediaType": manifest_mod.DOCKER_MANIFEST,
            "config": {"mediaType": manifest_mod.DOCKER_CONFIG, "size": len(image.raw_config),
                       "digest": image.id},
            "layers": descriptors,
        }
        raw = json.dumps(manifest, indent=3).encode()
        digest = client.put_manifest(repo, ref.tag, raw, manifest_mod.DOCKER_MANIFEST)
    except RegistryClientError as e:
        if e.code in ("DENIED", "UNAUTHORIZED") or e.status == 401:
            raise PushError(f"denied: requested access to the resource is denied ({e})", 403) from None
        raise PushError(str(e), e.status if e.status != 404 else 500) from None
    images.blobs.put(raw)
    images.set_ref(str(ref_mod.Reference(ref.domain, ref.path, None, digest)), image.id)
    say({"status": f"{ref.tag}: digest: {digest} size: {len(raw)}"})
    say({"progressDetail": {}, "aux": {"Tag": ref.tag, "Digest": digest, "Size": len(raw)}})
    return digest
