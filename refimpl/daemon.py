"""refimpld: the reference engine's daemon.

    refimpld [-H unix:///run/refimpl.sock] [-H tcp://127.0.0.1:2375]
             [--data-root /var/lib/refimpl] [--exec-root /run/refimpl]
             [--tlsverify --tlscacert ca.pem --tlscert server-cert.pem --tlskey server-key.pem]

Serves the Docker Engine API (advertised as v1.44) on every -H address. The
UNIX socket is created with mode 0660. SIGTERM or SIGINT closes the listeners
and exits; containers keep running under their supervisors and are found
again at the next start.

TCP and TLS, as dockerd's flags:

    --tls                 serve TCP listeners over TLS (--tlscert, --tlskey), no client check
    --tlsverify           TLS, and require a client certificate signed by --tlscacert
                          (implies --tls)
    --tlscacert FILE      the CA that signs client certificates
    --tlscert FILE        the server's certificate
    --tlskey FILE         the server's key

A TCP listener on a non-loopback address (0.0.0.0, the host's own addresses, a
name that does not resolve to loopback only) is the API open to the network,
which is root on the host: refimpld refuses to start one without --tlsverify
and all three files, exits 1 with one line on stderr naming what is missing,
and listens on nothing. Loopback TCP without TLS stays allowed.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import logging
import os
import signal
import socket
import ssl
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
    p.add_argument("--tls", action="store_true", help="use TLS on TCP listeners (implied by --tlsverify)")
    p.add_argument("--tlsverify", action="store_true",
                   help="use TLS and require client certificates signed by --tlscacert")
    p.add_argument("--tlscacert", default="", help="trust client certificates signed by this CA")
    p.add_argument("--tlscert", default="", help="the server's TLS certificate")
    p.add_argument("--tlskey", default="", help="the server's TLS key")
    return p.parse_args(argv)


class ListenError(Exception):
    """A listener refimpld refuses to open; the message is one line."""


def is_loopback(host: str) -> bool:
    """Does `host` (an address or a name) reach this machine's loopback only?"""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(i[4][0].split("%", 1)[0]).is_loopback for i in infos)


def tls_context(args: argparse.Namespace) -> ssl.SSLContext | None:
    """The server-side TLS context the flags ask for (None without --tls/--tlsverify), after
    checking that no TCP listener on a non-loopback address goes without --tlsverify."""
    from .httpd import parse_address
    tcp = []
    for host in args.hosts or [DEFAULT_HOST]:
        kind, addr, _ = parse_address(host)
        if kind == "tcp":
            tcp.append((host, addr))
    exposed = [host for host, addr in tcp if not is_loopback(addr)]
    if exposed and not args.tlsverify:
        raise ListenError(f"refusing to listen on {exposed[0]} without --tlsverify: a TCP listener on a "
                          f"non-loopback address needs --tlsverify, --tlscacert, --tlscert and --tlskey "
                          f"(client certificates required)")
    if not (args.tls or args.tlsverify):
        return None
    wanted = [("--tlscert", args.tlscert), ("--tlskey", args.tlskey)]
    if args.tlsverify:
        wanted.insert(0, ("--tlscacert", args.tlscacert))
    missing = [flag for flag, value in wanted if not value]
    if missing:
        names = missing[0] if len(missing) == 1 else f"{', '.join(missing[:-1])} and {missing[-1]}"
        raise ListenError(f"{names} {'is' if len(missing) == 1 else 'are'} required with "
                          f"{'--tlsverify' if args.tlsverify else '--tls'}")
    for flag, value in wanted:
        if not os.path.isfile(value):
            raise ListenError(f"{flag} {value}: no such file")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(args.tlscert, args.tlskey)
        if args.tlsverify:
            ctx.load_verify_locations(cafile=args.tlscacert)
            ctx.verify_mode = ssl.CERT_REQUIRED
    except (ssl.SSLError, OSError) as e:
        raise ListenError(f"cannot load the TLS certificates: {(str(e).splitlines() or ['?'])[0]}") from None
    return ctx


async def serve(args: argparse.Namespace, tls: ssl.SSLContext | None = None) -> int:
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
        url = await server.listen(host, ssl=tls if host.startswith("tcp://") or "://" not in host else None)
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
        tls = tls_context(args)          # before anything is set up: a refusal leaves nothing
    except ListenError as e:
        print(f"refimpld: {e}", file=sys.stderr)
        return 1
    except ValueError as e:              # an -H address that does not parse
        print(f"refimpld: {e}", file=sys.stderr)
        return 1
    try:
        return asyncio.run(serve(args, tls))
    except OSError as e:
        print(f"refimpld: {e.strerror or e}: {getattr(e, 'filename', '') or ''}".rstrip(": "),
              file=sys.stderr)
        return 1
    except ValueError as e:
        print(f"refimpld: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
