"""Published ports (`-p`, `-P`): DNAT rules, plus a userland proxy, per published port.

Docker publishes a port twice over, and so does the engine:

* DNAT rules in the ``nat`` table for traffic to one of the host's own
  addresses that arrives from elsewhere (``PREROUTING``) or comes from the host
  itself (``OUTPUT``, except to 127.0.0.0/8, which the kernel does not route to
  a bridge), and a ``filter`` ACCEPT for the forwarded traffic, since dockerd
  sets the ``FORWARD`` policy to DROP. Docker's rules, with its chain DOCKER:

      nat     -A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER
              -A OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j DOCKER
              -A DOCKER [-d HOSTIP/32] ! -i BR -p tcp -m tcp --dport HOSTPORT
                        -j DNAT --to-destination CTRIP:CTRPORT
      filter  -A DOCKER -d CTRIP/32 ! -i BR -o BR -p tcp -m tcp --dport CTRPORT -j ACCEPT

  Ours are the same, in a chain of the engine's own, ``REFIMPL-P-<bridge>``
  (``<bridge>`` is the daemon's default bridge) in both tables, jumped to from
  ``PREROUTING`` and ``OUTPUT`` (nat) and from the top of ``FORWARD`` (filter).
  The rules of a binding are added when the container starts and deleted, one
  by one, when it stops; the chains are emptied when the daemon starts (its
  running containers publish again) and removed with the default bridge.
  Nothing outside these chains, and the jumps to them, is ever touched.

* A userland proxy (docker-proxy's role) for what the rules do not see:
  connections to 127.0.0.1 from the host itself, and from containers on the
  same bridge to the host's address. A listening socket on HostIp:HostPort in
  the daemon; for TCP, each accepted connection is relayed to the container's
  address and port, bytes copied both ways (half-closes passed on); for UDP,
  each client address gets a socket connected to the container, and replies go
  back from the published port, until the flow has been idle for
  UDP_IDLE seconds. The listener also reserves the port: one already taken
  fails the start with Docker's message.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time

from .bridge import ENGINE_CHAIN_PREFIX, NetworkError

UDP_IDLE = 90.0          # docker-proxy's UDPConnTrackTimeout
PROTOS = ("tcp", "udp")


class PortError(RuntimeError):
    """A port that cannot be published; the message is one line fit for a user."""


# --- the userland proxy -----------------------------------------------------------

async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        pass


class _UdpRelay(asyncio.DatagramProtocol):
    """Datagrams to the published port go to the target from a socket per client; replies come back."""

    def __init__(self, target: tuple[str, int]):
        self.target = target
        self.flows: dict[tuple, tuple[socket.socket, list[float]]] = {}
        self.transport: asyncio.DatagramTransport | None = None
        self.loop = asyncio.get_running_loop()
        self.sweeper = self.loop.call_later(UDP_IDLE / 3, self._sweep)

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        flow = self.flows.get(addr)
        if flow is None:
            up = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            up.setblocking(False)
            try:
                up.connect(self.target)
            except OSError:
                up.close()
                return
            flow = self.flows[addr] = (up, [time.monotonic()])
            self.loop.add_reader(up.fileno(), self._reply, addr)
        flow[1][0] = time.monotonic()
        try:
            flow[0].send(data)
        except OSError:
            pass            # a full buffer or an ICMP error from the target: UDP may drop

    def _reply(self, addr) -> None:
        flow = self.flows.get(addr)
        if flow is None:
            return
        while True:
            try:
                data = flow[0].recv(65536)
            except BlockingIOError:
                return
            except OSError:
                return      # e.g. ECONNREFUSED: nothing listens in the container (yet)
            flow[1][0] = time.monotonic()
            if self.transport is not None and not self.transport.is_closing():
                self.transport.sendto(data, addr)

    def _drop(self, addr) -> None:
        up, _ = self.flows.pop(addr)
        self.loop.remove_reader(up.fileno())
        up.close()

    def _sweep(self) -> None:
        now = time.monotonic()
        for addr in [a for a, (_, seen) in self.flows.items() if now - seen[0] > UDP_IDLE]:
            self._drop(addr)
        self.sweeper = self.loop.call_later(UDP_IDLE / 3, self._sweep)

    def close(self) -> None:
        self.sweeper.cancel()
        for addr in list(self.flows):
            self._drop(addr)


class UdpProxy:
    """A published UDP port's listener (closed like an asyncio server)."""

    def __init__(self, transport: asyncio.DatagramTransport, relay: _UdpRelay):
        self.transport, self.relay = transport, relay
        self.sockets = [transport.get_extra_info("socket")]

    def close(self) -> None:
        self.relay.close()
        self.transport.close()


async def publish(host_ip: str, host_port: int, target_ip: str, target_port: int,
                  proto: str = "tcp") -> asyncio.AbstractServer | UdpProxy:
    """Listen on host_ip:host_port (0: any free port) and relay to the target (tcp or udp)."""
    addr = host_ip or "0.0.0.0"
    try:
        if proto == "udp":
            relay = _UdpRelay((target_ip, target_port))
            try:
                transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
                    lambda: relay, local_addr=(addr, host_port), family=socket.AF_INET)
            except BaseException:
                relay.close()
                raise
            return UdpProxy(transport, relay)
        return await _tcp(addr, host_port, target_ip, target_port)
    except OSError as e:
        if e.errno == 98:       # EADDRINUSE
            raise PortError(f"Bind for {addr}:{host_port} failed: port is already allocated") from None
        raise PortError(f"cannot publish {addr}:{host_port}/{proto}: {e.strerror}") from None


