"""IP address management for bridge networks: pure, no syscalls.

Two jobs, both modelled on Docker's default IPAM driver (libnetwork's
``ipams/defaultipam`` and ``ipamutils``):

* **Choosing a subnet.** With no ``--subnet``, a network takes the first
  subnet of the default address pools that overlaps nothing the host already
  routes to or has an address in. The pools are Docker's local-scope defaults:
  172.17.0.0/16 … 172.31.0.0/16 as whole /16s, then 192.168.0.0/16 cut into
  /20s. The caller (the engine, which can read routes through
  ``refimpl.network.bridge.host_networks``) passes the networks to avoid; this
  module never looks at the host, so it can be property-tested.

* **Handing out addresses** inside one subnet. The gateway is the first host
  address unless ``--gateway`` names another; the network and broadcast
  addresses are never handed out; dynamic addresses come from ``--ip-range``
  (the whole subnet by default), lowest free first, so a released address is
  the next one reused; a fixed ``--ip`` may be any free host address of the
  subnet, even outside the range (the usual way to keep static addresses apart
  from dynamic ones). Docker's allocator is a bitmap; a set of taken addresses
  says the same thing more plainly.

MAC addresses are derived from the IPv4 address as Docker does
(``netutils.GenerateMACFromIP``): ``02:42`` followed by the four address bytes,
so a container keeps its MAC as long as it keeps its address.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Iterable

IPv4Network = ipaddress.IPv4Network
IPv4Address = ipaddress.IPv4Address

# Docker's local-scope default address pools: (base, size of each subnet).
DEFAULT_POOLS: tuple[tuple[str, int], ...] = tuple(
    (f"172.{n}.0.0/16", 16) for n in range(17, 32)
) + (("192.168.0.0/16", 20),)


class IPAMError(ValueError):
    """A request IPAM cannot satisfy; the message is one line fit for a user."""


def _net(value: str | IPv4Network, what: str) -> IPv4Network:
    try:
        return ipaddress.IPv4Network(value, strict=False) if isinstance(value, str) else value
    except ValueError:
        raise IPAMError(f"invalid {what}: {value!r}") from None


def _addr(value: str | IPv4Address, what: str) -> IPv4Address:
    try:
        return ipaddress.IPv4Address(value) if isinstance(value, str) else value
    except ValueError:
        raise IPAMError(f"invalid {what}: {value!r}") from None


def candidate_subnets(pools: Iterable[tuple[str, int]] = DEFAULT_POOLS):
    """Every subnet the pools offer, in the order they are tried."""
    for base, size in pools:
        yield from _net(base, "pool").subnets(new_prefix=size)


def choose_subnet(existing: Iterable[str | IPv4Network],
                  pools: Iterable[tuple[str, int]] = DEFAULT_POOLS) -> IPv4Network:
    """The first pool subnet that overlaps none of ``existing``.

    ``existing`` holds the host's routes and interface networks plus the
    subnets of the engine's other networks (a default route, 0.0.0.0/0, is
    ignored, as Docker does: it overlaps everything).
    """
    taken = [n for n in (_net(e, "network") for e in existing) if n.prefixlen > 0]
    for candidate in candidate_subnets(pools):
        if not any(candidate.overlaps(t) for t in taken):
            return candidate
    raise IPAMError("could not find an available, non-overlapping IPv4 address pool "
                    "among the defaults to assign to the network")


def mac_for(ip: str | IPv4Address) -> str:
    """Docker's MAC for an IPv4 address: 02:42 then the address bytes."""
    return "02:42:" + ":".join(f"{b:02x}" for b in _addr(ip, "address").packed)


@dataclass
class Pool:
    """The addresses of one network: which are taken, which are free."""

    subnet: IPv4Network
    gateway: IPv4Address
    ip_range: IPv4Network
    allocated: set[IPv4Address] = field(default_factory=set)

    @classmethod
    def create(cls, subnet: str | IPv4Network | None = None, gateway: str | None = None,
               ip_range: str | None = None,
               existing: Iterable[str | IPv4Network] = ()) -> "Pool":
        """A pool for ``--subnet``/``--gateway``/``--ip-range``, or a chosen subnet.

        An explicit subnet is taken as given (Docker checks overlap only for
        pools it picks itself); the caller decides whether to refuse overlaps.
        """
        if subnet is None:
            if gateway is not None or ip_range is not None:
                raise IPAMError("--gateway and --ip-range require --subnet")
            net = choose_subnet(existing)
        else:
            net = _net(subnet, "subnet")
            if net.prefixlen > 30:
                raise IPAMError(f"subnet {net} is too small: it has no room for a gateway "
                                "and a container")
        rng = net if ip_range is None else _net(ip_range, "ip range")
        if not rng.subnet_of(net):
            raise IPAMError(f"ip range {rng} is not within subnet {net}")
        gw = next(net.hosts()) if gateway is None else _addr(gateway, "gateway")
        if gw not in net or gw in (net.network_address, net.broadcast_address):
            raise IPAMError(f"gateway {gw} is not a host address of subnet {net}")
        return cls(net, gw, rng, {gw})

    def _host(self, ip: IPv4Address) -> bool:
        return ip in self.subnet and ip not in (self.subnet.network_address,
                                                self.subnet.broadcast_address)

    def allocate(self, ip: str | IPv4Address | None = None) -> IPv4Address:
        """Take ``ip`` (a fixed ``--ip``) or the lowest free address of the range."""
        if ip is not None:
            want = _addr(ip, "address")
            if not self._host(want):
                raise IPAMError(f"address {want} is not a host address of subnet {self.subnet}")
            if want in self.allocated:
                raise IPAMError(f"address {want} is already in use")
            self.allocated.add(want)
            return want
        for candidate in self.ip_range:
            if self._host(candidate) and candidate not in self.allocated:
                self.allocated.add(candidate)
                return candidate
        raise IPAMError(f"no available addresses on this network (range {self.ip_range})")

    def release(self, ip: str | IPv4Address) -> None:
        """Give an address back; the gateway and unknown addresses are refused."""
        addr = _addr(ip, "address")
        if addr == self.gateway:
            raise IPAMError(f"address {addr} is the gateway and cannot be released")
        if addr not in self.allocated:
            raise IPAMError(f"address {addr} is not allocated")
        self.allocated.discard(addr)

    def cidr(self, ip: IPv4Address) -> str:
        """``ip`` with the subnet's prefix length, as an interface address."""
        return f"{ip}/{self.subnet.prefixlen}"

    def to_dict(self) -> dict:
        """A JSON-able form for the engine's persisted state."""
        return {"Subnet": str(self.subnet), "Gateway": str(self.gateway),
                "IPRange": str(self.ip_range),
                "Allocated": sorted(str(a) for a in self.allocated - {self.gateway})}

    @classmethod
    def from_dict(cls, d: dict) -> "Pool":
        pool = cls.create(d["Subnet"], d["Gateway"], d.get("IPRange"))
        pool.allocated |= {ipaddress.IPv4Address(a) for a in d.get("Allocated", ())}
        return pool
