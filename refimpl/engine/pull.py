"""Pulling an image into the ImageService: manifest → config → layers, all verified.

    image = pull(engine.images, "127.0.0.1:5000/dockspec/busybox:latest", auth={}, progress=print)

The order follows dockerd (distribution/pull_v2.go): resolve the reference to a
manifest (an index is narrowed to linux/<host arch>), fetch the config, then
each layer whose chain ID is not already on disk, bottom first. A layer is
unpacked as it downloads: its bytes go to a temporary blob file of the BlobStore
(kept for `save` and `push`) and, inflated, to `register_layer`'s temporary
directory; when the download ends the blob is checked against its digest, and
only then are the blob and the layer put in place (dockerd checks before it
unpacks; the outcome is the same, a lying blob leaves nothing). A blob already in
the store is unpacked from there. Progress goes out as the JSON messages Docker's
CLI renders (`Pulling fs layer`, `Downloading`, ..., `Pull complete`).

All or nothing: every blob and manifest is checked against its digest as it
arrives, and a pull that fails at any point removes the blobs and layer
directories it added, so the data root is as it was before (no blob, no layer
dir, no reference). Only at the end are the references written: the tag and
`repo@<manifest digest>` (what `RepoDigests` shows).
"""
from __future__ import annotations

import shutil
from typing import Callable

from ..image import digest as digest_mod
from ..image import manifest as manifest_mod
from ..image import reference as ref_mod
from ..registry.client import RegistryClient, RegistryClientError
from .errors import EngineError
from .images import Image, ImageService

CONFIG_LIMIT = 8 * 1024 * 1024
PROGRESS_STEP = 256 * 1024          # bytes between two "Downloading" messages
Progress = Callable[[dict], None]


class PullError(EngineError):
    """A failed pull; carries the HTTP status the API answers with (before streaming)."""

    def __init__(self, message: str, status: int = 500):
        super().__init__(message)
        self.status = status


def pull(images: ImageService, name: str, auth: dict | None = None,
         progress: Progress = lambda msg: None, platform: str | None = None,
         client: RegistryClient | None = None) -> Image:
    ref = ref_mod.parse_docker_ref(name)          # ReferenceError: "invalid reference format"
    client = client or RegistryClient(ref.registry, auth)
    try:
        return _Pull(images, ref, client, progress, platform).run()
    except RegistryClientError as e:
        raise _translate(e, ref) from None
    except (digest_mod.DigestMismatch, manifest_mod.ManifestError) as e:
        raise PullError(str(e), 500) from None


def _translate(e: RegistryClientError, ref: ref_mod.Reference) -> PullError:
    """dockerd's words for a registry's "not there" (distribution/errors.go)."""
    cause = str(e)
    if e.code == "MANIFEST_UNKNOWN":
        return PullError(f"manifest for {ref.familiar()} not found: {cause}", 404)
    if e.code == "NAME_UNKNOWN":
        return PullError(f"repository {ref.familiar_name} not found: {cause}", 404)
    if e.code in ("DENIED", "UNAUTHORIZED"):
        return PullError(f"pull access denied for {ref.familiar_name}, repository does not exist or "
                         f"may require 'docker login': denied: requested access to the resource is "
                         f"denied", 404)
    # Never 401: the docker CLI answers a 401 from the daemon by prompting for a login.
    return PullError(cause, 500 if e.status == 401 else e.status)


def _short(d: str) -> str:
    return digest_mod.parse(d).encoded[:12]


