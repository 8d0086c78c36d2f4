"""A second, independent daemon of the target's engine, for the client-server scenarios.

It listens on a UNIX socket and on TCP 127.0.0.1, keeps its state in a
temporary directory, and is started once per run, the first time a scenario
asks for it, and stopped when the run ends.

* dockerd: its own data and exec roots, its own containerd, `--iptables=false`,
  and a bridge of our own that we create and delete (never `--bridge=none`,
  which would delete the host's docker0).
* podman: `podman system service` with its own --root and --runroot.
* refimpld: its own data root and sockets.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from . import refimpl_service, services

_RUNNING: dict[str, "SecondDaemon"] = {}


@dataclass
class SecondDaemon:
    kind: str
    workdir: Path
    tcp: str                      # tcp://127.0.0.1:PORT
    unix: str                     # unix:///path or "" when the engine has only one listener
    cli: list[str]
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen | None = None
    bridge: str = ""

    def stop(self) -> None:
        if self.proc is not None:
            services._terminate(self.proc.pid, self.kind, timeout=30)
            self.proc = None
        if self.bridge:
            subprocess.run(["ip", "link", "del", self.bridge], capture_output=True)
        subprocess.run(["umount", "-R", "-l", str(self.workdir)], capture_output=True)
        shutil.rmtree(self.workdir, ignore_errors=True)


def second_daemon_for(world) -> SecondDaemon:
    target = world.target
    kind = target.second_daemon
    if kind in _RUNNING:
        return _RUNNING[kind]
    work = Path(tempfile.mkdtemp(prefix=f"dockspec-second-{kind}-"))
    port = services.free_port()
    tcp = f"tcp://127.0.0.1:{port}"
    log = work / "daemon.log"
    if kind == "dockerd":
        bridge = f"dss{os.getpid() % 100000}"
        subprocess.run(["ip", "link", "add", bridge, "type", "bridge"], check=True)
        # A private-use /24 that is unlikely to collide; no traffic leaves it (no NAT, no iptables).
        subprocess.run(["ip", "addr", "add", "10.213.77.1/24", "dev", bridge], check=True)
        unix = f"unix://{work}/docker.sock"
        argv = ["dockerd", "--data-root", str(work / "data"), "--exec-root", str(work / "exec"),
                "--pidfile", str(work / "docker.pid"), "-H", unix, "-H", tcp,
                "--bridge", bridge, "--iptables=false", "--ip-masq=false", "--ip-forward=false"]
        d = SecondDaemon(kind, work, tcp, unix, ["docker", "-H", unix], bridge=bridge)
        env = None
    elif kind == "podman":
        unix = ""
        argv = ["podman", "--root", str(work / "root"), "--runroot", str(work / "run"),
                "system", "service", "--time=0", tcp]
        d = SecondDaemon(kind, work, tcp, unix, ["podman", "--remote", "--url", tcp])
        env = target.base_env
    else:
        unix = f"unix://{work}/refimpl.sock"
        argv = [sys.executable, "-m", "refimpl.daemon", "--data-root", str(work / "data"),
                "--exec-root", str(work / "exec"), "-H", unix, "-H", tcp,
                "--bridge", refimpl_service.bridge_names()[1]]
        d = SecondDaemon(kind, work, tcp, unix, [*target.cli[:-2], "-H", unix] if "-H" in target.cli
                         else target.cli)
        env = None
    d.proc = services._spawn(kind, argv, log, env=env)
    _RUNNING[kind] = d
    # dockerd 20.10 waits 15 s on purpose before it serves plain TCP.
    services.wait_until(lambda: services.answers(tcp), f"second {kind}", 90, d.proc, log)
    return d


def stop_all() -> None:
    for d in list(_RUNNING.values()):
        d.stop()
    _RUNNING.clear()
