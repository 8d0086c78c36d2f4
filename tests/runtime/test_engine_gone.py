"""A supervisor whose engine dies during set-up (before it hears "created") does not
linger with a container nobody will start: it ends it, removes its cgroup and exits."""
from __future__ import annotations

import json
import os
import time

from refimpl.runtime.cgroups import Cgroup
from refimpl.runtime.client import _become_shim


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_supervisor_ends_a_set_up_container_when_the_engine_is_gone(containers):
    spec, state = containers.spec(["sleep", "3600"])
    with open(f"{state}/spec.json", "w") as f:
        f.write(spec.to_json())
    report_r, report_w = os.pipe()
    pid = os.fork()
    if pid == 0:                       # what spawn() forks; the "engine" below never reads
        os.close(report_r)
        _become_shim(state, report_w, -1, False)
    os.close(report_w)
    os.close(report_r)                 # the engine is gone before the supervisor reports
    os.waitpid(pid, 0)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not os.path.exists(f"{state}/shim.pid"):
        time.sleep(0.02)
    shim_pid = int(open(f"{state}/shim.pid").read())
    while time.monotonic() < deadline and _alive(shim_pid):
        time.sleep(0.02)
    assert not _alive(shim_pid), "the supervisor lingers with nobody to start its container"
    assert os.path.exists(f"{state}/exit.json"), open(f"{state}/shim.log").read()
    with open(f"{state}/exit.json") as f:
        assert json.load(f)["exit_code"] == 137
    assert not Cgroup(spec.cgroup_parent, spec.id).exists()
    assert not os.path.exists(f"{state}/started.json")
    with open(f"/proc/self/mountinfo") as f:
        assert spec.merged_dir not in f.read()
