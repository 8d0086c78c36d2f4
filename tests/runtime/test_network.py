"""Bridge mode: the caller moves a veth into the container's netns, the container configures it."""
import os

import pytest

from refimpl.runtime import NetConfig, StartError, spawn


@pytest.fixture
def veth():
    pyroute2 = pytest.importorskip("pyroute2")
    host, peer = "dsrt" + os.urandom(3).hex(), "dsrc" + os.urandom(3).hex()
    with pyroute2.IPRoute() as ip:
        ip.link("add", ifname=host, kind="veth", peer=peer)
        try:
            yield ip, host, peer
        finally:
            # the pair also vanishes by itself once the container's netns is gone
            for idx in ip.link_lookup(ifname=host):
                try:
                    ip.link("del", index=idx)
                except pyroute2.NetlinkError:
                    pass


def test_bridge_mode_configures_the_moved_interface_from_inside(containers, veth):
    ip, host, peer = veth
    moved = []

    def on_netns(pid):
        ip.link("set", index=ip.link_lookup(ifname=peer)[0], net_ns_pid=pid)
        moved.append(pid)

    net = NetConfig(ifname=peer, address="10.213.7.2/24", gateway="10.213.7.1", mac="02:42:0a:d5:07:02")
    spec, state = containers.spec(["sh", "-c", "ip -o addr show eth0; ip route; cat /sys/class/net/eth0/address"],
                                  network_mode="bridge", net=net)
    shim = spawn(spec, state, on_netns=on_netns)
    with shim.attach() as att:
        pid = shim.start()
        out = att.read_streams()["stdout"].decode()
    assert shim.wait(timeout=10).exit_code == 0
    assert moved == [pid]
    assert "inet 10.213.7.2/24" in out and "default via 10.213.7.1 dev eth0" in out
    assert "02:42:0a:d5:07:02" in out
    assert not ip.link_lookup(ifname=peer)                  # it lives in the container's netns


def test_failing_network_hook_fails_the_start_cleanly(containers):
    spec, state = containers.spec(["true"], network_mode="bridge")

    def on_netns(pid):
        raise RuntimeError("no such network")

    with pytest.raises(RuntimeError, match="no such network"):
        spawn(spec, state, on_netns=on_netns)
    from refimpl.runtime import Shim
    assert Shim(state).wait(timeout=10).exit_code == 128
