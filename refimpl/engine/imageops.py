"""What `docker rmi`, `docker images` and `docker history` mean, over the ImageService.

Removal follows dockerd's rules (daemon/images/image_delete.go):
- by reference: that reference is untagged; if it was the repository's last tag, the
  repository's digest references go too; the image itself is deleted only when no
  reference is left. A container using the image blocks untagging its last
  reference unless forced (a dangling image in use is what dockerd avoids);
- by ID: allowed when the image's references all belong to one repository with
  at most one tag (they are all untagged), or with force; an image used by a
  container is kept unless forced.
Deleting reports `{"Untagged": ref}` for each reference removed, then
`{"Deleted": id}` for the image and for each layer chain no longer used.

`containers` is the engine's ContainerService or None; only its
`image_users(image_id) -> [container ids]` is used.
"""
from __future__ import annotations

import re
from datetime import datetime

from ..image import reference as ref_mod
from .errors import Conflict, InvalidParameter, NotFound
from .images import Image, ImageService

ZERO_TIME = "0001-01-01T00:00:00Z"


def _users(containers, image_id: str) -> list[str]:
    if containers is None or not hasattr(containers, "image_users"):
        return []
    return list(containers.image_users(image_id))


def _short(ident: str) -> str:
    return ident.split(":", 1)[-1][:12]


def _ref_key(name: str) -> ref_mod.Reference | None:
    """The normalised reference a name denotes, or None when it names an ID."""
    try:
        parsed = ref_mod.parse_any(name)
    except ref_mod.ReferenceError:
        return None
    if not isinstance(parsed, ref_mod.Reference):
        return None
    if parsed.digest and parsed.tag:
        return ref_mod.Reference(parsed.domain, parsed.path, None, parsed.digest)
    return parsed.tagged_or_latest()


def _is_id_prefix(name: str, image_id: str) -> bool:
    bare = name.removeprefix("sha256:")
    return bool(bare) and image_id.removeprefix("sha256:").startswith(bare)


def _single_repository(refs: list[ref_mod.Reference]) -> bool:
    """dockerd's isSingleReference: one repository, at most one tag."""
    return len({r.name for r in refs}) <= 1 and sum(1 for r in refs if not r.digest) <= 1


def remove(images: ImageService, name: str, *, force: bool = False, prune: bool = True,
           containers=None) -> list[dict]:
    img = images.resolve(name)
    records: list[dict] = []
    refs = [ref_mod.parse_normalized(r) for r in images.refs_of(img.id)]
    refs_before = list(refs)
    key = None if _is_id_prefix(name, img.id) else _ref_key(name)
    if key is not None and str(key) in images.refs:
        users = _users(containers, img.id)
        if not force and users and _single_repository(refs):
            raise Conflict(f'conflict: unable to remove repository reference "{name}" (must force) - '
                           f"container {_short(users[0])} is using its referenced image "
                           f"{_short(img.id)}")
        images.untag(str(key))
        records.append({"Untagged": key.familiar()})
        refs = [r for r in refs if str(r) != str(key)]
        if not key.digest and not any(r.name == key.name and not r.digest for r in refs):
            for r in [r for r in refs if r.digest and r.name == key.name]:
                images.untag(str(r))
                records.append({"Untagged": r.familiar()})
                refs.remove(r)
        if refs:
            return records
    else:
        if refs and not force and not _single_repository(refs):
            raise Conflict(f"conflict: unable to delete {_short(img.id)} (must be forced) - image is "
                           f"referenced in multiple repositories")
        users = _users(containers, img.id)
        if users and not force:
            raise Conflict(f"conflict: unable to delete {_short(img.id)} (must be forced) - image is "
                           f"being used by stopped container {_short(users[0])}")
        for r in refs:
            images.untag(str(r))
            records.append({"Untagged": r.familiar()})
    if _users(containers, img.id):
        return records      # untagged (forced); its layers stay while a container uses them
    freed = images.delete_image(img.id)
    left = {k.rpartition("@")[2] for k in images.refs if "@" in k}
    for r in refs_before:
        if r.digest and str(r.digest) not in left:
            images.blobs.delete(str(r.digest))        # the manifest kept since the pull
    records.append({"Deleted": img.id})
    records.extend({"Deleted": c} for c in reversed(img.chain_ids) if c in freed)
    return records


