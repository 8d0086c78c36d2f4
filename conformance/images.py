"""Offline test images, built reproducibly and pushed to a local registry.

No image can be pulled from Docker Hub here, so the suite makes its own:

* `busybox`: Debian's busybox-static with every applet linked, `CMD ["sh"]` and
  `PATH` set, in two layers (the binary and its links; then /etc and the usual
  directories) so that layer sharing is observable.
* `debian`: a debootstrap minbase of bookworm (bash included), one layer; the
  root file system is cached between runs under $DOCKSPEC_CACHE.

Reproducible: the same inputs give the same digests. Tar entries are sorted,
owned by 0:0 unless the file says otherwise, mtimes clamped to EPOCH, gzip
headers carry no name or time, and image configs carry no `created` stamps.

Images are pushed with a small Docker Registry HTTP API v2 client so that the
suite depends on no engine to get its images in place.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import stat
import subprocess
import tarfile
import urllib.request
import urllib.error
from dataclasses import dataclass
from pathlib import Path

EPOCH = 0  # every mtime in every layer
CACHE = Path(os.environ.get("DOCKSPEC_CACHE", "/var/cache/dockspec"))
DEBIAN_SUITE = "bookworm"
DEBIAN_MIRROR = os.environ.get("DOCKSPEC_DEBIAN_MIRROR", "http://deb.debian.org/debian")
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

MT_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MT_CONFIG = "application/vnd.docker.container.image.v1+json"
MT_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"


class ImageError(RuntimeError):
    """An image could not be built or pushed; the message is one line."""


@dataclass
class Built:
    """An image ready to push: blobs by digest and its manifest bytes."""
    name: str
    manifest: bytes
    config: bytes
    layers: list[bytes]

    @property
    def digest(self) -> str:
        return "sha256:" + hashlib.sha256(self.manifest).hexdigest()

    @property
    def image_id(self) -> str:
        return "sha256:" + hashlib.sha256(self.config).hexdigest()


# --------------------------------------------------------------------------- tar

def _tarinfo(name: str, kind: bytes, mode: int, size: int = 0, linkname: str = "",
             uid: int = 0, gid: int = 0) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.type, ti.mode, ti.size, ti.linkname = kind, mode, size, linkname
    ti.uid, ti.gid, ti.uname, ti.gname, ti.mtime = uid, gid, "", "", EPOCH
    return ti


class LayerWriter:
    """Collects entries, then writes them sorted into a deterministic tar."""

    def __init__(self) -> None:
        self.entries: dict[str, tuple[tarfile.TarInfo, bytes | None]] = {}

    def dir(self, path: str, mode: int = 0o755) -> None:
        parts = path.strip("/").split("/")
        for i in range(1, len(parts) + 1):
            p = "/".join(parts[:i])
            if p not in self.entries:
                self.entries[p] = (_tarinfo(p, tarfile.DIRTYPE, mode if i == len(parts) else 0o755), None)
        if path.strip("/") in self.entries:
            self.entries[path.strip("/")][0].mode = mode

    def file(self, path: str, data: bytes, mode: int = 0o644) -> None:
        path = path.strip("/")
        if "/" in path:
            self.dir(path.rsplit("/", 1)[0])
        self.entries[path] = (_tarinfo(path, tarfile.REGTYPE, mode, len(data)), data)

    def symlink(self, path: str, target: str) -> None:
        path = path.strip("/")
        if "/" in path:
            self.dir(path.rsplit("/", 1)[0])
        self.entries[path] = (_tarinfo(path, tarfile.SYMTYPE, 0o777, linkname=target), None)

    def tree(self, root: Path) -> None:
        """Add a whole directory tree (owners, modes, links kept; mtimes clamped)."""
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for name in sorted(dirnames) + sorted(filenames):
                full = Path(dirpath) / name
                rel = str(full.relative_to(root))
                st = full.lstat()
                mode = stat.S_IMODE(st.st_mode)
                if stat.S_ISDIR(st.st_mode):
                    ti = _tarinfo(rel, tarfile.DIRTYPE, mode, uid=st.st_uid, gid=st.st_gid)
                    self.entries[rel] = (ti, None)
                elif stat.S_ISLNK(st.st_mode):
                    ti = _tarinfo(rel, tarfile.SYMTYPE, mode, linkname=os.readlink(full),
                                  uid=st.st_uid, gid=st.st_gid)
                    self.entries[rel] = (ti, None)
                elif stat.S_ISREG(st.st_mode):
                    data = full.read_bytes()
                    ti = _tarinfo(rel, tarfile.REGTYPE, mode, len(data), uid=st.st_uid, gid=st.st_gid)
                    self.entries[rel] = (ti, data)
                # devices, fifos and sockets are not part of an image layer

    def tar(self) -> bytes:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
            for name in sorted(self.entries):
                ti, data = self.entries[name]
                tf.addfile(ti, io.BytesIO(data) if data is not None else None)
        return buf.getvalue()


def gzip_bytes(data: bytes) -> bytes:
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=6) as gz:
        gz.write(data)
    return buf.getvalue()


def assemble(name: str, layers: list[tuple[bytes, str]], config: dict) -> Built:
    """Uncompressed layer tars (with their history line) + config → a schema 2 image."""
    diff_ids, blobs, history = [], [], []
    for tar, created_by in layers:
        diff_ids.append("sha256:" + hashlib.sha256(tar).hexdigest())
        blobs.append(gzip_bytes(tar))
        history.append({"created_by": created_by})
    full = {"architecture": "amd64", "os": "linux", "config": config,
            "rootfs": {"type": "layers", "diff_ids": diff_ids}, "history": history}
    config_bytes = json.dumps(full, sort_keys=True, separators=(",", ":")).encode()
    manifest = {
        "schemaVersion": 2, "mediaType": MT_MANIFEST,
        "config": {"mediaType": MT_CONFIG, "size": len(config_bytes),
                   "digest": "sha256:" + hashlib.sha256(config_bytes).hexdigest()},
        "layers": [{"mediaType": MT_LAYER, "size": len(b),
                    "digest": "sha256:" + hashlib.sha256(b).hexdigest()} for b in blobs],
    }
    return Built(name, json.dumps(manifest, indent=3).encode(), config_bytes, blobs)


# --------------------------------------------------------------------------- busybox

BUSYBOX = Path("/bin/busybox")

ETC_FILES = {
    "etc/passwd": "root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1:daemon:/usr/sbin:/bin/false\n"
                  "nobody:x:65534:65534:nobody:/home:/bin/false\n",
    "etc/group": "root:x:0:\ndaemon:x:1:\nnogroup:x:65534:\n",
    "etc/shadow": "root:*:10933:0:99999:7:::\n",
}


def build_busybox(busybox: Path = BUSYBOX) -> Built:
    if not busybox.exists():
        raise ImageError(f"{busybox} is missing: install Debian's busybox-static (scripts/bootstrap)")
    applets = subprocess.run([str(busybox), "--list-full"], capture_output=True, text=True,
                             check=True).stdout.split()
    bin_layer = LayerWriter()
    bin_layer.file("bin/busybox", busybox.read_bytes(), 0o755)
    for path in applets:
        if path != "bin/busybox":
            bin_layer.symlink(path, "/bin/busybox")
    etc_layer = LayerWriter()
    for path, text in ETC_FILES.items():
        etc_layer.file(path, text.encode(), 0o640 if path.endswith("shadow") else 0o644)
    for d, mode in [("tmp", 0o1777), ("root", 0o700), ("home", 0o755), ("var/tmp", 0o1777),
                    ("var/log", 0o755), ("proc", 0o755), ("sys", 0o755), ("dev", 0o755)]:
        etc_layer.dir(d, mode)
    config = {"Env": [PATH_ENV], "Cmd": ["sh"]}
    return assemble("busybox", [
        (bin_layer.tar(), "COPY busybox-static with every applet linked /bin"),
        (etc_layer.tar(), "COPY /etc and the usual directories /"),
    ], config)


# --------------------------------------------------------------------------- debian

def debian_rootfs() -> Path:
    """A debootstrap minbase root file system, cached between runs."""
    root = CACHE / f"debian-{DEBIAN_SUITE}-minbase"
    if (root / ".complete").exists():
        return root
    if shutil.which("debootstrap") is None:
        raise ImageError("debootstrap is not installed (run scripts/bootstrap)")
    tmp = root.with_name(root.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.parent.mkdir(parents=True, exist_ok=True)
    res = subprocess.run(["debootstrap", "--variant=minbase", DEBIAN_SUITE, str(tmp), DEBIAN_MIRROR],
                         capture_output=True, text=True)
    if res.returncode != 0:
        last = (res.stderr or res.stdout).strip().splitlines()[-1:] or ["(no output)"]
        raise ImageError(f"debootstrap failed: {last[0]}")
    # Trim what a container image does not carry: apt lists, caches, logs.
    for sub in ("var/cache/apt", "var/lib/apt/lists", "var/log", "var/cache/debconf"):
        shutil.rmtree(tmp / sub, ignore_errors=True)
        (tmp / sub).mkdir(parents=True, exist_ok=True)
    (tmp / ".complete").touch()
    shutil.rmtree(root, ignore_errors=True)
    tmp.rename(root)
    return root


def build_debian(marker: str | None = None) -> Built:
    """The Debian image; with `marker`, its layer also holds /etc/dockspec-marker with that
    text, so that its digests are unlike any other build's (a store that already has the
    plain image's layer cannot skip downloading this one)."""
    root = debian_rootfs()
    layer = LayerWriter()
    layer.tree(root)
    layer.entries.pop(".complete", None)
    if marker is not None:
        layer.file("etc/dockspec-marker", f"{marker}\n".encode())
    for dev in [n for n in layer.entries if n.startswith("dev/")]:
        del layer.entries[dev]
    config = {"Env": [PATH_ENV], "Cmd": ["bash"]}
    return assemble("debian", [(layer.tar(), f"debootstrap --variant=minbase {DEBIAN_SUITE}")], config)


