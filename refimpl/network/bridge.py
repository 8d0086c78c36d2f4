"""Bridges, veth pairs and the packet-filter rules of a bridge network.

This is where the network package touches the kernel: netlink through
pyroute2's ``IPRoute`` for links, addresses and routes, and the ``iptables``
command for NAT and forwarding. On Debian 12 ``iptables`` is iptables-nft, so
the rules land in nftables' ``ip filter``/``ip nat`` tables, the same tables a
dockerd on the same host uses; we speak ``iptables`` rather than ``nft`` so that
our rules and Docker's are ordered in one place and read with one tool
(``iptables -S``). ``-w`` waits for the xtables lock other writers hold.

Every rule of a bridge lives in chains of its own, ``<prefix><bridge>`` in the
``filter`` and ``nat`` tables (the engine's prefix is ``REFIMPL-``), reached by
one jump inserted at the top of ``FORWARD`` and ``POSTROUTING``. Deleting a
bridge removes the jumps and the chains, so nothing else is ever touched. The
top of ``FORWARD`` matters: dockerd sets the ``FORWARD`` policy to DROP, and
with ``bridge-nf-call-iptables`` even traffic between two ports of one bridge
passes ``FORWARD``; our ACCEPTs must be seen first, as Docker's are for
docker0. The rules mirror Docker's for a bridge:

    filter  -o BR -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
            -i BR -o BR -j ACCEPT              (container to container)
            -i BR ! -o BR -j ACCEPT            (outbound)
    nat     -s SUBNET ! -o BR -j MASQUERADE    (outbound NAT)

A user-defined network is isolated from the engine's other bridges as Docker
isolates its networks (DOCKER-ISOLATION): with ``isolate`` set to the prefix
all the engine's bridge names share, one more rule before the outbound ACCEPT
drops what would go from this bridge to any of them:

    filter  -i BR -o PREFIX+ -j DROP           (another network of ours)

An internal network (``--internal``) keeps container-to-container traffic and
drops everything that would leave or enter the bridge from elsewhere; it has no
NAT.

The veth peer is created directly inside the container's network namespace
(the kernel accepts a namespace fd for the peer), which is cheaper than
creating it on the host and moving it, and needs no temporary name on the
host. The container side is configured by ``configure_inside``, run by a
process that is already in that namespace (the container's init before it
execs), with a plain ``IPRoute``: pyroute2's ``NetNS`` helper process costs
tens of milliseconds per container.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import shutil
import socket
import subprocess

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

ENGINE_CHAIN_PREFIX = "REFIMPL-"
IFNAMSIZ = 15  # usable characters in a Linux interface name


class NetworkError(RuntimeError):
    """A network operation failed; the message is one line fit for a user."""


def _lookup(ipr: IPRoute, ifname: str) -> int | None:
    found = ipr.link_lookup(ifname=ifname)
    return found[0] if found else None


def _check_name(name: str, what: str) -> None:
    if not name or len(name) > IFNAMSIZ or "/" in name or any(c.isspace() for c in name):
        raise NetworkError(f"invalid {what} name {name!r}: 1 to {IFNAMSIZ} characters, "
                           "no '/' or spaces")


def host_networks() -> list[ipaddress.IPv4Network]:
    """The IPv4 networks the host routes to or has addresses in (for IPAM)."""
    nets = set()
    with IPRoute() as ipr:
        for r in ipr.get_routes(family=socket.AF_INET):
            if r["dst_len"] and r.get("dst"):
                nets.add(ipaddress.IPv4Network(f"{r.get('dst')}/{r['dst_len']}", strict=False))
        for a in ipr.get_addr(family=socket.AF_INET):
            nets.add(ipaddress.IPv4Network(f"{a.get('address')}/{a['prefixlen']}", strict=False))
    return sorted(nets)


def enable_ip_forward() -> None:
    """Turn on IPv4 forwarding, as dockerd does; needed for outbound traffic."""
    with open("/proc/sys/net/ipv4/ip_forward", "r+") as f:
        if f.read().strip() != "1":
            f.seek(0)
            f.write("1")


# --- iptables -------------------------------------------------------------

def _need_iptables() -> None:
    if shutil.which("iptables") is None:
        raise NetworkError("iptables is not installed; bridge networks need it")


def _iptables(*args: str, check: bool = True) -> bool:
    _need_iptables()
    proc = subprocess.run(["iptables", "-w", "5", *args], capture_output=True, text=True)
    if proc.returncode and check:
        msg = (proc.stderr.strip().splitlines() or ["exit status %d" % proc.returncode])[0]
        raise NetworkError(f"iptables {' '.join(args)}: {msg}")
    return proc.returncode == 0


def _rules(bridge: str, subnet: ipaddress.IPv4Network, internal: bool, isolate: str = ""):
    """(table, built-in chain to jump from, rules of our chain) for a bridge."""
    if internal:
        filt = [["-i", bridge, "-o", bridge, "-j", "ACCEPT"],
                ["-i", bridge, "!", "-o", bridge, "-j", "DROP"],
                ["!", "-i", bridge, "-o", bridge, "-j", "DROP"]]
        return [("filter", "FORWARD", filt)]
    filt = [["-o", bridge, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT"],
            ["-i", bridge, "-o", bridge, "-j", "ACCEPT"],
            *([["-i", bridge, "-o", isolate + "+", "-j", "DROP"]] if isolate else []),
            ["-i", bridge, "!", "-o", bridge, "-j", "ACCEPT"]]
    nat = [["-s", str(subnet), "!", "-o", bridge, "-j", "MASQUERADE"]]
    return [("filter", "FORWARD", filt), ("nat", "POSTROUTING", nat)]


def _install_rules(chain: str, rules) -> None:
    for table, builtin, specs in rules:
        _iptables("-t", table, "-N", chain)
        for spec in specs:
            _iptables("-t", table, "-A", chain, *spec)
        _iptables("-t", table, "-I", builtin, "1", "-j", chain)


def _remove_rules(chain: str) -> None:
    """Remove our chain and every jump to it from both tables; absent is fine."""
    if shutil.which("iptables") is None:
        return  # then there cannot be rules of ours either
    for table, builtin in (("filter", "FORWARD"), ("nat", "POSTROUTING")):
        while _iptables("-t", table, "-D", builtin, "-j", chain, check=False):
            pass
        if _iptables("-t", table, "-F", chain, check=False):
            _iptables("-t", table, "-X", chain)


def chain_name(bridge: str, chain_prefix: str = ENGINE_CHAIN_PREFIX) -> str:
    """The name of the filter/nat chain that holds a bridge's rules."""
    return chain_prefix + bridge


