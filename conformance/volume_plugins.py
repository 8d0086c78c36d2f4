"""Volume plugins for the plugins feature: the example driver, and plugins that misbehave.

Docker's legacy plugins are found by name in the plugin directories (a socket in
/run/docker/plugins, a .spec or .json file in /etc/docker/plugins or
/usr/lib/docker/plugins). Both dockerd and refimpld look there, so one socket
serves every target.

* The example driver (examples/volume-plugin/dirvolume.py) runs once per suite
  run, as a process of its own, under a name made from the state directory
  (``dsvol-<hash>``) so that runs side by side never share a plugin; its volumes
  are directories under a temporary root. It is stopped, and its socket and root
  removed, when the run ends.
* On the docker target, only a dockerd the suite started and will stop is used
  (why_not_dockerd): dockerd never forgets a legacy plugin it has used.
* A plugin that answers garbage (200 with a body that is no JSON, for every
  method) and a plugin whose socket nobody answers (the socket file of a
  process that died) exist only for the scenario that names them.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import socketserver
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path

from . import services

SOCKET_DIR = Path("/run/docker/plugins")
SPEC_DIR = Path("/etc/docker/plugins")
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "volume-plugin" / "dirvolume.py"


def why_not() -> str | None:
    """Why this host cannot serve legacy plugins to its engines (None: it can)."""
    if os.geteuid() != 0:
        return "env-skip: plugin sockets go in /run/docker/plugins, which needs root"
    return None


def why_not_dockerd(svc: services.Services, started_here: set[int] = frozenset()) -> str | None:
    """dockerd keeps every legacy volume plugin it has used in its driver list until it stops, and
    asks each one for its volumes at every `volume ls`, retrying a plugin that is gone for up to
    30 seconds (15 s measured). So the plugins feature runs only on a dockerd the suite started
    (and stops at its end), never on a long-lived one it merely found running."""
    if any(s.name == "dockerd" and s.pid in started_here for s in svc.started) \
            and not os.environ.get("DOCKSPEC_KEEP_SERVICES"):
        return None
    return ("env-skip: this dockerd was not started by the suite; a legacy plugin it used would stay "
            "in its driver list after the run, and every volume ls would wait on it")


def run_plugin_name() -> str:
    tag = hashlib.sha256(str(services.STATE_DIR).encode()).hexdigest()[:8]
    return f"dsvol-{tag}"


def _ready(path: Path) -> bool:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(str(path))
        return True
    except OSError:
        return False
    finally:
        s.close()


class ExampleDriver:
    """The repository's example driver, serving this run under its own name."""

    def __init__(self) -> None:
        self.name = run_plugin_name()
        self.socket = SOCKET_DIR / f"{self.name}.sock"
        self.root = Path(tempfile.mkdtemp(prefix="dockspec-plugin-"))
        self.log = self.root.parent / (self.root.name + ".log")
        SOCKET_DIR.mkdir(parents=True, exist_ok=True)
        with open(self.log, "wb") as logf:
            self.proc = subprocess.Popen([sys.executable, str(EXAMPLE), "--socket", str(self.socket),
                                          "--root", str(self.root / "volumes")],
                                         stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True)
        deadline = time.monotonic() + 30
        while not _ready(self.socket):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise services.ServiceError(f"the example volume plugin did not start (log: {self.log})")
            time.sleep(0.05)

    @property
    def volumes(self) -> Path:
        return self.root / "volumes"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.socket.unlink(missing_ok=True)
        shutil.rmtree(self.root, ignore_errors=True)
        self.log.unlink(missing_ok=True)


class GarbagePlugin:
    """A plugin that answers every call, the handshake included, with a body that is no JSON."""

    BODY = b"<html><body>this is not a plugin</body></html>\n"

    def __init__(self, name: str) -> None:
        self.socket = SOCKET_DIR / f"{name}.sock"
        SOCKET_DIR.mkdir(parents=True, exist_ok=True)
        body = self.BODY

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def address_string(self):
                return "unix"

            def log_message(self, *args):
                pass

        self.socket.unlink(missing_ok=True)
        self.server = socketserver.ThreadingUnixStreamServer(str(self.socket), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.socket.unlink(missing_ok=True)


class DeadPlugin:
    """The socket file of a plugin that is gone: connecting to it is refused."""

    def __init__(self, name: str) -> None:
        self.socket = SOCKET_DIR / f"{name}.sock"
        SOCKET_DIR.mkdir(parents=True, exist_ok=True)
        self.socket.unlink(missing_ok=True)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(str(self.socket))      # bound, never listening, closed: the file stays
        s.close()

    def stop(self) -> None:
        self.socket.unlink(missing_ok=True)


class SpecFile:
    """A .spec file in /etc/docker/plugins naming a plugin by the URL of a socket."""

    def __init__(self, name: str, url: str) -> None:
        self.made = [d for d in (SPEC_DIR.parent, SPEC_DIR) if not d.exists()]
        SPEC_DIR.mkdir(parents=True, exist_ok=True)
        self.path = SPEC_DIR / f"{name}.spec"
        self.path.write_text(url + "\n")

    def stop(self) -> None:
        self.path.unlink(missing_ok=True)
        for d in reversed(self.made):       # the directories we made, if nothing else is in them
            try:
                d.rmdir()
            except OSError:
                break
