"""Properties of the pure parts and the blob store: grammars, digests, uploads in any pieces."""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile

import pytest
from hypothesis import given, settings, strategies as st

from refimpl.registry.errors import RegistryError
from refimpl.registry.grammar import NAME_RE, TAG_RE, check_name, check_tag, parse_digest
from refimpl.registry.store import Store

# names built the way the grammar reads: alphanumeric runs joined by separators, then "/"
alnum = st.text("abcxyz0189", min_size=1, max_size=6)
component = st.builds(lambda first, rest: first + "".join(s + a for s, a in rest), alnum,
                      st.lists(st.tuples(st.sampled_from([".", "_", "__", "-", "---"]), alnum),
                               max_size=3))
names = st.lists(component, min_size=1, max_size=4).map("/".join)
text = st.text(alphabet="abcAZ09._-/:%\\ \n", max_size=40)


@given(names)
def test_every_name_of_the_grammar_is_accepted_and_stays_a_relative_path(name):
    assert check_name(name) == name
    parts = name.split("/")
    assert all(parts) and not {".", ".."} & set(parts)
    assert not any(p.startswith(("_", ".", "-")) for p in parts)


@given(text)
def test_names_outside_the_grammar_are_refused(candidate):
    try:
        check_name(candidate)
    except RegistryError as exc:
        assert exc.code == "NAME_INVALID"
        assert not NAME_RE.fullmatch(candidate) or len(candidate) > 255
    else:
        assert NAME_RE.fullmatch(candidate)
        assert ".." not in candidate.split("/") and not candidate.startswith("/")


@given(st.from_regex(TAG_RE, fullmatch=True))
def test_tags_of_the_grammar_are_single_path_components(tag):
    assert check_tag(tag) == tag and "/" not in tag and tag not in (".", "..")


@given(text)
def test_tag_refusals(candidate):
    ok = bool(TAG_RE.fullmatch(candidate))
    try:
        check_tag(candidate)
        assert ok
    except RegistryError as exc:
        assert not ok and exc.code == "TAG_INVALID"


@given(st.binary(max_size=64))
def test_digest_parse_round_trip(data):
    d = "sha256:" + hashlib.sha256(data).hexdigest()
    assert parse_digest(d) == ("sha256", d[7:])
    for bad in (d.upper(), d[:-1], "md5:" + d[7:], d.replace(":", ""), d + "/x"):
        with pytest.raises(RegistryError):
            parse_digest(bad)


@pytest.fixture(scope="module")
def store():
    root = tempfile.mkdtemp(prefix="wt-registry-prop-", dir="/tmp")
    yield Store(root)
    shutil.rmtree(root, ignore_errors=True)


@settings(max_examples=40, deadline=None)
@given(data=st.binary(max_size=4096), cuts=st.lists(st.integers(0, 4096), max_size=5))
def test_blobs_round_trip_whatever_the_upload_pieces(store, data, cuts):
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    uuid = store.start_upload("prop/repo")
    bounds = sorted({0, len(data), *[c % (len(data) + 1) for c in cuts]})
    for start, end in zip(bounds, bounds[1:]):          # one request per piece
        with store.open_upload("prop/repo", uuid) as upload:
            upload.write(data[start:end])
    store._hashers.clear() if cuts and cuts[0] % 2 else None   # as after a restart: rehash
    store.commit_upload("prop/repo", uuid, digest)
    assert store.blob_in("prop/repo", digest).read_bytes() == data
    assert store.put_blob(data) == digest                # content addressing is stable
    assert not os.listdir(store.root / "uploads")


@settings(max_examples=25, deadline=None)
@given(data=st.binary(min_size=1, max_size=1024), flip=st.integers(0, 1023))
def test_a_wrong_digest_never_stores_anything(store, data, flip):
    wrong = bytearray(data)
    wrong[flip % len(data)] ^= 1
    digest = "sha256:" + hashlib.sha256(bytes(wrong)).hexdigest()
    uuid = store.start_upload("prop/repo")
    with store.open_upload("prop/repo", uuid) as upload:
        upload.write(data)
    with pytest.raises(RegistryError) as exc:
        store.commit_upload("prop/repo", uuid, digest)
    assert exc.value.code == "DIGEST_INVALID"
    assert not store.has_blob(digest) and not os.listdir(store.root / "uploads")
