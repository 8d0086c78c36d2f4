"""Container commands that do not attach: ps, inspect, logs, the lifecycle verbs
(stop, kill, restart, rm, pause, unpause, wait, rename) and top.

Verbs over several containers act on each in turn, print each name that succeeded,
report each failure on stderr and exit 1 if any failed: what scripts expect.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone

from . import units
from .client import CLIError, Client, DaemonError, quote_name as q, quote_ref
from .output import dump_json, ellipsis, render_each, render_rows, report, tabwrite, write
from .streams import copy_output

PS_HEADERS = {"ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND", "CreatedAt": "CREATED AT",
              "RunningFor": "CREATED", "Ports": "PORTS", "State": "STATE", "Status": "STATUS",
              "Size": "SIZE", "Names": "NAMES", "Labels": "LABELS", "Mounts": "MOUNTS",
              "Networks": "NETWORKS", "LocalVolumes": "LOCAL VOLUMES"}
PS_DEFAULT = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"


def for_each(names: list[str], action, echo: bool = True) -> int:
    status = 0
    for name in names:
        try:
            action(name)
            if echo:
                write(name + "\n")
        except DaemonError as e:
            report(e)
            status = 1
    return status


def ports(ps: list[dict]) -> str:
    out = []
    for p in sorted(ps, key=lambda p: (p.get("PrivatePort", 0), p.get("Type", ""), p.get("IP", ""))):
        if p.get("PublicPort"):
            ip = p.get("IP", "")
            ip = f"[{ip}]" if ":" in ip else ip
            out.append(f"{ip}:{p['PublicPort']}->{p['PrivatePort']}/{p['Type']}")
        else:
            out.append(f"{p['PrivatePort']}/{p['Type']}")
    return ", ".join(out)


def ps_row(c: dict, trunc: bool) -> dict:
    """The fields docker's container formatter offers, for one /containers/json item."""
    names = [n[1:] if n.startswith("/") else n for n in c.get("Names") or []]
    if trunc:
        names = [n for n in names if "/" not in n]
    image = c.get("Image", "")
    if trunc and image.startswith("sha256:"):
        image = image[7:19]
    command = c.get("Command", "")
    created = c.get("Created", 0)
    return {"ID": c["Id"][:12] if trunc else c["Id"], "Image": image,
            "Command": json.dumps(ellipsis(command, 20) if trunc else command, ensure_ascii=False),
            "CreatedAt": datetime.fromtimestamp(created, timezone.utc).strftime("%Y-%m-%d %H:%M:%S +0000 UTC"),
            "RunningFor": units.ago(created), "Ports": ports(c.get("Ports") or []),
            "State": c.get("State", ""), "Status": c.get("Status", ""), "Names": ",".join(names),
            "Labels": ",".join(f"{k}={v}" for k, v in (c.get("Labels") or {}).items()),
            "Mounts": ",".join(ellipsis(m.get("Name") or m.get("Source", ""), 15) if trunc else (m.get("Name") or m.get("Source", ""))
                               for m in c.get("Mounts") or []),
            "Networks": ",".join(sorted(((c.get("NetworkSettings") or {}).get("Networks") or {}))),
            "Size": units.human_size(c.get("SizeRw") or 0)}


def parse_filters(specs: list[str] | None) -> str | None:
    """`--filter k=v` (repeatable) as the API's filters JSON ({"k": {"v": true}})."""
    filters: dict[str, dict] = {}
    for f in specs or []:
        k, eq, v = f.partition("=")
        if not eq:
            raise CLIError(f"bad format of filter (expected name=value)")
        filters.setdefault(k.strip(), {})[v] = True
    return json.dumps(filters) if filters else None


def cmd_ps(cli: Client, a) -> int:
    items = cli.get("/containers/json", all=a.all or bool(a.last) or a.latest,
                    limit=1 if a.latest else (a.last or None), size=a.size, filters=parse_filters(a.filter))
    if a.quiet:
        write("".join((c["Id"] if a.no_trunc else c["Id"][:12]) + "\n" for c in items))
        return 0
    rows = [ps_row(c, not a.no_trunc) for c in items]
    write(render_rows(a.format or PS_DEFAULT, rows, PS_HEADERS))
    return 0


def _lookup(cli: Client, name: str, kind: str | None):
    kinds = [kind] if kind else ["container", "image"]
    for k in kinds:
        path = f"/containers/{q(name)}/json" if k == "container" else f"/images/{quote_ref(name)}/json"
        try:
            return cli.get(path)
        except DaemonError as e:
            if e.code != 404:
                raise
    what = {"container": "container", "image": "image"}.get(kind or "", "object")
    raise CLIError(f"Error: No such {what}: {name}")


