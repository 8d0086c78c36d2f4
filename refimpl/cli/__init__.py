"""refimpl: a Docker-compatible command line client over the Docker Engine API.

It drives any engine that speaks the API (refimpld, or dockerd itself): the daemon is
chosen once, from `-H/--host` or `DOCKER_HOST` (unix:// or tcp://), and the API
version is negotiated with `GET /_ping`. Commands and flags follow the docker CLI's
names, output formats and exit statuses, so that scripts written for one work with
the other. Every failure is one line on stderr, never a traceback.

Modules: client (HTTP, version negotiation, hijack), streams (attach I/O), run (run,
create, start, exec), containers (ps, inspect, logs, lifecycle verbs), images, cp,
system (version, info), networks, volumes, template and output (`--format`), units (flag grammars).
"""
from __future__ import annotations

import argparse
import sys

import refimpl

from . import build, containers, cp, images, networks, registry, run, system, volumes
from .client import CLIError, Client

# `docker container ls`, `docker image rm`, ...: management commands as aliases.
ALIASES = {
    ("container", "ls"): ["ps"], ("container", "list"): ["ps"], ("container", "rm"): ["rm"],
    ("container", "inspect"): ["inspect", "--type", "container"],
    ("image", "ls"): ["images"], ("image", "list"): ["images"], ("image", "rm"): ["rmi"],
    ("image", "inspect"): ["inspect", "--type", "image"],
}
GROUPS = {"container": {"run", "create", "start", "stop", "kill", "restart", "logs", "wait", "rename",
                        "top", "pause", "unpause", "cp", "exec", "commit", "export", "diff"},
          "image": {"pull", "tag", "save", "load", "history", "build", "import"}}
RUN_COMMANDS = {"run", "create"}   # their failures exit 125, as docker's do


class Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as one-line CLIErrors (status 125, as
    docker exits for a flag error) instead of printing usage and exiting 2."""

    def error(self, message: str):
        if message.startswith("unrecognized arguments: "):
            message = "unknown flag: " + message.split(": ", 1)[1]
        raise CLIError(f"{self.prog}: {message}", 125)


def _command(sub, name: str, func, help: str) -> Parser:
    p = sub.add_parser(name, help=help, add_help=False, allow_abbrev=False, description=help)
    p.add_argument("--help", action="help", help="Print usage")
    p.set_defaults(func=func, cmd_name=name)
    return p


def build_parser() -> Parser:
    top = Parser(prog="refimpl", allow_abbrev=False,
                 description="A Docker-compatible client for the Docker Engine API")
    top.add_argument("-H", "--host", help="Daemon socket to connect to (unix:// or tcp://)")
    top.add_argument("-v", "--version", action="version", version=f"refimpl version {refimpl.__version__}")
    sub = top.add_subparsers(metavar="COMMAND", parser_class=Parser)
    for module in (run, containers, images, registry, cp, system, networks, volumes, build):
        module.register(sub, _command)
    return top


def _expand(argv: list[str]) -> list[str]:
    """Rewrite `container X` / `image X` to the top-level command."""
    for i, word in enumerate(argv):
        if not word.startswith("-"):
            if i > 0 and argv[i - 1] in ("-H", "--host"):
                continue
            nxt = argv[i + 1] if i + 1 < len(argv) else ""
            if (word, nxt) in ALIASES:
                return argv[:i] + ALIASES[(word, nxt)] + argv[i + 2:]
            if nxt in GROUPS.get(word, ()):
                return argv[:i] + argv[i + 1:]
            return argv
    return argv


def main(argv: list[str] | None = None) -> int:
    argv = _expand(list(sys.argv[1:] if argv is None else argv))
    command = None
    try:
        args = build_parser().parse_args(argv)
        command = getattr(args, "cmd_name", None)
        if command is None:
            build_parser().print_help()
            return 0
        return args.func(Client(args.host), args)
    except CLIError as e:
        msg = str(e)
        if msg.startswith("refimpl"):
            print(msg, file=sys.stderr)
        else:
            print(f"refimpl: {msg}", file=sys.stderr)
        return 125 if command in RUN_COMMANDS and e.status == 1 else e.status
    except OSError as e:
        print(f"refimpl: {e.strerror or e}" + (f": {e.filename}" if e.filename else ""), file=sys.stderr)
        return 125 if command in RUN_COMMANDS else 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
