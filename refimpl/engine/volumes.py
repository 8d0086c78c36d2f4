"""Volumes: the `local` driver's named and anonymous volumes, and the mounts a container asks for.

A volume is a directory ``<data-root>/volumes/<name>/_data`` plus its record
``<data-root>/volumes/<name>/volume.json`` (driver, labels, options, creation
time), as Docker lays them out. An anonymous volume is an ordinary volume with a
64-hex name and the label ``com.docker.volume.anonymous``; `rm -v` and `--rm`
remove those of a container, never named ones.

`plan_mounts` turns a create request's three ways of asking for storage
(``HostConfig.Binds`` ``src:dst[:mode]``, ``HostConfig.Mounts`` objects and
``Config.Volumes`` — the `-v /path` form and the image's VOLUME — plus
``HostConfig.VolumesFrom``) into one list of mount points in the shape of
inspect's ``Mounts``, creating the volumes it names. The container keeps that
list; at start each point becomes a bind of the volume's `_data` (or of the host
path, or a tmpfs).

Copy-up: the first time an empty volume is mounted over a directory that holds
something in the image, the image's content is copied into it (Docker's
"populate volume"). The container's root is not mounted then, so the merged view
is read through the layers as `docker cp` reads it (engine/copyout.resolve).

Any other driver is a plugin (engine/volume_plugins.py): the record is ours,
the data and its mount point are the plugin's, asked for at each start
(`VolumeDriver.Mount`) and given back when the container stops (`Unmount`).
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import stat
from pathlib import Path

from . import copyout, persist, volume_plugins
from .container_config import now_rfc3339, parse_filters, label_matches
from .errors import Conflict, EngineError, InvalidParameter, NotFound

ANON_LABEL = "com.docker.volume.anonymous"
# moby volume/local: `validName = regexp.MustCompile("^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")`
NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]+")
BIND_MODES = {"ro", "rw", "z", "Z", "private", "rprivate", "shared", "rshared", "slave", "rslave",
              "nocopy"}


class VolumeService:
    def __init__(self, data_root: str | os.PathLike, plugin_dirs: list[str] | None = None):
        self.root = Path(data_root) / "volumes"
        self.root.mkdir(parents=True, exist_ok=True)
        self.users = lambda name: []        # container IDs using a volume (set by the containers)
        self.plugin_dirs = plugin_dirs if plugin_dirs is not None else volume_plugins.plugin_dirs(None)
        self._plugins: dict[str, volume_plugins.Plugin] = {}

    def plugin(self, driver: str) -> volume_plugins.Plugin:
        if driver not in self._plugins:
            self._plugins[driver] = volume_plugins.find(driver, self.plugin_dirs)
        return self._plugins[driver]

    # --- records --------------------------------------------------------------------------
    def _record(self, name: str) -> dict | None:
        if not NAME.fullmatch(name or ""):
            return None
        return persist.read_json(self.root / name / "volume.json")

    def mountpoint(self, name: str) -> str:
        """Where the volume's data is: a plugin is asked (`VolumeDriver.Path`), as dockerd asks it
        for inspect; when it cannot say, the mount point it gave last."""
        rec = self._record(name) or {}
        if rec.get("Driver", "local") != "local":
            try:
                path = self.plugin(rec["Driver"]).call("VolumeDriver.Path", {"Name": name}).get("Mountpoint")
            except EngineError:
                path = None
            return path if isinstance(path, str) and path.startswith("/") else rec.get("Mountpoint") or ""
        return str(self.root / name / "_data")

    def mount(self, name: str, container_id: str) -> str:
        """Where a container's mount of the volume comes from (a plugin mounts it now)."""
        rec = self._record(name) or {}
        if rec.get("Driver", "local") == "local":
            return self.mountpoint(name)
        point = self.plugin(rec["Driver"]).call("VolumeDriver.Mount", {"Name": name, "ID": container_id})
        path = point.get("Mountpoint") or ""
        if not path.startswith("/"):
            raise InvalidParameter(f"VolumeDriver.Mount: the plugin gave no absolute mount point for {name}")
        rec["Mountpoint"] = path
        persist.write_json(self.root / name / "volume.json", rec)
        return path

    def unmount(self, name: str, container_id: str) -> None:
        rec = self._record(name) or {}
        if rec.get("Driver", "local") != "local":
            self.plugin(rec["Driver"]).call("VolumeDriver.Unmount", {"Name": name, "ID": container_id})

    def exists(self, name: str) -> bool:
        return self._record(name) is not None

    def create(self, name: str | None = None, driver: str | None = None, labels: dict | None = None,
               options: dict | None = None) -> dict:
        driver = driver or "local"
        if options and driver == "local":
            raise InvalidParameter(f"invalid option: {sorted(options)[0]!r}: "
                                   "the local driver here takes no options")
        anonymous = not name
        name = name or secrets.token_hex(32)
        if not NAME.fullmatch(name):
            raise InvalidParameter(f"create {name}: \"{name}\" includes invalid characters for a local "
                                   "volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you "
                                   "intended to pass a host directory, use absolute path")
        if self.exists(name):
            return self.inspect(name)
        labels = dict(labels or {})
        if anonymous:
            labels[ANON_LABEL] = ""
        if driver != "local":
            self.plugin(driver).call("VolumeDriver.Create", {"Name": name, "Opts": options or {}})
            (self.root / name).mkdir(parents=True, exist_ok=True)
        else:
            (self.root / name / "_data").mkdir(parents=True, exist_ok=True)
        persist.write_json(self.root / name / "volume.json",
                           {"Name": name, "Driver": driver, "Labels": labels, "Options": options or None,
                            "CreatedAt": now_rfc3339()})
        return self.inspect(name)

    def inspect(self, name: str) -> dict:
        rec = self._record(name)
        if rec is None:
            raise NotFound(f"get {name}: no such volume")
        return {"CreatedAt": rec["CreatedAt"], "Driver": rec["Driver"], "Labels": rec["Labels"] or None,
                "Mountpoint": self.mountpoint(name), "Name": name, "Options": rec.get("Options"),
                "Scope": "local"}

    def names(self) -> list[str]:
        return sorted(d.name for d in self.root.iterdir() if self._record(d.name))

    def list(self, filters: str | None = None) -> dict:
        f = parse_filters(filters, ("name", "driver", "label", "dangling"))
        out = []
        for name in self.names():
            v = self.inspect(name)
            if not self._matches(v, f):
                continue
            out.append(v)
        return {"Volumes": out, "Warnings": None}

    def _matches(self, v: dict, f: dict) -> bool:
        if "name" in f and not any(n in v["Name"] for n in f["name"]):
            return False
        if "driver" in f and v["Driver"] not in f["driver"]:
            return False
        if not all(label_matches(v["Labels"] or {}, lab) for lab in f.get("label", [])):
            return False
        for d in f.get("dangling", []):
            if d.lower() not in ("true", "false", "1", "0"):
                raise InvalidParameter(f"invalid filter 'dangling={d}'")
            if (d.lower() in ("true", "1")) == bool(self.users(v["Name"])):
                return False
        return True

    def remove(self, name: str, force: bool = False) -> None:
        if self._record(name) is None:
            if force:
                return
            raise NotFound(f"get {name}: no such volume")
        users = self.users(name)
        if users:
            raise Conflict(f"remove {name}: volume is in use - [{', '.join(users)}]")
        self._delete(name)

    def _delete(self, name: str) -> None:
        rec = self._record(name) or {}
        if rec.get("Driver", "local") != "local":
            try:
                self.plugin(rec["Driver"]).call("VolumeDriver.Remove", {"Name": name})
            except NotFound:
                pass                         # the plugin is gone: forget the volume all the same
        shutil.rmtree(self.root / name)

    def prune(self, filters: str | None = None) -> dict:
        """Unused volumes; only anonymous ones unless `all=true` (API 1.42+)."""
        f = parse_filters(filters, ("label", "all"))
        every = any(v.lower() in ("true", "1") for v in f.pop("all", []))
        deleted, reclaimed = [], 0
        for name in self.names():
            v = self.inspect(name)
            if self.users(name) or not (every or ANON_LABEL in (v["Labels"] or {})):
                continue
            if not all(label_matches(v["Labels"] or {}, lab) for lab in f.get("label", [])):
                continue
            reclaimed += _du(self.root / name / "_data")
            try:
                self._delete(name)
            except EngineError:
                continue
            deleted.append(name)
        return {"VolumesDeleted": deleted or None, "SpaceReclaimed": reclaimed}

    def size(self, name: str) -> int:
        return _du(self.root / name / "_data")

    # --- a container's mount points ----------------------------------------------------------
    def plan_mounts(self, host: dict, config_volumes: dict | None, volumes_from: list[dict]) -> list[dict]:
        """Mount points (inspect's `Mounts` shape, plus `CopyUp`) for a container being created.

        Everything is validated before any volume is created, so a bad request leaves nothing.
        `volumes_from` holds (mount points, mode) of each `--volumes-from` container."""
        points: dict[str, dict] = {}

        def add(p: dict) -> None:
            if p["Destination"] in points:
                raise InvalidParameter(f"Duplicate mount point: {p['Destination']}")
            points[p["Destination"]] = p

        for bind in host.get("Binds") or []:
            add(parse_bind(bind))
        for m in host.get("Mounts") or []:
            add(parse_mount(m))
        for dst, opts in (host.get("Tmpfs") or {}).items():
            add(_point("tmpfs", "", _abs(dst, dst), True, options=opts or ""))
        for mounts, mode in volumes_from:
            for m in mounts:
                if m["Destination"] not in points:
                    p = dict(m, CopyUp=False)
                    if mode in ("ro", "rw"):
                        p["RW"] = mode == "rw"
                        p["Mode"] = mode if m["Type"] == "volume" else p["Mode"]
                    points[m["Destination"]] = p
        for dst in config_volumes or {}:
            dst = _abs(dst, dst)
            if dst not in points:
                points[dst] = _point("volume", "", dst, True, mode="", copy=True)
        for p in points.values():
            if p["Type"] == "volume":
                driver = p.pop("WantDriver", "") or host.get("VolumeDriver") or "local"
                if p["Name"] and self.exists(p["Name"]):
                    driver = self.inspect(p["Name"])["Driver"]
                p["Name"] = self.create(p["Name"] or None, driver)["Name"]
                p["Driver"] = driver
                p["Source"] = self.mountpoint(p["Name"])
        return sorted(points.values(), key=lambda p: (p["Destination"].count("/"), p["Destination"]))

    def copy_up(self, source: str, layers: list[str], dest: str) -> None:
        """Fill an empty volume (mounted at `source`) with what the image holds at `dest`
        (merged through `layers`)."""
        data = Path(source)
        if not data.is_dir() or any(data.iterdir()):
            return
        found = copyout.resolve(layers, copyout.split(dest))
        if not found or not stat.S_ISDIR(os.lstat(found[0]).st_mode):
            return
        _copy_merged(found, str(data))
        _copy_meta(found[0], str(data))


