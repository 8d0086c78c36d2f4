"""The /v2/ API over real HTTP: every upload style, manifests, tags, catalog, delete, errors."""
from __future__ import annotations

import json
import os
from urllib.parse import urlsplit

import pytest

from . import content
from .content import digest

REPO = "team/app"


def files_under(path) -> list[str]:
    return sorted(os.path.relpath(os.path.join(d, f), path)
                  for d, _, fs in os.walk(path) for f in fs)


def test_base_endpoint_announces_the_api_version(client):
    r = client.request("GET", "/v2/")
    assert r.status == 200 and r.json() == {}
    assert r.headers["docker-distribution-api-version"] == "registry/2.0"
    assert r.headers["content-type"] == "application/json"


def test_monolithic_post_with_digest(client, registry):
    data = os.urandom(100_000)
    r = client.request("POST", f"/v2/{REPO}/blobs/uploads/?digest={digest(data)}", data)
    assert r.status == 201
    assert r.headers["location"] == f"/v2/{REPO}/blobs/{digest(data)}"
    assert r.headers["docker-content-digest"] == digest(data)
    head = client.request("HEAD", f"/v2/{REPO}/blobs/{digest(data)}")
    assert head.status == 200 and head.body == b""
    assert head.headers["content-length"] == str(len(data))
    assert head.headers["docker-content-digest"] == digest(data)
    assert client.request("GET", f"/v2/{REPO}/blobs/{digest(data)}").body == data
    hexd = digest(data)[7:]
    assert (registry.root / "blobs" / "sha256" / hexd[:2] / hexd).read_bytes() == data
    assert os.listdir(registry.root / "uploads") == []


def test_post_then_put_with_the_whole_blob(client):
    data = b"post then put" * 1000
    r = client.request("POST", f"/v2/{REPO}/blobs/uploads/")
    assert r.status == 202 and r.headers["range"] == "0-0"
    uuid, location = r.headers["docker-upload-uuid"], r.headers["location"]
    assert location == f"/v2/{REPO}/blobs/uploads/{uuid}"
    r = client.request("PUT", f"{location}?digest={digest(data)}", data)
    assert r.status == 201 and r.headers["docker-content-digest"] == digest(data)
    assert client.request("GET", f"/v2/{REPO}/blobs/{digest(data)}").body == data
    assert client.request("GET", location).codes == ["BLOB_UPLOAD_UNKNOWN"]


def test_chunked_patches_with_content_range(client):
    data = os.urandom(30_000)
    location = client.request("POST", f"/v2/{REPO}/blobs/uploads/").headers["location"]
    for start in range(0, 30_000, 10_000):
        r = client.request("PATCH", location, data[start:start + 10_000],
                           {"Content-Range": f"{start}-{start + 9_999}",
                            "Content-Type": "application/octet-stream"})
        assert r.status == 202 and r.headers["range"] == f"0-{start + 9_999}"
    status = client.request("GET", location)
    assert status.status == 204 and status.headers["range"] == "0-29999"
    out_of_order = client.request("PATCH", location, b"x" * 10, {"Content-Range": "5-14"})
    assert out_of_order.status == 416 and out_of_order.headers["range"] == "0-29999"
    r = client.request("PUT", f"{location}?digest={digest(data)}", b"")
    assert r.status == 201
    assert client.request("GET", f"/v2/{REPO}/blobs/{digest(data)}").body == data


def test_chunk_shorter_than_its_content_range_is_undone(client, registry):
    location = client.request("POST", f"/v2/{REPO}/blobs/uploads/").headers["location"]
    client.request("PATCH", location, b"0123456789", {"Content-Range": "0-9"})
    r = client.request("PATCH", location, b"abc", {"Content-Range": "10-19"})
    assert r.status == 400 and r.codes == ["SIZE_INVALID"]
    assert client.request("GET", location).headers["range"] == "0-9"
    client.request("PATCH", location, b"abcdefghij", {"Content-Range": "10-19"})
    data = b"0123456789abcdefghij"
    assert client.request("PUT", f"{location}?digest={digest(data)}").status == 201
    with registry.store.open_upload(REPO, uuid := registry.store.start_upload(REPO)):
        with pytest.raises(Exception, match="BLOB_UPLOAD_INVALID"):
            registry.store.open_upload(REPO, uuid)       # one writer per upload at a time