async def _tcp(addr: str, host_port: int, target_ip: str, target_port: int) -> asyncio.AbstractServer:
    async def handle(reader, writer):
        try:
            up_r, up_w = await asyncio.open_connection(target_ip, target_port)
        except OSError:
            writer.close()
            return
        try:
            await asyncio.gather(_pipe(reader, up_w), _pipe(up_r, writer))
        finally:
            writer.close()
            up_w.close()

    return await asyncio.start_server(handle, addr, host_port, family=socket.AF_INET, reuse_address=True)


def bound_port(server) -> int:
    return server.sockets[0].getsockname()[1]


# --- the DNAT rules -----------------------------------------------------------------

def chain_name(bridge: str, chain_prefix: str = ENGINE_CHAIN_PREFIX) -> str:
    """The nat and filter chain that holds the published ports of the daemon whose default
    bridge is `bridge`."""
    return f"{chain_prefix}P-{bridge}"


JUMPS = (("nat", "PREROUTING", ["-m", "addrtype", "--dst-type", "LOCAL"]),
         ("nat", "OUTPUT", ["!", "-d", "127.0.0.0/8", "-m", "addrtype", "--dst-type", "LOCAL"]),
         ("filter", "FORWARD", []))


def _iptables(*args: str, check: bool = True) -> bool:
    proc = subprocess.run(["iptables", "-w", "5", *args], capture_output=True, text=True)
    if proc.returncode and check:
        msg = (proc.stderr.strip().splitlines() or ["exit status %d" % proc.returncode])[0]
        raise NetworkError(f"iptables {' '.join(args)}: {msg}")
    return proc.returncode == 0


def setup_chains(bridge: str, chain_prefix: str = ENGINE_CHAIN_PREFIX) -> None:
    """Our chains, empty, each jumped to once (a daemon starting: its containers publish again)."""
    if shutil.which("iptables") is None:
        raise NetworkError("iptables is not installed; published ports need it")
    chain = chain_name(bridge, chain_prefix)
    if len(chain) > 28:
        raise NetworkError(f"chain name {chain!r} is too long")
    for table in ("nat", "filter"):
        if not _iptables("-t", table, "-F", chain, check=False):
            _iptables("-t", table, "-N", chain)
    for table, builtin, match in JUMPS:
        if not _iptables("-t", table, "-C", builtin, *match, "-j", chain, check=False):
            _iptables("-t", table, "-I", builtin, "1", *match, "-j", chain)


def remove_chains(bridge: str, chain_prefix: str = ENGINE_CHAIN_PREFIX) -> None:
    """Remove our chains and the jumps to them; absent is fine."""
    if shutil.which("iptables") is None:
        return
    chain = chain_name(bridge, chain_prefix)
    for table, builtin, match in JUMPS:
        while _iptables("-t", table, "-D", builtin, *match, "-j", chain, check=False):
            pass
    for table in ("nat", "filter"):
        if _iptables("-t", table, "-F", chain, check=False):
            _iptables("-t", table, "-X", chain, check=False)


def binding_rules(bridge: str, proto: str, host_ip: str, host_port: int, target_ip: str,
                  target_port: int, isolate: str = "") -> list[tuple[str, list[str]]]:
    """(table, rule) of one published port, as Docker writes them.

    The ACCEPT lets in what comes from outside the engine's bridges only (`isolate`: the
    prefix every bridge of this engine shares). Traffic from a container on another of our
    networks, sent to the host's address and rewritten by the DNAT, is left to that network's
    isolation DROP, as Docker's DOCKER-ISOLATION chains see it before the port's ACCEPT.
    """
    dst = ["-d", f"{host_ip}/32"] if host_ip and host_ip != "0.0.0.0" else []
    src = isolate + "+" if isolate else bridge
    return [("nat", [*dst, "!", "-i", bridge, "-p", proto, "-m", proto, "--dport", str(host_port),
                     "-j", "DNAT", "--to-destination", f"{target_ip}:{target_port}"]),
            ("filter", ["-d", f"{target_ip}/32", "!", "-i", src, "-o", bridge, "-p", proto, "-m", proto,
                        "--dport", str(target_port), "-j", "ACCEPT"])]


def add_binding(chain: str, rules: list[tuple[str, list[str]]]) -> None:
    done = []
    try:
        for table, rule in rules:
            _iptables("-t", table, "-A", chain, *rule)
            done.append((table, rule))
    except NetworkError:
        remove_binding(chain, done)
        raise


def remove_binding(chain: str, rules: list[tuple[str, list[str]]]) -> None:
    """Delete one copy of each rule (a rule added twice, by two bindings, stays once)."""
    for table, rule in rules:
        _iptables("-t", table, "-D", chain, *rule, check=False)


def forget_bridge(chain: str, bridge: str) -> None:
    """Delete every rule of our chains that sends to `bridge` (a network that goes)."""
    for table in ("nat", "filter"):
        proc = subprocess.run(["iptables", "-w", "5", "-t", table, "-S", chain], capture_output=True, text=True)
        for line in proc.stdout.splitlines():
            parts = line.split()
            if parts[:2] == ["-A", chain] and f"! -i {bridge} " in line + " ":
                _iptables("-t", table, "-D", *parts[1:], check=False)
