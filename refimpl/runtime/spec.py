"""What the engine hands the runtime: one JSON-serialisable ContainerSpec.

The spec is written to ``<state_dir>/spec.json`` by :func:`refimpl.runtime.spawn`
so that the supervisor (which may be a fresh interpreter) and a restarted engine
read the very same description. Pure module: no syscalls, so the parsing parts
(user strings, passwd/group files, spec JSON) get property tests.
"""
from __future__ import annotations

import dataclasses
import json
import re
import signal
from dataclasses import dataclass, field

from .syscalls import DEFAULT_CAPS

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass
class Mount:
    """A bind mount (source on the host) or a tmpfs (source ignored)."""
    target: str
    source: str = ""
    type: str = "bind"          # "bind" | "tmpfs"
    readonly: bool = False
    options: str = ""           # tmpfs data, e.g. "size=64m,mode=1777"


@dataclass
class NetConfig:
    """The container end of a veth pair as the network component prepared it."""
    ifname: str                 # its name when it arrives in the container's netns
    address: str                # "a.b.c.d/nn"
    gateway: str = ""
    mac: str = ""


@dataclass
class ContainerSpec:
    id: str
    lower_dirs: list[str]       # top-most first, as overlayfs' lowerdir= wants them
    upper_dir: str
    work_dir: str
    merged_dir: str
    args: list[str]
    env: list[str] = field(default_factory=list)        # "KEY=value"
    cwd: str = "/"
    user: str = ""              # "", "uid", "uid:gid", "name", "name:group"
    hostname: str = ""
    tty: bool = False
    open_stdin: bool = False
    stdin_once: bool = False    # close the container's stdin when an attached client sends EOF
    readonly_rootfs: bool = False
    mounts: list[Mount] = field(default_factory=list)
    etc_files: dict[str, str] = field(default_factory=dict)  # {"hosts"|"resolv.conf"|"hostname": host path}
    network_mode: str = "none"  # "none" | "host" | "bridge"
    net: NetConfig | None = None
    memory: int = 0             # bytes; 0 = unlimited
    memory_swap: int = 0        # Docker's --memory-swap: 0 = twice memory, -1 = unlimited
    nano_cpus: int = 0
    pids_limit: int = 0         # 0 = unlimited
    stop_signal: str = "SIGTERM"
    capabilities: list[str] = field(default_factory=lambda: list(DEFAULT_CAPS))
    no_new_privileges: bool = False   # Docker's --security-opt no-new-privileges
    cgroup_parent: str = "dockspec"
    log_path: str = ""          # json-file log; "" = <state_dir>/json.log
    console_size: tuple[int, int] | None = None   # (height, width)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "ContainerSpec":
        d = json.loads(text)
        d["mounts"] = [Mount(**m) for m in d.get("mounts", [])]
        d["net"] = NetConfig(**d["net"]) if d.get("net") else None
        if d.get("console_size"):
            d["console_size"] = tuple(d["console_size"])
        return cls(**d)

    def validate(self) -> None:
        """Raise ValueError (one line) for a spec the runtime cannot run."""
        if not self.args:
            raise ValueError("no command specified")
        if self.network_mode not in ("none", "host", "bridge"):
            raise ValueError(f"invalid network mode: {self.network_mode!r}")
        if not self.lower_dirs:
            raise ValueError("no lower dirs for the root filesystem")
        for m in self.mounts:
            if m.type not in ("bind", "tmpfs"):
                raise ValueError(f"invalid mount type: {m.type!r}")
            if not m.target.startswith("/"):
                raise ValueError(f"invalid mount target {m.target!r}: must be absolute")
        for name in self.etc_files:
            if name not in ("hosts", "resolv.conf", "hostname"):
                raise ValueError(f"unsupported /etc file: {name!r}")
        signal_number(self.stop_signal)

    def env_dict(self) -> dict[str, str]:
        out = {}
        for item in self.env:
            k, _, v = item.partition("=")
            out[k] = v
        return out


def signal_number(sig: str | int) -> int:
    """"SIGTERM", "TERM", "15" or 15 -> 15; anything else raises ValueError."""
    if isinstance(sig, int) or str(sig).isdigit():
        n = int(sig)
        if 0 < n < 65:
            return n
    else:
        name = str(sig).upper()
        name = name if name.startswith("SIG") else "SIG" + name
        if hasattr(signal.Signals, name):
            return int(signal.Signals[name])
    raise ValueError(f"invalid signal: {sig}")


# --- users ------------------------------------------------------------------
# moby: the --user flag is "name|uid[:group|gid]" (docs: docker run --user)
_USER = re.compile(r"^([^:]+)(?::([^:]+))?$")


def _table(text: str, fields: int) -> list[list[str]]:
    rows = []
    for line in text.splitlines():
        if line.strip() and not line.startswith("#"):
            parts = line.split(":")
            if len(parts) >= fields:
                rows.append(parts)
    return rows


def resolve_user(user: str, passwd: str, group: str) -> tuple[int, int, list[int], str]:
    """Resolve a Docker --user string against a rootfs' /etc/passwd and /etc/group
    texts. Returns (uid, gid, supplementary gids, home). Errors read as Docker's."""
    if not user:
        user = "0"
    m = _USER.match(user)
    if not m:
        raise ValueError(f"invalid user: {user!r}")
    uname, gname = m.groups()
    users, groups = _table(passwd, 7), _table(group, 4)
    home, name = "/", None
    if uname.isdigit():
        uid, gid = int(uname), 0
        for row in users:
            if row[2] == uname:
                name, gid, home = row[0], int(row[3]), row[5] or "/"
                break
    else:
        for row in users:
            if row[0] == uname:
                name, uid, gid, home = row[0], int(row[2]), int(row[3]), row[5] or "/"
                break
        else:
            raise ValueError(f"unable to find user {uname}: no matching entries in passwd file")
    if gname is not None:
        if gname.isdigit():
            gid = int(gname)
        else:
            for row in groups:
                if row[0] == gname:
                    gid = int(row[2])
                    break
            else:
                raise ValueError(f"unable to find group {gname}: no matching entries in group file")
    extra = sorted({int(row[2]) for row in groups
                    if name and name in row[3].split(",") and int(row[2]) != gid})
    return uid, gid, extra, home
