"""Starting refimpld for the `refimpl` and `refimpl-dockercli` targets.

Each run gets its own refimpld with temporary data and exec roots and a socket
under the suite's state directory (the endpoint in targets.toml), on a bridge
of its own; it is stopped, and its roots removed, when the run ends.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

from . import services

def bridge_names() -> tuple[str, str]:
    """The bridges of this run's refimpld and of its second daemon: named after the
    state directory, so that suites running side by side never share (or delete)
    each other's bridge."""
    import hashlib
    tag = hashlib.sha256(str(services.STATE_DIR).encode()).hexdigest()[:6]
    return f"dsr{tag}", f"dss{tag}"


def ensure(svc: services.Services, target) -> str:
    endpoint = target.endpoint
    if services.answers(endpoint):
        return endpoint
    if target.cli[0] != "docker" and shutil.which(target.cli[0]) is None:
        raise services.ServiceError(f"target {target.name}: the {target.cli[0]} CLI is not installed")
    sock = Path(endpoint[len("unix://"):])
    sock.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="dockspec-refimpld-"))
    log = work / "refimpld.log"
    argv = [sys.executable, "-m", "refimpl.daemon", "-H", endpoint,
            "--data-root", str(work / "data"), "--exec-root", str(work / "exec"),
            "--bridge", bridge_names()[0]]
    proc = services._spawn("refimpld", argv, log)
    svc.started.append(services.Started("refimpld", proc.pid, str(work)))
    svc.save()
    services.wait_until(lambda: services.answers(endpoint), "refimpld", 30, proc, log)
    return endpoint


def cleanup() -> None:
    """After the run's refimpld stopped: remove the bridges (and their iptables chains)
    that it and the second daemon made. refimpld leaves its bridge in place on exit,
    as dockerd leaves docker0, so that running containers keep their network."""
    try:
        from refimpl.network.bridge import delete_bridge
    except ImportError:
        return
    for name in bridge_names():
        try:
            delete_bridge(name)
        except Exception:  # noqa: BLE001 - best effort: absent parts are fine
            pass
