"""User-defined networks in refimpld, driven by the real docker CLI: IPAM, DNS, connect and
disconnect of a running container, isolation between networks, clean removal."""
from __future__ import annotations

import json
import os
import subprocess

import pytest

from tests.engine.test_containers_helpers import why_not

pytestmark = pytest.mark.skipif(why_not() is not None, reason=why_not() or "")


def addrs(d, name: str) -> str:
    """The container's IPv4 addresses, read from inside its network namespace."""
    pid = d.inspect(name)["State"]["Pid"]
    return subprocess.run(["nsenter", "-t", str(pid), "-n", "ip", "-4", "-o", "addr"], capture_output=True,
                          text=True, check=True).stdout


def test_create_inspect_ls_rm(d):
    nid = d.out("network", "create", "--subnet", "10.232.5.0/24", "--gateway", "10.232.5.254",
                "--ip-range", "10.232.5.128/25", "--label", "k=v", "nvn1")
    net = json.loads(d.out("network", "inspect", "nvn1"))[0]
    assert net["Id"] == nid and net["Driver"] == "bridge" and net["Labels"] == {"k": "v"}
    assert net["IPAM"]["Config"] == [{"Subnet": "10.232.5.0/24", "Gateway": "10.232.5.254",
                                      "IPRange": "10.232.5.128/25"}]
    bridge = [b for b in os.listdir("/sys/class/net") if b.startswith(d.bridge[:4] + "-") and
              nid.startswith(b[5:])]
    assert len(bridge) == 1
    assert "nvn1" in d.out("network", "ls", "--filter", "label=k=v", "--format", "{{.Name}}").split()
    p = d.docker("network", "create", "--subnet", "10.232.5.0/25", "nvn-overlap")
    assert p.returncode == 1 and "overlaps" in p.stderr
    p = d.docker("network", "create", "nvn1")
    assert p.returncode == 1 and "already exists" in p.stderr
    p = d.docker("network", "rm", "bridge")
    assert p.returncode == 1 and "pre-defined" in p.stderr
    d.out("run", "--rm", "--network", "nvn1", "busybox", "true")
    d.out("network", "rm", "nvn1")
    assert not os.path.exists(f"/sys/class/net/{bridge[0]}")
    assert d.docker("network", "inspect", "nvn1").returncode == 1


def test_dns_connect_disconnect_isolation(d):
    d.out("network", "create", "nvn2")
    d.out("network", "create", "--subnet", "10.232.6.0/24", "nvn3")
    d.out("run", "-d", "--name", "nvweb", "--network", "nvn2", "--network-alias", "www", "busybox",
          "sleep", "600")
    d.out("run", "-d", "--name", "nvother", "--network", "nvn3", "--ip", "10.232.6.77", "busybox",
          "sleep", "600")
    assert "10.232.6.77/24" in addrs(d, "nvother")
    out = d.out("run", "--rm", "--network", "nvn2", "busybox", "sh", "-c",
                "ping -c1 -W5 nvweb >/dev/null && ping -c1 -W5 www >/dev/null && nslookup www")
    web_ip = d.inspect("nvweb")["NetworkSettings"]["Networks"]["nvn2"]["IPAddress"]
    assert web_ip in out
    # another network neither resolves nor reaches it
    assert d.docker("run", "--rm", "--network", "nvn3", "busybox", "ping", "-c1", "-W2", "nvweb").returncode
    assert d.docker("run", "--rm", "--network", "nvn3", "busybox", "ping", "-c1", "-W2", web_ip).returncode
    # connected to the second network while running: an interface there, reachable, then gone again
    d.out("network", "connect", "--alias", "second", "nvn3", "nvweb")
    assert "eth1" in addrs(d, "nvweb") and "10.232.6." in addrs(d, "nvweb")
    d.out("run", "--rm", "--network", "nvn3", "busybox", "ping", "-c1", "-W5", "second")
    nets = d.inspect("nvweb")["NetworkSettings"]["Networks"]
    assert set(nets) == {"nvn2", "nvn3"} and nets["nvn3"]["Aliases"] == ["second"]
    net = json.loads(d.out("network", "inspect", "nvn3"))[0]
    assert {c["Name"] for c in net["Containers"].values()} == {"nvweb", "nvother"}
    p = d.docker("network", "connect", "nvn3", "nvweb")
    assert p.returncode == 1 and "already exists" in p.stderr
    d.out("network", "disconnect", "nvn3", "nvweb")
    assert "10.232.6." not in addrs(d, "nvweb")
    p = d.docker("network", "rm", "nvn3")
    assert p.returncode == 1 and "active endpoints" in p.stderr
    # a restart brings the container back on its network with its alias
    d.out("restart", "-t", "0", "nvweb")
    d.out("run", "--rm", "--network", "nvn2", "busybox", "ping", "-c1", "-W5", "www")
    d.out("rm", "-f", "nvweb", "nvother")
    out = d.out("network", "prune", "-f")
    assert "nvn2" in out and "nvn3" in out
    assert d.out("network", "ls", "--filter", "type=custom", "-q") == ""


