"""Image commands: images, pull, rmi, tag, save, load, history (and `image inspect`,
which lives with `inspect` in containers.py)."""
from __future__ import annotations

import json
import os
import sys

from refimpl.image import reference

from . import progress
from .client import CLIError, Client, DaemonError, json_stream, quote_ref
from .output import ellipsis, render_rows, report, write
from .units import ago, human_size

IMAGE_HEADERS = {"Repository": "REPOSITORY", "Tag": "TAG", "ID": "IMAGE ID", "Digest": "DIGEST",
                 "CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "Size": "SIZE",
                 "Containers": "CONTAINERS", "VirtualSize": "SIZE"}
HISTORY_HEADERS = {"ID": "IMAGE", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT",
                   "CreatedBy": "CREATED BY", "Size": "SIZE", "Comment": "COMMENT"}


def short_id(image_id: str) -> str:
    return image_id.split(":", 1)[-1][:12]


def parse_ref(name: str) -> reference.Reference:
    try:
        return reference.parse_normalized(name)
    except reference.ReferenceError as e:
        raise CLIError(str(e)) from None


def pull(cli: Client, name: str, out, all_tags: bool = False, quiet: bool = False) -> None:
    """POST /images/create with the progress stream rendered to `out`."""
    ref = parse_ref(name)
    if not (ref.tag or ref.digest or all_tags):
        ref = ref.tagged_or_latest()
        if out is sys.stdout and not quiet:
            out.write(f"Using default tag: {reference.DEFAULT_TAG}\n")
    tag = str(ref.digest) if ref.digest else (ref.tag or "")
    from .registry import auth_header
    resp = cli.open("POST", "/images/create", {"fromImage": ref.familiar_name, "tag": tag or None},
                    headers=auth_header(name))
    messages = json_stream(resp)
    if quiet:
        messages = (m for m in messages if "error" not in m or progress.fail(m))
        for _ in messages:
            pass
        return
    progress.show(messages, out)


def cmd_pull(cli: Client, a) -> int:
    pull(cli, a.name, sys.stdout, a.all_tags, a.quiet)
    if not a.all_tags:
        ref = parse_ref(a.name)
        write(str(ref if ref.tag or ref.digest else ref.tagged_or_latest()) + "\n")
    return 0


def image_rows(images: list[dict], digests: bool = False) -> list[dict]:
    rows = []
    for im in images:
        tags = [t for t in (im.get("RepoTags") or []) if t != "<none>:<none>"]
        pairs = [t.rsplit(":", 1) for t in tags] or [["<none>", "<none>"]]
        if not tags and im.get("RepoDigests"):
            pairs = [[d.split("@")[0], "<none>"] for d in im["RepoDigests"] if d != "<none>@<none>"][:1] or pairs
        for repo, tag in pairs:
            rows.append({"Repository": repo, "Tag": tag, "ID": short_id(im["Id"]),
                         "Digest": next((d.split("@", 1)[1] for d in im.get("RepoDigests") or []
                                         if d.startswith(repo + "@")), "<none>"),
                         "CreatedSince": ago(im["Created"]) if im.get("Created") else "N/A",
                         "CreatedAt": str(im.get("Created", "")), "Size": human_size(im.get("Size", 0)),
                         "Containers": "N/A" if im.get("Containers", -1) < 0 else str(im["Containers"])})
    return rows


def _ids(images: list[dict]) -> list[str]:
    """Full IDs, one per row of image_rows (an image has a row per tag)."""
    return [im["Id"] for im in images for _ in range(max(1, len([t for t in im.get("RepoTags") or []
                                                                   if t != "<none>:<none>"])))]


def cmd_images(cli: Client, a) -> int:
    filters: dict[str, dict] = {}
    for f in a.filter or []:
        k, _, v = f.partition("=")
        filters.setdefault(k, {})[v] = True
    if a.repository:
        filters.setdefault("reference", {})[a.repository] = True
    images = cli.get("/images/json", all=a.all, filters=json.dumps(filters) if filters else None)
    images.sort(key=lambda im: im.get("Created", 0), reverse=True)
    if a.quiet:
        rows = image_rows(images)
        write("".join((im if a.no_trunc else r["ID"]) + "\n" for r, im in zip(rows, _ids(images))))
        return 0
    rows = image_rows(images)
    if a.no_trunc:
        for row, full in zip(rows, _ids(images)):
            row["ID"] = full
    default = ("table {{.Repository}}\t{{.Tag}}\t" + ("{{.Digest}}\t" if a.digests else "")
               + "{{.ID}}\t{{.CreatedSince}}\t{{.Size}}")
    write(render_rows(a.format or default, rows, IMAGE_HEADERS))
    return 0


