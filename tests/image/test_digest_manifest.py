import hashlib
import io
import json

import pytest
from hypothesis import given, settings, strategies as st

from refimpl.image import digest as D
from refimpl.image import manifest as M

H = "0123456789abcdef" * 4


@pytest.mark.parametrize("bad,msg", [
    ("", "invalid checksum digest format"),
    ("sha256", "invalid checksum digest format"),
    ("sha256:", "invalid checksum digest format"),
    (":" + H, "invalid checksum digest format"),
    ("sha256:" + H[:-1], "invalid checksum digest length"),
    ("sha256:" + H.upper(), "invalid checksum digest format"),
    ("sha256:" + H[:-1] + "g", "invalid checksum digest format"),
    ("md5:" + H[:32], "unsupported digest algorithm"),
    ("MD5:" + H[:32], "invalid checksum digest format"),
])
def test_digest_errors(bad, msg):
    with pytest.raises(D.DigestError, match=f"^{msg}$"):
        D.Digest(bad)


def test_digest_parts():
    d = D.parse("sha256:" + H)
    assert (d.algorithm, d.encoded, d.short()) == ("sha256", H, H[:12])
    assert d == "sha256:" + H and D.Digest(d) is d


@settings(max_examples=50)
@given(st.lists(st.binary(max_size=300), max_size=6))
def test_verifier_streams(chunks):
    data = b"".join(chunks)
    good = "sha256:" + hashlib.sha256(data).hexdigest()
    v = D.Verifier(good)
    for c in chunks:
        v.update(c)
    assert v.verify(len(data)) == good == D.sha256(data)
    bad = D.Verifier(D.sha256(data + b"x"))
    for c in chunks:
        bad.update(c)
    with pytest.raises(D.DigestMismatch, match="^digest mismatch: expected sha256:"):
        bad.verify()
    with pytest.raises(D.DigestMismatch):
        v.verify(len(data) + 1)
    r = D.HashingReader(io.BytesIO(data))
    r.read(3)
    r.drain()
    assert r.digest() == good and r.size == len(data)


# --- manifests -------------------------------------------------------------
def desc(mt, data, **kw):
    return M.Descriptor(mt, D.sha256(data), len(data), **kw)


def test_chain_ids_follow_the_image_spec():
    a, b, c = (D.sha256(x) for x in (b"a", b"b", b"c"))
    ids = M.chain_ids([a, b, c])
    ab = "sha256:" + hashlib.sha256(f"{a} {b}".encode()).hexdigest()
    abc = "sha256:" + hashlib.sha256(f"{ab} {c}".encode()).hexdigest()
    assert ids == [a, ab, abc] and M.chain_id([a, b, c]) == abc
    assert M.chain_ids([]) == [] and M.chain_id([]) is None


def test_build_and_parse_manifest_keeps_raw_bytes():
    diff = D.sha256(b"layer")
    cfg = M.build_config([diff], {"Cmd": ["sh"], "Env": ["PATH=/bin"]}, history=[{"created_by": "x"}])
    assert cfg == M.build_config([diff], {"Env": ["PATH=/bin"], "Cmd": ["sh"]}, history=[{"created_by": "x"}])
    assert M.image_id(cfg) == D.sha256(cfg)
    assert M.parse_config(cfg)["rootfs"]["diff_ids"] == [diff]
    layer = desc(M.OCI_LAYER_GZIP, b"gz")
    for mt, cmt in ((M.OCI_MANIFEST, M.OCI_CONFIG), (M.DOCKER_MANIFEST, M.DOCKER_CONFIG)):
        raw = M.build_manifest(cfg, [layer], media_type=mt)
        m = M.parse_manifest(raw)
        assert isinstance(m, M.Manifest) and m.media_type == mt and m.raw == raw
        assert m.config == M.Descriptor(cmt, D.sha256(cfg), len(cfg)) and m.layers == (layer,)
        assert m.digest == D.sha256(raw)
    pretty = json.dumps(json.loads(raw), indent=3).encode()  # registries serve indented JSON
    assert M.parse_manifest(pretty).raw == pretty


