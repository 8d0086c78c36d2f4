"""Cgroups for one container: create, limit, join, freeze/thaw, read, remove.

Both hierarchies are supported and detected once:
- v2 ("unified" at /sys/fs/cgroup, cgroup.controllers there): one directory
  ``<parent>/<id>``; limits in memory.max, memory.swap.max, cpu.max, pids.max;
  pause via cgroup.freeze.
- v1: one directory per controller (memory, cpu, pids, freezer, cpuacct) at
  ``/sys/fs/cgroup/<ctrl>/<parent>/<id>``. A v2 mount *beside* v1 (the hybrid
  "unified" mount) carries no controllers we need and is ignored.

The supervisor moves the container's init in by its host pid right after the
fork, before the init may exec.
"""
from __future__ import annotations

import os
import time

ROOT = "/sys/fs/cgroup"
V1_CONTROLLERS = ("memory", "cpu", "cpuacct", "pids", "freezer")
CFS_PERIOD = 100_000


def version() -> int:
    return 2 if os.path.exists(f"{ROOT}/cgroup.controllers") else 1


def _write(path: str, value) -> None:
    with open(path, "w") as f:
        f.write(str(value))


def _read(path: str) -> str:
    with open(path) as f:
        return f.read()


class Cgroup:
    def __init__(self, parent: str, name: str):
        self.v = version()
        self.rel = f"{parent.strip('/')}/{name}"
        if self.v == 2:
            self.dirs = {"": f"{ROOT}/{self.rel}"}
        else:
            self.dirs = {c: f"{ROOT}/{c}/{self.rel}" for c in V1_CONTROLLERS
                         if os.path.isdir(f"{ROOT}/{c}")}

    def _dir(self, ctrl: str) -> str | None:
        return self.dirs.get("" if self.v == 2 else ctrl)

    def exists(self) -> bool:
        return any(os.path.isdir(d) for d in self.dirs.values())

    def create(self, memory: int = 0, memory_swap: int = 0, nano_cpus: int = 0,
               pids_limit: int = 0) -> None:
        if self.v == 2:
            self._enable_v2_controllers()
        for d in self.dirs.values():
            os.makedirs(d, exist_ok=True)
        try:
            self.set_limits(memory, memory_swap, nano_cpus, pids_limit)
        except OSError:
            self.remove()
            raise

    def _enable_v2_controllers(self) -> None:
        # each ancestor must delegate memory/cpu/pids to its children
        path = ROOT
        for part in self.rel.split("/")[:-1]:
            avail = _read(f"{path}/cgroup.controllers").split()
            want = " ".join(f"+{c}" for c in ("memory", "cpu", "pids") if c in avail)
            if want:
                _write(f"{path}/cgroup.subtree_control", want)
            path = f"{path}/{part}"
            os.makedirs(path, exist_ok=True)
        avail = _read(f"{path}/cgroup.controllers").split()
        want = " ".join(f"+{c}" for c in ("memory", "cpu", "pids") if c in avail)
        if want:
            _write(f"{path}/cgroup.subtree_control", want)

    def set_limits(self, memory: int = 0, memory_swap: int = 0, nano_cpus: int = 0,
                   pids_limit: int = 0) -> None:
        swap = memory * 2 if memory and memory_swap == 0 else memory_swap
        if self.v == 2:
            d = self.dirs[""]
            if memory:
                _write(f"{d}/memory.max", memory)
                if os.path.exists(f"{d}/memory.swap.max"):
                    _write(f"{d}/memory.swap.max", "max" if swap < 0 else swap - memory)
            if nano_cpus:
                _write(f"{d}/cpu.max", f"{nano_cpus * CFS_PERIOD // 10**9} {CFS_PERIOD}")
            if pids_limit:
                _write(f"{d}/pids.max", pids_limit)
            return
        if memory and (d := self._dir("memory")):
            _write(f"{d}/memory.limit_in_bytes", memory)
            if os.path.exists(f"{d}/memory.memsw.limit_in_bytes"):
                _write(f"{d}/memory.memsw.limit_in_bytes", -1 if swap < 0 else swap)
        if nano_cpus and (d := self._dir("cpu")):
            _write(f"{d}/cpu.cfs_period_us", CFS_PERIOD)
            _write(f"{d}/cpu.cfs_quota_us", nano_cpus * CFS_PERIOD // 10**9)
        if pids_limit and (d := self._dir("pids")):
            _write(f"{d}/pids.max", pids_limit)

    def join(self, pid: int = 0) -> None:
        """Move `pid` (0 = the calling process) into every controller's cgroup."""
        for d in self.dirs.values():
            _write(f"{d}/cgroup.procs", pid)

    def pids(self) -> list[int]:
        d = next(iter(self.dirs.values()))
        if self.v == 1:
            d = self._dir("pids") or self._dir("memory") or d
        try:
            return sorted(int(p) for p in _read(f"{d}/cgroup.procs").split())
        except FileNotFoundError:
            return []

    def freeze(self, timeout: float = 5.0) -> None:
        self._set_frozen(True, timeout)

    def thaw(self, timeout: float = 5.0) -> None:
        self._set_frozen(False, timeout)

    def _set_frozen(self, frozen: bool, timeout: float) -> None:
        if self.v == 2:
            d = self.dirs[""]
            _write(f"{d}/cgroup.freeze", int(frozen))
            done = lambda: f"frozen {int(frozen)}" in _read(f"{d}/cgroup.events")
        else:
            d = self._dir("freezer")
            if d is None:
                raise OSError("the freezer cgroup controller is not available")
            want = "FROZEN" if frozen else "THAWED"
            _write(f"{d}/freezer.state", want)
            done = lambda: _read(f"{d}/freezer.state").strip() == want
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline:
                raise TimeoutError(f"cgroup did not become {'frozen' if frozen else 'thawed'}")
            time.sleep(0.002)

    def frozen(self) -> bool:
        if self.v == 2:
            return "frozen 1" in _read(f"{self.dirs['']}/cgroup.events")
        d = self._dir("freezer")
        return bool(d) and _read(f"{d}/freezer.state").strip() == "FROZEN"

    def oom_killed(self) -> bool:
        """True once the kernel's OOM killer has killed a process in this cgroup."""
        try:
            if self.v == 2:
                text = _read(f"{self.dirs['']}/memory.events")
            else:
                d = self._dir("memory")
                text = _read(f"{d}/memory.oom_control") if d else ""
        except FileNotFoundError:
            return False
        for line in text.splitlines():
            key, _, val = line.partition(" ")
            if key == "oom_kill" and int(val) > 0:
                return True
        return False

    def memory_usage(self) -> int:
        try:
            if self.v == 2:
                return int(_read(f"{self.dirs['']}/memory.current"))
            return int(_read(f"{self._dir('memory')}/memory.usage_in_bytes"))
        except (FileNotFoundError, TypeError):
            return 0

    def remove(self, timeout: float = 2.0) -> None:
        """rmdir every directory; waits briefly for dying tasks to leave. A
        frozen cgroup is thawed first so its tasks can die."""
        deadline = time.monotonic() + timeout
        for d in self.dirs.values():
            while os.path.isdir(d):
                try:
                    os.rmdir(d)
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    if self.frozen():
                        self.thaw()
                    time.sleep(0.005)
