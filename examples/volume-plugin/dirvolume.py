#!/usr/bin/env python3
"""dirvolume: a tiny volume plugin speaking Docker's legacy plugin protocol.

Each volume is a directory under ROOT; Mount answers that directory (counting
the containers that have it mounted), Remove refuses a mounted volume. Put the
socket where the engine looks for plugins (refimpld: <exec-root>/plugins/, or
/run/docker/plugins/ for either engine) and use `--driver dirvolume`:

    python3 dirvolume.py --socket /run/refimpl/plugins/dirvolume.sock --root /srv/volumes
    docker volume create -d dirvolume data
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socketserver
import sys
import threading
from http.server import BaseHTTPRequestHandler

NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*")


class Driver:
    def __init__(self, root: str):
        self.root, self.mounts, self.lock = root, {}, threading.Lock()
        os.makedirs(root, exist_ok=True)

    def path(self, name: str) -> str:
        if not NAME.fullmatch(name or ""):
            raise ValueError(f"invalid volume name {name!r}")
        return os.path.join(self.root, name)

    def handle(self, method: str, req: dict) -> dict:
        if method == "Plugin.Activate":
            return {"Implements": ["VolumeDriver"]}
        if method == "VolumeDriver.Capabilities":
            return {"Capabilities": {"Scope": "local"}}
        if method == "VolumeDriver.List":
            return {"Volumes": [{"Name": n, "Mountpoint": self.path(n)} for n in sorted(os.listdir(self.root))]}
        name = req.get("Name", "")
        path = self.path(name)
        with self.lock:
            if method == "VolumeDriver.Create":
                os.makedirs(path, exist_ok=True)
                return {}
            if not os.path.isdir(path):
                return {"Err": f"no such volume: {name}"}
            if method == "VolumeDriver.Remove":
                if self.mounts.get(name):
                    return {"Err": f"volume {name} is mounted"}
                shutil.rmtree(path)
                return {}
            if method in ("VolumeDriver.Path", "VolumeDriver.Get"):
                vol = {"Name": name, "Mountpoint": path, "Status": {"mounts": len(self.mounts.get(name, ()))}}
                return {"Mountpoint": path} if method.endswith("Path") else {"Volume": vol}
            if method == "VolumeDriver.Mount":
                self.mounts.setdefault(name, set()).add(req.get("ID", ""))
                return {"Mountpoint": path}
            if method == "VolumeDriver.Unmount":
                self.mounts.get(name, set()).discard(req.get("ID", ""))
                return {}
        return {"Err": f"unknown method {method}"}


def serve(socket_path: str, root: str) -> socketserver.BaseServer:
    driver = Driver(root)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            try:
                req = json.loads(self.rfile.read(length) or b"{}")
                answer = driver.handle(self.path.lstrip("/"), req if isinstance(req, dict) else {})
            except (ValueError, OSError) as e:
                answer = {"Err": str(e)}
            body = json.dumps(answer).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/vnd.docker.plugins.v1.2+json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def address_string(self):
            return "unix"

        def log_message(self, *args):
            pass

    if os.path.exists(socket_path):
        os.unlink(socket_path)
    os.makedirs(os.path.dirname(socket_path) or ".", exist_ok=True)
    return socketserver.ThreadingUnixStreamServer(socket_path, Handler)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--socket", required=True)
    p.add_argument("--root", required=True)
    a = p.parse_args(argv)
    server = serve(a.socket, a.root)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        os.unlink(a.socket)
    return 0


if __name__ == "__main__":
    sys.exit(main())
