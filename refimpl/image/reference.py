"""Image references: `[domain/]path[:tag][@digest]`, as distribution/reference parses them.

The docker CLI and dockerd agree on one grammar (github.com/distribution/reference);
when our engine is driven by the real CLI, a name it accepts must be one we accept,
and a name it refuses must fail with the same words. So the grammar below is that
package's, rule by rule, each rule quoted above its regex, and normalisation is its
`ParseNormalizedNamed` / `ParseDockerRef`: `busybox` -> `docker.io/library/busybox:latest`.

`DEFAULT_DOMAIN` is a module setting so the engine can point familiar names
elsewhere (for example at a local registry in tests); it is read at call time.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, replace

from . import digest as _digest

DEFAULT_DOMAIN = "docker.io"
LEGACY_DEFAULT_DOMAIN = "index.docker.io"
OFFICIAL_REPO_PREFIX = "library/"
DEFAULT_TAG = "latest"
NAME_TOTAL_LENGTH_MAX = 255
# Where a domain's registry API is served when that is not the domain itself;
# the engine may add entries (mirrors, a local registry standing in for Docker Hub).
REGISTRY_ENDPOINTS = {"docker.io": "registry-1.docker.io"}

# alpha-numeric := /[a-z0-9]+/
ALPHANUMERIC = r"[a-z0-9]+"
# separator := /[_.]|__|[-]*/   (distribution/reference implements it as one period,
#                                 one or two underscores, or one or more dashes)
SEPARATOR = r"(?:[._]|__|[-]+)"
# domain-component := /([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])/
DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
# domain-name := domain-component ['.' domain-component]*
DOMAIN_NAME = DOMAIN_COMPONENT + r"(?:\." + DOMAIN_COMPONENT + r")*"
# host := domain-name | IPv4address | \[ IPv6address \]   ; rfc3986 appendix-A
#   (IPv6 only in brackets, compressed or full, no zone identifiers)
IPV6ADDRESS = r"\[(?:[a-fA-F0-9:]+)\]"
HOST = r"(?:" + DOMAIN_NAME + r"|" + IPV6ADDRESS + r")"
# domain := host [':' port-number] ;  port-number := /[0-9]+/
DOMAIN = HOST + r"(?::[0-9]+)?"
# path-component := alpha-numeric [separator alpha-numeric]*
PATH_COMPONENT = ALPHANUMERIC + r"(?:" + SEPARATOR + ALPHANUMERIC + r")*"
# path (or "remote-name") := path-component ['/' path-component]*
REMOTE_NAME = PATH_COMPONENT + r"(?:/" + PATH_COMPONENT + r")*"
# name := [domain '/'] remote-name
NAME = r"(?:" + DOMAIN + r"/)?" + REMOTE_NAME
# tag := /[\w][\w.-]{0,127}/
TAG = r"[\w][\w.-]{0,127}"
# digest := digest-algorithm ":" digest-hex
# digest-algorithm := digest-algorithm-component [ digest-algorithm-separator digest-algorithm-component ]*
# digest-algorithm-separator := /[+.-_]/ ; digest-algorithm-component := /[A-Za-z][A-Za-z0-9]*/
# digest-hex := /[0-9a-fA-F]{32,}/ ; At least 128 bit digest value
DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
# identifier := /[a-f0-9]{64}/
IDENTIFIER = r"[a-f0-9]{64}"

# reference := name [ ":" tag ] [ "@" digest ]
REFERENCE_RE = re.compile(r"(" + NAME + r")(?::(" + TAG + r"))?(?:@(" + DIGEST + r"))?", re.ASCII)
ANCHORED_NAME_RE = re.compile(r"(?:(" + DOMAIN + r")/)?(" + REMOTE_NAME + r")", re.ASCII)
TAG_RE = re.compile(TAG, re.ASCII)
IDENTIFIER_RE = re.compile(IDENTIFIER)


class ReferenceError(ValueError):
    """An invalid reference; the message is Docker's, one line."""


