"""After `rm -f` of every container and `network prune`, nothing refimpl made for them is
left on the host: no bridge or veth, no iptables rule (the bridges' chains and the published
ports' DNAT and ACCEPT rules alike), no mount (listed before and after)."""
from __future__ import annotations

import os
import subprocess

import pytest

from tests.engine.test_containers_helpers import why_not

pytestmark = pytest.mark.skipif(why_not() is not None, reason=why_not() or "")


def host_state(d) -> set[str]:
    """What of the host's links, iptables rules and mounts belongs to this refimpld."""
    prefix = d.bridge[:4]
    links = {f"link {n}" for n in os.listdir("/sys/class/net") if n.startswith((prefix, "veth"))}
    rules = set()
    for table in ("filter", "nat"):
        out = subprocess.run(["iptables", "-t", table, "-S"], capture_output=True, text=True).stdout
        rules |= {f"{table} {line}" for line in out.splitlines() if "REFIMPL-" in line and prefix in line}
    with open("/proc/self/mounts") as f:
        mounts = {f"mount {line.split()[1]}" for line in f if str(d.dir) in line}
    return links | rules | mounts


def mine(state: set[str], container_ids: list[str]) -> set[str]:
    """Keep only the veths named after these containers ("veth" + the ID's first characters):
    other engines on the host (and other tests) create and remove veths meanwhile."""
    return {x for x in state if not x.startswith("link veth")
            or any(x[len("link veth"):].startswith(cid[:5]) for cid in container_ids)}


def test_nothing_is_left_after_rm_f_and_network_prune(d, tmp_path):
    before = host_state(d)
    d.out("network", "create", "leftnet1")
    d.out("network", "create", "--internal", "leftnet2")
    d.out("volume", "create", "leftvol")
    (tmp_path / "bound").mkdir()
    d.out("run", "-d", "--name", "left1", "--network", "leftnet1", "-v", "leftvol:/data", "-v", "/anon",
          "-v", f"{tmp_path / 'bound'}:/bound", "-p", "127.0.0.1::80", "-p", "39421:81/udp", "-p", "39421:82", "busybox", "sleep", "600")
    d.out("network", "connect", "leftnet2", "left1")
    d.out("run", "-d", "--name", "left2", "--network", "leftnet2", "--tmpfs", "/scratch", "busybox", "sleep", "600")
    d.out("run", "-d", "--name", "left3", "busybox", "sleep", "600")
    ids = [d.out("inspect", "-f", "{{.Id}}", n).strip() for n in ("left1", "left2", "left3")]
    before, during = mine(before, ids), mine(host_state(d), ids)
    assert during - before, "the containers should have made links, rules or mounts"
    made = "\n".join(sorted(during - before))
    for want in ("-d 127.0.0.1/32", "-p udp -m udp --dport 39421 -j DNAT", "-p tcp -m tcp --dport 39421 -j DNAT",
                 "-p udp -m udp --dport 81 -j ACCEPT"):
        assert want in made, f"no published-port rule with {want!r} among:\n{made}"
    d.out("rm", "-f", "-v", "left1", "left2", "left3")
    d.out("network", "prune", "-f")
    d.out("volume", "rm", "leftvol")
    after = mine(host_state(d), ids)
    assert after <= before, f"left behind: {sorted(after - before)}"