# ---------------------------------------------------------------------- listing
def parse_time(text: str | None) -> datetime | None:
    """RFC 3339 with up to nanoseconds (Go's time format) -> aware datetime."""
    if not text or not isinstance(text, str):
        return None
    m = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", text)
    if not m:
        return None
    frac = (m.group(2) or "")[:6].ljust(6, "0")
    try:
        return datetime.fromisoformat(f"{m.group(1)}.{frac}{'+00:00' if m.group(3) == 'Z' else m.group(3)}")
    except ValueError:
        return None


def created_unix(img: Image) -> int:
    t = parse_time(img.config.get("created"))
    return int(t.timestamp()) if t and t.year > 1 else 0


def created_text(img: Image) -> str:
    raw = img.config.get("created")
    return raw if parse_time(raw) else ZERO_TIME


def labels(img: Image) -> dict:
    return dict((img.config.get("config") or {}).get("Labels") or {})


FILTERS = ("reference", "dangling", "label", "before", "since")


def _glob(pattern: str) -> re.Pattern:
    """Go's path.Match: `*` and `?` stay within one path element."""
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            j = pattern.find("]", i + 1)
            if j < 0:
                raise InvalidParameter(f"invalid reference filter pattern {pattern!r}")
            body = pattern[i + 1:j]
            out.append("[" + ("^" + body[1:] if body.startswith("^") else body) + "]")
            i = j
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out))


def filter_images(images: ImageService, found: list[Image], filters: dict[str, list[str]]) -> list[Image]:
    for key in filters:
        if key not in FILTERS:
            raise InvalidParameter(f"invalid filter '{key}'")
    out = []
    bounds = {}
    for key in ("before", "since"):
        for value in filters.get(key, []):
            bounds[key] = created_unix(images.resolve(value))
    for img in found:
        if "dangling" in filters:
            for value in filters["dangling"]:
                if value.lower() not in ("true", "false", "1", "0"):
                    raise InvalidParameter(f"Invalid filter 'dangling={value}'")
            want = filters["dangling"][-1].lower() in ("true", "1")
            if want != (not img.repo_tags):
                continue
        if "reference" in filters:
            patterns = [_glob(p) for p in filters["reference"]]
            names = []
            for tag in img.repo_tags + img.repo_digests:
                r = ref_mod.parse_normalized(tag)
                names += [r.familiar(), r.familiar_name]
            if not any(p.fullmatch(n) for p in patterns for n in names):
                continue
        if "label" in filters:
            have = labels(img)
            ok = True
            for want in filters["label"]:
                k, sep, v = want.partition("=")
                if k not in have or (sep and have[k] != v):
                    ok = False
            if not ok:
                continue
        if "before" in bounds and created_unix(img) >= bounds["before"]:
            continue
        if "since" in bounds and created_unix(img) <= bounds["since"]:
            continue
        out.append(img)
    return out


def history(images: ImageService, img: Image) -> list[dict]:
    """One entry per history item, newest first; the newest carries the image's ID and tags."""
    items = img.config.get("history") or []
    if not isinstance(items, list):
        items = []
    sizes = []
    for chain in img.chain_ids:
        try:
            sizes.append(int(images.layer_meta(chain).get("size", 0)))
        except NotFound:
            sizes.append(0)
    layer_sizes = iter(sizes)
    rows = []
    for item in items:
        item = item if isinstance(item, dict) else {}
        size = 0 if item.get("empty_layer") else next(layer_sizes, 0)
        t = parse_time(item.get("created"))
        rows.append({"Id": "<missing>", "Created": int(t.timestamp()) if t and t.year > 1 else 0,
                     "CreatedBy": str(item.get("created_by", "")), "Tags": None, "Size": size,
                     "Comment": str(item.get("comment", ""))})
    if not rows:
        rows.append({"Id": "<missing>", "Created": created_unix(img), "CreatedBy": "", "Tags": None,
                     "Size": images.size(img), "Comment": ""})
    rows.reverse()
    rows[0]["Id"], rows[0]["Tags"] = img.id, list(img.repo_tags) or None
    return rows
