"""Bridges, veth pairs, namespaces and iptables rules, on the real kernel.

Test subnets come from our own IPAM over a private pool (10.199.0.0/16 in /24s)
so they avoid every route on this host and stay out of the ranges a Docker
daemon sharing the host would pick.
"""

from __future__ import annotations

import os
import subprocess
import time

import pytest

pytest.importorskip("pyroute2", reason="pyroute2 is not installed")
from pyroute2 import IPRoute  # noqa: E402

from refimpl.network import bridge, ipam  # noqa: E402
from tests.network.conftest import CHAIN_PREFIX, in_netns, ping, run_in_netns

TEST_POOLS = (("10.199.0.0/16", 24),)


def new_pool(extra=()) -> ipam.Pool:
    subnet = ipam.choose_subnet(list(bridge.host_networks()) + list(extra), TEST_POOLS)
    return ipam.Pool.create(subnet)


def make_bridge(name, internal=False) -> ipam.Pool:
    pool = new_pool()
    bridge.create_bridge(name, pool.cidr(pool.gateway), internal=internal,
                         chain_prefix=CHAIN_PREFIX)
    return pool


def connect(name, pool, pid, links, hint, gateway=True):
    """attach + configure_inside, as the engine and the container's init would."""
    ip = pool.allocate()
    links.append(bridge.attach(name, pid, hint))
    run_in_netns(pid, bridge.configure_inside, "eth0", pool.cidr(ip),
                 str(pool.gateway) if gateway else None, ipam.mac_for(ip))
    return ip


def iptables_S(table, chain):
    return subprocess.run(["iptables", "-w", "5", "-t", table, "-S", chain],
                          capture_output=True, text=True).stdout.splitlines()


def test_two_namespaces_ping_each_other_and_the_gateway(bridge_name, netns, links):
    pool = make_bridge(bridge_name)
    a, b = netns(), netns()
    ip_a = connect(bridge_name, pool, a, links, bridge_name[-6:] + "a")
    ip_b = connect(bridge_name, pool, b, links, bridge_name[-6:] + "b")
    assert ping(a, ip_b) and ping(b, ip_a)
    assert ping(a, pool.gateway)
    inside = in_netns(a, "ip", "-o", "link", "show", "eth0").stdout
    assert ipam.mac_for(ip_a) in inside and "UP" in inside
    routes = in_netns(a, "ip", "route").stdout
    assert f"default via {pool.gateway} dev eth0" in routes


def test_rules_are_installed_first_and_removed_on_delete(bridge_name):
    pool = make_bridge(bridge_name)
    chain = CHAIN_PREFIX + bridge_name
    assert iptables_S("filter", "FORWARD")[1] == f"-A FORWARD -j {chain}"
    assert f"-A POSTROUTING -j {chain}" in iptables_S("nat", "POSTROUTING")
    assert f"-A {chain} -s {pool.subnet} ! -o {bridge_name} -j MASQUERADE" \
        in iptables_S("nat", chain)
    assert f"-A {chain} -i {bridge_name} -o {bridge_name} -j ACCEPT" in iptables_S("filter", chain)
    bridge.delete_bridge(bridge_name, chain_prefix=CHAIN_PREFIX)
    assert bridge.iptables_rules(bridge_name, CHAIN_PREFIX) == {"filter": [], "nat": []}
    assert not any(chain in line for line in iptables_S("filter", "FORWARD"))
    assert not any(chain in line for line in iptables_S("nat", "POSTROUTING"))
    assert not any(net == pool.subnet for net in bridge.host_networks())
    bridge.delete_bridge(bridge_name, chain_prefix=CHAIN_PREFIX)  # twice is harmless


@pytest.fixture
def uplink(netns, links):
    """A namespace standing in for 'the outside world', reachable from the host
    only through a /30 veth link; it has no route back to any bridge subnet, so
    it can answer a container only if the container's traffic was masqueraded."""
    net = ipam.choose_subnet(bridge.host_networks(), (("10.199.0.0/16", 30),))
    host_ip, far_ip = list(net.hosts())
    pid = netns()
    name = "dstestup" + str(pid)[-5:]
    links.append(name)
    with IPRoute() as ipr:
        fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY)
        try:
            ipr.link("add", ifname=name, kind="veth", peer={"ifname": "eth0", "net_ns_fd": fd})
        finally:
            os.close(fd)
        idx = ipr.link_lookup(ifname=name)[0]
        ipr.addr("add", index=idx, address=str(host_ip), prefixlen=30)
        ipr.link("set", index=idx, state="up")
    run_in_netns(pid, bridge.configure_inside, "eth0", f"{far_ip}/30", None, None)
    return pid, far_ip, host_ip


