"""The image store: configs, layers unpacked once and shared, and the names that point at images.

Layout under <data-root>/image:

    blobs/sha256/<hex>        content-addressed blobs: image configs (the image ID is the
                              digest of its config), manifests and compressed layers as pulled
    layers/<chain-hex>/diff   a layer unpacked for overlayfs (whiteouts as 0:0 char devices,
                              opaque dirs with the trusted.overlay.opaque xattr)
    layers/<chain-hex>/layer.json   {"diff_id", "parent", "size"}
    refs.json                 {"docker.io/library/busybox:latest": "sha256:<image id>", ...}

A layer is identified by its chain ID (the layer and everything under it), so
two images that share a base share its directories on disk. Every write is
atomic: a layer directory is unpacked beside its final name and renamed into
place (and removed by renaming it to tmp-* first); refs.json is rewritten
through a temp file; an image exists once its config blob and its mark under
images/ do, which come after its layers. A crash (refimpld killed at any point)
leaves at worst temp directories and files, and layers that no image came to
use: `clean()` removes them at start-up.

The layers directory carries the ext2/3/4 "top of directory hierarchy" flag
(`chattr +T`), so that the kernel's inode allocator (Orlov) places each new layer in
a block group of its own rather than next to the layers directory. Without it every
layer lands in the same few groups, and on an ext4 without a journal the allocator
then steps over every inode freed there in the last `dirty_expire` seconds for each
file it creates: unpacking a layer just after removing one (rmi, then pull) took
four times as long. Other filesystems refuse the flag, which changes nothing.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import struct
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Callable, Iterable

from ..image import digest as digest_mod
from ..image import layers as layers_mod
from ..image import manifest as manifest_mod
from ..image import reference as ref_mod
from ..image.store import BlobStore
from . import persist
from .errors import Conflict, InvalidParameter, NotFound

log = logging.getLogger("refimpl.engine.images")


FS_IOC_GETFLAGS, FS_IOC_SETFLAGS = 0x80086601, 0x40086602   # _IOR/_IOW('f', 1/2, long); the kernel reads an int
FS_TOPDIR_FL = 0x00020000


def spread_subdirs(path: str | os.PathLike) -> bool:
    """Mark a directory as a top of hierarchies for the inode allocator (ext2/3/4's
    `chattr +T`): its subdirectories are spread over block groups. True if the flag is
    set; False where the filesystem has no such flag (it is only a placement hint)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        buf = bytearray(8)
        fcntl.ioctl(fd, FS_IOC_GETFLAGS, buf, True)
        flags = struct.unpack_from("i", buf)[0]
        if not flags & FS_TOPDIR_FL:
            fcntl.ioctl(fd, FS_IOC_SETFLAGS, struct.pack("i", flags | FS_TOPDIR_FL) + bytes(4))
        return True
    except OSError:              # ENOTTY, EOPNOTSUPP...: no such flag here
        return False
    finally:
        os.close(fd)


@dataclass
class Image:
    id: str                       # "sha256:<hex>", the digest of the config
    raw_config: bytes
    config: dict                  # the whole image config (architecture, os, config, rootfs, history)
    chain_ids: list[str]
    repo_tags: list[str] = field(default_factory=list)      # familiar form: "busybox:latest"
    repo_digests: list[str] = field(default_factory=list)   # "busybox@sha256:..."

    @property
    def short_id(self) -> str:
        return self.id.split(":", 1)[1][:12]

    @property
    def diff_ids(self) -> list[str]:
        return list(self.config.get("rootfs", {}).get("diff_ids", []))


