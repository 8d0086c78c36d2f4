"""cp: files between a container and the host, as tar archives through
`GET`/`PUT`/`HEAD /containers/{id}/archive?path=`.

The archive's top entry is named after the source; docker's rule for the
destination decides its final name: into an existing directory it keeps its name,
otherwise it takes the destination's name. Extraction uses tarfile's `tar`
filter, so an archive cannot write outside the destination (symbolic links are kept as they are).
"""
from __future__ import annotations

import base64
import io
import json
import os
import posixpath
import shutil
import sys
import tarfile
import tempfile

from .client import CLIError, Client, DaemonError, quote_name


def split_arg(arg: str) -> tuple[str | None, str]:
    """`CONTAINER:PATH` or a local path (a path starting with / or . is local)."""
    if arg.startswith(("/", ".")) or ":" not in arg:
        return None, arg
    c, _, p = arg.partition(":")
    return c, p


def _rename_top(data: bytes, new: str) -> bytes:
    """Rename the archive's top entry (and everything under it) to `new`."""
    src = tarfile.open(fileobj=io.BytesIO(data))
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as dst:
        for m in src.getmembers():
            head, sep, rest = m.name.partition("/")
            m.name = new + sep + rest
            dst.addfile(m, src.extractfile(m) if m.isreg() else None)
    return out.getvalue()


def copy_from(cli: Client, container: str, path: str, dest: str) -> None:
    resp = cli.open("GET", f"/containers/{quote_name(container)}/archive", {"path": path})
    data = resp.read()
    if dest == "-":
        sys.stdout.buffer.write(data)
        return
    if os.path.isdir(dest):
        target = dest
    else:
        if dest.endswith("/"):
            raise CLIError(f"destination directory {dest} does not exist")
        target = os.path.dirname(os.path.abspath(dest))
        if not os.path.isdir(target):
            raise CLIError(f"destination directory {target} does not exist")
        data = _rename_top(data, os.path.basename(dest))
    with tempfile.TemporaryDirectory(dir=target, prefix=".cp-") as tmp:
        try:
            with tarfile.open(fileobj=io.BytesIO(data)) as tar:
                tar.extractall(tmp, filter="tar")
        except tarfile.TarError as e:
            raise CLIError(f"copy failed: {e}") from None
        for name in os.listdir(tmp):
            final = os.path.join(target, name)
            if os.path.isdir(final) and os.path.isdir(os.path.join(tmp, name)):
                shutil.copytree(os.path.join(tmp, name), final, dirs_exist_ok=True, symlinks=True)
            else:
                os.replace(os.path.join(tmp, name), final)


def _stat(cli: Client, container: str, path: str) -> dict | None:
    try:
        r = cli.open("HEAD", f"/containers/{quote_name(container)}/archive", {"path": path})
    except DaemonError as e:
        if e.code == 404 and "no such container" not in e.message.lower():
            return None
        raise
    header = r.getheader("X-Docker-Container-Path-Stat")
    return json.loads(base64.b64decode(header)) if header else {}


def copy_to(cli: Client, src: str, container: str, path: str) -> None:
    if src == "-":
        data, target = sys.stdin.buffer.read(), path
    else:
        if not os.path.lexists(src):
            raise CLIError(f"lstat {src}: no such file or directory")
        st = _stat(cli, container, path)
        is_dir = bool(st) and bool(st.get("mode", 0) & (1 << 31))   # Go's os.ModeDir
        if st is None and path.endswith("/"):
            raise CLIError(f"Error response from daemon: Could not find the file {path} in container {container}")
        name = os.path.basename(os.path.normpath(src)) if is_dir else posixpath.basename(path.rstrip("/"))
        target = path if is_dir else (posixpath.dirname(path.rstrip("/")) or "/")
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            tar.add(src, arcname=name)
        data = buf.getvalue()
    cli.open("PUT", f"/containers/{quote_name(container)}/archive", {"path": target}, body=data,
             headers={"Content-Type": "application/x-tar"}).read()


def cmd_cp(cli: Client, a) -> int:
    (sc, sp), (dc, dp) = split_arg(a.src), split_arg(a.dest)
    if sc and dc:
        raise CLIError("copying between containers is not supported")
    if not sc and not dc:
        raise CLIError("must specify at least one container source")
    if sc:
        copy_from(cli, sc, sp, dp)
    else:
        copy_to(cli, sp, dc, dp)
    return 0


def register(sub, parser) -> None:
    p = parser(sub, "cp", cmd_cp, "Copy files/folders between a container and the local filesystem")
    p.add_argument("src")
    p.add_argument("dest")
    p.add_argument("-a", "--archive", action="store_true")
    p.add_argument("-L", "--follow-link", action="store_true")
