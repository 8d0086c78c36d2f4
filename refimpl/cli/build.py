"""Build and commit: `refimpl build` (the classic builder's API), `commit`, and the container
filesystem commands beside them: `export`, `import`, `diff`.

`build` sends the context directory as a tar, with .dockerignore applied on this
side as the docker CLI does (the Dockerfile and .dockerignore are always sent);
a Dockerfile from outside the context travels in the tar under a random name.
The daemon's `stream` lines are printed as they come; its `errorDetail` ends the
command with the error's code (a failing RUN's exit status), `-q` prints only
the image ID.
"""
from __future__ import annotations

import io
import json
import os
import secrets
import sys
import tarfile
import tempfile

from refimpl.build import context as ctx_mod

from .client import CLIError, Client, json_stream


def _pairs(items: list[str] | None, what: str, from_env: bool = False) -> dict:
    out: dict = {}
    for item in items or []:
        key, eq, value = item.partition("=")
        if not key:
            raise CLIError(f"invalid {what}: {item!r}")
        out[key] = value if eq else (os.environ.get(key) if from_env else "")
    return out


def make_context(path: str, dockerfile: str | None) -> tuple[tempfile.SpooledTemporaryFile, str]:
    """The context as a tar file (rewound) and the Dockerfile's name inside it."""
    if not os.path.isdir(path):
        raise CLIError(f"unable to prepare context: path {path!r} not found")
    root = os.path.abspath(path)
    df_path = os.path.abspath(dockerfile) if dockerfile else os.path.join(root, "Dockerfile")
    if not os.path.isfile(df_path):
        raise CLIError(f"unable to prepare context: unable to evaluate symlinks in Dockerfile path: "
                       f"lstat {df_path}: no such file or directory")
    inside = os.path.commonpath([root, df_path]) == root
    name = os.path.relpath(df_path, root) if inside else f".dockerfile.{secrets.token_hex(10)}"
    ignore = None
    if os.path.isfile(os.path.join(root, ".dockerignore")):
        with open(os.path.join(root, ".dockerignore"), encoding="utf-8", errors="replace") as f:
            ignore = ctx_mod.Ignore(ctx_mod.read_patterns(f.read()))
    tmp = tempfile.TemporaryFile()
    ctx_mod.tar_directory(root, tmp, ignore, keep={name, ".dockerignore"})
    if not inside:
        tmp.seek(0)
        data = tmp.read()
        tmp.seek(0)
        tmp.truncate()
        with tarfile.open(fileobj=tmp, mode="w", format=tarfile.PAX_FORMAT) as out, \
                tarfile.open(fileobj=io.BytesIO(data)) as old:
            for m in old:
                out.addfile(m, old.extractfile(m) if m.isreg() else None)
            out.add(df_path, name)
    tmp.seek(0)
    return tmp, name


def cmd_build(cli: Client, a) -> int:
    ctx, name = make_context(a.path, a.file)
    size = os.fstat(ctx.fileno()).st_size
    query = {"t": a.tag or None, "dockerfile": name, "q": a.quiet, "nocache": a.no_cache,
             "target": a.target or None, "rm": "1", "forcerm": a.force_rm, "pull": a.pull,
             "buildargs": json.dumps(_pairs(a.build_arg, "build-arg", True)) if a.build_arg else None,
             "labels": json.dumps(_pairs(a.label, "label")) if a.label else None}
    if not a.quiet:
        print(f"Sending build context to the daemon  {size} bytes", flush=True)
    resp = cli.open("POST", "/build", query, body=ctx,
                    headers={"Content-Type": "application/x-tar", "Content-Length": str(size)})
    image_id = None
    for m in json_stream(resp):
        if "error" in m or "errorDetail" in m:
            detail = m.get("errorDetail") or {}
            raise CLIError(detail.get("message") or m.get("error") or "build failed",
                           int(detail.get("code") or 1))
        if isinstance(m.get("aux"), dict) and m["aux"].get("ID"):
            image_id = m["aux"]["ID"]
        elif m.get("stream") and not a.quiet:
            sys.stdout.write(m["stream"])
            sys.stdout.flush()
    if a.quiet and image_id:
        print(image_id)
    if a.iidfile and image_id:
        with open(a.iidfile, "w") as f:
            f.write(image_id)
    return 0


