"""Commit: a container's read-write layer becomes a new layer on top of its image.

The container's overlay upper dir is written as a layer tar (refimpl.image.layers
.diff_tar: whiteouts for deletions, opaque markers), kept as a blob (so push and
save give out these bytes) and unpacked as a layer on the image's chain. The
new config starts from the container's configuration, not the image's: what
`run` changed (Env, Cmd, ...) is what the new image runs. `--change` lines are
Dockerfile instructions (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, USER,
VOLUME, WORKDIR, STOPSIGNAL) applied to that config; the history gets one entry
with the author's comment. A running container is frozen while its upper dir
is read unless pause=false.
"""
from __future__ import annotations

import copy
import gzip
import json
import os
import posixpath
import tempfile
from datetime import datetime, timezone

from ..image import layers as layers_mod
from .errors import Conflict, InvalidParameter
from .state import State

CHANGES = {"CMD", "ENTRYPOINT", "ENV", "EXPOSE", "LABEL", "ONBUILD", "USER", "VOLUME", "WORKDIR",
           "STOPSIGNAL", "HEALTHCHECK", "SHELL"}
# The container settings an image keeps (the rest are the run's, not the image's).
IMAGE_KEYS = ("Hostname", "Domainname", "User", "AttachStdin", "AttachStdout", "AttachStderr",
              "ExposedPorts", "Tty", "OpenStdin", "StdinOnce", "Env", "Cmd", "Healthcheck", "Image",
              "Volumes", "WorkingDir", "Entrypoint", "OnBuild", "Labels", "StopSignal", "Shell")


def apply_changes(config: dict, changes: list[str]) -> dict:
    """Apply Dockerfile instructions given as `--change` to a container config (a copy)."""
    from ..build import dockerfile as df
    config = copy.deepcopy(config)
    text = "\n".join(changes)
    try:
        parsed = df.parse(text)
    except df.DockerfileError as e:
        raise InvalidParameter(str(e).replace("Dockerfile parse error", "invalid --change")) from None
    env = {k: v for k, _, v in (e.partition("=") for e in config.get("Env") or [])}
    for ins in parsed.instructions:
        if ins.name not in CHANGES:
            raise InvalidParameter(f"{ins.name.lower()} is not a valid change command")
        exp = (lambda s: df.expand(s, env, parsed.escape)) if ins.name in df.EXPANDS else (lambda s: s)
        if ins.name == "ENV":
            items = list(config.get("Env") or [])
            for k, v in df.pairs(ins.args, parsed.escape):
                k, v = exp(k), exp(v)
                items = [e for e in items if e.partition("=")[0] != k] + [f"{k}={v}"]
            config["Env"] = items
        elif ins.name == "LABEL":
            labels = dict(config.get("Labels") or {})
            labels.update({exp(k): exp(v) for k, v in df.pairs(ins.args, parsed.escape, "LABEL")})
            config["Labels"] = labels
        elif ins.name in ("CMD", "ENTRYPOINT", "SHELL"):
            value = ins.json if ins.json is not None else (config.get("Shell") or ["/bin/sh", "-c"]) + [ins.args]
            config[{"CMD": "Cmd", "ENTRYPOINT": "Entrypoint", "SHELL": "Shell"}[ins.name]] = value
        elif ins.name == "EXPOSE":
            ports = dict(config.get("ExposedPorts") or {})
            for p in df.expand_words(ins.args, env, parsed.escape):
                ports[p if "/" in p else p + "/tcp"] = {}
            config["ExposedPorts"] = ports
        elif ins.name == "VOLUME":
            vols = dict(config.get("Volumes") or {})
            for v in ins.json if ins.json is not None else df.expand_words(ins.args, env, parsed.escape):
                vols[v] = {}
            config["Volumes"] = vols
        elif ins.name == "WORKDIR":
            config["WorkingDir"] = posixpath.join(config.get("WorkingDir") or "/", exp(ins.args))
        elif ins.name == "USER":
            config["User"] = exp(ins.args)
        elif ins.name == "STOPSIGNAL":
            config["StopSignal"] = exp(ins.args)
        elif ins.name == "ONBUILD":
            config["OnBuild"] = list(config.get("OnBuild") or []) + [ins.sub.original]
        elif ins.name == "HEALTHCHECK":
            raise InvalidParameter("HEALTHCHECK is not supported as a --change here")
    return config


def commit(engine, ref: str, *, repo: str = "", tag: str = "", author: str = "", comment: str = "",
           changes: list[str] | None = None, pause: bool = True, config_override: dict | None = None) -> str:
    """Commit container `ref`; returns the new image ID (tagged repo:tag when repo is given)."""
    containers, images = engine.containers, engine.images
    c = containers.get(ref)
    if c.state in (State.REMOVING, State.DEAD):
        raise Conflict(f"You cannot commit container {c.id} which is {c.state.value}")
    if repo:
        from ..image import reference as ref_mod
        ref_mod.parse_normalized(repo if not tag else f"{repo}:{tag}")     # 400 before any work
    base = images.get(c.image_id)
    run_cfg = {k: copy.deepcopy(v) for k, v in c.config.items() if k in IMAGE_KEYS}
    if config_override:
        run_cfg.update({k: v for k, v in config_override.items() if k in IMAGE_KEYS and v is not None})
    run_cfg = apply_changes(run_cfg, changes or [])
    frozen = pause and c.state is State.RUNNING and c.shim is not None
    if frozen:
        c.shim.pause()
    try:
        chains = base.chain_ids
        diff_id = layer_from_dir(images, c.dir / "upper", chains[-1] if chains else None)
    finally:
        if frozen:
            c.shim.resume()
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    config = copy.deepcopy(base.config)
    config.update({"config": run_cfg, "created": now, "container": c.id,
                   "rootfs": {"type": "layers", "diff_ids": base.diff_ids + [diff_id]}})
    if author:
        config["author"] = author
    if comment:
        config["comment"] = comment
    item = {"created": now, "created_by": " ".join([c.path, *c.args])}
    if author:
        item["author"] = author
    if comment:
        item["comment"] = comment
    config["history"] = list(config.get("history") or []) + [item]
    raw = json.dumps(config, separators=(",", ":"), sort_keys=True).encode()
    image_id = str(images.blobs.put(raw))
    images.mark_image(image_id)
    if repo:
        images.tag(image_id, f"{repo}:{tag}" if tag else repo)
    return image_id


