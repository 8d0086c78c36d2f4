"""run, create, start and exec: the commands that attach to a container's streams.

`run` follows the docker CLI step by step, because a daemon may depend on the order:
create (a 404 means "pull, then create again"); attach (hijacked) before start so no
output is lost; `POST /wait?condition=next-exit` (or `removed` with --rm) opened and
its headers received before start, so a quick exit cannot be missed; start; copy the
streams; leave with the exit status the wait returns. A start that fails maps to
125/126/127 by its message, exactly as docker's runStartContainerErr does.
"""
from __future__ import annotations

import json
import os
import sys

from . import units
from .client import CLIError, Client, DaemonError, quote_name as q
from .images import pull
from .output import report, warn, write
from .streams import interact


def start_error_status(message: str) -> int:
    """docker's runStartContainerErr: the exit status for a failed start."""
    if "executable file not found" in message or "no such file or directory" in message \
            or "system cannot find the file specified" in message:
        return 127
    if "permission denied" in message or "is a directory" in message:
        return 126
    return 125


def _flag(f):
    """Wrap a units parser so its error becomes a usage error (status 125)."""
    def parse(value):
        try:
            return f(value)
        except units.UnitError as e:
            raise CLIError(str(e), 125) from None
    return parse


def container_config(a) -> dict:
    """The body of POST /containers/create from run/create flags."""
    host: dict = {"Binds": [], "NetworkMode": a.network or "default", "RestartPolicy": {"Name": ""},
                  "AutoRemove": a.rm, "ReadonlyRootfs": a.read_only, "Privileged": a.privileged,
                  "PortBindings": {}, "CapAdd": a.cap_add, "CapDrop": a.cap_drop,
                  "ExtraHosts": a.add_host, "Dns": a.dns or []}
    volumes, exposed = {}, {p if "/" in p else p + "/tcp": {} for p in a.expose or []}
    for v in a.volume or []:
        if ":" in v:
            host["Binds"].append(v)
        else:
            volumes[v] = {}
    for m in a.mount or []:
        host.setdefault("Mounts", []).append(_flag(units.parse_mount)(m))
    if a.volumes_from:
        host["VolumesFrom"] = a.volumes_from
    if a.volume_driver:
        host["VolumeDriver"] = a.volume_driver
    if a.security_opt:
        host["SecurityOpt"] = a.security_opt
    for t in a.tmpfs or []:
        path, _, opts = t.partition(":")
        host.setdefault("Tmpfs", {})[path] = opts
    for p in a.publish or []:
        port, ip, hport = _flag(units.parse_publish)(p)
        exposed[port] = {}
        host["PortBindings"].setdefault(port, []).append({"HostIp": ip, "HostPort": hport})
    if a.publish_all:
        host["PublishAllPorts"] = True
    if a.memory:
        host["Memory"] = _flag(units.ram_in_bytes)(a.memory)
    if a.memory_swap:
        host["MemorySwap"] = _flag(units.memory_swap)(a.memory_swap)
    if a.cpus:
        host["NanoCpus"] = _flag(units.parse_cpus)(a.cpus)
    if a.pids_limit is not None:
        host["PidsLimit"] = a.pids_limit
    if a.restart:
        host["RestartPolicy"] = _flag(units.parse_restart)(a.restart)
        if a.rm and host["RestartPolicy"]["Name"]:
            raise CLIError("Conflicting options: --restart and --rm", 125)
    if a.init:
        host["Init"] = True
    labels = {}
    for label in a.label or []:
        k, _, v = label.partition("=")
        labels[k] = v
    attach = not a.detach
    body = {"Image": a.image, "Tty": a.tty, "OpenStdin": a.interactive,
            "StdinOnce": a.interactive and attach, "AttachStdin": a.interactive and attach,
            "AttachStdout": attach, "AttachStderr": attach, "Env": [_env(e) for e in a.env or []],
            "Labels": labels, "Volumes": volumes, "ExposedPorts": exposed, "HostConfig": host}
    if a.ip or a.network_alias:
        if not a.network or a.network in ("bridge", "host", "none", "default"):
            raise CLIError("--ip and --network-alias need a user-defined network (--network NAME)", 125)
        endpoint = {"Aliases": a.network_alias or []}
        if a.ip:
            endpoint["IPAMConfig"] = {"IPv4Address": a.ip}
        body["NetworkingConfig"] = {"EndpointsConfig": {a.network: endpoint}}
    if a.command:
        body["Cmd"] = a.command
    if a.entrypoint is not None:
        body["Entrypoint"] = [a.entrypoint] if a.entrypoint else [""]
    for key, val in (("WorkingDir", a.workdir), ("User", a.user), ("Hostname", a.hostname),
                     ("StopSignal", a.stop_signal)):
        if val:
            body[key] = val
    if a.stop_timeout is not None:
        body["StopTimeout"] = a.stop_timeout
    return body


