import pytest
from hypothesis import given, settings, strategies as st

from refimpl.image import reference as R
from refimpl.image.digest import Digest

HEX = "a" * 64
DG = "sha256:" + "0123456789abcdef" * 4


@pytest.mark.parametrize("given_,canonical,familiar", [
    ("busybox", "docker.io/library/busybox:latest", "busybox:latest"),
    ("busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36"),
    ("user/repo", "docker.io/user/repo:latest", "user/repo:latest"),
    ("docker.io/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
    ("index.docker.io/user/repo:v1", "docker.io/user/repo:v1", "user/repo:v1"),
    ("docker.io/library/a/b", "docker.io/library/a/b:latest", "library/a/b:latest"),
    ("localhost/foo", "localhost/foo:latest", "localhost/foo:latest"),
    ("localhost:5000/foo", "localhost:5000/foo:latest", "localhost:5000/foo:latest"),
    ("127.0.0.1:5000/a/b:t", "127.0.0.1:5000/a/b:t", "127.0.0.1:5000/a/b:t"),
    ("[::1]:5000/foo", "[::1]:5000/foo:latest", "[::1]:5000/foo:latest"),
    ("Example/foo", "Example/foo:latest", "Example/foo:latest"),
    ("foo@" + DG, "docker.io/library/foo@" + DG, "foo@" + DG),
    ("foo:tag@" + DG, "docker.io/library/foo@" + DG, "foo@" + DG),
    ("a__b-c---d/e.f", "docker.io/a__b-c---d/e.f:latest", "a__b-c---d/e.f:latest"),
])
def test_normalise_and_familiar(given_, canonical, familiar):
    ref = R.parse_docker_ref(given_)
    assert str(ref) == canonical
    assert ref.familiar() == familiar
    assert R.parse_docker_ref(canonical) == ref


def test_parts():
    ref = R.parse_normalized("localhost:5000/foo/bar:v2@" + DG)
    assert (ref.domain, ref.path, ref.tag, ref.digest) == ("localhost:5000", "foo/bar", "v2", DG)
    assert ref.name == "localhost:5000/foo/bar"
    assert isinstance(ref.digest, Digest)
    assert str(ref.repository()) == "localhost:5000/foo/bar"
    assert R.parse_normalized("busybox").tag is None
    assert R.parse_normalized("busybox").registry == "registry-1.docker.io"
    assert ref.registry == "localhost:5000"


@pytest.mark.parametrize("bad,message", [
    ("", "invalid reference format"),
    ("Busybox", "invalid reference format: repository name (library/Busybox) must be lowercase"),
    ("user/Repo", "invalid reference format: repository name (user/Repo) must be lowercase"),
    ("foo:-x", "invalid reference format"),
    ("foo::x", "invalid reference format"),
    ("foo/", "invalid reference format"),
    ("-foo", "invalid reference format"),
    ("foo__-bar", "invalid reference format"),
    ("foo:" + "t" * 129, "invalid reference format"),
    ("a" * 256, "repository name must not be more than 255 characters"),
    ("a@sha256:abc", "invalid reference format"),
    ("a@sha256:" + "A" * 64, "invalid checksum digest format"),
    ("a@sha256:" + "a" * 63 + "a0", "invalid checksum digest length"),
    ("a@md5:" + "a" * 32, "unsupported digest algorithm"),
    (HEX, f"invalid repository name ({HEX}), cannot specify 64-byte hexadecimal strings"),
    ("foo bar", "invalid reference format"),
    ("foo\n", "invalid reference format"),
])
def test_errors_are_dockers_one_liners(bad, message):
    with pytest.raises(R.ReferenceError) as e:
        R.parse_docker_ref(bad)
    assert str(e.value) == message


def test_strict_parse_uppercase_message():
    with pytest.raises(R.ReferenceError, match="^invalid reference format: repository name must be lowercase$"):
        R.parse("docker.io/library/Busybox")
    assert R.parse("busybox").domain == ""


def test_parse_any():
    assert R.parse_any(HEX) == "sha256:" + HEX
    assert R.parse_any(DG) == DG
    assert str(R.parse_any("busybox")) == "docker.io/library/busybox"


def test_default_domain_is_a_setting(monkeypatch):
    monkeypatch.setattr(R, "DEFAULT_DOMAIN", "127.0.0.1:5000")
    ref = R.parse_docker_ref("busybox")
    assert str(ref) == "127.0.0.1:5000/library/busybox:latest"
    assert ref.familiar() == "busybox:latest"
    assert R.parse_docker_ref("docker.io/x/y").familiar() == "docker.io/x/y:latest"


def test_with_tag_validates():
    ref = R.parse_normalized("busybox")
    assert str(ref.with_tag("v1")) == "docker.io/library/busybox:v1"
    with pytest.raises(R.ReferenceError, match="^invalid tag format$"):
        ref.with_tag(".bad")


# --- properties: strategies built from the grammar rules themselves ---------
alnum = st.from_regex(r"\A[a-z0-9]{1,6}\Z")
sep = st.sampled_from([".", "_", "__", "-", "--"])
component = st.builds(lambda first, rest: first + "".join(s + a for s, a in rest),
                      alnum, st.lists(st.tuples(sep, alnum), max_size=2))
path = st.lists(component, min_size=1, max_size=3).map("/".join)
domain = st.one_of(st.just("localhost"), st.from_regex(r"\A[a-z0-9]{1,5}\.[a-z]{2,4}\Z"),
                   st.from_regex(r"\A[a-z0-9]{1,5}(\.[a-z0-9]{1,5})?:[0-9]{1,5}\Z"),
                   st.just("[::1]:5000"))
tag = st.from_regex(r"\A[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}\Z")
dig = st.from_regex(r"\A[a-f0-9]{64}\Z").map(lambda h: "sha256:" + h)


@settings(max_examples=80)
@given(st.one_of(st.none(), domain), path, st.one_of(st.none(), tag), st.one_of(st.none(), dig))
def test_grammar_round_trip(dom, p, t, d):
    s = (f"{dom}/" if dom else "") + p + (f":{t}" if t else "") + (f"@{d}" if d else "")
    ref = R.parse(s)
    assert str(ref) == s
    norm = R.parse_normalized(s)
    assert R.parse_normalized(str(norm)) == norm          # normalising is idempotent
    assert R.parse_normalized(norm.familiar()) == norm    # the familiar form means the same image
    assert norm.tagged_or_latest().tag == (t or ("latest" if not d else None))


@settings(max_examples=300)
@given(st.text(alphabet="aZ0:/@._-[]" + "\u00e9 ", max_size=30))
def test_arbitrary_text_parses_or_fails_cleanly(s):
    try:
        ref = R.parse_normalized(s)
    except R.ReferenceError as e:
        assert "\n" not in str(e) and str(e)
    else:
        assert R.parse(str(ref)) == ref