class ImageService:
    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self.blobs = BlobStore(self.root / "blobs")
        self.layers_root = self.root / "layers"
        self.layers_root.mkdir(parents=True, exist_ok=True)
        spread_subdirs(self.layers_root)
        self.refs_path = self.root / "refs.json"
        self._lock = threading.RLock()
        self.refs: dict[str, str] = persist.read_json(self.refs_path, {})
        self.clean()

    # ------------------------------------------------------------------ layers
    def clean(self) -> None:
        """Start-up recovery after a crash (refimpld killed at any point of a pull, load,
        commit, build or rmi): remove half-unpacked layers (`tmp-*`), layer directories
        without their layer.json (a removal cut short), partial blobs (`.tmp-*`), temporary
        JSON records, and every layer that no image, build-cache step or container needs
        (an operation that died between unpacking its layers and recording its image; such
        a layer may also lack its blob.json). Complete blobs stay: a retried pull finds its
        downloads there."""
        persist.sweep(self.root)
        for p in self.layers_root.iterdir():
            if p.name.startswith(("tmp-", ".")) or ".tmp-" in p.name or not (p / "layer.json").exists():
                shutil.rmtree(p, ignore_errors=True)
            else:
                persist.sweep(p)
        self.blobs.clean()
        needed: set[str] = set()
        for config in self._needed_configs():
            try:
                diff_ids = manifest_mod.parse_config(self.blobs.get(config)).get("rootfs", {}).get("diff_ids", [])
                needed.update(digest_mod.parse(str(c)).encoded for c in manifest_mod.chain_ids(diff_ids))
            except (KeyError, ValueError, OSError):
                continue
        for p in self.layers_root.iterdir():
            if p.name not in needed:
                log.info("removing layer %s: no image needs it", p.name[:12])
                self._drop_layer_dir(p)

    def _needed_configs(self) -> set[str]:
        """Image configs whose layers must stay: images, the build cache's step images
        (<data-root>/build/cache.json) and the images of containers."""
        d = self.root / "images"
        found = {f"sha256:{p.name}" for p in d.iterdir()} if d.exists() else set()
        found.update(self.refs.values())
        data_root = self.root.parent
        cache = persist.read_json(data_root / "build" / "cache.json", {}) or {}
        found.update(v for v in cache.values() if isinstance(v, str))
        containers = data_root / "containers"
        for p in containers.iterdir() if containers.is_dir() else ():
            try:
                rec = persist.read_json(p / "config.v2.json") or {}
            except ValueError:
                continue
            if isinstance(rec.get("image_id"), str):
                found.add(rec["image_id"])
        return {c for c in found if c in self.blobs}

    def _drop_layer_dir(self, path: Path) -> None:
        """Remove a layer directory so that a crash half-way leaves no half layer under its
        chain ID: renamed to tmp-* first (which clean() removes), then deleted."""
        tmp = self.layers_root / f"tmp-{uuid.uuid4().hex}"
        try:
            os.rename(path, tmp)
        except FileNotFoundError:
            return
        shutil.rmtree(tmp, ignore_errors=True)

    def drop_layer(self, chain_id: str) -> None:
        self._drop_layer_dir(self.layer_path(chain_id))

    def layer_path(self, chain_id: str) -> Path:
        return self.layers_root / digest_mod.parse(chain_id).encoded

    def has_layer(self, chain_id: str) -> bool:
        return (self.layer_path(chain_id) / "layer.json").exists()

    def layer_dir(self, chain_id: str) -> str:
        return str(self.layer_path(chain_id) / "diff")

    def register_layer(self, stream: BinaryIO, parent_chain: str | None,
                       expected_diff_id: str | None = None,
                       before_commit: Callable[[], None] | None = None) -> tuple[str, str]:
        """Unpack a layer tar (plain or gzip) on top of `parent_chain`; returns (diff_id, chain_id).

        The tar is unpacked into a fresh directory; when its DiffID is known the
        directory is renamed to the chain ID. A layer already present is reused.
        `before_commit` runs once the layer is unpacked and checked, before it is put
        in place; if it raises, nothing is kept (a pull verifies the blob there).
        """
        tmp = self.layers_root / f"tmp-{uuid.uuid4().hex}"
        tmp.mkdir(mode=0o700)
        try:
            result = layers_mod.extract_layer(stream, tmp / "diff", mode=layers_mod.OVERLAY)
            diff_id = str(result.diff_id)
            if expected_diff_id and diff_id != expected_diff_id:
                raise InvalidParameter(f"layer content has diff ID {diff_id}, the image config says "
                                       f"{expected_diff_id}")
            chain = self._chain(parent_chain, diff_id)
            if before_commit is not None:
                before_commit()
            persist.write_json(tmp / "layer.json", {"diff_id": diff_id, "parent": parent_chain,
                                                    "size": result.size})
            with self._lock:
                final = self.layer_path(chain)
                if final.exists():
                    shutil.rmtree(tmp, ignore_errors=True)
                else:
                    os.chmod(tmp, 0o755)
                    os.rename(tmp, final)
            return diff_id, chain
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    @staticmethod
    def _chain(parent_chain: str | None, diff_id: str) -> str:
        if parent_chain is None:
            return diff_id
        return str(digest_mod.sha256(f"{parent_chain} {diff_id}".encode()))

    def record_layer_blob(self, chain_id: str, blob: str) -> None:
        """Remember which stored blob (compressed or not) holds this layer's tar, so that
        save and push can give out the exact bytes whose DiffID the config names."""
        persist.write_json(self.layer_path(chain_id) / "blob.json", {"blob": str(blob)})

    def layer_blob(self, chain_id: str) -> str | None:
        """The digest of the blob recorded for a layer, if it is still in the store."""
        meta = persist.read_json(self.layer_path(chain_id) / "blob.json") or {}
        blob = meta.get("blob")
        return blob if blob and blob in self.blobs else None

    def blob_in_use(self, blob: str) -> bool:
        """Is this blob the recorded source of some layer on disk?"""
        return any((persist.read_json(p / "blob.json") or {}).get("blob") == blob
                   for p in self.layers_root.iterdir() if (p / "blob.json").exists())

    def register_blob_layer(self, blob: str, parent_chain: str | None,
                            expected_diff_id: str | None = None) -> tuple[str, str]:
        """register_layer from a blob already in the store, recording it as the layer's source."""
        with self.blobs.open(blob) as f:
            diff_id, chain = self.register_layer(f, parent_chain, expected_diff_id)
        if self.layer_blob(chain) is None:
            self.record_layer_blob(chain, blob)
        return diff_id, chain

    def layer_meta(self, chain_id: str) -> dict:
        meta = persist.read_json(self.layer_path(chain_id) / "layer.json")
        if meta is None:
            raise NotFound(f"layer {chain_id} does not exist")
        return meta

    # ------------------------------------------------------------------ images
    def add_image(self, raw_config: bytes, layers: Iterable[BinaryIO] = ()) -> Image:
        """Register an image from its config bytes and its layer tars, bottom first.

        Layers whose chain is already present are not read again (pass an empty
        iterable when every layer is present). The config's diff_ids must match.
        Each new layer's bytes are kept in the blob store (for save and push); on
        failure the blobs and layers added here are removed again.
        """
        config = manifest_mod.parse_config(raw_config)
        diff_ids = config.get("rootfs", {}).get("diff_ids", [])
        chains = [str(c) for c in manifest_mod.chain_ids(diff_ids)]
        streams = iter(layers)
        parent = None
        added_blobs, added_layers = [], []
        try:
            for diff_id, chain in zip(diff_ids, chains):
                if not self.has_layer(chain):
                    stream = next(streams, None)
                    if stream is None:
                        raise InvalidParameter(f"missing layer {diff_id} for the image config")
                    blob = self.blobs.ingest(stream)
                    if not self.blob_in_use(blob):
                        added_blobs.append(blob)
                    self.register_blob_layer(blob, parent, expected_diff_id=diff_id)
                    added_layers.append(chain)
                parent = chain
        except BaseException:
            for chain in added_layers:
                self.drop_layer(chain)
            for blob in added_blobs:
                self.blobs.delete(blob)
            raise
        image_id = str(self.blobs.put(raw_config))
        self.mark_image(image_id)
        return self.get(image_id)

    def get(self, image_id: str) -> Image:
        try:
            raw = self.blobs.get(image_id)
        except (KeyError, ValueError):
            raise NotFound(f"No such image: {image_id}") from None
        config = manifest_mod.parse_config(raw)
        diff_ids = config.get("rootfs", {}).get("diff_ids", [])
        img = Image(image_id, raw, config, [str(c) for c in manifest_mod.chain_ids(diff_ids)])
        with self._lock:
            for ref, target in sorted(self.refs.items()):
                if target == image_id:
                    r = ref_mod.parse_normalized(ref)
                    (img.repo_digests if r.digest else img.repo_tags).append(r.familiar())
        return img

    def _is_image(self, image_id: str) -> bool:
        return (self.root / "images" / digest_mod.parse(image_id).encoded).exists()

    def mark_image(self, image_id: str) -> None:
        """Record that a config blob is an image (configs are blobs among others)."""
        p = self.root / "images" / digest_mod.parse(image_id).encoded
        p.parent.mkdir(parents=True, exist_ok=True)
        p.touch()

    def images(self) -> list[Image]:
        d = self.root / "images"
        ids = sorted(f"sha256:{p.name}" for p in d.iterdir()) if d.exists() else []
        return [self.get(i) for i in ids if i in self.blobs]

    def resolve(self, name: str) -> Image:
        """An image by reference (`busybox`, `repo:tag`, `repo@sha256:…`), full ID or ID prefix."""
        try:
            parsed = ref_mod.parse_any(name)
        except ref_mod.ReferenceError as e:
            prefix = name.removeprefix("sha256:")
            if not prefix or any(c not in "0123456789abcdef" for c in prefix):
                raise InvalidParameter(str(e)) from None   # as dockerd: 400, not "no such image"
            parsed = None
        with self._lock:
            if isinstance(parsed, ref_mod.Reference):
                key = str(parsed if parsed.digest else parsed.tagged_or_latest())
                if parsed.digest and parsed.tag:
                    key = str(ref_mod.Reference(parsed.domain, parsed.path, None, parsed.digest))
                if key in self.refs:
                    return self.get(self.refs[key])
            elif parsed is not None:
                if self._is_image(str(parsed)):
                    return self.get(str(parsed))
            prefix = name.removeprefix("sha256:")
            if 1 <= len(prefix) < 64 and all(c in "0123456789abcdef" for c in prefix):
                d = self.root / "images"
                found = [p.name for p in d.iterdir() if p.name.startswith(prefix)] if d.exists() else []
                if len(found) == 1:
                    return self.get("sha256:" + found[0])
                if len(found) > 1:
                    raise InvalidParameter(f"ambiguous image ID prefix {prefix}")
        raise NotFound(f"No such image: {name}")

    # ------------------------------------------------------------------ names
    def set_ref(self, ref: str, image_id: str) -> None:
        """Point a normalised reference (tag or digest) at an image."""
        with self._lock:
            self.mark_image(image_id)
            self.refs[ref] = image_id
            persist.write_json(self.refs_path, self.refs)

    def tag(self, image_id: str, name: str) -> str:
        r = ref_mod.parse_normalized(name)
        if r.digest:
            raise InvalidParameter("refusing to create a tag with a digest reference")
        key = str(r.tagged_or_latest())
        self.set_ref(key, image_id)
        return key

    def untag(self, name: str) -> str:
        """Remove one reference; returns the image ID it pointed at."""
        r = ref_mod.parse_normalized(name)
        key = str(r if r.digest else r.tagged_or_latest())
        with self._lock:
            if key not in self.refs:
                raise NotFound(f"No such image: {name}")
            image_id = self.refs.pop(key)
            persist.write_json(self.refs_path, self.refs)
            return image_id

    def refs_of(self, image_id: str) -> list[str]:
        with self._lock:
            return sorted(k for k, v in self.refs.items() if v == image_id)

    def delete_image(self, image_id: str) -> list[str]:
        """Forget an image (its references and its mark); returns the layer chains no longer used."""
        with self._lock:
            if any(v == image_id for v in self.refs.values()):
                raise Conflict(f"image {image_id} still has references")
            p = self.root / "images" / digest_mod.parse(image_id).encoded
            p.unlink(missing_ok=True)
            img_chains = set(self.get(image_id).chain_ids) if image_id in self.blobs else set()
            used = set()
            for other in self.images():
                used.update(other.chain_ids)
            freed = sorted(img_chains - used)
            for chain in freed:
                blob = self.layer_blob(chain)
                self.drop_layer(chain)
                if blob and not self.blob_in_use(blob):
                    self.blobs.delete(blob)
            self.blobs.delete(image_id)
            return freed

    # ------------------------------------------------------------------ for containers
    def layer_dirs(self, image: Image) -> list[str]:
        """The unpacked layer directories for an overlay mount, top-most first."""
        return [self.layer_dir(c) for c in reversed(image.chain_ids)]

    def size(self, image: Image) -> int:
        total = 0
        for c in image.chain_ids:
            try:
                total += int(self.layer_meta(c).get("size", 0))
            except NotFound:
                pass
        return total