def iptables_rules(bridge: str, chain_prefix: str = ENGINE_CHAIN_PREFIX) -> dict[str, list[str]]:
    """The current rules of a bridge's chains (``iptables -S`` lines) by table."""
    _need_iptables()
    out = {}
    for table in ("filter", "nat"):
        proc = subprocess.run(["iptables", "-w", "5", "-t", table, "-S",
                               chain_name(bridge, chain_prefix)],
                              capture_output=True, text=True)
        out[table] = proc.stdout.splitlines() if proc.returncode == 0 else []
    return out


# --- bridges ----------------------------------------------------------------

def _rules_in_place(chain: str, rules) -> bool:
    """True if our chains hold exactly ``rules`` and are jumped to."""
    for table, builtin, specs in rules:
        listed = subprocess.run(["iptables", "-w", "5", "-t", table, "-S", chain],
                                capture_output=True, text=True)
        if listed.returncode or len(listed.stdout.splitlines()) != len(specs) + 1:
            return False
        if not all(_iptables("-t", table, "-C", chain, *spec, check=False) for spec in specs):
            return False
        if not _iptables("-t", table, "-C", builtin, "-j", chain, check=False):
            return False
    return True


def _parse_gateway(gateway_cidr: str) -> ipaddress.IPv4Interface:
    try:
        return ipaddress.IPv4Interface(gateway_cidr)
    except ValueError:
        raise NetworkError(f"invalid gateway address {gateway_cidr!r}: want ADDRESS/PREFIX") from None


def _check_bridge_args(name: str, gateway_cidr: str, chain_prefix: str) -> ipaddress.IPv4Interface:
    _check_name(name, "bridge")
    if len(chain_name(name, chain_prefix)) > 28:
        raise NetworkError(f"chain prefix {chain_prefix!r} is too long for bridge {name!r}")
    _need_iptables()
    return _parse_gateway(gateway_cidr)