@dataclass(frozen=True)
class Reference:
    """A parsed reference. `domain` is "" only for references parsed without
    normalisation (`parse`) that carried no domain."""

    domain: str
    path: str
    tag: str | None = None
    digest: _digest.Digest | None = None

    @property
    def name(self) -> str:
        """Repository name with its domain: `docker.io/library/busybox`."""
        return f"{self.domain}/{self.path}" if self.domain else self.path

    def __str__(self) -> str:
        return self.name + (f":{self.tag}" if self.tag else "") + (f"@{self.digest}" if self.digest else "")

    @property
    def familiar_name(self) -> str:
        """The short name Docker's UI shows: `busybox`, `user/repo`, `localhost:5000/foo`."""
        if self.domain != DEFAULT_DOMAIN:
            return self.name
        rest = self.path
        if rest.startswith(OFFICIAL_REPO_PREFIX) and "/" not in rest[len(OFFICIAL_REPO_PREFIX):]:
            rest = rest[len(OFFICIAL_REPO_PREFIX):]
        return rest

    @property
    def registry(self) -> str:
        """host[:port] of the registry API that serves this repository."""
        return REGISTRY_ENDPOINTS.get(self.domain, self.domain)

    def familiar(self) -> str:
        """The familiar string with tag and digest: `busybox:latest`."""
        return self.familiar_name + (f":{self.tag}" if self.tag else "") + (f"@{self.digest}" if self.digest else "")

    def with_tag(self, tag: str) -> "Reference":
        if not TAG_RE.fullmatch(tag):
            raise ReferenceError("invalid tag format")
        return replace(self, tag=tag)

    def with_digest(self, digest: str) -> "Reference":
        return replace(self, digest=_parse_digest(digest))

    def repository(self) -> "Reference":
        """The name alone, without tag or digest (`TrimNamed`)."""
        return Reference(self.domain, self.path)

    def tagged_or_latest(self) -> "Reference":
        """`TagNameOnly`: add the default tag to a bare name."""
        return self if self.tag or self.digest else replace(self, tag=DEFAULT_TAG)


def _parse_digest(value: str) -> _digest.Digest:
    try:
        return _digest.Digest(value)
    except _digest.DigestError as e:
        raise ReferenceError(str(e)) from None


def parse(s: str) -> Reference:
    """`reference.Parse`: the grammar alone, no default domain or tag."""
    if s == "":
        raise ReferenceError("invalid reference format")
    m = REFERENCE_RE.fullmatch(s)
    if m is None:
        low = s.lower()
        if low != s and REFERENCE_RE.fullmatch(low):
            raise ReferenceError("invalid reference format: repository name must be lowercase")
        raise ReferenceError("invalid reference format")
    name, tag, dig = m.groups()
    nm = ANCHORED_NAME_RE.fullmatch(name)
    domain, path = (nm.group(1) or "", nm.group(2)) if nm else ("", name)
    if len(path) > NAME_TOTAL_LENGTH_MAX:
        raise ReferenceError(f"repository name must not be more than {NAME_TOTAL_LENGTH_MAX} characters")
    return Reference(domain, path, tag or None, _parse_digest(dig) if dig else None)


def split_docker_domain(name: str) -> tuple[str, str]:
    """`splitDockerDomain`: decide whether the first path element is a registry host."""
    first, sep, rest = name.partition("/")
    if not sep:
        return DEFAULT_DOMAIN, OFFICIAL_REPO_PREFIX + name
    if first == "localhost" or any(c in first for c in ".:") or first.lower() != first:
        domain, remote = first, rest
    else:
        domain, remote = DEFAULT_DOMAIN, name
    if domain == LEGACY_DEFAULT_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in remote:
        remote = OFFICIAL_REPO_PREFIX + remote
    return domain, remote


def parse_normalized(s: str) -> Reference:
    """`ParseNormalizedNamed`: a familiar name made fully qualified (no tag added)."""
    if IDENTIFIER_RE.fullmatch(s):
        raise ReferenceError(f"invalid repository name ({s}), cannot specify 64-byte hexadecimal strings")
    domain, remainder = split_docker_domain(s)
    remote = remainder.split(":", 1)[0]
    if remote.lower() != remote:
        raise ReferenceError(f"invalid reference format: repository name ({remote}) must be lowercase")
    return parse(domain + "/" + remainder)


def parse_docker_ref(s: str) -> Reference:
    """`ParseDockerRef`: normalised, `:latest` added to a bare name; a reference with
    both tag and digest keeps only the digest (the digest is what gets pulled)."""
    ref = parse_normalized(s)
    if ref.tag and ref.digest:
        return replace(ref, tag=None)
    return ref.tagged_or_latest()


def parse_any(s: str) -> Reference | _digest.Digest:
    """`ParseAnyReference`: a 64-hex identifier or a full digest names an image by
    ID; anything else is a normalised name."""
    if IDENTIFIER_RE.fullmatch(s):
        return _digest.Digest("sha256:" + s)
    if _digest.is_digest(s):
        return _digest.Digest(s)
    return parse_normalized(s)


def validate_tag(tag: str) -> str:
    if not TAG_RE.fullmatch(tag):
        raise ReferenceError("invalid tag format")
    return tag
