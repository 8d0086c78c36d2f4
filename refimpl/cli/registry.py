"""Registry commands: login, logout, push; and the credentials every pull and push sends.

Credentials live where the docker CLI keeps them, in `$DOCKER_CONFIG/config.json`
(default `~/.docker/config.json`), in the same format, so both CLIs share them:

    {"auths": {"127.0.0.1:5000": {"auth": base64("user:password")}},
     "credsStore": "pass",                        # optional: a helper for every registry
     "credHelpers": {"registry.example": "ecr"}}  # optional: a helper per registry

A credential helper is the program `docker-credential-<name>`, spoken to with the
docker-credential-helpers protocol: `get` (server URL on stdin → JSON
{"Username", "Secret"}), `store` (JSON {"ServerURL", "Username", "Secret"} on
stdin) and `erase` (server URL on stdin).

The daemon gets the credentials of the registry an image lives on as the
`X-Registry-Auth` header: base64url of {"username", "password", "serveraddress"}.
"""
from __future__ import annotations

import base64
import getpass
import json
import os
import subprocess
import sys
from pathlib import Path

from refimpl.image import reference

from . import progress
from .client import CLIError, Client, json_stream, quote_ref

HUB = "https://index.docker.io/v1/"


def config_path() -> Path:
    base = os.environ.get("DOCKER_CONFIG") or os.path.join(os.path.expanduser("~"), ".docker")
    return Path(base) / "config.json"


def load_config() -> dict:
    try:
        data = json.loads(config_path().read_text())
        return data if isinstance(data, dict) else {}
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        raise CLIError(f"refimpl: cannot read {config_path()}: {e}") from None


def save_config(data: dict) -> None:
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent="\t")
        f.write("\n")
    os.replace(tmp, path)


def server_key(server: str | None) -> str:
    """The key a registry has in `auths`: Docker Hub's legacy URL, else host[:port]."""
    if not server or server in ("docker.io", "index.docker.io", "registry-1.docker.io", HUB):
        return HUB
    return server.split("://", 1)[-1].rstrip("/").split("/", 1)[0]


def registry_of(name: str) -> str:
    try:
        ref = reference.parse_normalized(name)
    except reference.ReferenceError as e:
        raise CLIError(str(e)) from None
    return server_key(ref.domain)


def _helper(config: dict, key: str) -> str | None:
    return (config.get("credHelpers") or {}).get(key) or config.get("credsStore")


def _run_helper(name: str, action: str, data: str) -> str:
    program = f"docker-credential-{name}"
    try:
        p = subprocess.run([program, action], input=data, capture_output=True, text=True, timeout=30)
    except FileNotFoundError:
        raise CLIError(f"refimpl: credential helper {program} is not installed") from None
    if p.returncode != 0:
        msg = (p.stdout or p.stderr).strip().splitlines()
        raise CLIError(f"refimpl: {program} {action}: {msg[0] if msg else 'failed'}")
    return p.stdout


def credentials(key: str) -> dict:
    """{"username", "password"} for a registry, or {} when none are stored."""
    config = load_config()
    helper = _helper(config, key)
    if helper:
        try:
            out = json.loads(_run_helper(helper, "get", key) or "{}")
        except CLIError:
            return {}
        except ValueError:
            return {}
        return {"username": out.get("Username", ""), "password": out.get("Secret", "")}
    entry = (config.get("auths") or {}).get(key) or {}
    if entry.get("auth"):
        try:
            user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return {}
        return {"username": user, "password": password}
    if entry.get("identitytoken"):
        return {"identitytoken": entry["identitytoken"]}
    return {}


def auth_header(name: str) -> dict[str, str]:
    """The X-Registry-Auth header for the registry `name` lives on (empty without credentials)."""
    key = registry_of(name)
    creds = credentials(key)
    if not creds:
        return {}
    creds["serveraddress"] = key
    return {"X-Registry-Auth": base64.urlsafe_b64encode(json.dumps(creds).encode()).decode()}


# --------------------------------------------------------------------------- commands
def cmd_login(cli: Client, a) -> int:
    key = server_key(a.server)
    user = a.username
    if a.password_stdin:
        if a.password:
            raise CLIError("refimpl: --password and --password-stdin are mutually exclusive")
        if not user:
            raise CLIError("refimpl: Must provide --username with --password-stdin")
        password = sys.stdin.read().rstrip("\r\n")
    else:
        password = a.password
        if not user:
            user = input("Username: ").strip() if sys.stdin.isatty() else ""
        if not password and sys.stdin.isatty():
            password = getpass.getpass("Password: ")
    if not user or not password:
        raise CLIError("refimpl: Error: Cannot perform an interactive login from a non TTY device")
    answer = cli.post("/auth", {"username": user, "password": password, "serveraddress": key}) or {}
    config = load_config()
    helper = _helper(config, key)
    if helper:
        _run_helper(helper, "store", json.dumps({"ServerURL": key, "Username": user, "Secret": password}))
    else:
        entry = {"auth": base64.b64encode(f"{user}:{password}".encode()).decode()}
        if answer.get("IdentityToken"):
            entry = {"identitytoken": answer["IdentityToken"]}
        config.setdefault("auths", {})[key] = entry
        save_config(config)
    print(answer.get("Status") or "Login Succeeded")
    return 0


def cmd_logout(cli: Client, a) -> int:
    key = server_key(a.server)
    config = load_config()
    helper = _helper(config, key)
    if helper:
        try:
            _run_helper(helper, "erase", key)
        except CLIError:
            pass
    auths = config.get("auths") or {}
    if key in auths or helper:
        auths.pop(key, None)
        save_config(config)
        print(f"Removing login credentials for {key}")
    else:
        print(f"Not logged in to {key}")
    return 0


def cmd_push(cli: Client, a) -> int:
    try:
        ref = reference.parse_normalized(a.name)
    except reference.ReferenceError as e:
        raise CLIError(str(e)) from None
    if ref.digest:
        raise CLIError("refimpl: cannot push a digest reference")
    if not ref.tag and not a.all_tags:
        ref = ref.tagged_or_latest()
        if not a.quiet:
            print(f"Using default tag: {reference.DEFAULT_TAG}")
    query = {"tag": ref.tag} if ref.tag else {}
    resp = cli.open("POST", f"/images/{quote_ref(ref.repository().familiar())}/push", query,
                    headers=auth_header(a.name))
    messages = json_stream(resp)
    if a.quiet:
        for m in messages:
            if "error" in m:
                progress.fail(m)
        print(str(ref.familiar()))
        return 0
    progress.show(messages, sys.stdout)
    return 0


def register(sub, parser) -> None:
    p = parser(sub, "login", cmd_login, "Log in to a registry")
    p.add_argument("server", nargs="?")
    p.add_argument("-u", "--username")
    p.add_argument("-p", "--password")
    p.add_argument("--password-stdin", action="store_true")

    p = parser(sub, "logout", cmd_logout, "Log out from a registry")
    p.add_argument("server", nargs="?")

    p = parser(sub, "push", cmd_push, "Upload an image to a registry")
    p.add_argument("name")
    p.add_argument("-a", "--all-tags", action="store_true")
    p.add_argument("-q", "--quiet", action="store_true")
