"""conformance.registries: the pure helpers (Link parsing, upload URLs) and a real start of each kind."""
from __future__ import annotations

import shutil
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conformance import registries, services
from conformance.registries import Client, next_link, sha256, with_query

PATHS = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_./", min_size=1, max_size=40)
VALUES = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=30)


@given(path=PATHS, n=st.integers(0, 10**6), last=VALUES)
@settings(max_examples=60)
def test_next_link_finds_the_url_of_rel_next(path, n, last):
    url = with_query(f"/v2/{path}/tags/list", n=str(n), last=last)
    assert next_link(f'<{url}>; rel="next"') == url
    assert next_link(f'<{url}>;rel=next') == url
    assert next_link(f'<{url}>; rel="prev"') is None


@pytest.mark.parametrize("header", [None, "", "garbage", '<http://x/v2/_catalog?n=1>; rel="first"'])
def test_no_next_link(header):
    assert next_link(header) is None


@given(base=PATHS, state=st.one_of(st.none(), VALUES), digest=VALUES)
@settings(max_examples=60)
def test_with_query_keeps_the_locations_own_query(base, state, digest):
    location = f"http://127.0.0.1:5000/v2/{base}/blobs/uploads/u" + (
        "?" + registries.urlencode({"_state": state}) if state is not None else "")
    query = parse_qs(urlsplit(with_query(location, digest=digest)).query, keep_blank_values=True)
    assert query["digest"] == [digest]
    if state is not None:
        assert query["_state"] == [state]


def test_with_query_without_params_is_the_location():
    assert with_query("/v2/a/blobs/uploads/u?x=1") == "/v2/a/blobs/uploads/u?x=1"


def test_bcrypt_line_is_an_htpasswd_line():
    user, _, hashed = registries.bcrypt_line("alice", "s3cret").partition(":")
    assert user == "alice" and hashed.startswith("$2b$05$")


def test_unknown_kind_is_a_one_line_error():
    with pytest.raises(services.ServiceError, match="unknown registry kind 'quay'"):
        registries.start("quay")


@pytest.mark.parametrize("kind", registries.KINDS)
def test_an_authenticated_registry_of_each_kind(kind):
    if kind == "distribution" and shutil.which("docker-registry") is None:
        pytest.skip("env-skip: docker-registry is not installed")
    reg = registries.start(kind, auth=True, delete=False)
    try:
        anonymous = Client(reg.address).request("GET", "/v2/")
        assert anonymous.status == 401 and "UNAUTHORIZED" in anonymous.codes
        assert anonymous.headers["www-authenticate"].startswith("Basic realm=")
        client = Client(reg.address, (reg.user, reg.password))
        assert client.request("GET", "/v2/").status == 200
        blob = b"blob of " + kind.encode()
        assert client.upload("ds/t", blob).status == 201
        got = client.request("GET", f"/v2/ds/t/blobs/{sha256(blob)}")
        assert (got.status, got.body) == (200, blob)
    finally:
        reg.stop()
    assert not reg.workdir.exists()
