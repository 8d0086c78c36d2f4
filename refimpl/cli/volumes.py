"""`volume` commands: create, ls, inspect, rm, prune — over /volumes, with docker's output."""
from __future__ import annotations

import sys

from .client import CLIError, Client, DaemonError, quote_name as q
from .containers import for_each, parse_filters
from .output import dump_json, render_each, render_rows, report, write
from .units import human_size

HEADERS = {"Name": "VOLUME NAME", "Driver": "DRIVER", "Scope": "SCOPE", "Mountpoint": "MOUNTPOINT",
           "Labels": "LABELS", "Links": "LINKS", "Size": "SIZE", "CreatedAt": "CREATED AT"}


def _pairs(items: list[str] | None, what: str) -> dict:
    out = {}
    for item in items or []:
        k, sep, v = item.partition("=")
        if not k:
            raise CLIError(f"invalid {what}: {item!r}", 125)
        out[k] = v
    return out


def cmd_create(cli: Client, a) -> int:
    if a.name and a.name_opt and a.name != a.name_opt:
        raise CLIError("conflicting options: either specify --name or provide positional arg, not both")
    body = {"Name": a.name or a.name_opt or "", "Driver": a.driver, "Labels": _pairs(a.label, "label"),
            "DriverOpts": _pairs(a.opt, "option")}
    write(cli.post("/volumes/create", body)["Name"] + "\n")
    return 0


def _row(v: dict) -> dict:
    labels = v.get("Labels") or {}
    return {**v, "Labels": ",".join(f"{k}={x}" for k, x in sorted(labels.items())), "Links": "N/A",
            "Size": "N/A"}


def cmd_ls(cli: Client, a) -> int:
    vols = cli.get("/volumes", filters=parse_filters(a.filter)).get("Volumes") or []
    vols.sort(key=lambda v: v["Name"])
    fmt = "{{.Name}}" if a.quiet else (a.format or "table {{.Driver}}\t{{.Name}}")
    write(render_rows(fmt, [_row(v) for v in vols], HEADERS))
    return 0


def cmd_inspect(cli: Client, a) -> int:
    found, status = [], 0
    for name in a.names:
        try:
            found.append(cli.get(f"/volumes/{q(name)}"))
        except DaemonError as e:
            report(CLIError(f"Error: No such volume: {name}" if e.code == 404 else str(e)))
            status = 1
    write(render_each(a.format, found) if a.format else dump_json(found))
    return status


def cmd_rm(cli: Client, a) -> int:
    return for_each(a.names, lambda n: cli.call("DELETE", f"/volumes/{q(n)}", {"force": a.force}))


def cmd_prune(cli: Client, a) -> int:
    if not a.force:
        what = "all local volumes not used by at least one container" if a.all else \
            "all anonymous local volumes not used by at least one container"
        sys.stdout.write(f"WARNING! This will remove {what}.\nAre you sure you want to continue? [y/N] ")
        sys.stdout.flush()
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            return 0
    filters = list(a.filter or []) + (["all=true"] if a.all else [])
    r = cli.post("/volumes/prune", filters=parse_filters(filters))
    deleted = r.get("VolumesDeleted") or []
    if deleted:
        write("Deleted Volumes:\n" + "".join(n + "\n" for n in deleted) + "\n")
    write(f"Total reclaimed space: {human_size(r.get('SpaceReclaimed') or 0)}\n")
    return 0


def register(sub, parser) -> None:
    group = parser(sub, "volume", None, "Manage volumes")
    vsub = group.add_subparsers(metavar="COMMAND", parser_class=type(group))
    group.set_defaults(func=lambda cli, a: (_ for _ in ()).throw(
        CLIError("refimpl volume: a command is required (create, ls, inspect, rm, prune)")))

    def parser(sub_, name, func, help, _make=parser):        # errors exit 1, not run's 125
        p = _make(sub_, name, func, help)
        p.set_defaults(cmd_name=f"volume {name}")
        return p

    p = parser(vsub, "create", cmd_create, "Create a volume")
    p.add_argument("name", nargs="?")
    p.add_argument("--name", dest="name_opt")
    p.add_argument("-d", "--driver", default="local")
    p.add_argument("-o", "--opt", action="append")
    p.add_argument("--label", action="append")

    for name in ("ls", "list"):
        p = parser(vsub, name, cmd_ls, "List volumes")
        p.add_argument("-q", "--quiet", action="store_true")
        p.add_argument("-f", "--filter", action="append")
        p.add_argument("--format")

    p = parser(vsub, "inspect", cmd_inspect, "Display detailed information on one or more volumes")
    p.add_argument("names", nargs="+")
    p.add_argument("-f", "--format")

    for name in ("rm", "remove"):
        p = parser(vsub, name, cmd_rm, "Remove one or more volumes")
        p.add_argument("names", nargs="+")
        p.add_argument("-f", "--force", action="store_true")

    p = parser(vsub, "prune", cmd_prune, "Remove unused local volumes")
    p.add_argument("-a", "--all", action="store_true")
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("--filter", action="append")
