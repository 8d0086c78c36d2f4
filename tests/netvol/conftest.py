"""One refimpld per test module, on a bridge of its own (dsnv…), driven by the real docker CLI."""
from __future__ import annotations

import secrets

import pytest

from tests.engine.test_containers_helpers import Daemon, why_not


class NetvolDaemon(Daemon):
    def __init__(self):
        super().__init__()
        self.bridge = "dsnv" + secrets.token_hex(4)


@pytest.fixture(scope="module")
def d():
    reason = why_not()
    if reason:
        pytest.skip(reason)
    daemon = NetvolDaemon()
    try:
        daemon.prepare().start()
        yield daemon
    finally:
        daemon.cleanup()