def test_bad_requests(d):
    for body, status in (({"Name": ""}, 400), ({"Name": "x1", "Driver": "overlay"}, 404),
                         ({"Name": "x2", "IPAM": {"Config": [{"Subnet": "nonsense"}]}}, 400),
                         ({"Name": "x3", "IPAM": {"Config": [{"Gateway": "10.0.0.1"}]}}, 400)):
        got, reply = d.api("POST", "/networks/create", body)
        assert got == status and "\n" not in reply["message"], (body, got, reply)
    assert d.api("GET", "/networks/nope")[0] == 404
    p = d.docker("create", "--network", "nope", "busybox", "true")
    assert p.returncode and "network nope not found" in p.stderr
    d.out("network", "create", "--subnet", "10.232.8.0/24", "nvn4")
    p = d.docker("create", "--network", "nvn4", "--ip", "10.9.9.9", "busybox", "true")
    assert p.returncode and "10.9.9.9" in p.stderr
    assert d.out("ps", "-aq") == ""                                   # nothing left behind
    d.out("network", "rm", "nvn4")


def test_published_ports(d):
    import socket
    import time
    d.out("run", "-d", "--name", "nvweb2", "-p", "127.0.0.1:39432:80", "-p", "8080", "busybox", "sh", "-c",
          "while true; do echo hello | nc -l -p 80; done")
    ports = d.inspect("nvweb2")["NetworkSettings"]["Ports"]
    assert ports["80/tcp"] == [{"HostIp": "127.0.0.1", "HostPort": "39432"}]
    assert int(ports["8080/tcp"][0]["HostPort"]) > 0
    assert "127.0.0.1:39432->80/tcp" in d.out("ps", "--format", "{{.Ports}}", "--filter", "name=nvweb2")
    deadline, got = time.monotonic() + 10, b""
    while time.monotonic() < deadline and not got:
        try:
            with socket.create_connection(("127.0.0.1", 39432), timeout=3) as s:
                got = s.recv(100)
        except OSError:
            time.sleep(0.1)
    assert got == b"hello\n"
    p = d.docker("run", "-d", "--name", "nvweb3", "-p", "127.0.0.1:39432:80", "busybox", "true")
    assert p.returncode == 125 and "port is already allocated" in p.stderr and "Errno" not in p.stderr
    p = d.docker("run", "--rm", "-p", "80/sctp", "busybox", "true")
    assert p.returncode == 125 and "not supported" in p.stderr
    d.out("stop", "-t", "0", "nvweb2")
    assert d.out("port", "nvweb2") == ""
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", 39432), timeout=3).close()
    d.out("rm", "-f", "nvweb2", "nvweb3")


def test_rename_and_daemon_restart_keep_names_and_addresses(d):
    d.out("network", "create", "nvn5")
    d.out("run", "-d", "--name", "nvold", "--network", "nvn5", "busybox", "sleep", "600")
    d.out("rename", "nvold", "nvnew")
    d.out("run", "--rm", "--network", "nvn5", "busybox", "ping", "-c1", "-W5", "nvnew")
    ip = d.inspect("nvnew")["NetworkSettings"]["Networks"]["nvn5"]["IPAddress"]
    d.stop()
    d.start()
    assert d.inspect("nvnew")["NetworkSettings"]["Networks"]["nvn5"]["IPAddress"] == ip
    d.out("run", "--rm", "--network", "nvn5", "busybox", "ping", "-c1", "-W5", "nvnew")
    d.out("rm", "-f", "nvnew")
    d.out("network", "rm", "nvn5")


def test_internal_network_has_no_way_out(d):
    d.out("network", "create", "--internal", "nvn6")
    assert json.loads(d.out("network", "inspect", "nvn6"))[0]["Internal"] is True
    d.out("run", "-d", "--name", "nvin", "--network", "nvn6", "busybox", "sleep", "600")
    assert "default" not in d.out("run", "--rm", "--network", "nvn6", "busybox", "ip", "route")
    d.out("run", "--rm", "--network", "nvn6", "busybox", "ping", "-c1", "-W5", "nvin")   # names still work
    d.out("rm", "-f", "nvin")
    d.out("network", "rm", "nvn6")


def test_the_default_bridge_and_a_user_network_are_isolated_both_ways(d):
    """As Docker's isolation chains do for docker0 and every br-*: neither side reaches the other,
    whatever the order of the bridges' jumps in FORWARD (here the default bridge's first)."""
    from refimpl.network import bridge as bridge_mod
    d.out("network", "create", "nvn5")
    d.out("run", "-d", "--name", "nvdef", "busybox", "sleep", "600")
    d.out("run", "-d", "--name", "nvusr", "--network", "nvn5", "busybox", "sleep", "600")
    chain = bridge_mod.chain_name(d.bridge)
    subprocess.run(["iptables", "-w", "5", "-D", "FORWARD", "-j", chain], check=True)
    subprocess.run(["iptables", "-w", "5", "-I", "FORWARD", "1", "-j", chain], check=True)
    def_ip = d.inspect("nvdef")["NetworkSettings"]["IPAddress"]
    usr_ip = d.inspect("nvusr")["NetworkSettings"]["Networks"]["nvn5"]["IPAddress"]
    assert d.docker("exec", "nvdef", "ping", "-c1", "-W2", usr_ip).returncode
    assert d.docker("exec", "nvusr", "ping", "-c1", "-W2", def_ip).returncode
    d.out("exec", "nvdef", "ping", "-c1", "-W5", d.inspect("nvdef")["NetworkSettings"]["Gateway"])
    d.out("rm", "-f", "nvdef", "nvusr")
    d.out("network", "rm", "nvn5")
