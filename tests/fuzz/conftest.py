"""One refimpld for the fuzz and concurrency tests: its own data root, socket and
bridge (`dshd…`), the offline busybox image in its store, a refimpl-registry on
127.0.0.1 as its default registry (so no generated image name ever leaves this
host), and `--log-level warning`, so that the log holds only what went wrong."""
from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

import pytest

from ..engine.imagekit import DOCKER, Daemon, start_registry, workdir
from ..engine.test_containers_helpers import _kill_leftovers, why_not


@pytest.fixture(scope="module")
def refimpld():
    reason = why_not()
    if reason:
        pytest.skip(reason)
    if not Path(DOCKER).exists():
        pytest.skip("the docker CLI is not installed")
    from conformance.images import build_busybox
    from refimpl.engine.images import ImageService
    work = workdir("fuzz")
    server, host = start_registry(work / "registry")
    b = build_busybox()
    images = ImageService(work / "data" / "image")
    image = images.add_image(b.config, [io.BytesIO(x) for x in b.layers])
    images.tag(image.id, "busybox")
    daemon = Daemon(work)
    daemon.bridge = "dshd" + os.urandom(3).hex()
    daemon.extra = ["--bridge", daemon.bridge, "--default-registry", host]
    daemon.registry = host
    daemon.start()
    try:
        yield daemon
    finally:
        try:
            import json
            for c in json.loads(daemon.api("GET", "/containers/json?all=1")[1]):
                daemon.api("DELETE", f"/containers/{c['Id']}?force=1")
        except Exception:   # noqa: BLE001 - best effort; the cgroup sweep below is the backstop
            pass
        daemon.stop()
        _kill_leftovers(daemon.data / "containers")
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


def log_problems(daemon) -> list[str]:
    """Lines of the daemon's log that show an unhandled error."""
    text = (daemon.dir / "daemon.log").read_text(errors="replace")
    return [line for line in text.splitlines() if "Traceback" in line or " ERROR " in line]