def _bar(current: int, total: int) -> str:
    """The `progress` text Docker sends beside progressDetail: `[=====>     ]  1.2MB/3MB`."""
    width = 50
    done = min(width, width * current // total) if total else 0
    bar = "=" * max(done - 1, 0) + (">" if done else "") + " " * (width - done)
    return f"[{bar}] {_human(current):>8}/{_human(total)}"


def _human(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.3g}{unit}" if unit != "B" else f"{int(n)}B"
        n /= 1000
    return f"{n}"


class _Pull:
    def __init__(self, images: ImageService, ref: ref_mod.Reference, client: RegistryClient,
                 progress: Progress, platform: str | None):
        self.images, self.ref, self.client = images, ref, client
        self.progress, self.platform = progress, platform
        self.repo = ref.path
        self.new_blobs: list[str] = []
        self.new_layers: list[str] = []

    def say(self, status: str, layer: str | None = None, **extra) -> None:
        msg = {"status": status}
        if layer is not None:
            if not status.startswith("Pulling from"):
                msg["progressDetail"] = extra.pop("detail", {})
            msg["id"] = layer
        msg.update(extra)
        self.progress(msg)

    def run(self) -> Image:
        try:
            return self._run()
        except BaseException:
            self._rollback()
            raise

    def _rollback(self) -> None:
        for chain in self.new_layers:
            shutil.rmtree(self.images.layer_path(chain), ignore_errors=True)
        for d in self.new_blobs:
            self.images.blobs.delete(d)

    def _keep(self, data: bytes, digest: str) -> None:
        if digest not in self.images.blobs:
            self.images.blobs.put(data, digest)
            self.new_blobs.append(digest)

    def _run(self) -> Image:
        ref = self.ref
        tagged = ref.tag if ref.tag and not ref.digest else None
        self.client.ping()
        raw, media_type, top_digest = self.client.manifest(self.repo, str(ref.digest or ref.tag))
        self.say(f"Pulling from {self.repo}", tagged or str(ref.digest))
        doc = manifest_mod.parse_manifest(raw, media_type)
        manifests = [(raw, top_digest)]
        if isinstance(doc, manifest_mod.Index):
            try:
                chosen = manifest_mod.select_platform(doc, self.platform)
            except manifest_mod.ManifestError as e:
                raise PullError(str(e), 404) from None
            raw2, media_type2, d2 = self.client.manifest(self.repo, str(chosen.digest))
            doc = manifest_mod.parse_manifest(raw2, media_type2 or chosen.media_type)
            if not isinstance(doc, manifest_mod.Manifest):
                raise PullError(f"manifest {chosen.digest}: nested indexes are not supported", 500)
            manifests.append((raw2, d2))

        previous = self._current()
        if self.images._is_image(str(doc.config.digest)) and doc.config.digest in self.images.blobs:
            return self._finish(manifests, self.images.get(str(doc.config.digest)), previous, False)
        config_raw = self._config(doc.config)
        config = manifest_mod.parse_config(config_raw)
        diff_ids = config["rootfs"]["diff_ids"]
        layers = [d for d in doc.layers if d.media_type != manifest_mod.DOCKER_FOREIGN_LAYER]
        if len(layers) != len(diff_ids):
            raise PullError(f"image config has {len(diff_ids)} layers, the manifest {len(layers)}", 500)
        for d in layers:
            manifest_mod.layer_compression(d.media_type)    # refuses unknown media types
            if d.media_type.endswith("+zstd"):
                raise PullError("zstd-compressed layers are not supported", 500)
        chains = [str(c) for c in manifest_mod.chain_ids(diff_ids)]
        need = [i for i, c in enumerate(chains) if not self.images.has_layer(c)]
        for i, d in enumerate(layers):
            if i not in need:
                self.say("Already exists", _short(d.digest))
        for n, i in enumerate(need):
            self.say("Pulling fs layer" if n == 0 else "Waiting", _short(layers[i].digest))
        parent = None
        for i, d in enumerate(layers):
            if i in need and not self.images.has_layer(chains[i]):
                if d.digest in self.images.blobs:
                    self.say("Download complete", _short(d.digest))
                    self._extracting(d)
                    try:
                        _, chain = self.images.register_blob_layer(d.digest, parent, diff_ids[i])
                    except (ValueError, EngineError) as e:    # LayerError, a DiffID the config disowns
                        raise PullError(f"failed to register layer: {e}", 500) from None
                    self.new_layers.append(chain)
                else:
                    self._stream(d, parent, diff_ids[i])
            if i in need:
                self.say("Pull complete", _short(d.digest))
            parent = chains[i]

        return self._finish(manifests, self.images.add_image(config_raw, []), previous, bool(need))

    def _finish(self, manifests, image: Image, previous: str | None, downloaded: bool) -> Image:
        ref, top_digest = self.ref, manifests[0][1]
        tagged = ref.tag if ref.tag and not ref.digest else None
        for data, d in manifests:
            self._keep(data, d)
        name = ref.repository()
        if tagged:
            self.images.set_ref(str(name.with_tag(tagged)), image.id)
        self.images.set_ref(f"{name}@{top_digest}", image.id)
        self.say(f"Digest: {top_digest}")
        fresh = downloaded or previous != image.id
        self.say(f"Status: {'Downloaded newer image' if fresh else 'Image is up to date'} for "
                 f"{ref.familiar()}")
        return self.images.get(image.id)

    def _current(self) -> str | None:
        return self.images.refs.get(str(self.ref))

    def _config(self, desc: manifest_mod.Descriptor) -> bytes:
        if desc.size > CONFIG_LIMIT:
            raise PullError(f"image config {desc.digest} is larger than {CONFIG_LIMIT} bytes", 500)
        resp = self.client.blob(self.repo, desc.digest)
        try:
            data = resp.read(CONFIG_LIMIT + 1)
        finally:
            resp.close()
        if digest_mod.sha256(data) != desc.digest or len(data) != desc.size:
            raise PullError(f"image config verification failed for digest {desc.digest}", 500)
        return data

    def _extracting(self, desc: manifest_mod.Descriptor) -> None:
        self.say("Extracting", _short(desc.digest), detail={"current": desc.size, "total": desc.size},
                 progress=_bar(desc.size, desc.size))

    def _progress(self, resp, desc: manifest_mod.Descriptor):
        """The blob's response body, saying "Downloading" as it is read."""
        short = _short(desc.digest)
        count = {"seen": 0, "said": 0}

        class Reader:
            def read(_, n: int = -1) -> bytes:
                try:
                    chunk = resp.read(n)
                except OSError as e:
                    raise PullError(f"error pulling layer {short}: {e}", 500) from None
                count["seen"] += len(chunk)
                seen = count["seen"]
                if chunk and (seen - count["said"] >= PROGRESS_STEP or seen >= desc.size):
                    count["said"] = seen
                    self.say("Downloading", short, detail={"current": seen, "total": desc.size},
                             progress=_bar(seen, desc.size))
                return chunk
        return Reader()

    def _stream(self, desc: manifest_mod.Descriptor, parent: str | None, diff_id: str) -> None:
        """Download a layer blob and unpack it as it arrives. The blob goes to a temporary
        file of the BlobStore and the layer to a temporary directory; once both are complete
        the blob is verified against its digest, and only then are the blob and the layer
        put in place: a blob that lies leaves nothing behind, as in store-then-unpack."""
        short = _short(desc.digest)
        resp = self.client.blob(self.repo, desc.digest)
        writer = self.images.blobs.writer(self._progress(resp, desc), desc.digest, desc.size)
        failed = f"filesystem layer verification failed for digest {desc.digest}"

        def verified() -> None:          # the layer is unpacked and its DiffID checked
            writer.drain()               # whatever follows the end of the archive
            writer.commit()              # DigestMismatch: nothing stored
            self.new_blobs.append(desc.digest)
            self.say("Verifying Checksum", short)
            self.say("Download complete", short)
            self._extracting(desc)
        try:
            try:
                _, chain = self.images.register_layer(writer, parent, diff_id, before_commit=verified)
            except digest_mod.DigestMismatch:
                raise PullError(failed, 500) from None
            except PullError:
                raise
            except (ValueError, EngineError) as e:     # LayerError, a DiffID the config disowns
                if writer.committed is None:           # did the blob itself lie? (dockerd checks first)
                    writer.drain()
                    if not writer.matches():
                        raise PullError(failed, 500) from None
                raise PullError(f"failed to register layer: {e}", 500) from None
        finally:
            writer.discard()
            resp.close()
        self.new_layers.append(chain)
        if self.images.layer_blob(chain) is None:
            self.images.record_layer_blob(chain, desc.digest)