def ip_forward() -> bool:
    with open("/proc/sys/net/ipv4/ip_forward") as f:
        return f.read().strip() == "1"


def test_outbound_traffic_is_masqueraded(bridge_name, netns, links, uplink):
    _, far_ip, _ = uplink
    pool = make_bridge(bridge_name)
    assert ip_forward()
    c = netns()
    connect(bridge_name, pool, c, links, bridge_name[-6:] + "c")
    assert ping(c, far_ip), "outbound ping through NAT failed"
    # Control: without the MASQUERADE rule the far side cannot answer.
    subprocess.run(["iptables", "-w", "5", "-t", "nat", "-F", CHAIN_PREFIX + bridge_name],
                   check=True)
    assert not ping(c, far_ip, wait=1)


def test_internal_network_has_no_nat_and_no_way_out(bridge_name, netns, links, uplink):
    _, far_ip, _ = uplink
    pool = make_bridge(bridge_name, internal=True)
    assert bridge.iptables_rules(bridge_name, CHAIN_PREFIX)["nat"] == []
    a, b = netns(), netns()
    connect(bridge_name, pool, a, links, bridge_name[-6:] + "a")
    ip_b = connect(bridge_name, pool, b, links, bridge_name[-6:] + "b")
    assert ping(a, ip_b)
    # Even with a route out, forwarding off the bridge is dropped.
    in_netns(a, "ip", "route", "add", "default", "via", str(pool.gateway))
    assert not ping(a, far_ip, wait=1)


def test_namespace_with_only_loopback(netns):
    pid = netns()

    def none_network():
        bridge.loopback_up()
        with IPRoute() as ipr:
            return [(link.get("ifname"), link["flags"] & 1) for link in ipr.get_links()]

    assert run_in_netns(pid, none_network) == [("lo", 1)]
    assert ping(pid, "127.0.0.1")
    assert "default" not in in_netns(pid, "ip", "route").stdout


def test_bad_requests_fail_cleanly_and_leave_nothing(bridge_name, netns, links, monkeypatch):
    with pytest.raises(bridge.NetworkError, match="already exists"):
        bridge.create_bridge("lo", "10.199.255.1/24", chain_prefix=CHAIN_PREFIX)
    assert bridge.iptables_rules("lo", CHAIN_PREFIX) == {"filter": [], "nat": []}
    with pytest.raises(bridge.NetworkError, match="invalid gateway"):
        bridge.create_bridge(bridge_name, "10.199.300.1/24", chain_prefix=CHAIN_PREFIX)
    with pytest.raises(bridge.NetworkError, match="invalid bridge name"):
        bridge.create_bridge("dstest-name-too-long", "10.199.255.1/24", chain_prefix=CHAIN_PREFIX)
    with IPRoute() as ipr:
        assert not ipr.link_lookup(ifname=bridge_name)
    # A failure after the rules went in (injected) rolls everything back.
    real_install = bridge._install_rules

    def install_then_fail(chain, rules):
        real_install(chain, rules)
        assert bridge.iptables_rules(bridge_name, CHAIN_PREFIX)["nat"]
        raise bridge.NetworkError("injected failure")

    monkeypatch.setattr(bridge, "_install_rules", install_then_fail)
    with pytest.raises(bridge.NetworkError, match="injected"):
        make_bridge(bridge_name)
    monkeypatch.undo()
    with IPRoute() as ipr:
        assert not ipr.link_lookup(ifname=bridge_name)
    assert bridge.iptables_rules(bridge_name, CHAIN_PREFIX) == {"filter": [], "nat": []}
    # A stale chain of ours (left by a crash) is replaced, not an obstacle.
    subprocess.run(["iptables", "-w", "5", "-N", CHAIN_PREFIX + bridge_name], check=True)
    make_bridge(bridge_name)
    assert len(bridge.iptables_rules(bridge_name, CHAIN_PREFIX)["filter"]) == 4
    bridge.delete_bridge(bridge_name, chain_prefix=CHAIN_PREFIX)
    # attach: missing bridge, missing process, name taken inside the namespace.
    pid = netns()
    with pytest.raises(bridge.NetworkError, match="does not exist"):
        bridge.attach(bridge_name, pid, "dstx")
    make_bridge(bridge_name)
    with pytest.raises(bridge.NetworkError, match="no network namespace"):
        bridge.attach(bridge_name, 999_999_999, "dstx")
    with pytest.raises(bridge.NetworkError, match="namespace"):
        bridge.attach(bridge_name, pid, bridge_name[-6:] + "x", peer_ifname="lo")
    with IPRoute() as ipr:
        assert not ipr.link_lookup(ifname=bridge.veth_name(bridge_name[-6:] + "x"))
    with pytest.raises(AssertionError, match="NetworkError: no interface 'eth9'"):
        run_in_netns(pid, bridge.configure_inside, "eth9", "10.199.255.2/24", None, None)


