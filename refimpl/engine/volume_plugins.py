"""Volume drivers as plugins: Docker's legacy (v1) plugin protocol.

A plugin is a process serving JSON over HTTP on a UNIX socket (or TCP). The
engine finds it by name in the plugin directories, as dockerd does
(pkg/plugins/discovery.go): ``NAME.sock`` (a socket), ``NAME.spec`` (a file
holding its address: ``unix:///path`` or ``tcp://host:port``) or ``NAME.json``
(``{"Name": ..., "Addr": ...}``). It is activated once
(``POST /Plugin.Activate`` must list ``VolumeDriver`` in ``Implements``) and
then asked ``POST /VolumeDriver.<Method>`` with a JSON body; every answer may
carry ``Err``, which becomes the engine's error.

    Create {Name, Opts}        Remove {Name}
    Mount {Name, ID} -> {Mountpoint}     Unmount {Name, ID}
    Path {Name} -> {Mountpoint}          Get {Name} -> {Volume}

The engine keeps its own record of each plugin volume (driver, labels) beside
the local ones; the plugin holds the data and says where it is mounted.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
from pathlib import Path

from .errors import EngineError, NotFound

MEDIA_TYPE = "application/vnd.docker.plugins.v1.2+json"
DEFAULT_DIRS = ("/run/docker/plugins", "/etc/docker/plugins", "/usr/lib/docker/plugins")
NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")


class _UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float):
        super().__init__("plugin", timeout=timeout)
        self.unix_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.unix_path)


class Plugin:
    def __init__(self, name: str, addr: str, timeout: float = 30):
        self.name, self.addr, self.timeout = name, addr, timeout

    def call(self, method: str, body: dict) -> dict:
        if self.addr.startswith("unix://"):
            conn = _UnixHTTP(self.addr[len("unix://"):], self.timeout)
        elif self.addr.startswith("tcp://"):
            host, _, port = self.addr[len("tcp://"):].rstrip("/").rpartition(":")
            conn = http.client.HTTPConnection(host, int(port), timeout=self.timeout)
        else:
            raise EngineError(f"plugin {self.name}: unsupported address {self.addr!r}")
        try:
            conn.request("POST", "/" + method, json.dumps(body).encode(),
                         {"Content-Type": MEDIA_TYPE, "Accept": MEDIA_TYPE})
            resp = conn.getresponse()
            raw = resp.read()
        except (OSError, http.client.HTTPException) as e:
            raise EngineError(f"error while calling plugin {self.name} ({method}): {e}") from None
        finally:
            conn.close()
        try:
            answer = json.loads(raw or b"{}")
        except ValueError:
            text = raw.decode(errors="replace").strip().splitlines()
            raise EngineError(f"plugin {self.name} answered {method} with something that is not JSON "
                              f"(status {resp.status}): {(text or [''])[0][:80]!r}") from None
        if not isinstance(answer, dict):
            raise EngineError(f"plugin {self.name} answered {method} with JSON that is not an object")
        if resp.status != 200 and not answer.get("Err"):
            answer["Err"] = f"status {resp.status}"
        if answer.get("Err"):
            lines = str(answer["Err"]).splitlines() or [""]
            raise EngineError(f"{method}: {lines[0]}")
        return answer


def find(name: str, dirs: list[str]) -> Plugin:
    """The plugin called `name`, activated; NotFound when no directory has it or it is no volume driver."""
    if not name or not set(name) <= NAME_CHARS:
        raise NotFound(f'plugin "{name}" not found')
    addr = None
    for d in dirs:
        base = Path(d)
        if (base / f"{name}.sock").exists():
            addr = f"unix://{base / f'{name}.sock'}"
        elif (base / name / f"{name}.sock").exists():
            addr = f"unix://{base / name / f'{name}.sock'}"
        elif (base / f"{name}.spec").is_file():
            addr = (base / f"{name}.spec").read_text().strip()
        elif (base / f"{name}.json").is_file():
            try:
                addr = json.loads((base / f"{name}.json").read_text()).get("Addr")
            except ValueError:
                addr = None
        if addr:
            break
    if not addr:
        raise NotFound(f'plugin "{name}" not found')
    plugin = Plugin(name, addr)
    try:
        implements = plugin.call("Plugin.Activate", {}).get("Implements") or []
    except EngineError as e:
        raise EngineError(f"error looking up volume plugin {name}: {e}") from None
    if not isinstance(implements, list) or "VolumeDriver" not in implements:
        raise NotFound(f'plugin "{name}" does not implement VolumeDriver')
    return plugin


def plugin_dirs(exec_root: str | os.PathLike | None) -> list[str]:
    return ([str(Path(exec_root) / "plugins")] if exec_root else []) + list(DEFAULT_DIRS)
