"""Who may do what: htpasswd users, Basic auth, and a small bearer-token service.

Docker's clients (dockerd, skopeo) speak two schemes with a registry:

* Basic: a 401 with `WWW-Authenticate: Basic realm="..."`, then every request
  carries `Authorization: Basic base64(user:password)`.
* Bearer (the "token auth" flow): a 401 with
  `WWW-Authenticate: Bearer realm="http://HOST/token",service="...",scope="repository:foo:pull,push"`;
  the client asks the realm `GET /token?service=...&scope=...` (with Basic
  credentials, if it has any), gets `{"token": ...}` and retries with
  `Authorization: Bearer <token>`.

Tokens are not JWTs signed with a certificate (that needs a crypto library the
project does not carry): they are `base64url(claims) "." base64url(HMAC-SHA256)`,
with a secret made at start-up. Clients treat tokens as opaque, and only the
server that issued one reads it. Anyone who passes the htpasswd check (anyone at
all, when no htpasswd file is given) gets every action asked for; a user who
sends no credentials while an htpasswd file is set gets a token that grants
nothing.

htpasswd lines are `user:hash`, where hash is one of:
    {SHA}base64(sha1(password))       Apache's `htpasswd -s`
    {SHA256}hex, or just 64 hex digits  sha256(password) in hex
    $2y$... / $2b$...                   bcrypt (`htpasswd -B`), checked with the C
                                        library's crypt(3) where it supports it
    {PLAIN}password, or anything else   the password itself
Blank lines and lines starting with '#' are ignored.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import re
import time
import warnings

from .errors import RegistryError

SERVICE = "refimpl-registry"


def _crypt(password: str, hashed: str) -> str | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import crypt                    # deprecated, still in 3.11/3.12
        return crypt.crypt(password, hashed)
    except (ImportError, OSError):
        return None


class Htpasswd:
    def __init__(self, path: str):
        self.users: dict[str, str] = {}
        with open(path, encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                line = line.strip()
                if not line or line.startswith("#"):
                    continue
                user, sep, hashed = line.partition(":")
                if not sep or not user or not hashed:
                    raise ValueError(f"{path} line {number}: expected user:hash")
                self.users[user] = hashed

    def check(self, user: str, password: str) -> bool:
        hashed = self.users.get(user)
        if hashed is None:
            return False
        pw = password.encode()
        if hashed.startswith("{SHA}"):
            want = base64.b64encode(hashlib.sha1(pw).digest()).decode()
            return hmac.compare_digest(want, hashed[5:])
        if hashed.startswith("{SHA256}") or re.fullmatch(r"[0-9a-fA-F]{64}", hashed):
            return hmac.compare_digest(hashlib.sha256(pw).hexdigest(), hashed[-64:].lower())
        if hashed.startswith("$2"):
            result = _crypt(password, hashed)
            return result is not None and hmac.compare_digest(result, hashed)
        plain = hashed[7:] if hashed.startswith("{PLAIN}") else hashed
        return hmac.compare_digest(plain.encode(), pw)


def basic_credentials(header: str | None) -> tuple[str, str] | None:
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        user, sep, password = base64.b64decode(header[6:].strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (user, password) if sep else None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def parse_scope(scope: str) -> tuple[str, str, set[str]] | None:
    """'repository:team/app:pull,push' -> ('repository', 'team/app', {'pull', 'push'})."""
    kind, sep, rest = scope.partition(":")
    name, sep2, actions = rest.rpartition(":")
    if not (sep and sep2 and kind and name):
        return None
    return kind, name, {a for a in actions.split(",") if a}


class Auth:
    """mode is "none", "basic" (needs users) or "token"."""

    def __init__(self, mode: str = "none", users: Htpasswd | None = None, service: str = SERVICE,
                 realm: str | None = None, ttl: int = 300, secret: bytes | None = None):
        if mode == "basic" and users is None:
            raise ValueError("basic auth needs an htpasswd file")
        self.mode, self.users, self.service, self.realm, self.ttl = mode, users, service, realm, ttl
        self.secret = secret or os.urandom(32)

    # -- checking requests ---------------------------------------------------------------
    def allowed(self, headers: dict[str, str], scope: tuple[str, str, str] | None) -> bool:
        try:
            self.check(headers, scope)
            return True
        except RegistryError:
            return False

    def check(self, headers: dict[str, str], scope: tuple[str, str, str] | None) -> str:
        """-> the account name; UNAUTHORIZED with a challenge when the request may not
        do `scope` = (type, name, action), or, for scope None, may not use the API at all."""
        authorization = headers.get("authorization", "")
        if self.mode == "none":
            return ""
        if self.mode == "basic":
            creds = basic_credentials(authorization)
            if creds and self.users.check(*creds):
                return creds[0]
            raise RegistryError("UNAUTHORIZED", None,
                                {"WWW-Authenticate": f'Basic realm="{self.service}"'})
        claims = self.verify(authorization[7:].strip()) if \
            authorization.lower().startswith("bearer ") else None
        if claims is not None and (scope is None or any(
                a["type"] == scope[0] and a["name"] == scope[1] and
                (scope[2] in a["actions"] or "*" in a["actions"]) for a in claims["access"])):
            return claims["sub"]
        realm = self.realm or f"http://{headers.get('host', '127.0.0.1')}/token"
        challenge = f'Bearer realm="{realm}",service="{self.service}"'
        if scope is not None:
            challenge += f',scope="{scope[0]}:{scope[1]}:{scope[2]}"'
        if authorization and claims is None:
            challenge += ',error="invalid_token"'
        elif claims is not None:
            challenge += ',error="insufficient_scope"'
        raise RegistryError("UNAUTHORIZED", None, {"WWW-Authenticate": challenge})

    # -- the token service ---------------------------------------------------------------
    def issue(self, creds: tuple[str, str] | None, scopes: list[str]) -> dict:
        """The /token answer for these credentials and `scope` values; UNAUTHORIZED for
        wrong credentials."""
        account, trusted = "", self.users is None
        if creds is not None:
            if self.users is not None and not self.users.check(*creds):
                raise RegistryError("UNAUTHORIZED", "invalid username or password")
            account, trusted = creds[0], True
        access = []
        for scope in scopes:
            parsed = parse_scope(scope)
            if parsed and trusted:
                access.append({"type": parsed[0], "name": parsed[1], "actions": sorted(parsed[2])})
        now = int(time.time())
        claims = {"iss": self.service, "sub": account, "aud": self.service,
                  "iat": now, "exp": now + self.ttl, "access": access}
        payload = _b64(json.dumps(claims, separators=(",", ":")).encode())
        token = f"{payload}.{_b64(hmac.new(self.secret, payload.encode(), 'sha256').digest())}"
        issued = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
        return {"token": token, "access_token": token, "expires_in": self.ttl, "issued_at": issued}

    def verify(self, token: str) -> dict | None:
        payload, _, signature = token.partition(".")
        want = _b64(hmac.new(self.secret, payload.encode(), "sha256").digest())
        if not hmac.compare_digest(want, signature):
            return None
        try:
            claims = json.loads(_unb64(payload))
        except (ValueError, binascii.Error):
            return None
        if claims.get("aud") != self.service or claims.get("exp", 0) < time.time():
            return None
        return claims