def _env(e: str) -> str:
    """`-e NAME` takes NAME's value from our environment, as docker does."""
    if "=" in e or e not in os.environ:
        return e
    return f"{e}={os.environ[e]}"


def create(cli: Client, body: dict, name: str | None, pull_out=sys.stderr) -> str:
    """POST /containers/create, pulling the image first if the daemon lacks it."""
    try:
        resp = cli.post("/containers/create", body, name=name)
    except DaemonError as e:
        if e.code != 404 or "image" not in e.message.lower():
            raise
        from .images import parse_ref
        ref = parse_ref(body["Image"])
        ref = ref.tagged_or_latest()
        warn(f"Unable to find image '{ref.familiar()}' locally")
        pull(cli, body["Image"], pull_out)
        resp = cli.post("/containers/create", body, name=name)
    for w in resp.get("Warnings") or []:
        warn(f"WARNING: {w}")
    return resp["Id"]


def attach_and_start(cli: Client, cid: str, tty: bool, stdin: bool, autoremove: bool = False,
                     start: bool = True) -> int:
    """Attach, open the wait, start, copy streams; the container's exit status."""
    stream = cli.hijack(f"/containers/{q(cid)}/attach",
                        {"stream": 1, "stdin": int(stdin), "stdout": 1, "stderr": 1})
    waiter = cli.open("POST", f"/containers/{q(cid)}/wait",
                      {"condition": "removed" if autoremove else "next-exit"})
    if start:
        try:
            cli.post(f"/containers/{q(cid)}/start")
        except DaemonError as e:
            stream.close()
            report(e)
            if autoremove:
                _remove_quietly(cli, cid)
            return start_error_status(e.message)
    interact(stream, tty, stdin, resize=lambda h, w: cli.post(f"/containers/{q(cid)}/resize", h=h, w=w))
    result = json.loads(waiter.read() or b"{}")
    if (result.get("Error") or {}).get("Message"):
        warn(f"refimpl: Error waiting for container: {result['Error']['Message']}")
        return 125
    return int(result.get("StatusCode", 125))


def _remove_quietly(cli: Client, cid: str) -> None:
    try:
        cli.call("DELETE", f"/containers/{q(cid)}", {"force": True})
    except DaemonError:
        pass


def cmd_create(cli: Client, a) -> int:
    a.detach = False       # as docker: the config a later `start -a -i` attaches to
    write(create(cli, container_config(a), a.name) + "\n")
    return 0


def cmd_run(cli: Client, a) -> int:
    _check_tty(a)
    cid = create(cli, container_config(a), a.name)
    if a.detach:
        try:
            cli.post(f"/containers/{q(cid)}/start")
        except DaemonError as e:
            report(e)
            return start_error_status(e.message)
        write(cid + "\n")
        return 0
    return attach_and_start(cli, cid, a.tty, a.interactive, a.rm)


def cmd_start(cli: Client, a) -> int:
    if a.attach or a.interactive:
        if len(a.containers) > 1:
            raise CLIError("you cannot start and attach multiple containers at once")
        info = cli.get(f"/containers/{q(a.containers[0])}/json")
        tty = info["Config"]["Tty"]
        stdin = a.interactive and info["Config"]["OpenStdin"]
        return attach_and_start(cli, info["Id"], tty, stdin, info["HostConfig"].get("AutoRemove", False))
    status = 0
    for c in a.containers:
        try:
            cli.post(f"/containers/{q(c)}/start")
            write(c + "\n")
        except DaemonError as e:
            report(e)
            status = 1
    return status