def _point(kind: str, source: str, dst: str, rw: bool, *, name: str = "", mode: str = "",
           copy: bool = False, options: str = "") -> dict:
    p = {"Type": kind, "Source": source, "Destination": dst, "Mode": mode, "RW": rw,
         "Propagation": "rprivate" if kind == "bind" else ""}
    if kind == "volume":
        p.update(Name=name, Driver="local", CopyUp=copy)
    if kind == "tmpfs":
        p["Options"] = options
    return p


def _abs(path: str, spec: str) -> str:
    if not path.startswith("/"):
        raise InvalidParameter(f"invalid volume specification: '{spec}': "
                               "invalid mount config: mount path must be absolute")
    return os.path.normpath(path)


def parse_bind(bind: str) -> dict:
    """`-v` / HostConfig.Binds: `SRC:DST[:MODE]`; SRC is a host path (bind) or a volume name."""
    parts = bind.split(":")
    if len(parts) not in (2, 3) or not all(parts[:2]):
        raise InvalidParameter(f"invalid volume specification: '{bind}'")
    src, dst = parts[0], _abs(parts[1], bind)
    mode = parts[2] if len(parts) == 3 else ""
    flags = set(mode.split(",")) - {""}
    if not flags <= BIND_MODES or len(flags & {"ro", "rw"}) > 1:
        raise InvalidParameter(f"invalid mode: {mode}")
    rw = "ro" not in flags
    if src.startswith("/"):
        return _point("bind", os.path.normpath(src), dst, rw, mode=mode)
    if not NAME.fullmatch(src):
        raise InvalidParameter(f"create {src}: \"{src}\" includes invalid characters for a local volume "
                               "name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended "
                               "to pass a host directory, use absolute path")
    return _point("volume", "", dst, rw, name=src, mode=mode or "z", copy="nocopy" not in flags)


