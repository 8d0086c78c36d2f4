"""`docker exec`: extra processes in a running container.

An exec is created (its configuration checked against a running container),
then started once; its record keeps the exit code for `GET /exec/{id}/json`,
which is how the docker CLI learns it. The process itself is run by
refimpl.runtime.nsexec, which joins the container's namespaces and cgroups,
drops to Docker's default capabilities and switches user. Exec records live in
memory: like Docker's, they do not outlive the daemon.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from .errors import Conflict, InvalidParameter, NotFound
from .state import State


@dataclass
class Exec:
    id: str
    container_id: str
    args: list[str]
    tty: bool = False
    stdin: bool = False
    stdout: bool = True
    stderr: bool = True
    env: list[str] = field(default_factory=list)
    user: str = ""
    workdir: str = ""
    privileged: bool = False
    running: bool = False
    started: bool = False
    exit_code: int | None = None
    pid: int = 0


class ExecService:
    def __init__(self, engine):
        self.engine = engine
        self.execs: dict[str, Exec] = {}

    def create(self, container_ref: str, body) -> str:
        if not isinstance(body, dict):
            raise InvalidParameter("invalid exec configuration: expected a JSON object")
        c = self.engine.containers.get(container_ref)
        if c.state is not State.RUNNING:
            raise Conflict(f"Container {c.id} is not running")
        cmd = body.get("Cmd")
        if isinstance(cmd, str):
            cmd = [cmd]
        if not cmd or not isinstance(cmd, list) or not all(isinstance(a, str) for a in cmd):
            raise InvalidParameter("No exec command specified")
        for key in ("Env",):
            v = body.get(key)
            if v is not None and (not isinstance(v, list) or not all(isinstance(x, str) for x in v)):
                raise InvalidParameter(f"json: cannot unmarshal {type(v).__name__} into Go struct field "
                                       f"ExecConfig.{key} of type []string")
        for key in ("User", "WorkingDir"):
            if body.get(key) is not None and not isinstance(body.get(key), str):
                raise InvalidParameter(f"json: cannot unmarshal {type(body[key]).__name__} into Go struct "
                                       f"field ExecConfig.{key} of type string")
        e = Exec(secrets.token_hex(32), c.id, list(cmd), tty=bool(body.get("Tty")),
                 stdin=bool(body.get("AttachStdin")), stdout=bool(body.get("AttachStdout", True)),
                 stderr=bool(body.get("AttachStderr", True)), env=list(body.get("Env") or []),
                 user=body.get("User") or "", workdir=body.get("WorkingDir") or "",
                 privileged=bool(body.get("Privileged")))
        self.execs[e.id] = e
        return e.id

    def get(self, exec_id: str) -> Exec:
        found = self.execs.get(exec_id) or next(
            (e for i, e in self.execs.items() if len(exec_id) >= 12 and i.startswith(exec_id)), None)
        if found is None:
            raise NotFound(f"No such exec instance: {exec_id}")
        return found

    def prepare(self, exec_id: str) -> tuple[Exec, dict]:
        """Mark the exec started; the nsexec spec for it (container PID, env, user, cwd)."""
        e = self.get(exec_id)
        if e.started:
            raise Conflict(f"Error: Exec command {e.id} has already run")
        c = self.engine.containers.get(e.container_id)
        if c.state is not State.RUNNING or not c.pid:
            raise Conflict(f"Container {c.id} is not running")
        config = c.config or {}
        env = list(config.get("Env") or [])
        names = {x.split("=", 1)[0] for x in e.env}
        env = [x for x in env if x.split("=", 1)[0] not in names] + e.env
        if e.tty and not any(x.startswith("TERM=") for x in env):
            env.append("TERM=xterm")
        e.started = e.running = True
        return e, {"pid": c.pid, "args": e.args, "env": env, "user": e.user or config.get("User") or "",
                   "cwd": e.workdir or config.get("WorkingDir") or "/"}

    def finished(self, e: Exec, code: int) -> None:
        e.running, e.exit_code = False, code

    def inspect(self, exec_id: str) -> dict:
        e = self.get(exec_id)
        return {"ID": e.id, "Running": e.running, "ExitCode": e.exit_code, "ContainerID": e.container_id,
                "OpenStdin": e.stdin, "OpenStdout": e.stdout, "OpenStderr": e.stderr,
                "CanRemove": False, "DetachKeys": "", "Pid": e.pid,
                "ProcessConfig": {"tty": e.tty, "entrypoint": e.args[0], "arguments": e.args[1:],
                                  "privileged": e.privileged, "user": e.user}}
