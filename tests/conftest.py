"""Fixtures shared by every test directory."""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def host_dockerd() -> str:
    """The host's dockerd, for the tests that measure against it or drive it.

    Reused when it answers; otherwise started for this test session with Docker's
    defaults, as the conformance session does, and stopped at the end by PID. A skip
    with the reason only where it cannot run at all (not installed, does not start).
    """
    from conformance import services
    endpoint = f"unix://{services.DOCKER_SOCK}"
    if services.answers(endpoint):
        yield endpoint
        return
    if shutil.which("dockerd") is None:
        pytest.skip("env-skip: dockerd is not installed (scripts/bootstrap installs docker.io)")
    work = Path(tempfile.mkdtemp(prefix="dockspec-tests-dockerd-"))
    log = work / "dockerd.log"
    proc = services._spawn("dockerd", ["dockerd", "-H", endpoint], log)
    try:
        services.wait_until(lambda: services.answers(endpoint), "dockerd", 60, proc, log)
    except services.ServiceError as e:
        services._terminate(proc.pid, "dockerd")
        pytest.skip(f"env-skip: {e}")
    try:
        yield endpoint
    finally:
        services._terminate(proc.pid, "dockerd")
        shutil.rmtree(work, ignore_errors=True)
