"""The engine's networks: Docker's three defaults, `bridge`, `host` and `none`, and
user-defined bridge networks.

`bridge` is our own Linux bridge (``--bridge``, default ``refimpl0``), never
docker0: a dockerd on the same host owns that one and its 172.17.0.0/16. The
subnet is ``--bip`` if given, else the first of Docker's default pools that
overlaps nothing the host routes to (refimpl.network.ipam); it is persisted in
``<data-root>/network/bridge.json`` together with the address of every
endpoint, so a restarted daemon keeps both the subnet and its running
containers' addresses. The bridge itself (and its REFIMPL-<bridge> iptables
chains) is brought in line at start-up; if that fails the daemon still runs and
only bridge-mode containers are refused, with the reason.

A container's endpoint is made in two steps: `allocate` takes an address (and
persists it) before the container's set-up, `plug(pid)` makes the veth into the
container's network namespace from the runtime's on_netns hook; `release`
gives both back when the container stops.

A user-defined network (`network create`) is a bridge of its own, named after
the default bridge's first four characters and the network's ID (Docker says
`br-<id>`), with its own subnet (given, or the first free default pool that
overlaps neither the host's routes nor another network), its REFIMPL-<bridge>
chains, and an embedded DNS server on its gateway (refimpl.network.dns) that
answers for the names and aliases of the containers on it. The networks a
container is connected to, with its aliases and fixed address, are kept per
container (`attached`) whether it runs or not; its endpoints exist while it
runs: the first network's interface is eth0, set up by the container's init;
each further one (ethN) is plugged and configured from the host side
(refimpl.network.nsconfig), at start or by `network connect` while it runs.
All of it is persisted in ``<data-root>/network/networks.json``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import secrets
import threading
from pathlib import Path

from . import persist
from .errors import Conflict, EngineError, Forbidden, InvalidParameter, NotFound

log = logging.getLogger("refimpl.engine.networks")


def off_loop(fn, *args, **kw):
    """Call fn in a short-lived thread if this thread runs an asyncio loop.

    pyroute2 0.9 drives netlink with asyncio internally and refuses to run
    inside a running event loop; the calls are short, so the daemon's loop
    simply waits for them."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return fn(*args, **kw)
    result: list = []

    def run():
        try:
            result.append((True, fn(*args, **kw)))
        except BaseException as e:  # noqa: BLE001 - re-raised in the caller's thread
            result.append((False, e))
    t = threading.Thread(target=run)
    t.start()
    t.join()
    ok, value = result[0]
    if not ok:
        raise value
    return value


