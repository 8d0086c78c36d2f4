"""refimpld: the reference engine's daemon.

    refimpld [-H unix:///run/refimpl.sock] [-H tcp://127.0.0.1:2375]
             [--data-root /var/lib/refimpl] [--exec-root /run/refimpl]

Serves the Docker Engine API (advertised as v1.44) on every -H address. The
UNIX socket is created with mode 0660. SIGTERM or SIGINT closes the listeners
and exits; containers keep running under their supervisors and are found
again at the next start.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys

from .api import App, error_hook
from .httpd import Server

DEFAULT_HOST = "unix:///run/refimpl.sock"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="refimpld", description="the dockspec reference engine daemon")
    p.add_argument("-H", "--host", action="append", dest="hosts",
                   help=f"address to listen on (unix:///path or tcp://host:port); default {DEFAULT_HOST}")
    p.add_argument("--data-root", default="/var/lib/refimpl", help="persistent state")
    p.add_argument("--exec-root", default="/run/refimpl", help="runtime state: sockets, supervisors")
    p.add_argument("--pidfile", default="", help="write the daemon's PID here")
    p.add_argument("--default-registry", default="",
                   help="serve docker.io names (busybox, docker.io/library/busybox) from this "
                        "registry host[:port] instead of Docker Hub")
    p.add_argument("--bridge", default="refimpl0", help="the Linux bridge of the default bridge network")
    p.add_argument("--bip", default=None, help="the bridge's address and subnet (CIDR); default: a free pool")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    return p.parse_args(argv)


async def serve(args: argparse.Namespace) -> int:
    from .engine.engine import Engine
    from .image import reference
    if args.default_registry:
        reference.REGISTRY_ENDPOINTS[reference.DEFAULT_DOMAIN] = args.default_registry
    engine = Engine(args.data_root, args.exec_root)
    _wire(engine, args)
    server = Server(App(engine), error_hook=error_hook)
    for host in args.hosts or [DEFAULT_HOST]:
        if host.startswith("unix://"):
            path = host[len("unix://"):]
            if os.path.exists(path):
                os.unlink(path)        # a stale socket from an earlier run
            os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        url = await server.listen(host)
        logging.info("API listen on %s", url)
    if args.pidfile:
        with open(args.pidfile, "w") as f:
            f.write(f"{os.getpid()}\n")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    logging.info("shutting down")
    await server.close()
    if getattr(engine, "close", None):
        engine.close()
    if args.pidfile:
        try:
            os.unlink(args.pidfile)
        except OSError:
            pass
    return 0


def _wire(engine, args) -> None:
    """Attach the services that live in their own modules (containers, networks)."""
    try:
        from .engine import containers
    except ImportError:
        return
    containers.attach(engine, bridge=args.bridge, bip=args.bip)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return asyncio.run(serve(args))
    except OSError as e:
        print(f"refimpld: {e.strerror or e}: {getattr(e, 'filename', '') or ''}".rstrip(": "),
              file=sys.stderr)
        return 1
    except ValueError as e:
        print(f"refimpld: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