def _configure(ipr: IPRoute, idx: int, name: str, iface: ipaddress.IPv4Interface,
               internal: bool, chain_prefix: str, mtu: int | None, isolate: str = "") -> None:
    """Address, mtu, up, forwarding and rules of an existing bridge (idempotent)."""
    if mtu:
        ipr.link("set", index=idx, mtu=mtu)
    have = {(a.get("address"), a["prefixlen"]) for a in ipr.get_addr(index=idx, family=socket.AF_INET)}
    if (str(iface.ip), iface.network.prefixlen) not in have:
        ipr.addr("add", index=idx, address=str(iface.ip), prefixlen=iface.network.prefixlen,
                 broadcast=str(iface.network.broadcast_address))
    ipr.link("set", index=idx, state="up")
    if not internal:
        enable_ip_forward()
    chain, rules = chain_name(name, chain_prefix), _rules(name, iface.network, internal, isolate)
    if not _rules_in_place(chain, rules):
        _remove_rules(chain)
        _install_rules(chain, rules)


def create_bridge(name: str, gateway_cidr: str, *, internal: bool = False,
                  chain_prefix: str = ENGINE_CHAIN_PREFIX, mtu: int | None = None,
                  isolate: str = "") -> None:
    """Create bridge ``name`` holding ``gateway_cidr`` (e.g. "172.18.0.1/16"), up,
    with its forwarding (and, unless internal, NAT) rules.

    Refuses an existing link of that name without touching it. On any failure
    everything created so far is removed again.
    """
    iface = _check_bridge_args(name, gateway_cidr, chain_prefix)
    with IPRoute() as ipr:
        if _lookup(ipr, name) is not None:
            raise NetworkError(f"a network interface named {name!r} already exists")
        try:
            ipr.link("add", ifname=name, kind="bridge")
        except NetlinkError as e:
            raise NetworkError(f"cannot create bridge {name}: {os.strerror(e.code)}") from None
        try:
            _configure(ipr, _lookup(ipr, name), name, iface, internal, chain_prefix, mtu, isolate)
        except BaseException as e:
            delete_bridge(name, chain_prefix=chain_prefix)
            if isinstance(e, NetlinkError):
                raise NetworkError(f"cannot configure bridge {name}: {os.strerror(e.code)}") from None
            raise


def ensure_bridge(name: str, gateway_cidr: str, *, internal: bool = False,
                  chain_prefix: str = ENGINE_CHAIN_PREFIX, mtu: int | None = None,
                  isolate: str = "") -> bool:
    """Like ``create_bridge``, but an existing bridge of that name is adopted:
    its address, state and rules are brought in line without detaching its
    ports (what a restarted daemon needs while its containers keep running).
    Returns True if the bridge was created. A non-bridge link is refused.
    """
    iface = _check_bridge_args(name, gateway_cidr, chain_prefix)
    with IPRoute() as ipr:
        idx = _lookup(ipr, name)
        if idx is None:
            create_bridge(name, gateway_cidr, internal=internal, chain_prefix=chain_prefix, mtu=mtu,
                          isolate=isolate)
            return True
        kind = ipr.get_links(idx)[0].get(("IFLA_LINKINFO", "IFLA_INFO_KIND"))
        if kind != "bridge":
            raise NetworkError(f"network interface {name!r} exists and is not a bridge")
        try:
            _configure(ipr, idx, name, iface, internal, chain_prefix, mtu, isolate)
        except NetlinkError as e:
            raise NetworkError(f"cannot configure bridge {name}: {os.strerror(e.code)}") from None
        return False


def delete_bridge(name: str, *, chain_prefix: str = ENGINE_CHAIN_PREFIX) -> None:
    """Remove a bridge made by ``create_bridge`` and its rules; absent parts are fine."""
    _check_name(name, "bridge")
    _remove_rules(chain_name(name, chain_prefix))
    if not name.startswith(name[:4] + "-"):      # a daemon's default bridge has its published ports' chains
        from .ports import remove_chains
        remove_chains(name, chain_prefix)
    with IPRoute() as ipr:
        idx = _lookup(ipr, name)
        if idx is not None:
            ipr.link("del", index=idx)


# --- container ends ----------------------------------------------------------