class NetworkService:
    def __init__(self, data_root: str | Path, bridge_name: str = "refimpl0", bip: str | None = None):
        from ..network import ipam
        self.path = Path(data_root) / "network" / "bridge.json"
        self.bridge = bridge_name
        self._lock = threading.RLock()
        self.error: str | None = None
        rec = persist.read_json(self.path) or {}
        try:
            if bip:
                iface = ipaddress.IPv4Interface(bip)
                pool = ipam.Pool.create(str(iface.network), str(iface.ip))
                if rec.get("Pool", {}).get("Subnet") == str(iface.network):
                    pool.allocated |= {ipaddress.IPv4Address(a) for a in rec["Pool"].get("Allocated", ())}
            elif rec.get("Pool"):
                pool = ipam.Pool.from_dict(rec["Pool"])
            else:
                from ..network.bridge import host_networks
                pool = ipam.Pool.create(existing=off_loop(host_networks))
        except (ValueError, OSError) as e:
            raise EngineError(f"cannot set up the default bridge network: {e}") from None
        self.pool = pool
        self.ids = rec.get("Ids") or {n: secrets.token_hex(32) for n in ("bridge", "host", "none")}
        self.endpoints: dict[str, dict] = rec.get("Endpoints") or {}
        self._save()
        self.user_path = Path(data_root) / "network" / "networks.json"
        urec = persist.read_json(self.user_path) or {}
        self.nets: dict[str, dict] = urec.get("Networks") or {}       # id -> record
        self.pools = {nid: ipam.Pool.from_dict(n["Pool"]) for nid, n in self.nets.items()}
        self.attached: dict[str, dict] = urec.get("Attached") or {}   # container -> {net id: config}
        self.dns: dict[str, object] = {}                               # net id -> transport
        self.published: dict[str, tuple[dict, list, list]] = {}       # container -> (Ports, servers, rules)
        self.dnat_error: str | None = "not set up"                     # why published ports have no DNAT
        self._tasks: set = set()

    def _save_user(self) -> None:
        for nid, pool in self.pools.items():
            self.nets[nid]["Pool"] = pool.to_dict()
        persist.write_json(self.user_path, {"Networks": self.nets, "Attached": self.attached})

    def _save(self) -> None:
        persist.write_json(self.path, {"Bridge": self.bridge, "Pool": self.pool.to_dict(),
                                       "Ids": self.ids, "Endpoints": self.endpoints})

    def setup(self) -> None:
        """Create or adopt our bridge; a failure is kept as the reason bridge mode is refused."""
        from ..network import bridge
        try:
            off_loop(bridge.ensure_bridge, self.bridge, f"{self.pool.gateway}/{self.pool.subnet.prefixlen}",
                     isolate=self.bridge[:4])       # isolated from our user networks, as docker0 is
            self.error = None
        except (bridge.NetworkError, OSError) as e:
            self.error = f"the default bridge network is not available: {e}"
            log.warning("%s", self.error)
        from ..network import ports
        try:
            ports.setup_chains(self.bridge)
            self.dnat_error = None
        except (bridge.NetworkError, OSError) as e:
            self.dnat_error = str(e)
            log.warning("published ports get the userland proxy only: %s", e)
        for nid, n in self.nets.items():
            try:
                off_loop(bridge.ensure_bridge, n["Bridge"], self.pools[nid].cidr(self.pools[nid].gateway),
                         internal=n["Internal"], isolate=self.bridge[:4])
            except (bridge.NetworkError, OSError) as e:
                log.warning("network %s: %s", n["Name"], e)
            self._start_dns(nid)

    # --- endpoints ---------------------------------------------------------------------
    def allocate(self, container_id: str) -> dict:
        """An endpoint on the default bridge for a container (idempotent per container)."""
        from ..network import ipam
        if self.error:
            raise EngineError(self.error)
        with self._lock:
            ep = self.endpoints.get(container_id)
            if ep is None:
                ip = self.pool.allocate()
                ep = {"IPAddress": str(ip), "IPPrefixLen": self.pool.subnet.prefixlen,
                      "Gateway": str(self.pool.gateway), "MacAddress": ipam.mac_for(ip),
                      "EndpointID": secrets.token_hex(32), "NetworkID": self.ids["bridge"],
                      "Veth": "veth" + container_id[:11]}
                self.endpoints[container_id] = ep
                self._save()
            return dict(ep)

    def plug(self, container_id: str, pid: int) -> None:
        """The on_netns hook: a veth from our bridge into the namespace of `pid` (named eth0 there)."""
        from ..network import bridge
        ep = self.endpoints[container_id]
        if os.path.exists(f"/sys/class/net/{ep['Veth']}"):
            off_loop(bridge.detach, ep["Veth"])  # a leftover of an earlier run of this container
        off_loop(bridge.attach, self.bridge, pid, container_id[:11], peer_ifname="eth0")

    # --- published ports ---------------------------------------------------------------
    async def publish(self, container_id: str, requests: list[tuple[str, str, str]], target_ip: str) -> None:
        """Publish each ("80/tcp", host ip, host port or ""): a listener relaying to target_ip, and
        the DNAT and ACCEPT rules that send outside traffic straight there (network/ports)."""
        from ..network import ports
        self.unpublish(container_id)
        table: dict[str, list] = {}
        servers, rules = [], []
        bridge = self._bridge_of(container_id, target_ip)
        chain = ports.chain_name(self.bridge)
        try:
            for key, host_ip, host_port in requests:
                port, _, proto = key.partition("/")
                first, _, last = (host_port or "0").partition("-")
                candidates = range(int(first), int(last or first) + 1)
                for i, hp in enumerate(candidates):
                    try:
                        server = await ports.publish(host_ip, hp, target_ip, int(port), proto)
                        break
                    except ports.PortError as e:
                        if i == len(candidates) - 1:
                            raise EngineError(f"driver failed programming external connectivity on "
                                              f"endpoint: {e}") from None
                servers.append(server)
                bound = ports.bound_port(server)
                if bridge and not self.dnat_error:
                    rule = ports.binding_rules(bridge, proto, host_ip, bound, target_ip, int(port),
                                               isolate=self.bridge[:4])
                    try:
                        await asyncio.to_thread(ports.add_binding, chain, rule)
                    except ports.NetworkError as e:
                        raise EngineError(f"driver failed programming external connectivity on "
                                          f"endpoint: {e}") from None
                    rules.append(rule)
                table.setdefault(key, []).append({"HostIp": host_ip or "0.0.0.0", "HostPort": str(bound)})
        except BaseException:
            self._withdraw(servers, rules)
            raise
        self.published[container_id] = (table, servers, rules)

    def _bridge_of(self, container_id: str, ip: str) -> str | None:
        """The bridge through which the container has address `ip`."""
        ep = self.endpoints.get(container_id)
        if ep and ep["IPAddress"] == ip:
            return self.bridge
        for n in self.nets.values():
            ep = n["Endpoints"].get(container_id)
            if ep and ep["IPAddress"] == ip:
                return n["Bridge"]
        return None

    def _withdraw(self, servers: list, rules: list) -> None:
        from ..network import ports
        for server in servers:
            server.close()
        chain = ports.chain_name(self.bridge)
        for rule in rules:
            ports.remove_binding(chain, rule)

    def unpublish(self, container_id: str) -> None:
        _, servers, rules = self.published.pop(container_id, ({}, [], []))
        self._withdraw(servers, rules)

    def ports(self, container_id: str) -> dict:
        return self.published.get(container_id, ({}, [], []))[0]

    def release(self, container_id: str) -> None:
        """All of a container's endpoints: on the default bridge and on user networks."""
        from ..network import bridge
        self.unpublish(container_id)
        for n in list(self.nets.values()):
            if container_id in n["Endpoints"]:
                self.release_user(container_id, n["Name"])
        with self._lock:
            ep = self.endpoints.pop(container_id, None)
            if ep is None:
                return
            try:
                self.pool.release(ep["IPAddress"])
            except ValueError:
                pass
            self._save()
        try:
            off_loop(bridge.detach, ep["Veth"])
        except (bridge.NetworkError, OSError) as e:
            log.warning("releasing %s: %s", ep["Veth"], e)

    def endpoint(self, container_id: str) -> dict | None:
        ep = self.endpoints.get(container_id)
        return dict(ep) if ep else None

    # --- inspect -----------------------------------------------------------------------
    def names(self) -> list[str]:
        return ["bridge", "host", "none"] + sorted(n["Name"] for n in self.nets.values())

    def resolve(self, ref: str) -> str:
        """A network's name from its name, full ID or ID prefix."""
        if ref in ("bridge", "host", "none"):
            return ref
        for n in self.nets.values():
            if n["Name"] == ref or n["Id"] == ref:
                return n["Name"]
        found = [n for n in self.names() if self.id_of(n).startswith(ref)] if ref else []
        if len(found) == 1:
            return found[0]
        raise NotFound(f"network {ref} not found")

    def id_of(self, name: str) -> str:
        if name in self.ids:
            return self.ids[name]
        return next(nid for nid, n in self.nets.items() if n["Name"] == name)

    def user_net(self, name: str) -> dict | None:
        return next((n for n in self.nets.values() if n["Name"] == name), None)

    def inspect(self, ref: str, containers: dict[str, dict] | None = None) -> dict:
        name = self.resolve(ref)
        n = self.user_net(name)
        if n is not None:
            pool = self.pools[n["Id"]]
            config = {"Subnet": str(pool.subnet), "Gateway": str(pool.gateway)}
            if pool.ip_range != pool.subnet:
                config["IPRange"] = str(pool.ip_range)
            eps = {cid: {"Name": ep["Name"], "EndpointID": ep["EndpointID"], "MacAddress": ep["MacAddress"],
                         "IPv4Address": f"{ep['IPAddress']}/{ep['IPPrefixLen']}", "IPv6Address": ""}
                   for cid, ep in n["Endpoints"].items()}
            return {"Name": name, "Id": n["Id"], "Created": n["Created"], "Scope": "local",
                    "Driver": "bridge", "EnableIPv6": False,
                    "IPAM": {"Driver": "default", "Options": {}, "Config": [config]},
                    "Internal": n["Internal"], "Attachable": n.get("Attachable", False), "Ingress": False,
                    "ConfigFrom": {"Network": ""}, "ConfigOnly": False, "Containers": eps,
                    "Options": n["Options"], "Labels": n["Labels"]}
        driver = {"bridge": "bridge", "host": "host", "none": "null"}[name]
        config = []
        if name == "bridge":
            config = [{"Subnet": str(self.pool.subnet), "Gateway": str(self.pool.gateway)}]
        options = {"com.docker.network.bridge.name": self.bridge} if name == "bridge" else {}
        return {"Name": name, "Id": self.ids[name], "Created": "0001-01-01T00:00:00Z", "Scope": "local",
                "Driver": driver, "EnableIPv6": False,
                "IPAM": {"Driver": "default", "Options": None, "Config": config},
                "Internal": False, "Attachable": False, "Ingress": False,
                "ConfigFrom": {"Network": ""}, "ConfigOnly": False,
                "Containers": containers or {}, "Options": options, "Labels": {}}

    def list(self, filters: dict[str, list[str]], containers) -> list[dict]:
        """Every network matching Docker's `network ls` filters (name, id, driver, label, type)."""
        out = []
        for name in self.names():
            net = self.inspect(name, containers(name) if self.user_net(name) is None else None)
            if "name" in filters and not any(v in name for v in filters["name"]):
                continue
            if "id" in filters and not any(net["Id"].startswith(v) for v in filters["id"]):
                continue
            if "driver" in filters and net["Driver"] not in filters["driver"]:
                continue
            kind = "builtin" if name in ("bridge", "host", "none") else "custom"
            if "type" in filters and kind not in filters["type"]:
                continue
            if not all(_label_ok(net["Labels"], v) for v in filters.get("label", [])):
                continue
            out.append(net)
        return out

    # --- user-defined networks ---------------------------------------------------------------
    def create(self, name: str, *, driver: str = "bridge", internal: bool = False,
               labels: dict | None = None, options: dict | None = None, ipam_config: list | None = None,
               attachable: bool = False) -> dict:
        from ..network import bridge, ipam
        if not name:
            raise InvalidParameter("network name must not be empty")
        if driver not in ("bridge", ""):
            raise NotFound(f"plugin \"{driver}\" not found")
        if name in self.names():
            raise Conflict(f"network with name {name} already exists")
        configs = [c for c in ipam_config or [] if c]
        if len(configs) > 1:
            raise InvalidParameter("only one IPv4 address pool per network is supported")
        cfg = configs[0] if configs else {}
        ours = [self.pool.subnet, *(p.subnet for p in self.pools.values())]
        try:
            existing = off_loop(bridge.host_networks) + ours
            pool = ipam.Pool.create(cfg.get("Subnet") or None, cfg.get("Gateway") or None,
                                    cfg.get("IPRange") or None, existing=existing)
        except ipam.IPAMError as e:
            raise InvalidParameter(str(e)) from None
        if cfg.get("Subnet") and any(pool.subnet.overlaps(o) for o in ours):
            raise Forbidden("Pool overlaps with other one on this address space")
        nid = secrets.token_hex(32)
        options = dict(options or {})
        brname = options.get("com.docker.network.bridge.name") or self.bridge[:4] + "-" + nid[:10]
        try:
            off_loop(bridge.create_bridge, brname, pool.cidr(pool.gateway), internal=internal,
                     isolate=self.bridge[:4])
        except (bridge.NetworkError, OSError) as e:
            raise EngineError(f"cannot create network {name}: {e}") from None
        from .container_config import now_rfc3339
        with self._lock:
            self.nets[nid] = {"Name": name, "Id": nid, "Created": now_rfc3339(), "Bridge": brname,
                              "Internal": internal, "Labels": dict(labels or {}), "Options": options,
                              "Attachable": attachable, "Endpoints": {}, "Pool": pool.to_dict()}
            self.pools[nid] = pool
            self._save_user()
        self._start_dns(nid)
        return {"Id": nid, "Warning": ""}

    def remove(self, ref: str) -> None:
        from ..network import bridge
        name = self.resolve(ref)
        n = self.user_net(name)
        if n is None:
            raise Forbidden(f"{name} is a pre-defined network and cannot be removed")
        users = [cid for cid, nets in self.attached.items() if n["Id"] in nets]
        if n["Endpoints"] or users:
            raise Forbidden(f"error while removing network: network {name} id {n['Id']} has active "
                            "endpoints")
        transport = self.dns.pop(n["Id"], None)
        if transport is not None:
            transport.close()
        off_loop(bridge.delete_bridge, n["Bridge"])
        if not self.dnat_error:          # no container is on it, so no rule should be: make sure
            from ..network import ports
            ports.forget_bridge(ports.chain_name(self.bridge), n["Bridge"])
        with self._lock:
            del self.nets[n["Id"]], self.pools[n["Id"]]
            self._save_user()

    def prune(self, filters: dict[str, list[str]]) -> list[str]:
        gone = []
        for n in list(self.nets.values()):
            if not all(_label_ok(n["Labels"], v) for v in filters.get("label", [])):
                continue
            try:
                self.remove(n["Id"])
                gone.append(n["Name"])
            except Forbidden:
                pass
        return gone

    def _start_dns(self, nid: str) -> None:
        from ..network import dns
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        pool = self.pools[nid]

        async def start():
            try:
                self.dns[nid] = await dns.serve(str(pool.gateway), lambda q: self.lookup(nid, q))
            except OSError as e:
                log.warning("no DNS server on %s: %s", pool.gateway, e)
        task = loop.create_task(start())
        self._tasks.add(task)                       # asyncio keeps only weak references to tasks
        task.add_done_callback(self._tasks.discard)

    def lookup(self, nid: str, query: str) -> list[str]:
        """The addresses of the containers on network `nid` known as `query` (name, alias, short ID)."""
        n = self.nets.get(nid)
        if n is None:
            return []
        return [ep["IPAddress"] for cid, ep in n["Endpoints"].items()
                if query in [x.lower() for x in ep.get("DNSNames", [])]]

    # --- a container's networks ----------------------------------------------------------------
    def attach_config(self, cid: str, name: str, config: dict | None) -> None:
        """Record that container `cid` is on user network `name` (aliases, fixed address)."""
        n = self.user_net(name)
        if n is None:
            raise NotFound(f"network {name} not found")
        config = dict(config or {})
        ip = ((config.get("IPAMConfig") or {}).get("IPv4Address") or "")
        if ip:
            try:
                addr = ipaddress.IPv4Address(ip)
            except ValueError:
                raise InvalidParameter(f"invalid IPv4 address: {ip}") from None
            if addr not in self.pools[n["Id"]].subnet:
                raise InvalidParameter(f"no configured subnet contains IP address {ip}")
        with self._lock:
            self.attached.setdefault(cid, {})[n["Id"]] = {"Aliases": list(config.get("Aliases") or []),
                                                         "IPv4Address": ip}
            self._save_user()

    def is_attached(self, cid: str, name: str) -> bool:
        n = self.user_net(name)
        return n is not None and n["Id"] in self.attached.get(cid, {})

    def forget(self, cid: str) -> None:
        """A removed container: its endpoints and its attachments go."""
        self.release(cid)
        with self._lock:
            if self.attached.pop(cid, None) is not None:
                self._save_user()

    def networks_of(self, cid: str, primary: str) -> list[str]:
        """The names of the networks a container is on, its primary (NetworkMode) first."""
        names = [primary] if primary in ("bridge", "host", "none") else []
        names += [self.nets[nid]["Name"] for nid in self.attached.get(cid, {}) if nid in self.nets]
        return names

    def allocate_user(self, cid: str, name: str, dns_names: list[str], index: int) -> dict:
        """An endpoint for container `cid` on user network `name` (its interface eth<index>)."""
        from ..network import ipam
        n = self.user_net(name)
        if n is None:
            raise NotFound(f"network {name} not found")
        cfg = self.attached.get(cid, {}).get(n["Id"], {})
        with self._lock:
            ep = n["Endpoints"].get(cid)
            if ep is None:
                pool = self.pools[n["Id"]]
                try:
                    ip = pool.allocate(cfg.get("IPv4Address") or None)
                except ipam.IPAMError as e:
                    raise InvalidParameter(str(e)) from None
                ep = {"IPAddress": str(ip), "IPPrefixLen": pool.subnet.prefixlen,
                      "Gateway": "" if n["Internal"] else str(pool.gateway), "DNSServer": str(pool.gateway),
                      "MacAddress": ipam.mac_for(ip), "EndpointID": secrets.token_hex(32),
                      "NetworkID": n["Id"], "Veth": "veth" + cid[:5] + n["Id"][:6],
                      "Ifname": f"eth{index}", "Name": dns_names[0],
                      "Aliases": cfg.get("Aliases") or [],
                      "DNSNames": [*dns_names, *(cfg.get("Aliases") or [])]}
                n["Endpoints"][cid] = ep
                self._save_user()
            return dict(ep)

    def plug_user(self, cid: str, name: str, pid: int, configure: bool) -> None:
        """A veth from network `name`'s bridge into process `pid`'s namespace; configured from the
        host side (nsconfig) unless the container's init does it (`configure` False: eth0)."""
        from ..network import bridge, nsconfig
        n = self.user_net(name)
        ep = n["Endpoints"][cid]
        if os.path.exists(f"/sys/class/net/{ep['Veth']}"):
            off_loop(bridge.detach, ep["Veth"])
        off_loop(bridge.attach, n["Bridge"], pid, ep["Veth"][4:], peer_ifname=ep["Ifname"])
        if configure:
            nsconfig.configure(pid, ep["Ifname"], f"{ep['IPAddress']}/{ep['IPPrefixLen']}", ep["MacAddress"])

    def user_endpoint(self, cid: str, name: str) -> dict | None:
        n = self.user_net(name)
        ep = n["Endpoints"].get(cid) if n else None
        return dict(ep) if ep else None

    def release_user(self, cid: str, name: str) -> None:
        from ..network import bridge
        n = self.user_net(name)
        with self._lock:
            ep = n["Endpoints"].pop(cid, None) if n else None
            if ep is None:
                return
            try:
                self.pools[n["Id"]].release(ep["IPAddress"])
            except ValueError:
                pass
            self._save_user()
        try:
            off_loop(bridge.detach, ep["Veth"])
        except (bridge.NetworkError, OSError) as e:
            log.warning("releasing %s: %s", ep["Veth"], e)

    def rename(self, cid: str, old: str, new: str) -> None:
        """A renamed container answers to its new name on every network it is on."""
        with self._lock:
            for n in self.nets.values():
                ep = n["Endpoints"].get(cid)
                if ep:
                    ep["Name"] = new
                    ep["DNSNames"] = [new if x == old else x for x in ep.get("DNSNames", [])]
            self._save_user()

    def detach_config(self, cid: str, name: str) -> None:
        n = self.user_net(name)
        self.release_user(cid, name)
        with self._lock:
            if n and self.attached.get(cid, {}).pop(n["Id"], None) is not None:
                self._save_user()


def _label_ok(labels: dict, want: str) -> bool:
    k, sep, v = want.partition("=")
    return k in (labels or {}) and (not sep or labels[k] == v)
