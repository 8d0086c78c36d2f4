"""The distribution API's grammars: repository names, tags, digests.

All in one place, each regex under the rule it transcribes, because these
strings become file paths under the registry root: whatever passes here must
never climb out of it (no "..", no empty or absolute components).
"""
from __future__ import annotations

import re

from .errors import RegistryError

# OCI distribution-spec, "Pulling manifests":
#   <name> MUST match the following regular expression:
#   [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*
_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
NAME_RE = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
# distribution/reference: "the total length of a repository name ... must be less
# than 256 characters" (the spec: many clients limit host + "/" + name to 255).
NAME_MAX = 255

# OCI distribution-spec: <reference> as a tag MUST be at most 128 characters in
# length and MUST match the following regular expression:
#   [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}
TAG_RE = re.compile(r"[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}")

# OCI image-spec, descriptor.md "Digests":
#   digest                ::= algorithm ":" encoded
#   algorithm             ::= algorithm-component (algorithm-separator algorithm-component)*
#   algorithm-component   ::= [a-z0-9]+
#   algorithm-separator   ::= [+._-]
#   encoded               ::= [a-zA-Z0-9=_-]+
DIGEST_RE = re.compile(r"([a-z0-9]+(?:[+._-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)")
# Registered algorithms: sha256 encoded MUST match /[a-f0-9]{64}/, sha512 /[a-f0-9]{128}/.
ALGORITHMS = {"sha256": re.compile(r"[a-f0-9]{64}"), "sha512": re.compile(r"[a-f0-9]{128}")}


def check_name(name: str) -> str:
    if len(name) > NAME_MAX or not NAME_RE.fullmatch(name):
        raise RegistryError("NAME_INVALID", f"invalid repository name {name[:300]!r}")
    return name


def check_tag(tag: str) -> str:
    if not TAG_RE.fullmatch(tag):
        raise RegistryError("TAG_INVALID", f"invalid tag {tag[:300]!r}")
    return tag


def parse_digest(digest: str) -> tuple[str, str]:
    """'sha256:ab…' -> ('sha256', 'ab…'); DIGEST_INVALID for anything we cannot verify."""
    m = DIGEST_RE.fullmatch(digest or "")
    if not m:
        raise RegistryError("DIGEST_INVALID", f"invalid digest {digest[:300]!r}")
    algorithm, encoded = m.groups()
    if algorithm not in ALGORITHMS:
        raise RegistryError("DIGEST_INVALID", f"unsupported digest algorithm {algorithm!r}")
    if not ALGORITHMS[algorithm].fullmatch(encoded):
        raise RegistryError("DIGEST_INVALID", f"invalid {algorithm} digest {digest[:300]!r}")
    return algorithm, encoded


def is_digest(reference: str) -> bool:
    return ":" in reference