def test_single_streamed_patch_with_chunked_encoding(client):
    """What dockerd does: one PATCH, Transfer-Encoding: chunked, no Content-Range."""
    pieces = [os.urandom(256 * 1024) for _ in range(12)]      # 3 MiB
    data = b"".join(pieces)
    location = client.request("POST", f"/v2/{REPO}/blobs/uploads/").headers["location"]
    r = client.request("PATCH", location, iter(pieces))   # no length: http.client chunks it
    assert r.status == 202 and r.headers["range"] == f"0-{len(data) - 1}"
    location = r.headers["location"]
    assert client.request("PUT", f"{location}?digest={digest(data)}").status == 201
    got = client.request("GET", f"/v2/{REPO}/blobs/{digest(data)}")
    assert got.body == data and got.headers["content-length"] == str(len(data))


def test_digest_mismatch_is_refused_and_leaves_nothing(client, registry):
    wrong = digest(b"something else")
    r = client.request("POST", f"/v2/{REPO}/blobs/uploads/?digest={wrong}", b"payload")
    assert r.status == 400 and r.codes == ["DIGEST_INVALID"]
    location = client.request("POST", f"/v2/{REPO}/blobs/uploads/").headers["location"]
    client.request("PATCH", location, b"payload")
    r = client.request("PUT", f"{location}?digest={wrong}")
    assert r.status == 400 and r.codes == ["DIGEST_INVALID"]
    assert client.request("GET", location).codes == ["BLOB_UPLOAD_UNKNOWN"]
    assert client.request("HEAD", f"/v2/{REPO}/blobs/{wrong}").status == 404
    assert files_under(registry.root / "blobs") == []
    assert files_under(registry.root / "uploads") == []
    bad = client.request("POST", f"/v2/{REPO}/blobs/uploads/?digest=sha256:nothex", b"x")
    assert bad.codes == ["DIGEST_INVALID"]


def test_cancelled_upload_is_gone(client, registry):
    location = client.request("POST", f"/v2/{REPO}/blobs/uploads/").headers["location"]
    client.request("PATCH", location, b"partial")
    assert client.request("DELETE", location).status == 204
    assert client.request("PATCH", location, b"more").codes == ["BLOB_UPLOAD_UNKNOWN"]
    assert files_under(registry.root / "uploads") == []


def test_upload_in_one_repository_is_unknown_in_another(client):
    uuid = client.request("POST", f"/v2/{REPO}/blobs/uploads/").headers["docker-upload-uuid"]
    r = client.request("GET", f"/v2/other/blobs/uploads/{uuid}")
    assert r.status == 404 and r.codes == ["BLOB_UPLOAD_UNKNOWN"]
    assert client.request("GET", f"/v2/{REPO}/blobs/uploads/..%2F..%2Fx").status == 404


def test_blob_ranges(client):
    data = bytes(range(100))
    d = client.push_blob(REPO, data)
    r = client.request("GET", f"/v2/{REPO}/blobs/{d}", headers={"Range": "bytes=10-19"})
    assert r.status == 206 and r.body == data[10:20]
    assert r.headers["content-range"] == "bytes 10-19/100"
    assert client.request("GET", f"/v2/{REPO}/blobs/{d}",
                          headers={"Range": "bytes=90-"}).body == data[90:]
    assert client.request("GET", f"/v2/{REPO}/blobs/{d}",
                          headers={"Range": "bytes=-5"}).body == data[95:]
    r = client.request("GET", f"/v2/{REPO}/blobs/{d}", headers={"Range": "bytes=200-300"})
    assert r.status == 416 and r.headers["content-range"] == "bytes */100"