def layer_from_dir(images, upper, parent_chain: str | None, mtime: int | None = None) -> str:
    """A directory of changes (an overlay upper dir) → a gzip layer blob in the store, unpacked
    on `parent_chain` and recorded as the layer's blob (what save and push give out). Returns
    the DiffID. gzip without a name or time, so equal trees give equal blobs; with `mtime`
    every timestamp in the tar is that one (reproducible builds)."""
    with tempfile.TemporaryFile(dir=images.root) as tmp:
        with gzip.GzipFile(fileobj=tmp, mode="wb", mtime=0, compresslevel=6) as gz:
            layers_mod.diff_tar(upper, gz, mtime=mtime)
        tmp.seek(0)
        blob = str(images.blobs.ingest(tmp))
    diff_id, _ = images.register_blob_layer(blob, parent_chain)
    return diff_id


def container_config_from_body(raw: bytes) -> dict | None:
    """The optional container config in POST /commit's body."""
    if not raw.strip():
        return None
    try:
        doc = json.loads(raw)
    except ValueError:
        raise InvalidParameter("invalid JSON in the commit body") from None
    return doc if isinstance(doc, dict) else None



# --------------------------------------------------------------------------- export, diff, import
def _container_view(engine, c):
    from ..build.rootfs import RootView
    image = engine.images.get(c.image_id)
    return RootView([str(c.dir / "upper")] + engine.images.layer_dirs(image)), image


def export(engine, ref: str, out) -> None:
    """The container's merged filesystem as one tar (`docker export`), read from its layers."""
    import stat
    import tarfile
    c = engine.containers.get(ref)
    view, _ = _container_view(engine, c)
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        def walk(path: str) -> None:
            for name in view.listdir(path):
                child = posixpath.join(path, name)
                host = view.lookup(child)
                if host is None:
                    continue
                st = os.lstat(host)
                if stat.S_ISSOCK(st.st_mode):
                    continue
                ti = tar.gettarinfo(host, child.lstrip("/"))
                ti.uname = ti.gname = ""
                if ti.isreg():
                    with open(host, "rb") as f:
                        tar.addfile(ti, f)
                else:
                    tar.addfile(ti)
                if stat.S_ISDIR(st.st_mode):
                    walk(child)
        walk("/")


def changes(engine, ref: str) -> list[dict]:
    """`docker diff`: the paths the container changed: Kind 0 modified, 1 added, 2 deleted."""
    import stat
    from ..build.rootfs import RootView
    c = engine.containers.get(ref)
    image = engine.images.get(c.image_id)
    below = RootView(engine.images.layer_dirs(image))
    upper = str(c.dir / "upper")
    out: list[dict] = []

    def walk(rel: str, added: bool) -> None:
        d = os.path.join(upper, rel)
        for name in sorted(os.listdir(d)):
            path = "/" + posixpath.join(rel, name) if rel else "/" + name
            st = os.lstat(os.path.join(d, name))
            if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                out.append({"Path": path, "Kind": 2})
                continue
            if path in ("/etc/hosts", "/etc/hostname", "/etc/resolv.conf"):
                continue            # the engine's own files, bind-mounted over the image's
            new = added or below.lookup(path) is None
            out.append({"Path": path, "Kind": 1 if new else 0})
            if stat.S_ISDIR(st.st_mode):
                walk(posixpath.join(rel, name), new)

    walk("", False)
    return out


def import_image(engine, stream, *, repo: str = "", tag: str = "", message: str = "",
                 changes_: list[str] | None = None) -> str:
    """`docker import`: a tar (plain or compressed) becomes a one-layer image."""
    from ..image import layers as lm
    images = engine.images
    if repo:
        from ..image import reference as ref_mod
        ref_mod.parse_normalized(repo if not tag else f"{repo}:{tag}")
    blob = str(images.blobs.ingest(stream))
    try:
        diff_id, _ = images.register_blob_layer(blob, None)
    except lm.LayerError as e:
        if not images.blob_in_use(blob):
            images.blobs.delete(blob)
        raise InvalidParameter(f"invalid tar archive for import: {e}") from None
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    run_cfg = apply_changes({}, changes_ or [])
    config = {"architecture": "amd64", "os": "linux", "created": now, "config": run_cfg,
              "rootfs": {"type": "layers", "diff_ids": [diff_id]},
              "history": [{"created": now, "comment": message or "Imported from -"}]}
    if message:
        config["comment"] = message
    image_id = str(images.blobs.put(json.dumps(config, separators=(",", ":"), sort_keys=True).encode()))
    images.mark_image(image_id)
    if repo:
        images.tag(image_id, f"{repo}:{tag}" if tag else repo)
    return image_id
