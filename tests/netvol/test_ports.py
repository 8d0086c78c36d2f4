"""Published ports with real traffic: DNAT rules for the host's own non-loopback address, the
userland proxy for 127.0.0.1, TCP and UDP; the rules go when the container stops or goes.

The server runs in the container's network namespace (the busybox image has no UDP server):
the host's python, entered with nsenter, answering each TCP connection and each UDP datagram
with the address it came from. Through DNAT that is the host's own address (the packet is
only rewritten on its way in); through the proxy it is the bridge's gateway (the proxy
connects anew).
"""
from __future__ import annotations

import socket
import subprocess
import sys
import time

import pytest

from refimpl.network import ports
from tests.engine.test_containers_helpers import why_not

pytestmark = pytest.mark.skipif(why_not() is not None, reason=why_not() or "")

SERVER = r"""
import socket, sys, threading
port = int(sys.argv[1])
t = socket.socket(); t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); t.bind(("", port)); t.listen(8)
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("", port))
def udp():
    while True:
        data, peer = u.recvfrom(2048)
        u.sendto(b"udp " + data + b" from " + peer[0].encode(), peer)
threading.Thread(target=udp, daemon=True).start()
print("ready", flush=True)
while True:
    c, peer = t.accept()
    c.sendall(b"tcp from " + peer[0].encode() + b"\n"); c.close()
"""


def host_address() -> str | None:
    """The host's own non-loopback address (the source of its default route)."""
    out = subprocess.run(["ip", "-4", "-o", "route", "get", "192.0.2.200"], capture_output=True, text=True).stdout
    parts = out.split()
    return parts[parts.index("src") + 1] if "src" in parts else None


def rules(d) -> list[str]:
    chain = ports.chain_name(d.bridge)
    out = []
    for table in ("nat", "filter"):
        p = subprocess.run(["iptables", "-w", "5", "-t", table, "-S", chain], capture_output=True, text=True)
        out += [f"{table} {line}" for line in p.stdout.splitlines() if line.startswith("-A")]
    return out


def tcp_ask(ip: str, port: int) -> str:
    deadline = time.monotonic() + 15
    while True:
        try:
            with socket.create_connection((ip, port), timeout=3) as s:
                got = s.recv(200).decode()
                if got:
                    return got.strip()
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"no TCP answer from {ip}:{port}")
        time.sleep(0.1)


def udp_ask(ip: str, port: int, word: str) -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.5)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            s.sendto(word.encode(), (ip, port))
            try:
                return s.recvfrom(2048)[0].decode()
            except OSError:
                continue
    raise AssertionError(f"no UDP answer from {ip}:{port}")


@pytest.fixture
def server(d):
    procs = []

    def start(container: str, port: int) -> subprocess.Popen:
        pid = d.inspect(container)["State"]["Pid"]
        p = subprocess.Popen(["nsenter", "-t", str(pid), "-n", sys.executable, "-c", SERVER, str(port)],
                             stdout=subprocess.PIPE, text=True)
        procs.append(p)
        assert p.stdout.readline().strip() == "ready"
        return p
    yield start
    for p in procs:
        p.kill()
        p.wait()


def test_dnat_for_the_host_address_and_proxy_for_loopback_tcp_and_udp(d, server):
    me = host_address()
    if me is None:
        pytest.skip("the host has no non-loopback IPv4 address")
    d.out("run", "-d", "--name", "nvp1", "-p", "39401:80", "-p", "39401:80/udp", "busybox", "sleep", "600")
    server("nvp1", 80)
    c = d.inspect("nvp1")
    ctr, gw = c["NetworkSettings"]["IPAddress"], c["NetworkSettings"]["Gateway"]
    assert c["NetworkSettings"]["Ports"]["80/udp"] == [{"HostIp": "0.0.0.0", "HostPort": "39401"}]
    assert "0.0.0.0:39401->80/udp" in d.out("ps", "--format", "{{.Ports}}", "--filter", "name=nvp1")
    now = rules(d)
    for proto in ("tcp", "udp"):
        assert (f"nat -A {ports.chain_name(d.bridge)} ! -i {d.bridge} -p {proto} -m {proto} --dport 39401 "
                f"-j DNAT --to-destination {ctr}:80") in now
        assert (f"filter -A {ports.chain_name(d.bridge)} -d {ctr}/32 ! -i {d.bridge[:4]}+ -o {d.bridge} -p {proto} "
                f"-m {proto} --dport 80 -j ACCEPT") in now
    # the host's own address: DNAT, so the container sees the host's address as the source
    assert tcp_ask(me, 39401) == f"tcp from {me}"
    assert udp_ask(me, 39401, "one") == f"udp one from {me}"
    # loopback: the proxy, which connects from the bridge's gateway
    assert tcp_ask("127.0.0.1", 39401) == f"tcp from {gw}"
    assert udp_ask("127.0.0.1", 39401, "two") == f"udp two from {gw}"
    assert udp_ask("127.0.0.1", 39401, "three") == f"udp three from {gw}"     # the same flow again
    d.out("stop", "-t", "0", "nvp1")
    assert rules(d) == []
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", 39401), timeout=3).close()
    d.out("rm", "nvp1")