def parse_mount(m) -> dict:
    """One HostConfig.Mounts object (`--mount type=...`)."""
    if not isinstance(m, dict):
        raise InvalidParameter("invalid mount config: a mount must be an object")
    kind, src, dst = m.get("Type") or "", m.get("Source") or "", m.get("Target") or ""
    if not dst:
        raise InvalidParameter("invalid mount config: Target must not be empty")
    dst = _abs(dst, dst)
    rw = not m.get("ReadOnly")
    if kind == "bind":
        if not src:
            raise InvalidParameter("invalid mount config for type \"bind\": field Source must not be empty")
        if not os.path.isabs(src):
            raise InvalidParameter(f"invalid mount config for type \"bind\": invalid mount path: '{src}' "
                                   "mount path must be absolute")
        if not os.path.exists(src):
            raise InvalidParameter(f"invalid mount config for type \"bind\": bind source path does not "
                                   f"exist: {src}")
        return _point("bind", os.path.normpath(src), dst, rw)
    if kind == "volume":
        if src and not NAME.fullmatch(src):
            raise InvalidParameter(f"invalid mount config for type \"volume\": invalid volume name {src!r}")
        nocopy = bool((m.get("VolumeOptions") or {}).get("NoCopy"))
        p = _point("volume", "", dst, rw, name=src, mode="z", copy=not nocopy)
        p["WantDriver"] = ((m.get("VolumeOptions") or {}).get("DriverConfig") or {}).get("Name") or ""
        return p
    if kind == "tmpfs":
        if src:
            raise InvalidParameter("invalid mount config for type \"tmpfs\": field Source must not be "
                                   "specified")
        t = m.get("TmpfsOptions") or {}
        opts = []
        if t.get("SizeBytes"):
            opts.append(f"size={int(t['SizeBytes'])}")
        if t.get("Mode"):
            opts.append(f"mode={int(t['Mode']):o}")
        return _point("tmpfs", "", dst, rw, options=",".join(opts))
    raise InvalidParameter(f"invalid mount config: mount type unknown: {kind!r}")