def cmd_rmi(cli: Client, a) -> int:
    status = 0
    for name in a.images:
        try:
            for item in cli.call("DELETE", f"/images/{quote_ref(name)}", {"force": a.force, "noprune": a.no_prune}) or []:
                for k in ("Untagged", "Deleted"):
                    if k in item:
                        write(f"{k}: {item[k]}\n")
        except DaemonError as e:
            report(e)
            status = 1
    return status


def cmd_tag(cli: Client, a) -> int:
    ref = parse_ref(a.target)
    if ref.digest:
        raise CLIError("refusing to create a tag with a digest reference")
    ref = ref.tagged_or_latest()
    cli.post(f"/images/{quote_ref(a.source)}/tag", repo=ref.name, tag=ref.tag)
    return 0


def cmd_save(cli: Client, a) -> int:
    if not a.output and sys.stdout.isatty():
        raise CLIError("cowardly refusing to save to a terminal. Use the -o flag or redirect")
    resp = cli.open("GET", "/images/get", {"names": a.images})
    if a.output:
        tmp = a.output + ".tmp-save"
        try:
            with open(tmp, "wb") as f:
                _copy(resp, f)
            os.replace(tmp, a.output)
        except OSError as e:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise CLIError(f"failed to save image: {e.strerror}: {a.output}") from None
    else:
        _copy(resp, sys.stdout.buffer)
    return 0


def _copy(resp, f) -> None:
    while chunk := resp.read(1 << 16):
        f.write(chunk)
    f.flush()


def cmd_load(cli: Client, a) -> int:
    if a.input:
        try:
            f = open(a.input, "rb")
        except OSError as e:
            raise CLIError(f"open {a.input}: {e.strerror.lower()}") from None
    else:
        if sys.stdin.isatty():
            raise CLIError("requested load from stdin, but stdin is empty")
        f = sys.stdin.buffer
    with f:
        body = f.read()
    resp = cli.open("POST", "/images/load", {"quiet": a.quiet}, body=body,
                    headers={"Content-Type": "application/x-tar"})
    progress.show(json_stream(resp), sys.stdout)
    return 0


def cmd_history(cli: Client, a) -> int:
    items = cli.get(f"/images/{quote_ref(a.image)}/history")
    rows = []
    for h in items:
        by = h.get("CreatedBy", "").replace("\t", " ")
        hid = h.get("Id", "<missing>")
        rows.append({"ID": hid if (a.no_trunc or hid == "<missing>") else short_id(hid),
                     "CreatedSince": ago(h.get("Created", 0)), "CreatedAt": str(h.get("Created", "")),
                     "CreatedBy": by if a.no_trunc else ellipsis(by, 45),
                     "Size": human_size(h.get("Size", 0)), "Comment": h.get("Comment", "")})
    if a.quiet:
        write("".join(r["ID"] + "\n" for r in rows))
        return 0
    default = "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}"
    write(render_rows(a.format or default, rows, HISTORY_HEADERS))
    return 0


def register(sub, parser) -> None:
    p = parser(sub, "images", cmd_images, "List images")
    p.add_argument("repository", nargs="?")
    p.add_argument("-a", "--all", action="store_true")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("--no-trunc", action="store_true")
    p.add_argument("--digests", action="store_true")
    p.add_argument("-f", "--filter", action="append")
    p.add_argument("--format")

    p = parser(sub, "pull", cmd_pull, "Download an image from a registry")
    p.add_argument("name")
    p.add_argument("-a", "--all-tags", action="store_true")
    p.add_argument("-q", "--quiet", action="store_true")

    p = parser(sub, "rmi", cmd_rmi, "Remove one or more images")
    p.add_argument("images", nargs="+")
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("--no-prune", action="store_true")

    p = parser(sub, "tag", cmd_tag, "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE")
    p.add_argument("source")
    p.add_argument("target")

    p = parser(sub, "save", cmd_save, "Save images to a tar archive")
    p.add_argument("images", nargs="+")
    p.add_argument("-o", "--output")

    p = parser(sub, "load", cmd_load, "Load an image from a tar archive or STDIN")
    p.add_argument("-i", "--input")
    p.add_argument("-q", "--quiet", action="store_true")

    p = parser(sub, "history", cmd_history, "Show the history of an image")
    p.add_argument("image")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("--no-trunc", action="store_true")
    p.add_argument("--format")