def test_rules_of_a_user_network_and_a_host_ip_go_with_the_container(d, server):
    d.out("network", "create", "nvpn")
    d.out("run", "-d", "--name", "nvp2", "--network", "nvpn", "-p", "127.0.0.1:39402:81", "-p", "39403:82/udp",
          "busybox", "sleep", "600")
    net = d.inspect("nvp2")["NetworkSettings"]["Networks"]["nvpn"]
    now = "\n".join(rules(d))
    assert f"-d 127.0.0.1/32 ! -i {d.bridge[:4]}-" in now and f"--to-destination {net['IPAddress']}:81" in now
    assert "--dport 39403 -j DNAT" in now
    server("nvp2", 81)
    assert tcp_ask("127.0.0.1", 39402) == f"tcp from {net['Gateway']}"
    d.out("rm", "-f", "nvp2")
    assert rules(d) == []
    d.out("network", "rm", "nvpn")


def test_a_restarted_daemon_publishes_again_with_one_copy_of_each_rule(d, server):
    me = host_address()
    if me is None:
        pytest.skip("the host has no non-loopback IPv4 address")
    d.out("run", "-d", "--name", "nvp3", "-p", "39404:80", "busybox", "sleep", "600")
    before = rules(d)
    assert len(before) == 2, before
    d.stop()
    d.start()
    deadline = time.monotonic() + 30        # the re-adopted container publishes again in the background
    while rules(d) != before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert rules(d) == before
    server("nvp3", 80)
    assert tcp_ask(me, 39404) == f"tcp from {me}"
    assert tcp_ask("127.0.0.1", 39404).startswith("tcp from ")
    d.out("rm", "-f", "nvp3")
    assert rules(d) == []


def test_a_container_on_another_network_cannot_reach_a_published_port_through_the_host(d, server):
    """Network isolation holds through the DNAT: Docker's isolation chains drop what goes from one
    of its bridges to another before the published port's ACCEPT is seen. The same container
    reaches the port through the host once it is on the port's network too."""
    me = host_address()
    if me is None:
        pytest.skip("the host has no non-loopback IPv4 address")
    d.out("network", "create", "nvpiso")
    d.out("run", "-d", "--name", "nvp4", "-p", "39405:80", "busybox", "sleep", "600")
    d.out("run", "-d", "--name", "nvp5", "--network", "nvpiso", "busybox", "sleep", "600")
    d.out("run", "-d", "--name", "nvp6", "busybox", "sleep", "600")
    server("nvp4", 80)
    assert tcp_ask(me, 39405) == f"tcp from {me}"       # from the host: through the DNAT
    ask = f"nc -w 3 {me} 39405 </dev/null"
    # a neighbour on the port's own network gets there (the proxy answers it)
    assert "tcp from" in d.docker("exec", "nvp6", "sh", "-c", ask).stdout
    # whatever the order of the jumps in FORWARD (a restarted daemon puts ours first)
    chain = ports.chain_name(d.bridge)
    subprocess.run(["iptables", "-w", "5", "-D", "FORWARD", "-j", chain], check=True)
    subprocess.run(["iptables", "-w", "5", "-I", "FORWARD", "1", "-j", chain], check=True)
    r = d.docker("exec", "nvp5", "sh", "-c", ask)
    assert "tcp from" not in r.stdout, r.stdout
    d.out("rm", "-f", "nvp4", "nvp5", "nvp6")
    d.out("network", "rm", "nvpiso")
