"""login, push, logout and the credentials the CLI keeps, against an authenticated registry."""
from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import pytest

from conformance import services

from .conftest import cli_env, docker, refimpl


@pytest.fixture
def auth_registry(tmp_path):
    """refimpl-registry with basic auth for alice:s3cret."""
    (tmp_path / "htpasswd").write_text("alice:{PLAIN}s3cret\n")
    port = services.free_port()
    proc = subprocess.Popen([sys.executable, "-m", "refimpl.registry.server", "--root", str(tmp_path / "root"),
                             "--listen", f"127.0.0.1:{port}", "--auth", "basic",
                             "--htpasswd", str(tmp_path / "htpasswd")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    addr = f"127.0.0.1:{port}"
    try:
        services.wait_until(lambda: services.answers(f"http://{addr}", "/v2/"), "registry", 20, proc)
        yield addr
    finally:
        proc.terminate()
        proc.wait(10)


def test_login_push_pull_logout(image, auth_registry, tmp_path):
    config = tmp_path / "docker-config"
    env = cli_env(DOCKER_CONFIG=str(config))
    ref = f"{auth_registry}/alice/busybox:v1"
    docker("tag", image, ref)
    try:
        r = refimpl("push", ref, env=env)
        assert r.rc != 0 and "Traceback" not in r.err, r
        r = refimpl("login", "-u", "alice", "--password-stdin", auth_registry, input="wrong\n", env=env)
        assert r.rc != 0 and ("incorrect username or password" in r.err or "unauthorized" in r.err.lower()), r
        r = refimpl("login", "-u", "alice", "--password-stdin", auth_registry, input="s3cret\n", env=env)
        assert r.rc == 0 and "Login Succeeded" in r.out, r
        saved = json.loads((config / "config.json").read_text())
        assert base64.b64decode(saved["auths"][auth_registry]["auth"]) == b"alice:s3cret"
        assert (config / "config.json").stat().st_mode & 0o077 == 0
        r = refimpl("push", ref, env=env)
        assert r.rc == 0, r
        assert "digest: sha256:" in r.out
        docker("rmi", ref)
        r = refimpl("pull", ref, env=env)
        assert r.rc == 0, r
        r = refimpl("logout", auth_registry, env=env)
        assert r.rc == 0 and f"Removing login credentials for {auth_registry}" in r.out, r
        assert auth_registry not in json.loads((config / "config.json").read_text()).get("auths", {})
        docker("rmi", ref)
        r = refimpl("pull", ref, env=env)
        assert r.rc != 0 and "Traceback" not in r.err, r
    finally:
        docker("rmi", "-f", ref, check=False)


def test_credential_helper_protocol(image, auth_registry, tmp_path):
    """credsStore: the CLI stores and reads credentials through docker-credential-<name>."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    store = tmp_path / "helper-store.json"
    helper = bindir / "docker-credential-dstest"
    helper.write_text(f"""#!{sys.executable}
import json, sys
path = {str(store)!r}
try:
    data = json.load(open(path))
except FileNotFoundError:
    data = {{}}
action, text = sys.argv[1], sys.stdin.read()
if action == "store":
    doc = json.loads(text); data[doc["ServerURL"]] = [doc["Username"], doc["Secret"]]
    json.dump(data, open(path, "w"))
elif action == "get":
    if text.strip() not in data:
        print("credentials not found in native keychain"); sys.exit(1)
    user, secret = data[text.strip()]
    print(json.dumps({{"ServerURL": text.strip(), "Username": user, "Secret": secret}}))
elif action == "erase":
    data.pop(text.strip(), None); json.dump(data, open(path, "w"))
""")
    helper.chmod(0o755)
    config = tmp_path / "docker-config"
    config.mkdir()
    (config / "config.json").write_text(json.dumps({"credsStore": "dstest"}))
    import os
    env = cli_env(DOCKER_CONFIG=str(config), PATH=f"{bindir}{os.pathsep}{os.environ['PATH']}")
    ref = f"{auth_registry}/alice/helper:v1"
    docker("tag", image, ref)
    try:
        r = refimpl("login", "-u", "alice", "--password-stdin", auth_registry, input="s3cret\n", env=env)
        assert r.rc == 0, r
        assert json.loads(store.read_text()) == {auth_registry: ["alice", "s3cret"]}
        assert "auths" not in json.loads((config / "config.json").read_text())
        r = refimpl("push", ref, env=env)
        assert r.rc == 0, r
        r = refimpl("logout", auth_registry, env=env)
        assert r.rc == 0 and json.loads(store.read_text()) == {}
    finally:
        docker("rmi", "-f", ref, check=False)
