"""One refimpld per test module, on a bridge of its own (dsnv…), driven by the real docker CLI."""
from __future__ import annotations

import secrets

import pytest

from tests.engine.test_containers_helpers import Daemon, why_not


class NetvolDaemon(Daemon):
    def __init__(self):
        super().__init__()
        self.bridge = "dsnv" + secrets.token_hex(4)

    def cleanup(self) -> None:
        """Containers first (they hold endpoints), then the user networks with their bridges."""
        try:
            for c in self.api("GET", "/containers/json?all=1")[1]:
                self.api("DELETE", f"/containers/{c['Id']}?force=1&v=1")
            for n in self.api("GET", "/networks")[1]:
                if n["Name"] not in ("bridge", "host", "none"):
                    self.api("DELETE", f"/networks/{n['Id']}")
        except Exception:   # noqa: BLE001 - the daemon may be gone; the base cleanup still runs
            pass
        super().cleanup()


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
