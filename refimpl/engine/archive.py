"""`docker save` and `docker load`: images as one tar, without a registry.

The format dockerd writes (image/tarexport):

    manifest.json           [{"Config": "<hex>.json", "RepoTags": ["busybox:latest"],
                              "Layers": ["<id>/layer.tar", ...]}]
    repositories            {"busybox": {"latest": "<id of the top layer>"}}
    <hex>.json              the image config, byte for byte (so the image ID survives)
    <id>/layer.tar          each layer, uncompressed: its sha256 is the config's DiffID
    <id>/json, <id>/VERSION the legacy v1 metadata that older loaders expect

Layer directories are named by the layer's chain ID here (dockerd derives a
v1 ID from a synthetic config; loaders only follow manifest.json). Loading
also accepts an OCI image layout (index.json + blobs/sha256/...), and compressed
layer tars.

A tar given to `load` comes from anywhere: nothing in it is ever extracted to a
path. Members are looked up by name in the archive; names that climb out
(`..`) or are absolute are refused; JSON documents are size-limited; every layer
is checked against the DiffID its config claims by register_layer. A load that
fails removes what it added (blobs, layers), so a hostile tar leaves nothing.
"""
from __future__ import annotations

import io
import json
import posixpath
import shutil
import tarfile
import tempfile
import zlib
from typing import BinaryIO, Callable

from ..image import digest as digest_mod
from ..image import layers as layers_mod
from ..image import manifest as manifest_mod
from ..image import reference as ref_mod
from .errors import InvalidParameter
from .images import Image, ImageService

JSON_LIMIT = 16 * 1024 * 1024
V1_CREATED = "0001-01-01T00:00:00Z"


class LoadError(InvalidParameter):
    """An archive that cannot be loaded (400, one line)."""


# ---------------------------------------------------------------------- save
def save(images: ImageService, names: list[str], out: BinaryIO) -> None:
    """Write the images named (references or IDs) as one docker-save tar to `out`."""
    chosen: dict[str, tuple[Image, list[str]]] = {}
    for name in names:
        img = images.resolve(name)
        tags = chosen.setdefault(img.id, (img, []))[1]
        ref = _tag_of(name, img)        # an ID or a digest reference saves no tag
        if ref and ref not in tags:
            tags.append(ref)
    manifest, repositories, written = [], {}, set()
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for img, tags in chosen.values():
            hexid = digest_mod.parse(img.id).encoded
            _add_bytes(tar, f"{hexid}.json", img.raw_config)
            layer_paths = []
            parent_v1 = ""
            for chain in img.chain_ids:
                v1 = digest_mod.parse(chain).encoded
                layer_paths.append(f"{v1}/layer.tar")
                if v1 not in written:
                    written.add(v1)
                    _add_dir(tar, v1)
                    _add_bytes(tar, f"{v1}/VERSION", b"1.0")
                    meta = {"id": v1, "created": V1_CREATED, "container_config": {}}
                    if parent_v1:
                        meta["parent"] = parent_v1
                    _add_bytes(tar, f"{v1}/json", json.dumps(meta).encode())
                    _add_layer(tar, images, chain, f"{v1}/layer.tar")
                parent_v1 = v1
            familiar = [ref_mod.parse_normalized(t).familiar() for t in tags]
            manifest.append({"Config": f"{hexid}.json", "RepoTags": familiar or None,
                             "Layers": layer_paths})
            for t in tags:
                r = ref_mod.parse_normalized(t)
                if layer_paths:
                    repositories.setdefault(r.familiar_name, {})[r.tag] = parent_v1
        _add_bytes(tar, "manifest.json", json.dumps(manifest).encode())
        if repositories:
            _add_bytes(tar, "repositories", json.dumps(repositories).encode())


def _is_id(name: str, img: Image) -> bool:
    bare = name.removeprefix("sha256:")
    return len(bare) <= 64 and img.id.removeprefix("sha256:").startswith(bare) and \
        all(c in "0123456789abcdef" for c in bare)


def _tag_of(name: str, img: Image) -> str | None:
    """The normalised tag a save request names (`busybox` -> docker.io/library/busybox:latest)."""
    if _is_id(name, img):
        return None
    try:
        r = ref_mod.parse_normalized(name)
    except ref_mod.ReferenceError:
        return None
    if r.digest:
        return None
    return str(r.tagged_or_latest())


