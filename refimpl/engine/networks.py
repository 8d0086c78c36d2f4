"""The engine's networks: for now Docker's three defaults, `bridge`, `host` and `none`.

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
from .errors import EngineError, NotFound

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

    def _save(self) -> None:
        persist.write_json(self.path, {"Bridge": self.bridge, "Pool": self.pool.to_dict(),
                                       "Ids": self.ids, "Endpoints": self.endpoints})

    def setup(self) -> None:
        """Create or adopt our bridge; a failure is kept as the reason bridge mode is refused."""
        from ..network import bridge
        try:
            off_loop(bridge.ensure_bridge, self.bridge, f"{self.pool.gateway}/{self.pool.subnet.prefixlen}")
            self.error = None
        except (bridge.NetworkError, OSError) as e:
            self.error = f"the default bridge network is not available: {e}"
            log.warning("%s", self.error)

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

    def release(self, container_id: str) -> None:
        from ..network import bridge
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
        return ["bridge", "host", "none"]

    def resolve(self, ref: str) -> str:
        for name in self.names():
            if ref == name or (len(ref) >= 1 and self.ids[name].startswith(ref)):
                return name
        raise NotFound(f"network {ref} not found")

    def inspect(self, ref: str, containers: dict[str, dict] | None = None) -> dict:
        name = self.resolve(ref)
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