def cmd_commit(cli: Client, a) -> int:
    repo = tag = None
    if a.repository:
        from refimpl.image import reference
        try:
            ref = reference.parse_normalized(a.repository)
        except reference.ReferenceError as e:
            raise CLIError(str(e)) from None
        repo, tag = ref.familiar_name, ref.tag
    pause = str(a.pause).lower() not in ("false", "0", "no")
    out = cli.call("POST", "/commit", {"container": a.container, "repo": repo, "tag": tag,
                                       "author": a.author or None, "comment": a.message or None,
                                       "changes": a.change or None, "pause": "1" if pause else "0"},
                   body={})
    print(out["Id"])
    return 0


def cmd_export(cli: Client, a) -> int:
    from .client import quote_name
    if not a.output and sys.stdout.isatty():
        raise CLIError("cowardly refusing to save to a terminal. Use the -o flag or redirect")
    resp = cli.open("GET", f"/containers/{quote_name(a.container)}/export")
    out = open(a.output, "wb") if a.output else sys.stdout.buffer
    try:
        while chunk := resp.read(256 * 1024):
            out.write(chunk)
    finally:
        if a.output:
            out.close()
    return 0


def cmd_import(cli: Client, a) -> int:
    repo = tag = None
    if a.reference:
        from refimpl.image import reference
        try:
            ref = reference.parse_normalized(a.reference)
        except reference.ReferenceError as e:
            raise CLIError(str(e)) from None
        repo, tag = ref.familiar_name, ref.tag
    if a.file == "-":
        data = sys.stdin.buffer.read()
    elif os.path.isfile(a.file):
        with open(a.file, "rb") as f:
            data = f.read()
    else:
        raise CLIError(f"open {a.file}: no such file or directory (remote URLs are not supported)")
    resp = cli.open("POST", "/images/create", {"fromSrc": "-", "repo": repo, "tag": tag,
                                               "message": a.message or None, "changes": a.change or None},
                    body=data, headers={"Content-Type": "application/x-tar"})
    for m in json_stream(resp):
        if "error" in m:
            raise CLIError(m["error"])
        if m.get("status"):
            print(m["status"])
    return 0


def cmd_diff(cli: Client, a) -> int:
    from .client import quote_name
    for ch in cli.get(f"/containers/{quote_name(a.container)}/changes") or []:
        print(f"{'CAD'[ch['Kind']]} {ch['Path']}")
    return 0


def register(sub, parser) -> None:
    p = parser(sub, "build", cmd_build, "Build an image from a Dockerfile")
    p.add_argument("path")
    p.add_argument("-t", "--tag", action="append")
    p.add_argument("-f", "--file")
    p.add_argument("--build-arg", action="append")
    p.add_argument("--label", action="append")
    p.add_argument("--no-cache", action="store_true")
    p.add_argument("--pull", action="store_true")
    p.add_argument("--target")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("--rm", nargs="?", const="true", default="true")
    p.add_argument("--force-rm", action="store_true")
    p.add_argument("--iidfile")

    p = parser(sub, "commit", cmd_commit, "Create a new image from a container's changes")
    p.add_argument("container")
    p.add_argument("repository", nargs="?")
    p.add_argument("-a", "--author")
    p.add_argument("-m", "--message")
    p.add_argument("-c", "--change", action="append")
    p.add_argument("-p", "--pause", nargs="?", const="true", default="true")

    p = parser(sub, "export", cmd_export, "Export a container's filesystem as a tar archive")
    p.add_argument("container")
    p.add_argument("-o", "--output")

    p = parser(sub, "import", cmd_import, "Import the contents from a tarball to create a filesystem image")
    p.add_argument("file")
    p.add_argument("reference", nargs="?")
    p.add_argument("-c", "--change", action="append")
    p.add_argument("-m", "--message")

    p = parser(sub, "diff", cmd_diff, "Inspect changes to files or directories on a container's filesystem")
    p.add_argument("container")