BUILDERS = {"busybox": build_busybox, "debian": build_debian}


# --------------------------------------------------------------------------- push

def _request(method: str, url: str, data: bytes | None = None, headers: dict | None = None):
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        return urllib.request.urlopen(req, timeout=120)
    except urllib.error.HTTPError as e:
        if method == "HEAD" and e.code == 404:
            return None
        body = e.read()[:200].decode(errors="replace").strip()
        raise ImageError(f"{method} {url}: HTTP {e.code} {body}") from None
    except urllib.error.URLError as e:
        raise ImageError(f"{method} {url}: {e.reason}") from None


def push(built: Built, registry: str, repo: str, tag: str = "latest") -> str:
    """Push blobs (skipping those present) and the manifest; returns the manifest digest."""
    base = f"http://{registry}/v2/{repo}"
    for blob in [built.config, *built.layers]:
        digest = "sha256:" + hashlib.sha256(blob).hexdigest()
        if _request("HEAD", f"{base}/blobs/{digest}") is not None:
            continue
        loc = _request("POST", f"{base}/blobs/uploads/", b"").headers["Location"]
        if loc.startswith("/"):
            loc = f"http://{registry}{loc}"
        sep = "&" if "?" in loc else "?"
        _request("PUT", f"{loc}{sep}digest={digest}", blob,
                 {"Content-Type": "application/octet-stream"})
    resp = _request("PUT", f"{base}/manifests/{tag}", built.manifest, {"Content-Type": MT_MANIFEST})
    got = resp.headers.get("Docker-Content-Digest", built.digest)
    if got != built.digest:
        raise ImageError(f"registry stored manifest {got}, expected {built.digest}")
    return built.digest


def publish(registry: str, prefix: str = "dockspec", names: list[str] | None = None) -> dict[str, dict]:
    """Build and push each image; returns {name: {"ref", "digest", "id"}}."""
    out = {}
    for name in names or list(BUILDERS):
        built = BUILDERS[name]()
        repo = f"{prefix}/{name}" if prefix else name
        digest = push(built, registry, repo)
        out[name] = {"ref": f"{registry}/{repo}:latest", "repo": f"{registry}/{repo}",
                     "digest": digest, "id": built.image_id}
    return out
