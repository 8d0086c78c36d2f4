"""version and info: what this client is and what the daemon says it is."""
from __future__ import annotations

import platform
import sys

import refimpl

from .client import API_VERSION, CLIError, Client
from .output import render_each, write
from .units import human_size


def cmd_version(cli: Client, a) -> int:
    client = {"Platform": {"Name": "refimpl"}, "Version": refimpl.__version__, "ApiVersion": API_VERSION,
              "DefaultAPIVersion": API_VERSION, "PythonVersion": platform.python_version(),
              "Os": sys.platform, "Arch": platform.machine()}
    server, err = None, None
    try:
        server = cli.get("/version")
        client["ApiVersion"] = cli.version
    except CLIError as e:
        err = e
    if a.format:
        write(render_each(a.format, [{"Client": client, "Server": server}]))
    else:
        lines = ["Client:", f" Version:           {client['Version']}",
                 f" API version:       {client['ApiVersion']}"
                 + (f" (downgraded from {API_VERSION})" if client["ApiVersion"] != API_VERSION else ""),
                 f" Python version:    {client['PythonVersion']}",
                 f" OS/Arch:           {client['Os']}/{client['Arch']}"]
        if server:
            lines += ["", "Server:", " Engine:",
                      f"  Version:          {server.get('Version', '')}",
                      f"  API version:      {server.get('ApiVersion', '')} (minimum version {server.get('MinAPIVersion', '')})",
                      f"  OS/Arch:          {server.get('Os', '')}/{server.get('Arch', '')}",
                      f"  Kernel version:   {server.get('KernelVersion', '')}"]
            for comp in server.get("Components") or []:
                if comp.get("Name") != "Engine":
                    lines += [f" {comp['Name']}:", f"  Version:          {comp.get('Version', '')}"]
        write("\n".join(lines) + "\n")
    if err:
        raise err
    return 0


def cmd_info(cli: Client, a) -> int:
    info = cli.get("/info")
    if a.format:
        write(render_each(a.format, [info]))
        return 0
    g = info.get
    lines = ["Server:",
             f" Containers: {g('Containers', 0)}", f"  Running: {g('ContainersRunning', 0)}",
             f"  Paused: {g('ContainersPaused', 0)}", f"  Stopped: {g('ContainersStopped', 0)}",
             f" Images: {g('Images', 0)}", f" Server Version: {g('ServerVersion', '')}",
             f" Storage Driver: {g('Driver', '')}", f" Cgroup Driver: {g('CgroupDriver', '')}",
             f" Cgroup Version: {g('CgroupVersion', '')}", f" Kernel Version: {g('KernelVersion', '')}",
             f" Operating System: {g('OperatingSystem', '')}", f" OSType: {g('OSType', '')}",
             f" Architecture: {g('Architecture', '')}", f" CPUs: {g('NCPU', 0)}",
             f" Total Memory: {human_size(g('MemTotal', 0))}", f" Name: {g('Name', '')}",
             f" ID: {g('ID', '')}", f" Docker Root Dir: {g('DockerRootDir', '')}"]
    write("\n".join(lines) + "\n")
    return 0


def register(sub, parser) -> None:
    p = parser(sub, "version", cmd_version, "Show the client and daemon version information")
    p.add_argument("-f", "--format")
    p = parser(sub, "info", cmd_info, "Display system-wide information")
    p.add_argument("-f", "--format")