def test_manifest_without_media_type_uses_content_type_or_shape():
    raw = json.dumps({"schemaVersion": 2, "manifests": []}).encode()
    assert M.parse_manifest(raw).media_type == M.OCI_INDEX
    assert M.parse_manifest(raw, M.DOCKER_MANIFEST_LIST + "; charset=utf-8").media_type == M.DOCKER_MANIFEST_LIST


@pytest.mark.parametrize("doc,msg", [
    (b"{", "manifest is not valid JSON"),
    (b"[]", "manifest must be a JSON object"),
    (b'{"schemaVersion":1,"fsLayers":[]}', "schema 1 is not supported"),
    (b'{"schemaVersion":2,"mediaType":"text/plain"}', "unsupported manifest media type"),
    (b'{"schemaVersion":2,"mediaType":"' + M.OCI_MANIFEST.encode() + b'","config":{},"layers":[]}',
     "config: invalid checksum digest format"),
    (b'{"schemaVersion":2,"config":{"digest":"sha256:' + H.encode() + b'","size":-1},"layers":[]}',
     "config: size must be a non-negative integer"),
])
def test_bad_manifests(doc, msg):
    with pytest.raises(M.ManifestError, match=msg):
        M.parse_manifest(doc)


def test_select_platform():
    entries = [desc(M.OCI_MANIFEST, b"arm7", platform=M.Platform("linux", "arm", "v7")),
               desc(M.OCI_MANIFEST, b"arm64", platform=M.Platform("linux", "arm64", "v8")),
               desc(M.OCI_MANIFEST, b"amd64", platform=M.Platform("linux", "amd64")),
               desc(M.OCI_MANIFEST, b"att", platform=M.Platform("unknown", "unknown"))]
    idx = M.parse_manifest(M.build_index(entries))
    assert isinstance(idx, M.Index) and len(idx.manifests) == 4
    pick = lambda p: M.select_platform(idx, p).digest
    assert pick("linux/amd64") == D.sha256(b"amd64")
    assert pick(M.Platform("linux", "x86_64")) == D.sha256(b"amd64")
    assert pick("linux/arm64") == D.sha256(b"arm64")
    assert pick("linux/aarch64/v8") == D.sha256(b"arm64")
    assert pick("linux/arm") == D.sha256(b"arm7")
    with pytest.raises(M.ManifestError, match="^no matching manifest for linux/arm/v6 in the manifest list entries"):
        pick("linux/arm/v6")
    with pytest.raises(M.ManifestError, match="invalid platform"):
        pick("linux")


def test_layer_compression():
    assert M.layer_compression(M.DOCKER_LAYER) == "gzip"
    assert M.layer_compression(M.OCI_LAYER_ZSTD) == "zstd"
    assert M.layer_compression(M.OCI_LAYER) is None
    with pytest.raises(M.ManifestError):
        M.layer_compression("application/octet-stream")


@settings(max_examples=50)
@given(st.lists(st.binary(max_size=20), min_size=1, max_size=5))
def test_chain_id_is_prefix_stable(blobs):
    diffs = [D.sha256(b) for b in blobs]
    full = M.chain_ids(diffs)
    assert all(M.chain_ids(diffs[:i + 1]) == full[:i + 1] for i in range(len(diffs)))
    assert len(set(full)) == len(full)  # every prefix names a different stack


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                           lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=8), kids, max_size=4),
                           max_leaves=12)
manifest_like = st.fixed_dictionaries({"schemaVersion": st.sampled_from([2, 1, "2"]),
                                       "mediaType": st.sampled_from([M.OCI_MANIFEST, M.OCI_INDEX, M.DOCKER_MANIFEST, 7]),
                                       "config": json_values, "layers": json_values, "manifests": json_values})


@settings(max_examples=150)
@given(st.one_of(json_values, manifest_like), st.sampled_from([None, M.OCI_INDEX, "application/json"]))
def test_any_json_parses_or_fails_cleanly(doc, ct):
    try:
        m = M.parse_manifest(json.dumps(doc).encode(), ct)
    except M.ManifestError as e:
        assert "\n" not in str(e)
    else:
        assert m.raw == json.dumps(doc).encode()