def test_detach_removes_the_pair_and_tolerates_absence(bridge_name, netns, links):
    make_bridge(bridge_name)
    pid = netns()
    host = bridge.attach(bridge_name, pid, bridge_name[-6:] + "d")
    links.append(host)
    assert "eth0" in in_netns(pid, "ip", "-o", "link").stdout
    bridge.detach(host)
    assert "eth0" not in in_netns(pid, "ip", "-o", "link").stdout
    bridge.detach(host)


def test_attach_and_configure_repeatedly(bridge_name, netns, links):
    """Attach from the host, configure from inside, three times; the cost is printed (the
    benchmarks, not this test, judge speed)."""
    pool = make_bridge(bridge_name)
    costs = []
    for i in range(3):
        pid = netns()
        ip = pool.allocate()
        t0 = time.perf_counter()
        links.append(bridge.attach(bridge_name, pid, f"{bridge_name[-6:]}{i}"))
        t1 = time.perf_counter()

        def timed_configure():
            s = time.perf_counter()
            bridge.configure_inside("eth0", pool.cidr(ip), str(pool.gateway), ipam.mac_for(ip))
            return time.perf_counter() - s

        costs.append((t1 - t0, run_in_netns(pid, timed_configure)))
    attach_ms = min(c[0] for c in costs) * 1000
    configure_ms = min(c[1] for c in costs) * 1000
    print(f"attach {attach_ms:.1f} ms, configure_inside {configure_ms:.1f} ms")
    assert len(links) == 3 and all(os.path.exists(f"/sys/class/net/{link}") for link in links)


def test_ensure_adopts_a_running_bridge_and_repairs_its_rules(bridge_name, netns, links):
    pool = new_pool()
    gw = pool.cidr(pool.gateway)
    assert bridge.ensure_bridge(bridge_name, gw, chain_prefix=CHAIN_PREFIX) is True
    a, b = netns(), netns()
    connect(bridge_name, pool, a, links, bridge_name[-6:] + "a")
    ip_b = connect(bridge_name, pool, b, links, bridge_name[-6:] + "b")
    before = bridge.iptables_rules(bridge_name, CHAIN_PREFIX)
    assert bridge.ensure_bridge(bridge_name, gw, chain_prefix=CHAIN_PREFIX) is False
    assert bridge.iptables_rules(bridge_name, CHAIN_PREFIX) == before
    chain = CHAIN_PREFIX + bridge_name
    subprocess.run(["iptables", "-w", "5", "-t", "nat", "-F", chain], check=True)
    subprocess.run(["iptables", "-w", "5", "-D", "FORWARD", "-j", chain], check=True)
    assert not ping(a, ip_b, wait=1) or iptables_S("filter", "FORWARD")[0] == "-P FORWARD ACCEPT"
    bridge.ensure_bridge(bridge_name, gw, chain_prefix=CHAIN_PREFIX)
    assert bridge.iptables_rules(bridge_name, CHAIN_PREFIX) == before
    assert iptables_S("filter", "FORWARD").count(f"-A FORWARD -j {chain}") == 1
    assert ping(a, ip_b), "ports stay attached across ensure_bridge"
    with pytest.raises(bridge.NetworkError, match="not a bridge"):
        bridge.ensure_bridge("lo", "10.199.255.1/24", chain_prefix=CHAIN_PREFIX)