def test_blobs_belong_to_repositories_and_mount_across(client):
    data = b"shared layer"
    d = client.push_blob("a/base", data)
    assert client.request("HEAD", f"/v2/c/app/blobs/{d}").status == 404
    r = client.request("POST", f"/v2/c/app/blobs/uploads/?mount={d}&from=a/base")
    assert r.status == 201 and r.headers["location"] == f"/v2/c/app/blobs/{d}"
    assert r.headers["docker-content-digest"] == d
    assert client.request("GET", f"/v2/c/app/blobs/{d}").body == data
    missing = digest(b"not here")
    r = client.request("POST", f"/v2/c/app/blobs/uploads/?mount={missing}&from=a/base")
    assert r.status == 202 and "docker-upload-uuid" in r.headers   # falls back to an upload


@pytest.mark.parametrize("kind", ["docker", "oci"])
def test_image_manifest_kept_byte_exact(client, kind):
    img = content.image(oci=kind == "oci")
    d = client.push_image(REPO, "v1", img)
    assert d == digest(img["manifest"])
    for ref in ("v1", d):
        r = client.request("GET", f"/v2/{REPO}/manifests/{ref}",
                           headers={"Accept": img["media_type"]})
        assert r.status == 200 and r.body == img["manifest"]
        assert r.headers["content-type"] == img["media_type"]
        assert r.headers["docker-content-digest"] == d
    head = client.request("HEAD", f"/v2/{REPO}/manifests/v1")
    assert head.status == 200 and head.body == b""
    assert head.headers["content-length"] == str(len(img["manifest"]))


@pytest.mark.parametrize("oci", [True, False])
def test_index_manifest_kept_byte_exact(client, oci):
    img = content.image()
    child = client.push_image(REPO, "amd64", img)
    body, media_type = content.index([(img["manifest"], img["media_type"])], oci=oci)
    r = client.request("PUT", f"/v2/{REPO}/manifests/multi", body, {"Content-Type": media_type})
    assert r.status == 201 and r.headers["location"] == f"/v2/{REPO}/manifests/{digest(body)}"
    got = client.request("GET", f"/v2/{REPO}/manifests/multi")
    assert (got.body, got.headers["content-type"]) == (body, media_type)
    assert client.request("GET", f"/v2/{REPO}/manifests/{child}").body == img["manifest"]


def test_artifact_manifest_of_any_media_type_and_push_by_digest(client):
    blob = client.push_blob(REPO, b"signature")
    body = json.dumps({"schemaVersion": 2, "blobs": [{"digest": blob, "size": 9}],
                       "artifactType": "application/x-test"}).encode()
    media_type = "application/vnd.example.artifact+json"
    r = client.request("PUT", f"/v2/{REPO}/manifests/{digest(body)}", body,
                       {"Content-Type": media_type})
    assert r.status == 201
    got = client.request("GET", f"/v2/{REPO}/manifests/{digest(body)}")
    assert (got.body, got.headers["content-type"]) == (body, media_type)


def test_manifest_refusals(client):
    img = content.image()
    put = lambda ref, body, mt=img["media_type"], repo=REPO: client.request(  # noqa: E731
        "PUT", f"/v2/{repo}/manifests/{ref}", body, {"Content-Type": mt})
    assert put("v1", img["manifest"]).codes == ["MANIFEST_BLOB_UNKNOWN"]
    for data in img["blobs"].values():
        client.push_blob(REPO, data)
    assert put("v1", b"{not json").codes == ["MANIFEST_INVALID"]
    assert put("v1", b'{"schemaVersion": 2, "layers": []}').codes == ["MANIFEST_INVALID"]
    assert put(digest(b"other"), img["manifest"]).codes == ["DIGEST_INVALID"]
    assert put("-bad-tag", img["manifest"]).codes == ["TAG_INVALID"]
    assert put("v1", img["manifest"], repo="Bad/Name").codes == ["NAME_INVALID"]
    index, mt = content.index([(b"{}", content.OCI_MANIFEST)])
    assert put("idx", index, mt).codes == ["MANIFEST_BLOB_UNKNOWN"]
    r = client.request("GET", f"/v2/{REPO}/manifests/v1")
    assert r.status == 404 and r.codes == ["MANIFEST_UNKNOWN"]
    r = client.request("GET", "/v2/never/pushed/tags/list")
    assert r.status == 404 and r.codes == ["NAME_UNKNOWN"]
    assert r.headers["content-type"] == "application/json"
    assert set(r.json()["errors"][0]) >= {"code", "message"}
    r = client.request("POST", f"/v2/{REPO}/manifests/v1")
    assert r.status == 405 and r.codes == ["UNSUPPORTED"]


