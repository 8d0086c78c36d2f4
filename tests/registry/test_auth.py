"""Basic auth against an htpasswd file, and the bearer-token flow dockerd and skopeo use."""
from __future__ import annotations

import base64
import hashlib
import re
import warnings

import pytest

from refimpl.registry.auth import Auth, Htpasswd, parse_scope

from .content import digest

REPO = "team/app"


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def challenge(header: str) -> dict[str, str]:
    return dict(re.findall(r'(\w+)="([^"]*)"', header))


@pytest.fixture
def htpasswd(workdir):
    sha1 = base64.b64encode(hashlib.sha1(b"alice-pw").digest()).decode()
    lines = ["# users", f"alice:{{SHA}}{sha1}", f"bob:{hashlib.sha256(b'bob-pw').hexdigest()}",
             f"erin:{{SHA256}}{hashlib.sha256(b'erin-pw').hexdigest()}", "carol:carol-pw", ""]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            import crypt
            lines.append("dave:" + crypt.crypt("dave-pw", crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16)))
        except (ImportError, AttributeError, OSError):
            pass
    path = workdir / "htpasswd"
    path.write_text("\n".join(lines))
    return Htpasswd(str(path))


def test_htpasswd_formats(htpasswd):
    for user in ("alice", "bob", "erin", "carol", "dave"):
        if user in htpasswd.users:
            assert htpasswd.check(user, f"{user}-pw"), user
            assert not htpasswd.check(user, f"{user}-wrong"), user
    assert not htpasswd.check("nobody", "x")


def test_htpasswd_rejects_a_malformed_line(workdir):
    (workdir / "bad").write_text("alice:{SHA}x\nno-colon-here\n")
    with pytest.raises(ValueError, match="line 2: expected user:hash"):
        Htpasswd(str(workdir / "bad"))


def test_scope_grammar():
    assert parse_scope("repository:localhost:5000/a/b:pull,push") == \
        ("repository", "localhost:5000/a/b", {"pull", "push"})
    assert parse_scope("registry:catalog:*") == ("registry", "catalog", {"*"})
    assert parse_scope("nonsense") is None


def test_basic_auth_challenge_then_success(make_registry, htpasswd):
    reg = make_registry(Auth("basic", htpasswd))
    client = reg.client()
    r = client.request("GET", "/v2/")
    assert r.status == 401 and r.codes == ["UNAUTHORIZED"]
    assert r.headers["www-authenticate"] == 'Basic realm="refimpl-registry"'
    assert client.request("GET", "/v2/", headers=basic("alice", "nope")).status == 401
    assert client.request("POST", f"/v2/{REPO}/blobs/uploads/?digest={digest(b'x')}", b"x").status == 401
    assert client.request("GET", "/v2/", headers=basic("alice", "alice-pw")).status == 200
    d = client.push_blob(REPO, b"layer", basic("carol", "carol-pw"))
    assert client.request("GET", f"/v2/{REPO}/blobs/{d}", headers=basic("bob", "bob-pw")).body == b"layer"


def fetch_token(client, www_authenticate: str, headers=None, scope: str | None = None) -> str:
    params = challenge(www_authenticate)
    realm = params["realm"]
    assert realm.startswith("http://127.0.0.1:") and realm.endswith("/token")
    query = f"?service={params['service']}&scope={scope or params['scope']}"
    r = client.request("GET", "/token" + query, headers=headers)
    assert r.status == 200, r
    body = r.json()
    assert body["token"] == body["access_token"] and body["expires_in"] > 0
    return body["token"]


def test_token_flow(make_registry, htpasswd):
    reg = make_registry(Auth("token", htpasswd))
    client = reg.client()
    r = client.request("GET", "/v2/")
    assert r.status == 401
    assert challenge(r.headers["www-authenticate"])["service"] == "refimpl-registry"
    assert r.headers["www-authenticate"].startswith("Bearer ")
    url = f"/v2/{REPO}/blobs/uploads/?digest={digest(b'blob')}"
    r = client.request("POST", url, b"blob")
    assert r.status == 401
    assert challenge(r.headers["www-authenticate"])["scope"] == f"repository:{REPO}:push"
    token = fetch_token(client, r.headers["www-authenticate"], basic("alice", "alice-pw"),
                        scope=f"repository:{REPO}:pull,push")
    bearer = {"Authorization": f"Bearer {token}"}
    assert client.request("GET", "/v2/", headers=bearer).status == 200
    assert client.request("POST", url, b"blob", bearer).status == 201
    assert client.request("GET", f"/v2/{REPO}/blobs/{digest(b'blob')}", headers=bearer).body == b"blob"
    # a pull-only token may not push, and says why
    pull = fetch_token(client, r.headers["www-authenticate"], basic("bob", "bob-pw"),
                       scope=f"repository:{REPO}:pull")
    r = client.request("POST", url, b"blob", {"Authorization": f"Bearer {pull}"})
    assert r.status == 401 and 'error="insufficient_scope"' in r.headers["www-authenticate"]
    # tampered tokens and wrong passwords get nothing
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    r = client.request("GET", "/v2/", headers={"Authorization": f"Bearer {forged}"})
    assert r.status == 401 and 'error="invalid_token"' in r.headers["www-authenticate"]
    r = client.request("GET", f"/token?service=refimpl-registry&scope=repository:{REPO}:pull",
                       headers=basic("alice", "wrong"))
    assert r.status == 401 and r.codes == ["UNAUTHORIZED"]
    # anonymous callers get a token that grants no repository access
    anon = client.request("GET", f"/token?scope=repository:{REPO}:pull").json()["token"]
    assert client.request("GET", f"/v2/{REPO}/tags/list",
                          headers={"Authorization": f"Bearer {anon}"}).status == 401


def test_token_password_grant_and_open_registry(make_registry, htpasswd):
    reg = make_registry(Auth("token", htpasswd))
    client = reg.client()
    form = f"grant_type=password&username=erin&password=erin-pw&scope=registry:catalog:*&service=x"
    r = client.request("POST", "/token", form.encode(),
                       {"Content-Type": "application/x-www-form-urlencoded"})
    token = r.json()["access_token"]
    assert client.request("GET", "/v2/_catalog",
                          headers={"Authorization": f"Bearer {token}"}).status == 200
    open_reg = make_registry(Auth("token")).client()       # no htpasswd: everyone may do anything
    token = open_reg.request("GET", f"/token?scope=repository:{REPO}:push").json()["token"]
    assert open_reg.push_blob(REPO, b"open", {"Authorization": f"Bearer {token}"})


def test_no_token_endpoint_without_token_auth(client):
    assert client.request("GET", "/token").status == 404