def veth_name(ifname_hint: str) -> str:
    """The host-side veth name for a hint such as a short container id."""
    return ("veth" + "".join(c for c in ifname_hint if c.isalnum()))[:IFNAMSIZ]


def attach(bridge: str, pid: int, ifname_hint: str, *, peer_ifname: str = "eth0",
           mtu: int | None = None) -> str:
    """Connect the network namespace of process ``pid`` to ``bridge``.

    Creates a veth pair whose host end (returned) is enslaved to the bridge
    and up, and whose other end, ``peer_ifname``, is born inside the
    namespace of ``pid`` (down, unconfigured: see ``configure_inside``).
    """
    host = veth_name(ifname_hint)
    _check_name(peer_ifname, "interface")
    try:
        fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        raise NetworkError(f"no network namespace for process {pid}: {e.strerror}") from None
    try:
        with IPRoute() as ipr:
            br = _lookup(ipr, bridge)
            if br is None:
                raise NetworkError(f"bridge {bridge!r} does not exist")
            if _lookup(ipr, host) is not None:
                raise NetworkError(f"a network interface named {host!r} already exists")
            peer = {"ifname": peer_ifname, "net_ns_fd": fd}
            if mtu:
                peer["mtu"] = mtu
            try:
                ipr.link("add", ifname=host, kind="veth", peer=peer, **({"mtu": mtu} if mtu else {}))
            except NetlinkError as e:
                hint = " (name taken inside the namespace?)" if e.code == errno.EEXIST else ""
                raise NetworkError(f"cannot create veth {host}: {os.strerror(e.code)}{hint}") from None
            try:
                ipr.link("set", index=_lookup(ipr, host), master=br, state="up")
            except NetlinkError as e:
                ipr.link("del", ifname=host)
                raise NetworkError(f"cannot attach {host} to {bridge}: {os.strerror(e.code)}") from None
    finally:
        os.close(fd)
    return host


def detach(host_ifname: str) -> None:
    """Delete a veth pair by its host end (its peer goes with it); absent is fine."""
    with IPRoute() as ipr:
        idx = _lookup(ipr, host_ifname)
        if idx is not None:
            try:
                ipr.link("del", index=idx)
            except NetlinkError as e:
                if e.code != errno.ENODEV:  # the namespace died meanwhile, taking it along
                    raise NetworkError(f"cannot delete {host_ifname}: {os.strerror(e.code)}") from None


def loopback_up(ipr: IPRoute | None = None) -> None:
    """Bring up ``lo`` in the current network namespace (all ``--network none`` gets)."""
    if ipr is None:
        with IPRoute() as own:
            return loopback_up(own)
    ipr.link("set", index=_lookup(ipr, "lo"), state="up")


def configure_inside(ifname: str, address_cidr: str, gateway: str | None, mac: str | None,
                     new_name: str = "eth0", mtu: int | None = None) -> None:
    """Configure the container end of a veth, from inside its network namespace.

    Brings ``lo`` up, renames ``ifname`` to ``new_name``, sets the MAC and the
    address, brings it up and adds the default route via ``gateway`` (none for
    an internal network).
    """
    try:
        iface = ipaddress.IPv4Interface(address_cidr)
    except ValueError:
        raise NetworkError(f"invalid address {address_cidr!r}: want ADDRESS/PREFIX") from None
    with IPRoute() as ipr:
        try:
            loopback_up(ipr)
            idx = _lookup(ipr, ifname)
            if idx is None:
                raise NetworkError(f"no interface {ifname!r} in this network namespace")
            changes = {}
            if new_name and new_name != ifname:
                changes["ifname"] = new_name
            if mac:
                changes["address"] = mac
            if mtu:
                changes["mtu"] = mtu
            if changes:
                ipr.link("set", index=idx, **changes)
            ipr.addr("add", index=idx, address=str(iface.ip), prefixlen=iface.network.prefixlen,
                     broadcast=str(iface.network.broadcast_address))
            ipr.link("set", index=idx, state="up")
            if gateway:
                ipr.route("add", dst="0.0.0.0/0", gateway=str(gateway), oif=idx)
        except NetlinkError as e:
            raise NetworkError(f"cannot configure {ifname}: {os.strerror(e.code)}") from None
