"""The /etc/hosts and /etc/resolv.conf a container sees: pure text in, text out.

Docker writes both files per container and bind-mounts them over the image's.
The layouts follow libnetwork:

* ``/etc/hosts`` (``etchosts.Build``): the localhost line, the IPv6 lines
  (left out when the container has no IPv6), then ``--add-host`` records, then
  the container's own record: ``IP  hostname.domain hostname aliases…``. Fields
  are separated by a tab.

* ``/etc/resolv.conf`` (``sandbox_dns_unix.go`` with ``resolvconf``): start
  from the host's file. On a bridge network the container cannot reach the
  host's loopback, so nameservers in 127.0.0.0/8 (and ::1) are dropped, and
  IPv6 nameservers too when the container has no IPv6. If no nameserver is
  left, Docker's defaults are used: Google's public resolvers (8.8.8.8,
  8.8.4.4, plus 2001:4860:4860::8888/8844 with IPv6). With ``--dns``,
  ``--dns-search`` or ``--dns-option`` the file is built afresh: the given
  values, and the host's for the parts not given. On the host network the
  host's file is used as it is.

Nothing here resolves a name or opens a socket.
"""

from __future__ import annotations

import ipaddress
from typing import Iterable, Sequence

IPV6_LINES = (
    ("::1", "localhost ip6-localhost ip6-loopback"),
    ("fe00::0", "ip6-localnet"),
    ("ff00::0", "ip6-mcastprefix"),
    ("ff02::1", "ip6-allnodes"),
    ("ff02::2", "ip6-allrouters"),
)
DEFAULT_DNS_V4 = ("8.8.8.8", "8.8.4.4")
DEFAULT_DNS_V6 = ("2001:4860:4860::8888", "2001:4860:4860::8844")


def hosts_file(ip: str | None, hostname: str, aliases: Iterable[str] = (), *,
               domainname: str = "", ipv6: bool = True,
               extra_hosts: Sequence[tuple[str, str]] = ()) -> str:
    """/etc/hosts for a container; ``ip`` None (network none) gives no own record.

    ``extra_hosts`` are ``(name, ip)`` pairs from ``--add-host name:ip``.
    """
    records = [("127.0.0.1", "localhost")] + (list(IPV6_LINES) if ipv6 else [])
    records += [(addr, name) for name, addr in extra_hosts]
    if ip:
        names = ([f"{hostname}.{domainname}"] if domainname else []) + [hostname]
        names += [a for a in aliases if a not in names]
        records.append((ip, " ".join(names)))
    return "".join(f"{addr}\t{names}\n" for addr, names in records)


def _field_lines(text: str, key: str) -> list[list[str]]:
    out = []
    for line in text.splitlines():
        words = line.split("#", 1)[0].split(";", 1)[0].split()
        if words and words[0] == key:
            out.append(words[1:])
    return out


def nameservers(text: str) -> list[str]:
    """The nameserver addresses a resolv.conf names, in order."""
    return [w[0] for w in _field_lines(text, "nameserver") if w]


def _keep(ns: str, ipv6: bool) -> bool:
    try:
        addr = ipaddress.ip_address(ns.split("%", 1)[0])
    except ValueError:
        return False
    return not addr.is_loopback and (ipv6 or addr.version == 4)


def resolv_conf(host_text: str, *, bridge: bool = True, ipv6: bool = False,
                dns: Sequence[str] = (), search: Sequence[str] = (),
                options: Sequence[str] = ()) -> str:
    """resolv.conf for a container, given the host's file's text.

    ``bridge`` False means the host network, where the host's resolvers are
    reachable and nothing is filtered.
    """
    if dns or search or options:
        servers = list(dns) or [s for s in nameservers(host_text) if not bridge or _keep(s, ipv6)]
        search = list(search) or (_field_lines(host_text, "search") or [[]])[-1]
        options = list(options) or [o for words in _field_lines(host_text, "options") for o in words]
        lines = ([f"search {' '.join(search)}"] if search else [])
        lines += [f"nameserver {s}" for s in servers]
        lines += ([f"options {' '.join(options)}"] if options else [])
        text = "".join(line + "\n" for line in lines)
    elif not bridge:
        return host_text
    else:
        kept = []
        for line in host_text.splitlines():
            words = line.split()
            if words[:1] == ["nameserver"] and (len(words) < 2 or not _keep(words[1], ipv6)):
                continue
            kept.append(line + "\n")
        text = "".join(kept)
    if not nameservers(text):
        defaults = DEFAULT_DNS_V4 + (DEFAULT_DNS_V6 if ipv6 else ())
        text += "".join(f"nameserver {s}\n" for s in defaults)
    return text