def _info(name: str, size: int = 0, kind: bytes = tarfile.REGTYPE) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.type, ti.size, ti.mode, ti.mtime = kind, size, 0o644 if kind == tarfile.REGTYPE else 0o755, 0
    return ti


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    tar.addfile(_info(name, len(data)), io.BytesIO(data))


def _add_dir(tar: tarfile.TarFile, name: str) -> None:
    tar.addfile(_info(name, kind=tarfile.DIRTYPE))


class _Full:
    """read(n) that returns n bytes unless at the end (tarfile insists on it)."""

    def __init__(self, raw):
        self.raw = raw

    def read(self, n: int = -1) -> bytes:
        if n < 0:
            return self.raw.read()
        parts, left = [], n
        while left > 0 and (chunk := self.raw.read(left)):
            parts.append(chunk)
            left -= len(chunk)
        return b"".join(parts)


def _add_layer(tar: tarfile.TarFile, images: ImageService, chain: str, name: str) -> None:
    """The layer's tar, uncompressed, from the blob it was registered from; a layer with
    no blob (made on this host) is written from its directory."""
    blob = images.layer_blob(chain)
    if blob is not None:
        size = int(images.layer_meta(chain)["size"])
        with images.blobs.open(blob) as f:
            tar.addfile(_info(name, size), _Full(layers_mod.decompress(f)))
        return
    with tempfile.TemporaryFile(dir=images.root) as tmp:
        result = layers_mod.diff_tar(images.layer_dir(chain), tmp)
        tmp.seek(0)
        tar.addfile(_info(name, result.size), tmp)


# ---------------------------------------------------------------------- load
def _member_name(name: object, what: str) -> str:
    if not isinstance(name, str) or not name:
        raise LoadError(f"invalid archive: {what} is not a path")
    clean = posixpath.normpath(name)
    if name.startswith("/") or clean == ".." or clean.startswith("../") or "\0" in name:
        raise LoadError(f"invalid archive: {what} {name!r} points outside the archive")
    return clean


class _Archive:
    """Random access to the members of a tar file (spooled to disk by the caller)."""

    def __init__(self, fileobj: BinaryIO):
        try:
            self.tar = tarfile.open(fileobj=fileobj, mode="r:*")
            self.members = {posixpath.normpath(m.name.lstrip("/")): m for m in self.tar.getmembers()}
        except (tarfile.TarError, EOFError, OSError, zlib.error) as e:
            reason = "not a tar file" if isinstance(e, tarfile.ReadError) else str(e).splitlines()[0]
            raise LoadError(f"invalid archive: {reason}") from None

    def has(self, name: str) -> bool:
        return name in self.members

    def open(self, name: str, what: str) -> BinaryIO:
        name = _member_name(name, what)
        m = self.members.get(name)
        try:
            f = self.tar.extractfile(m) if m is not None else None
        except (tarfile.TarError, KeyError) as e:
            raise LoadError(f"invalid archive: {what} {name}: {e}") from None
        if f is None:
            raise LoadError(f"invalid archive: {what} {name} is missing or not a file")
        return f

    def read(self, name: str, what: str) -> bytes:
        with self.open(name, what) as f:
            data = f.read(JSON_LIMIT + 1)
        if len(data) > JSON_LIMIT:
            raise LoadError(f"invalid archive: {what} {name} is too large")
        return data

    def json(self, name: str, what: str):
        try:
            return json.loads(self.read(name, what))
        except (ValueError, UnicodeDecodeError) as e:
            raise LoadError(f"invalid archive: {what} {name}: {e}") from None