def test_tags_list_pagination(client):
    img = content.image()
    tags = ["1.0", "1.1", "2.0", "latest", "v3", "zeta"]
    for tag in tags:
        client.push_image(REPO, tag, img)
    assert client.request("GET", f"/v2/{REPO}/tags/list").json() == {"name": REPO, "tags": tags}
    seen, path = [], f"/v2/{REPO}/tags/list?n=4"
    while path:
        r = client.request("GET", path)
        page = r.json()["tags"]
        assert len(page) <= 4 and page
        seen += page
        link = r.headers.get("link")
        path = link[1:link.index(">")] if link else None
        assert not link or link.endswith('rel="next"')
    assert seen == tags
    assert client.request("GET", f"/v2/{REPO}/tags/list?last=2.0").json()["tags"] == tags[3:]
    assert client.request("GET", f"/v2/{REPO}/tags/list?n=0").json()["tags"] == []


def test_catalog(client):
    img = content.image()
    for repo in ("b/two", "a", "c/x/y"):
        client.push_image(repo, "t", img)
    client.push_blob("blob/only", b"no manifests here")
    assert client.request("GET", "/v2/_catalog").json() == {"repositories": ["a", "b/two", "c/x/y"]}
    r = client.request("GET", "/v2/_catalog?n=2")
    assert r.json()["repositories"] == ["a", "b/two"]
    assert r.headers["link"] == '</v2/_catalog?n=2&last=b%2Ftwo>; rel="next"'
    assert client.request("GET", "/v2/_catalog?n=2&last=b%2Ftwo").json()["repositories"] == ["c/x/y"]


def test_delete_tag_manifest_and_blob(client):
    img = content.image()
    d = client.push_image(REPO, "v1", img)
    client.request("PUT", f"/v2/{REPO}/manifests/v2", img["manifest"],
                   {"Content-Type": img["media_type"]})
    assert client.request("DELETE", f"/v2/{REPO}/manifests/v2").status == 202
    assert client.request("GET", f"/v2/{REPO}/tags/list").json()["tags"] == ["v1"]
    assert client.request("DELETE", f"/v2/{REPO}/manifests/{d}").status == 202
    assert client.request("GET", f"/v2/{REPO}/manifests/v1").codes == ["MANIFEST_UNKNOWN"]
    assert client.request("GET", f"/v2/{REPO}/manifests/{d}").codes == ["MANIFEST_UNKNOWN"]
    assert client.request("GET", f"/v2/{REPO}/tags/list").json()["tags"] == []
    assert client.request("DELETE", f"/v2/{REPO}/manifests/{d}").codes == ["MANIFEST_UNKNOWN"]
    layer = next(iter(img["blobs"]))
    assert client.request("DELETE", f"/v2/{REPO}/blobs/{layer}").status == 202
    r = client.request("GET", f"/v2/{REPO}/blobs/{layer}")
    assert r.status == 404 and r.codes == ["BLOB_UNKNOWN"]


def test_locations_resolve_against_the_registry_url(client, registry):
    r = client.request("POST", f"/v2/{REPO}/blobs/uploads/")
    assert urlsplit(r.headers["location"]).path.startswith(f"/v2/{REPO}/blobs/uploads/")
