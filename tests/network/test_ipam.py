"""IPAM: subnet choice and address allocation, as properties and examples."""

from __future__ import annotations

import ipaddress
import re

import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from refimpl.network.ipam import DEFAULT_POOLS, IPAMError, Pool, candidate_subnets, choose_subnet, mac_for

# Networks to avoid, concentrated where the pools are so that they collide.
existing_nets = st.builds(
    lambda base, bits, plen: ipaddress.IPv4Network((base + bits, plen), strict=False),
    st.sampled_from([int(ipaddress.IPv4Address(a)) for a in ("172.16.0.0", "192.168.0.0", "10.0.0.0")]),
    st.integers(0, 2**20 - 1), st.integers(8, 32))


@settings(max_examples=100)
@given(st.lists(existing_nets, max_size=25))
def test_chosen_subnet_is_the_first_that_overlaps_nothing(existing):
    try:
        chosen = choose_subnet(existing)
    except IPAMError:
        assert all(any(c.overlaps(e) for e in existing) for c in candidate_subnets())
        return
    assert not any(chosen.overlaps(e) for e in existing)
    for earlier in candidate_subnets():
        if earlier == chosen:
            break
        assert any(earlier.overlaps(e) for e in existing)


def test_subnet_choice_examples():
    assert choose_subnet([]) == ipaddress.IPv4Network("172.17.0.0/16")
    assert choose_subnet(["0.0.0.0/0", "172.17.0.0/16", "192.0.2.0/24"]) == \
        ipaddress.IPv4Network("172.18.0.0/16")
    everything_172 = [f"172.{n}.5.0/24" for n in range(17, 32)]
    assert choose_subnet(everything_172 + ["192.168.0.1/32"]) == ipaddress.IPv4Network("192.168.16.0/20")
    with pytest.raises(IPAMError, match="non-overlapping"):
        choose_subnet(["172.16.0.0/12", "192.168.0.0/16"])
    assert len(list(candidate_subnets(DEFAULT_POOLS))) == 15 + 16


class PoolMachine(RuleBasedStateMachine):
    """Random allocate/fixed-allocate/release sequences on a small network."""

    def __init__(self):
        super().__init__()
        self.pool = Pool.create("10.9.8.0/28", ip_range="10.9.8.0/29")
        self.mine: set[ipaddress.IPv4Address] = set()

    @rule()
    def allocate(self):
        free = [a for a in self.pool.ip_range if a in set(self.pool.subnet.hosts()) - self.pool.allocated]
        if not free:
            with pytest.raises(IPAMError, match="no available addresses"):
                self.pool.allocate()
            return
        got = self.pool.allocate()
        assert got == min(free), "lowest free address first, so releases are reused"
        self.mine.add(got)

    @rule(n=st.integers(0, 15))
    def allocate_fixed(self, n):
        want = self.pool.subnet[n]
        if n in (0, 15):
            with pytest.raises(IPAMError, match="not a host address"):
                self.pool.allocate(want)
        elif want in self.pool.allocated:
            with pytest.raises(IPAMError, match="already in use"):
                self.pool.allocate(str(want))
        else:
            assert self.pool.allocate(str(want)) == want
            self.mine.add(want)

    @precondition(lambda self: self.mine)
    @rule(data=st.data())
    def release(self, data):
        ip = data.draw(st.sampled_from(sorted(self.mine)))
        self.pool.release(ip)
        self.mine.discard(ip)
        with pytest.raises(IPAMError, match="not allocated"):
            self.pool.release(ip)

    @rule()
    def gateway_is_kept(self):
        with pytest.raises(IPAMError, match="gateway"):
            self.pool.release(self.pool.gateway)

    @rule()
    def round_trip(self):
        again = Pool.from_dict(self.pool.to_dict())
        assert again == self.pool

    @invariant()
    def books_balance(self):
        assert self.pool.allocated == self.mine | {self.pool.gateway}
        assert self.pool.gateway == ipaddress.IPv4Address("10.9.8.1")
        assert self.pool.subnet.network_address not in self.pool.allocated
        assert self.pool.subnet.broadcast_address not in self.pool.allocated


TestPool = PoolMachine.TestCase
TestPool.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)


def test_exhaustion_and_reuse():
    pool = Pool.create("10.0.0.0/29")  # hosts .1-.6, .1 is the gateway
    got = [pool.allocate() for _ in range(5)]
    assert [str(a) for a in got] == [f"10.0.0.{i}" for i in range(2, 7)]
    with pytest.raises(IPAMError, match="no available addresses"):
        pool.allocate()
    pool.release("10.0.0.4")
    assert str(pool.allocate()) == "10.0.0.4"


def test_explicit_options_are_honoured_and_checked():
    pool = Pool.create("10.1.0.0/16", gateway="10.1.255.254", ip_range="10.1.7.0/24")
    assert str(pool.gateway) == "10.1.255.254"
    assert str(pool.allocate()) == "10.1.7.0"  # the range's first, a host of the subnet
    assert str(pool.allocate("10.1.0.9")) == "10.1.0.9"  # fixed --ip outside the range
    assert str(Pool.create("10.2.0.0/24", ip_range="10.2.0.0/30").allocate()) == "10.2.0.2"
    for kwargs, message in [
        (dict(subnet="10.1.0.0/33"), "invalid subnet"),
        (dict(subnet="nonsense"), "invalid subnet"),
        (dict(subnet="10.1.0.0/31"), "too small"),
        (dict(subnet="10.1.0.0/24", gateway="10.2.0.1"), "not a host address"),
        (dict(subnet="10.1.0.0/24", gateway="10.1.0.255"), "not a host address"),
        (dict(subnet="10.1.0.0/24", gateway="10.1.0.x"), "invalid gateway"),
        (dict(subnet="10.1.0.0/24", ip_range="10.1.1.0/25"), "not within subnet"),
        (dict(gateway="10.1.0.1"), "require --subnet"),
    ]:
        with pytest.raises(IPAMError, match=message):
            Pool.create(**kwargs)
    with pytest.raises(IPAMError, match="not a host address"):
        pool.allocate("10.9.0.1")
    with pytest.raises(IPAMError, match="invalid address"):
        pool.allocate("10.1.0.256")


@given(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1))
def test_mac_is_docker_style_and_one_to_one(a, b):
    ma, mb = mac_for(ipaddress.IPv4Address(a)), mac_for(ipaddress.IPv4Address(b))
    assert re.fullmatch(r"02:42(:[0-9a-f]{2}){4}", ma)
    assert (ma == mb) == (a == b)


def test_mac_example():
    assert mac_for("172.17.0.2") == "02:42:ac:11:00:02"