def cmd_inspect(cli: Client, a) -> int:
    found, status = [], 0
    for name in a.names:
        try:
            found.append(_lookup(cli, name, a.type))
        except CLIError as e:
            report(e)
            status = 1
    write(render_each(a.format, found) if a.format else dump_json(found))
    return status


def cmd_logs(cli: Client, a) -> int:
    info = cli.get(f"/containers/{q(a.container)}/json")
    query = {"stdout": 1, "stderr": 1, "follow": a.follow, "timestamps": a.timestamps,
             "tail": a.tail if a.tail not in (None, "all") else None}
    for key in ("since", "until"):
        if getattr(a, key):
            try:
                query[key] = units.parse_since(getattr(a, key))
            except units.UnitError as e:
                raise CLIError(str(e)) from None
    resp = cli.open("GET", f"/containers/{q(info['Id'])}/logs", query)
    copy_output(lambda: resp.read1(65536), info["Config"]["Tty"])
    return 0


def cmd_wait(cli: Client, a) -> int:
    def one(name):
        r = cli.post(f"/containers/{q(name)}/wait")
        write(f"{r['StatusCode']}\n")
    return for_each(a.containers, one, echo=False)


def cmd_top(cli: Client, a) -> int:
    r = cli.get(f"/containers/{q(a.container)}/top", ps_args=" ".join(a.ps_args) or None)
    lines = ["\t".join(r["Titles"])] + ["\t".join(p) for p in r["Processes"]]
    write(tabwrite(lines, minwidth=20))
    return 0


def register(sub, parser) -> None:
    p = parser(sub, "ps", cmd_ps, "List containers")
    p.add_argument("-a", "--all", action="store_true")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("--no-trunc", action="store_true")
    p.add_argument("-s", "--size", action="store_true")
    p.add_argument("-l", "--latest", action="store_true")
    p.add_argument("-n", "--last", type=int, default=0)
    p.add_argument("-f", "--filter", action="append")
    p.add_argument("--format")

    p = parser(sub, "inspect", cmd_inspect, "Return low-level information on Docker objects")
    p.add_argument("names", nargs="+")
    p.add_argument("-f", "--format")
    p.add_argument("--type", choices=["container", "image"])
    p.add_argument("-s", "--size", action="store_true")

    p = parser(sub, "logs", cmd_logs, "Fetch the logs of a container")
    p.add_argument("container")
    p.add_argument("-f", "--follow", action="store_true")
    p.add_argument("-n", "--tail")
    p.add_argument("-t", "--timestamps", action="store_true")
    p.add_argument("--since")
    p.add_argument("--until")

    def verb(name, help, call, **flags):
        q = parser(sub, name, lambda cli, a: for_each(a.containers, lambda c: call(cli, a, c)), help)
        q.add_argument("containers", nargs="+")
        for f, kw in flags.items():
            q.add_argument(*f.split(","), **kw)

    verb("stop", "Stop one or more running containers",
         lambda cli, a, c: cli.post(f"/containers/{q(c)}/stop", t=a.time, signal=a.signal),
         **{"-t,--time": {"type": int}, "-s,--signal": {}})
    verb("restart", "Restart one or more containers",
         lambda cli, a, c: cli.post(f"/containers/{q(c)}/restart", t=a.time, signal=a.signal),
         **{"-t,--time": {"type": int}, "-s,--signal": {}})
    verb("kill", "Kill one or more running containers",
         lambda cli, a, c: cli.post(f"/containers/{q(c)}/kill", signal=a.signal),
         **{"-s,--signal": {}})
    verb("rm", "Remove one or more containers",
         lambda cli, a, c: cli.call("DELETE", f"/containers/{q(c)}", {"force": a.force, "v": a.volumes, "link": a.link}),
         **{"-f,--force": {"action": "store_true"}, "-v,--volumes": {"action": "store_true"},
            "-l,--link": {"action": "store_true"}})
    verb("pause", "Pause all processes within one or more containers",
         lambda cli, a, c: cli.post(f"/containers/{q(c)}/pause"))
    verb("unpause", "Unpause all processes within one or more containers",
         lambda cli, a, c: cli.post(f"/containers/{q(c)}/unpause"))

    p = parser(sub, "wait", cmd_wait, "Block until one or more containers stop, then print their exit codes")
    p.add_argument("containers", nargs="+")

    p = parser(sub, "rename", lambda cli, a: cli.post(f"/containers/{q(a.container)}/rename", name=a.new_name) or 0,
               "Rename a container")
    p.add_argument("container")
    p.add_argument("new_name")

    p = parser(sub, "top", cmd_top, "Display the running processes of a container")
    p.add_argument("container")
    p.add_argument("ps_args", nargs="...")