def parse_volumes_from(spec: str) -> tuple[str, str]:
    """`CONTAINER[:ro|rw]` -> (container, mode)."""
    ref, _, mode = spec.partition(":")
    if not ref or mode not in ("", "ro", "rw"):
        raise InvalidParameter(f"invalid mode for volumes-from: {mode or spec}")
    return ref, mode


def _copy_merged(found: list[str], dest: str) -> None:
    names: list[str] = []
    for d in found:
        try:
            names += [n for n in os.listdir(d) if n not in names]
        except OSError:
            pass
    for n in sorted(names):
        child = copyout.resolve(found, [n])
        if not child:
            continue
        src, dst = child[0], os.path.join(dest, n)
        st = os.lstat(src)
        if stat.S_ISDIR(st.st_mode):
            os.mkdir(dst)
            _copy_merged(child, dst)
        elif stat.S_ISLNK(st.st_mode):
            os.symlink(os.readlink(src), dst)
        elif stat.S_ISREG(st.st_mode):
            shutil.copyfile(src, dst, follow_symlinks=False)
        else:
            continue                        # devices, fifos, sockets: not copied
        _copy_meta(src, dst)


def _copy_meta(src: str, dst: str) -> None:
    st = os.lstat(src)
    os.lchown(dst, st.st_uid, st.st_gid)
    if not stat.S_ISLNK(st.st_mode):
        os.chmod(dst, stat.S_IMODE(st.st_mode))
    os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)


def _du(path: Path) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(root, f)).st_size
            except OSError:
                pass
    return total
