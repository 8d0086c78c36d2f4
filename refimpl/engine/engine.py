"""The Engine: one object holding the daemon's services, built once at start-up.

    engine.images       ImageService   (refimpl/engine/images.py)
    engine.containers   ContainerService
    engine.networks     NetworkService

The api layer only ever talks to this object. Everything it holds is persisted
under --data-root; per-run state (sockets, supervisors' state dirs) lives under
--exec-root.
"""

from __future__ import annotations

import os
import platform
import socket
import uuid
from pathlib import Path

from .. import __version__
from . import persist
from .images import ImageService


class Engine:
    def __init__(self, data_root: str | os.PathLike, exec_root: str | os.PathLike, *,
                 name: str | None = None):
        self.data_root = Path(data_root)
        self.exec_root = Path(exec_root)
        for d in (self.data_root, self.exec_root):
            d.mkdir(parents=True, exist_ok=True)
            os.chmod(d, 0o711)
        for d in (self.data_root, self.data_root / "network", self.data_root / "build"):
            persist.sweep(d)           # temporary records of a write cut short by a crash
        volumes = self.data_root / "volumes"
        for d in volumes.iterdir() if volumes.is_dir() else ():
            persist.sweep(d)
        ident = self.data_root / "engine-id.json"
        self.id = (persist.read_json(ident) or {}).get("id")
        if not self.id:
            self.id = str(uuid.uuid4())
            persist.write_json(ident, {"id": self.id})
        self.name = name or socket.gethostname()
        self.images = ImageService(self.data_root / "image")
        self.containers = None     # ContainerService, wired in by the containers module
        self.networks = None       # NetworkService

    def version(self) -> dict:
        return {
            "Platform": {"Name": "refimpl"},
            "Components": [{"Name": "Engine", "Version": __version__,
                            "Details": {"ApiVersion": "1.44", "MinAPIVersion": "1.24", "Os": "linux",
                                        "Arch": _arch(), "GitCommit": "refimpl",
                                        "GoVersion": f"python{platform.python_version()}",
                                        "KernelVersion": platform.release(), "Experimental": "false",
                                        "BuildTime": ""}}],
            "Version": __version__, "Os": "linux", "Arch": _arch(),
            "KernelVersion": platform.release(), "GoVersion": f"python{platform.python_version()}",
            "GitCommit": "refimpl", "BuildTime": "",
        }

    def info(self) -> dict:
        counts = self.containers.counts() if self.containers else {}
        cgroup_v2 = Path("/sys/fs/cgroup/cgroup.controllers").exists()
        controllers = _controllers()
        return {
            "ID": self.id, "Name": self.name, "ServerVersion": __version__,
            "Containers": counts.get("total", 0), "ContainersRunning": counts.get("running", 0),
            "ContainersPaused": counts.get("paused", 0), "ContainersStopped": counts.get("stopped", 0),
            "Images": len(self.images.images()),
            "Driver": "overlay2", "DriverStatus": [["Backing Filesystem", "extfs"]],
            "DockerRootDir": str(self.data_root), "ExecRoot": str(self.exec_root),
            "MemoryLimit": "memory" in controllers, "SwapLimit": "memory" in controllers,
            "CpuCfsQuota": "cpu" in controllers, "CpuCfsPeriod": "cpu" in controllers,
            "PidsLimit": "pids" in controllers, "IPv4Forwarding": _ip_forward(),
            "CgroupDriver": "cgroupfs", "CgroupVersion": "2" if cgroup_v2 else "1",
            "KernelVersion": platform.release(), "OperatingSystem": _os_name(), "OSType": "linux",
            "OSVersion": "", "Architecture": platform.machine(), "NCPU": os.cpu_count() or 1,
            "MemTotal": _mem_total(), "Runtimes": {"refimpl": {"path": "refimpl.runtime"}},
            "DefaultRuntime": "refimpl", "SecurityOptions": ["name=no-new-privileges-optional"],
            "Labels": [], "ExperimentalBuild": False, "LiveRestoreEnabled": True,
            "Debug": False, "NFd": _count(f"/proc/{os.getpid()}/fd"), "NGoroutines": 0,
            "RegistryConfig": {"IndexConfigs": {}, "InsecureRegistryCIDRs": ["127.0.0.0/8"],
                               "Mirrors": []},
            "Plugins": {"Volume": ["local"], "Network": ["bridge", "host", "null"],
                        "Log": ["json-file"]},
        }


def _arch() -> str:
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())


def _controllers() -> set[str]:
    found = set()
    try:
        for line in Path("/proc/cgroups").read_text().splitlines()[1:]:
            parts = line.split()
            if len(parts) == 4 and parts[3] == "1":
                found.add(parts[0])
    except OSError:
        pass
    return found


def _ip_forward() -> bool:
    try:
        return Path("/proc/sys/net/ipv4/ip_forward").read_text().strip() == "1"
    except OSError:
        return False


def _os_name() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return "Linux"


def _mem_total() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _count(path: str) -> int:
    try:
        return len(os.listdir(path))
    except OSError:
        return 0
