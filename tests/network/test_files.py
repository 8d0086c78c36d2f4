"""/etc/hosts and /etc/resolv.conf generation (pure; nothing is resolved)."""

from __future__ import annotations

import ipaddress

from hypothesis import given, settings, strategies as st

from refimpl.network.files import DEFAULT_DNS_V4, DEFAULT_DNS_V6, hosts_file, nameservers, resolv_conf

DOCKER_HOSTS = """\
127.0.0.1\tlocalhost
::1\tlocalhost ip6-localhost ip6-loopback
fe00::0\tip6-localnet
ff00::0\tip6-mcastprefix
ff02::1\tip6-allnodes
ff02::2\tip6-allrouters
172.17.0.2\t0123456789ab
"""


def test_hosts_like_docker():
    assert hosts_file("172.17.0.2", "0123456789ab") == DOCKER_HOSTS


def test_hosts_with_domain_aliases_extra_and_no_ipv6():
    text = hosts_file("10.0.0.5", "web", ["db", "web", "cache"], domainname="example.test",
                      ipv6=False, extra_hosts=[("registry", "10.0.0.9")])
    assert text == ("127.0.0.1\tlocalhost\n10.0.0.9\tregistry\n"
                    "10.0.0.5\tweb.example.test web db cache\n")


def test_hosts_without_an_address_has_no_own_record():
    assert hosts_file(None, "box", ipv6=False) == "127.0.0.1\tlocalhost\n"


def test_resolv_drops_loopback_nameservers_on_bridge_only():
    host = "# from the host\nnameserver 127.0.0.53\nnameserver 10.255.255.53\nsearch corp.test\noptions edns0\n"
    assert resolv_conf(host) == "# from the host\nnameserver 10.255.255.53\nsearch corp.test\noptions edns0\n"
    assert resolv_conf(host, bridge=False) == host


def test_resolv_falls_back_to_docker_defaults_when_nothing_is_left():
    out = resolv_conf("nameserver 127.0.0.53\nnameserver ::1\nsearch lan\n")
    assert out == "search lan\nnameserver 8.8.8.8\nnameserver 8.8.4.4\n"
    assert "2001:4860:4860::8888" in resolv_conf("", ipv6=True)


def test_resolv_drops_ipv6_servers_without_ipv6():
    host = "nameserver fd00::53\nnameserver 192.0.2.53\n"
    assert nameservers(resolv_conf(host)) == ["192.0.2.53"]
    assert nameservers(resolv_conf(host, ipv6=True)) == ["fd00::53", "192.0.2.53"]


def test_resolv_with_dns_flags_is_built_afresh():
    host = "nameserver 10.1.1.1\nsearch a.test b.test\noptions ndots:2\n"
    assert resolv_conf(host, dns=["10.2.2.2"]) == \
        "search a.test b.test\nnameserver 10.2.2.2\noptions ndots:2\n"
    assert resolv_conf(host, search=["c.test"], options=["rotate"]) == \
        "search c.test\nnameserver 10.1.1.1\noptions rotate\n"
    # --dns is taken as given, even a loopback address
    assert nameservers(resolv_conf(host, dns=["127.0.0.1"])) == ["127.0.0.1"]


addresses = st.one_of(st.ip_addresses(v=4).map(str), st.ip_addresses(v=6).map(str),
                      st.sampled_from(["127.0.0.53", "127.0.0.1", "::1", "bogus"]))
lines = st.one_of(addresses.map(lambda a: f"nameserver {a}"),
                  st.sampled_from(["search x.test", "options ndots:1", "# comment", "", "domain y"]))


@settings(max_examples=150)
@given(st.lists(lines, max_size=8), st.booleans())
def test_bridge_resolv_never_points_at_loopback_and_always_has_a_server(host_lines, ipv6):
    host = "\n".join(host_lines) + "\n"
    servers = nameservers(resolv_conf(host, ipv6=ipv6))
    assert servers
    for s in servers:
        addr = ipaddress.ip_address(s)
        assert not addr.is_loopback
        assert ipv6 or addr.version == 4
    usable = [s for s in nameservers(host) if s in servers]
    assert servers == (usable or list(DEFAULT_DNS_V4 + (DEFAULT_DNS_V6 if ipv6 else ())))
