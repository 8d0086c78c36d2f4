"""Configure a container's network *from inside* its network namespace.

The network component creates a veth pair and moves one end into the
container's netns (via the ``on_netns(pid)`` hook of :func:`spawn`); the
container's init then calls :func:`configure_interface` before exec. Doing it
from inside avoids pyroute2's NetNS helper process (~60 ms per container).

pyroute2 is imported lazily because its import costs ~0.3 s; a long-running
engine should ``import refimpl.runtime.netconf; netconf.preload()`` once at
start-up so forked supervisors inherit the loaded module.
"""
from __future__ import annotations

import fcntl
import socket
import struct

from .spec import NetConfig


def preload() -> None:
    import pyroute2  # noqa: F401


def loopback_up() -> None:
    """Bring lo up with two ioctls: cheap enough for every --network none container."""
    SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        ifr = fcntl.ioctl(s, SIOCGIFFLAGS, struct.pack("16sH22x", b"lo", 0))
        flags = struct.unpack("16sH22x", ifr)[1]
        fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sH22x", b"lo", flags | IFF_UP))


def configure_interface(net: NetConfig, name: str = "eth0") -> None:
    """Rename net.ifname to `name`, set MAC and address, bring it and lo up, and
    add the default route via net.gateway (if any)."""
    from pyroute2 import IPRoute
    addr, _, plen = net.address.partition("/")
    with IPRoute() as ip:
        ip.link("set", index=ip.link_lookup(ifname="lo")[0], state="up")
        found = ip.link_lookup(ifname=net.ifname)
        if not found:
            raise OSError(f"network interface {net.ifname} not found in the container's namespace")
        idx = found[0]
        ip.link("set", index=idx, state="down")
        changes = {"ifname": name} if net.ifname != name else {}
        if net.mac:
            changes["address"] = net.mac
        if changes:
            ip.link("set", index=idx, **changes)
        ip.addr("add", index=idx, address=addr, prefixlen=int(plen or 32))
        ip.link("set", index=idx, state="up")
        if net.gateway:
            ip.route("add", dst="0.0.0.0/0", gateway=net.gateway, oif=idx)