def load(images: ImageService, fileobj: BinaryIO, say: Callable[[str], None] = lambda s: None) -> list[str]:
    """Load every image in a docker-save tar (or OCI layout tar); returns the lines
    `Loaded image: X` / `Loaded image ID: sha256:...` (also given to `say`)."""
    archive = _Archive(fileobj)
    if archive.has("manifest.json"):
        entries = _docker_entries(archive)
    elif archive.has("index.json"):
        entries = _oci_entries(archive)
    else:
        raise LoadError("invalid archive: no manifest.json or index.json (not a docker save or "
                        "OCI layout tar)")
    added_blobs: list[str] = []
    added_layers: list[str] = []
    done: list[tuple[str, list[str]]] = []
    try:
        for config_raw, layer_names, tags in entries:
            config = _parse_config(config_raw)
            diff_ids = config["rootfs"]["diff_ids"]
            if len(diff_ids) != len(layer_names):
                raise LoadError(f"invalid archive: the config has {len(diff_ids)} layers, "
                                f"the manifest {len(layer_names)}")
            chains = [str(c) for c in manifest_mod.chain_ids(diff_ids)]
            parent = None
            for name, diff_id, chain in zip(layer_names, diff_ids, chains):
                if not images.has_layer(chain):
                    with archive.open(name, "layer") as f:
                        blob = str(images.blobs.ingest(f))
                    if not images.blob_in_use(blob) and blob not in added_blobs:
                        added_blobs.append(blob)
                    try:
                        images.register_blob_layer(blob, parent, diff_id)
                    except (ValueError, InvalidParameter) as e:   # LayerError, a DiffID mismatch
                        raise LoadError(f"invalid archive: layer {name}: {e}") from None
                    added_layers.append(chain)
                parent = chain
            for t in tags:
                ref_mod.parse_normalized(t)            # refuse bad names before changing anything
            done.append((config_raw, tags))
    except BaseException:
        for chain in added_layers:
            shutil.rmtree(images.layer_path(chain), ignore_errors=True)
        for blob in added_blobs:
            images.blobs.delete(blob)
        raise
    lines = []
    for config_raw, tags in done:
        img = images.add_image(config_raw, [])
        for t in tags:
            images.tag(img.id, t)
            lines.append(f"Loaded image: {ref_mod.parse_normalized(t).familiar()}")
        if not tags:
            lines.append(f"Loaded image ID: {img.id}")
    for line in lines:
        say(line)
    return lines


def _parse_config(raw: bytes) -> dict:
    try:
        return manifest_mod.parse_config(raw)
    except manifest_mod.ManifestError as e:
        raise LoadError(f"invalid archive: {e}") from None


def _docker_entries(archive: _Archive):
    doc = archive.json("manifest.json", "manifest")
    if not isinstance(doc, list):
        raise LoadError("invalid archive: manifest.json must be a list")
    out = []
    for i, item in enumerate(doc):
        if not isinstance(item, dict) or not isinstance(item.get("Layers", []), list):
            raise LoadError(f"invalid archive: manifest.json entry {i} is not an image")
        tags = item.get("RepoTags") or []
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise LoadError(f"invalid archive: manifest.json entry {i}: RepoTags must be strings")
        config = archive.read(item.get("Config"), "config")
        out.append((config, [_member_name(n, "layer") for n in item.get("Layers", [])], tags))
    return out


def _oci_entries(archive: _Archive):
    def blob_path(desc: manifest_mod.Descriptor) -> str:
        return f"blobs/{desc.digest.algorithm}/{desc.digest.encoded}"

    def checked(desc: manifest_mod.Descriptor, what: str) -> bytes:
        data = archive.read(blob_path(desc), what)
        if digest_mod.sha256(data) != desc.digest:
            raise LoadError(f"invalid archive: {what} {desc.digest} does not match its digest")
        return data

    try:
        index = manifest_mod.parse_manifest(archive.read("index.json", "index"), manifest_mod.OCI_INDEX)
    except manifest_mod.ManifestError as e:
        raise LoadError(f"invalid archive: index.json: {e}") from None
    if not isinstance(index, manifest_mod.Index):
        raise LoadError("invalid archive: index.json is not an index")
    out = []
    for desc in index.manifests:
        try:
            doc = manifest_mod.parse_manifest(checked(desc, "manifest"), desc.media_type)
            if isinstance(doc, manifest_mod.Index):
                sub = manifest_mod.select_platform(doc)
                doc = manifest_mod.parse_manifest(checked(sub, "manifest"), sub.media_type)
        except manifest_mod.ManifestError as e:
            raise LoadError(f"invalid archive: {e}") from None
        if not isinstance(doc, manifest_mod.Manifest):
            raise LoadError("invalid archive: nested index without a manifest")
        name = desc.annotations.get("io.containerd.image.name") or \
            desc.annotations.get("org.opencontainers.image.ref.name") or ""
        tags = []
        if name:
            try:
                r = ref_mod.parse_normalized(name)
                tags = [str(r.tagged_or_latest())] if not r.digest else []
            except ref_mod.ReferenceError:
                tags = []                              # a bare tag name: no repository to tag
        out.append((checked(doc.config, "config"), [blob_path(d) for d in doc.layers], tags))
    return out