def _check_tty(a) -> None:
    if a.tty and a.interactive and not getattr(a, "detach", False) and not os.isatty(0):
        raise CLIError("the input device is not a TTY")


def cmd_exec(cli: Client, a) -> int:
    if not a.command:
        raise CLIError("\"exec\" requires at least 2 arguments.", 125)
    _check_tty(a)
    body = {"AttachStdin": a.interactive and not a.detach, "AttachStdout": not a.detach,
            "AttachStderr": not a.detach, "Tty": a.tty, "Cmd": a.command,
            "Env": [_env(e) for e in a.env or []], "Privileged": a.privileged}
    if a.user:
        body["User"] = a.user
    if a.workdir:
        body["WorkingDir"] = a.workdir
    eid = cli.post(f"/containers/{q(a.container)}/exec", body)["Id"]
    if a.detach:
        cli.post(f"/exec/{eid}/start", {"Detach": True, "Tty": a.tty})
        return 0
    stream = cli.hijack(f"/exec/{eid}/start", body={"Detach": False, "Tty": a.tty})
    interact(stream, a.tty, a.interactive, resize=lambda h, w: cli.post(f"/exec/{eid}/resize", h=h, w=w))
    return int(cli.get(f"/exec/{eid}/json").get("ExitCode") or 0)


def _container_flags(p) -> None:
    add = p.add_argument
    add("-i", "--interactive", action="store_true", help="Keep STDIN open even if not attached")
    add("-t", "--tty", action="store_true", help="Allocate a pseudo-TTY")
    add("--name")
    add("-e", "--env", action="append")
    add("-v", "--volume", action="append")
    add("--mount", action="append")
    add("--volumes-from", action="append")
    add("--volume-driver")
    add("--tmpfs", action="append")
    add("-w", "--workdir")
    add("-u", "--user")
    add("--network", "--net")
    add("--ip")
    add("--network-alias", "--net-alias", action="append")
    add("--entrypoint")
    add("-m", "--memory")
    add("--memory-swap")
    add("--cpus")
    add("--pids-limit", type=int)
    add("--read-only", action="store_true")
    add("--security-opt", action="append")
    add("--restart")
    add("-h", "--hostname")
    add("-l", "--label", action="append")
    add("-p", "--publish", action="append")
    add("-P", "--publish-all", action="store_true")
    add("--expose", action="append")
    add("--privileged", action="store_true")
    add("--cap-add", action="append")
    add("--cap-drop", action="append")
    add("--add-host", action="append")
    add("--dns", action="append")
    add("--init", action="store_true")
    add("--stop-signal")
    add("--stop-timeout", type=int)
    add("image")
    add("command", nargs="...")


def register(sub, parser) -> None:
    p = parser(sub, "run", cmd_run, "Create and run a new container from an image")
    _container_flags(p)
    p.add_argument("-d", "--detach", action="store_true")
    p.add_argument("--rm", action="store_true")

    p = parser(sub, "create", cmd_create, "Create a new container")
    _container_flags(p)
    p.set_defaults(rm=False)
    p.add_argument("--rm", action="store_true")

    p = parser(sub, "start", cmd_start, "Start one or more stopped containers")
    p.add_argument("containers", nargs="+")
    p.add_argument("-a", "--attach", action="store_true")
    p.add_argument("-i", "--interactive", action="store_true")

    p = parser(sub, "exec", cmd_exec, "Execute a command in a running container")
    p.add_argument("-i", "--interactive", action="store_true")
    p.add_argument("-t", "--tty", action="store_true")
    p.add_argument("-d", "--detach", action="store_true")
    p.add_argument("-e", "--env", action="append")
    p.add_argument("-u", "--user")
    p.add_argument("-w", "--workdir")
    p.add_argument("--privileged", action="store_true")
    p.add_argument("container")
    p.add_argument("command", nargs="...")
