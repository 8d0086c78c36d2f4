"""`network` commands: create, ls, inspect, rm, connect, disconnect, prune — over /networks."""
from __future__ import annotations

import sys

from .client import CLIError, Client, DaemonError, quote_name as q
from .containers import for_each, parse_filters
from .output import dump_json, render_each, render_rows, report, write
from .volumes import _pairs

HEADERS = {"ID": "NETWORK ID", "Name": "NAME", "Driver": "DRIVER", "Scope": "SCOPE",
           "IPv6": "IPV6", "Internal": "INTERNAL", "Labels": "LABELS", "CreatedAt": "CREATED AT"}


def cmd_create(cli: Client, a) -> int:
    if (a.gateway or a.ip_range) and not a.subnet:
        raise CLIError("every ip-range or gateway must have a corresponding subnet")
    config = [{k: v for k, v in (("Subnet", a.subnet), ("Gateway", a.gateway), ("IPRange", a.ip_range))
               if v}] if a.subnet else []
    body = {"Name": a.name, "Driver": a.driver, "Internal": a.internal, "Attachable": a.attachable,
            "Labels": _pairs(a.label, "label"), "Options": _pairs(a.opt, "option"),
            "IPAM": {"Driver": "default", "Config": config}}
    write(cli.post("/networks/create", body)["Id"] + "\n")
    return 0


def cmd_ls(cli: Client, a) -> int:
    nets = sorted(cli.get("/networks", filters=parse_filters(a.filter)), key=lambda n: n["Name"])
    rows = [{**n, "ID": n["Id"] if a.no_trunc else n["Id"][:12], "IPv6": str(n.get("EnableIPv6", False)).lower(),
             "Internal": str(n.get("Internal", False)).lower(), "CreatedAt": n.get("Created", ""),
             "Labels": ",".join(f"{k}={v}" for k, v in sorted((n.get("Labels") or {}).items()))}
            for n in nets]
    fmt = "{{.ID}}" if a.quiet else (a.format or "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}")
    write(render_rows(fmt, rows, HEADERS))
    return 0


def cmd_inspect(cli: Client, a) -> int:
    found, status = [], 0
    for name in a.names:
        try:
            found.append(cli.get(f"/networks/{q(name)}"))
        except DaemonError as e:
            report(CLIError(f"Error: No such network: {name}" if e.code == 404 else str(e)))
            status = 1
    write(render_each(a.format, found) if a.format else dump_json(found))
    return status


def cmd_connect(cli: Client, a) -> int:
    endpoint = {"Aliases": a.alias or []}
    if a.ip:
        endpoint["IPAMConfig"] = {"IPv4Address": a.ip}
    cli.post(f"/networks/{q(a.network)}/connect", {"Container": a.container, "EndpointConfig": endpoint})
    return 0


def cmd_disconnect(cli: Client, a) -> int:
    cli.post(f"/networks/{q(a.network)}/disconnect", {"Container": a.container, "Force": a.force})
    return 0


def cmd_prune(cli: Client, a) -> int:
    if not a.force:
        sys.stdout.write("WARNING! This will remove all custom networks not used by at least one container."
                         "\nAre you sure you want to continue? [y/N] ")
        sys.stdout.flush()
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            return 0
    deleted = cli.post("/networks/prune", filters=parse_filters(a.filter)).get("NetworksDeleted") or []
    if deleted:
        write("Deleted Networks:\n" + "".join(n + "\n" for n in deleted) + "\n")
    return 0


def register(sub, parser) -> None:
    group = parser(sub, "network", None, "Manage networks")
    nsub = group.add_subparsers(metavar="COMMAND", parser_class=type(group))
    group.set_defaults(func=lambda cli, a: (_ for _ in ()).throw(CLIError(
        "refimpl network: a command is required (create, ls, inspect, rm, connect, disconnect, prune)")))

    def parser(sub_, name, func, help, _make=parser):        # errors exit 1, not run's 125
        p = _make(sub_, name, func, help)
        p.set_defaults(cmd_name=f"network {name}")
        return p

    p = parser(nsub, "create", cmd_create, "Create a network")
    p.add_argument("name")
    p.add_argument("-d", "--driver", default="bridge")
    p.add_argument("--subnet")
    p.add_argument("--gateway")
    p.add_argument("--ip-range")
    p.add_argument("--internal", action="store_true")
    p.add_argument("--attachable", action="store_true")
    p.add_argument("--label", action="append")
    p.add_argument("-o", "--opt", action="append")

    for name in ("ls", "list"):
        p = parser(nsub, name, cmd_ls, "List networks")
        p.add_argument("-q", "--quiet", action="store_true")
        p.add_argument("-f", "--filter", action="append")
        p.add_argument("--format")
        p.add_argument("--no-trunc", action="store_true")

    p = parser(nsub, "inspect", cmd_inspect, "Display detailed information on one or more networks")
    p.add_argument("names", nargs="+")
    p.add_argument("-f", "--format")

    for name in ("rm", "remove"):
        p = parser(nsub, name, lambda cli, a: for_each(a.names, lambda n: cli.call("DELETE", f"/networks/{q(n)}")),
                   "Remove one or more networks")
        p.add_argument("names", nargs="+")
        p.add_argument("-f", "--force", action="store_true")

    p = parser(nsub, "connect", cmd_connect, "Connect a container to a network")
    p.add_argument("network")
    p.add_argument("container")
    p.add_argument("--alias", action="append")
    p.add_argument("--ip")

    p = parser(nsub, "disconnect", cmd_disconnect, "Disconnect a container from a network")
    p.add_argument("network")
    p.add_argument("container")
    p.add_argument("-f", "--force", action="store_true")

    p = parser(nsub, "prune", cmd_prune, "Remove all unused networks")
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("--filter", action="append")
