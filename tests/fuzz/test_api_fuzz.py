"""A Hypothesis-driven fuzz run over refimpld's Engine API routes.

Every route refimpld serves is requested with every method, under every kind
of version prefix, with ids and names that exist, that do not, and that are
strange (slashes, `..`, percent escapes, 10 kB); query values of every type
(huge and negative numbers, JSON that is not filters, empty, unicode); bodies
of the wrong shape (JSON of any type, create bodies with fields of the wrong
type, malformed JSON, bytes) and broken framing (a Content-Length that lies or
is not a number, garbage chunked encoding, broken request lines).

The promise under test: every answer is below 500 (501 "not implemented" and
Docker's own 500 for unpausing a container that is not paused aside),
every error answer is `{"message": one line}` as application/json, and the
daemon's log holds no traceback. Routes that block by design (wait, attach,
logs with follow, events) are left out; names that would reach a registry are
kept on 127.0.0.1 (the daemon's default registry is a local one and /auth is
always pointed at it).
"""
from __future__ import annotations

import json
import os
import re
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .conftest import log_problems
from .rawhttp import exchange, request

EXAMPLES = int(os.environ.get("DOCKSPEC_FUZZ_EXAMPLES", "1100"))   # a deeper run: 10000
# CI runs the same 1100 requests every time (a failure is reproducible, never a flake);
# DOCKSPEC_FUZZ_RANDOM=1 explores new ones on each run.
RANDOM = os.environ.get("DOCKSPEC_FUZZ_RANDOM") == "1"
RUNS = {"requests": 0, "statuses": {}}
LIVE: list[str] = []        # ids and names the run has seen created: later requests aim at them

ROUTES = [   # (the route's method, its path): the method is right most of the time
    ("GET", "/_ping"), ("HEAD", "/_ping"), ("GET", "/version"), ("GET", "/info"), ("POST", "/auth"),
    ("POST", "/images/create"), ("GET", "/images/json"), ("GET", "/images/get"), ("POST", "/images/load"),
    ("GET", "/images/{name}/json"), ("GET", "/images/{name}/history"), ("GET", "/images/{name}/get"),
    ("POST", "/images/{name}/tag"), ("POST", "/images/{name}/push"), ("DELETE", "/images/{name}"),
    ("POST", "/containers/create"), ("POST", "/containers/create"), ("POST", "/containers/create"),
    ("POST", "/containers/prune"), ("GET", "/containers/json"), ("GET", "/containers/{id}/json"),
    ("POST", "/containers/{id}/start"), ("POST", "/containers/{id}/stop"), ("POST", "/containers/{id}/restart"),
    ("POST", "/containers/{id}/kill"), ("POST", "/containers/{id}/pause"), ("POST", "/containers/{id}/unpause"),
    ("DELETE", "/containers/{id}"), ("POST", "/containers/{id}/rename"), ("POST", "/containers/{id}/resize"),
    ("GET", "/containers/{id}/top"), ("GET", "/containers/{id}/archive"), ("HEAD", "/containers/{id}/archive"),
    ("GET", "/containers/{id}/logs"), ("GET", "/networks"), ("GET", "/networks/{id}"), ("GET", "/nope"),
    ("GET", "/"), ("POST", "/containers"), ("GET", "/images"),
]
QUERY_KEYS = ["all", "limit", "size", "filters", "force", "t", "signal", "name", "h", "w", "ps_args",
              "tail", "since", "until", "stdout", "stderr", "timestamps", "path", "fromImage", "fromSrc",
              "tag", "repo", "names", "noprune", "platform", "quiet", "digests", "follow"]

texts = st.text(max_size=40)
weird = st.sampled_from(["..", "../..", "%2e%2e", "a/b", "/", "", " ", "%", "%zz", "\u00e9", "\x7f",
                         "a" * 10_000, "sha256:" + "0" * 64, "sha256:xyz", "-1", "busybox:latest",
                         "busybox", "docker.io/library/busybox", "nonexistent:tag", "UPPER", "x@sha256:1"])
numbers = st.one_of(st.integers(-2 ** 70, 2 ** 70), st.floats(allow_nan=True).map(str), st.just("1e400"))
json_values = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(-2 ** 70, 2 ** 70),
                                     st.floats(allow_nan=False), st.text(max_size=20)),
                           lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                   st.dictionaries(st.text(max_size=10), inner, max_size=4)),
                           max_leaves=12)
query_values = st.one_of(texts, weird, numbers.map(str), st.sampled_from(["1", "0", "true", "false", ""]),
                         json_values.map(json.dumps))


def local_name(name: str) -> bool:
    """A name whose first component could be read as a registry host would leave this machine."""
    first = name.split("/", 1)[0] if "/" in name else ""
    return not any(c in first for c in ".:") and first != "localhost"


CREATE_FIELDS = {
    "Image": st.one_of(st.just("busybox"), texts, json_values),
    "Cmd": st.one_of(st.just(["true"]), st.lists(texts, max_size=3), json_values),
    "Entrypoint": st.one_of(st.none(), st.lists(texts, max_size=2), json_values),
    "Env": st.one_of(st.lists(texts, max_size=3), json_values),
    "WorkingDir": st.one_of(texts, json_values), "User": st.one_of(texts, json_values),
    "Labels": st.one_of(st.dictionaries(texts, texts, max_size=3), json_values),
    "Tty": json_values, "OpenStdin": json_values, "StopSignal": st.one_of(texts, json_values),
    "StopTimeout": json_values, "Hostname": st.one_of(texts, json_values),
    "ExposedPorts": st.one_of(st.dictionaries(texts, st.just({}), max_size=2), json_values),
    "HostConfig": st.fixed_dictionaries({}, optional={
        "NetworkMode": st.one_of(st.sampled_from(["none", "host", "bridge", "default", "container:x"]), texts,
                                 json_values),
        "Memory": json_values, "CpuShares": json_values, "AutoRemove": json_values,
        "RestartPolicy": st.one_of(st.fixed_dictionaries({"Name": st.sampled_from(["no", "on-failure", "x"]),
                                                          "MaximumRetryCount": json_values}), json_values),
        "PortBindings": st.one_of(st.dictionaries(texts, json_values, max_size=2), json_values)}),
}
VALID_CREATE = {"Image": "busybox", "Cmd": ["true"], "HostConfig": {"NetworkMode": "none"}}
# A valid body with one or two fields replaced: most are refused, some create a container.
create_bodies = st.lists(st.sampled_from(sorted(CREATE_FIELDS)), max_size=2, unique=True).flatmap(
    lambda keys: st.fixed_dictionaries({k: CREATE_FIELDS[k] for k in keys})).map(lambda d: {**VALID_CREATE, **d})

bodies = st.one_of(
    st.none(),
    json_values.map(lambda v: json.dumps(v).encode()),
    create_bodies.map(lambda v: json.dumps(v).encode()),
    st.sampled_from([b"{", b"[1,", b"nul", b"\xff\xfe", b'{"a": NaN}', b"{}" * 1000, b" ", b"\x00" * 64,
                     json.dumps({"Image": "busybox", "Cmd": ["true"], "HostConfig": {"NetworkMode": "none"}}).encode(),
                     b'{"username": 1}', b'"x' + b"y" * 100_000 + b'"']),
    st.binary(max_size=200),
)


@st.composite
def fuzzed_request(draw, ids: list[str]) -> bytes:
    method, path = draw(st.sampled_from(ROUTES))
    if draw(st.integers(0, 9)) == 0:
        method = draw(st.sampled_from(["GET", "POST", "DELETE", "HEAD", "PUT", "OPTIONS", "PATCH"]))
    version = draw(st.sampled_from(["", "/v1.44"] * 4 + ["/v1.24", "/v1.40", "/v1.12", "/v9.99", "/v1.4x",
                                                         "/vabc", "/v01.044", "/v999999999999999999999.1"]))
    live = st.integers(0, 1 << 20).map(lambda i: LIVE[i % len(LIVE)] if LIVE else ids[0])
    value = draw(st.one_of(st.sampled_from(ids), live, live, texts, weird))
    if "/images/{name}/push" in path:
        value = value if local_name(value) else "busybox"
    path = path.replace("{id}", _escape(value, draw)).replace("{name}", _escape(value, draw))
    query = draw(st.dictionaries(st.sampled_from(QUERY_KEYS), query_values, max_size=4))
    query.pop("follow", None)
    if "fromImage" in query and not local_name(query["fromImage"]):
        query["fromImage"] = "busybox"
    if "tag" in query and "/" in query["tag"]:
        query["tag"] = query["tag"].replace("/", "")
    target = version + path + ("?" + "&".join(f"{_q(k)}={_q(v)}" for k, v in query.items()) if query else "")
    body = draw(st.one_of(create_bodies.map(lambda v: json.dumps(v).encode()), bodies)
                if path == "/containers/create" else bodies)
    if path == "/auth":          # never let /auth reach a host other than the local registry
        try:
            doc = json.loads(body) if body is not None else None
        except ValueError:
            doc = [None]         # not JSON: refused before any registry is asked
        if isinstance(doc, dict) or not doc:    # an empty body means Docker Hub
            doc = {**(doc or {}), "serveraddress": ids[-1]}
            body = json.dumps(doc).encode()
    headers = draw(st.dictionaries(st.sampled_from(["Content-Type", "X-Registry-Auth", "Expect", "Accept"]),
                                   st.one_of(texts.map(_header_safe), st.sampled_from(
                                       ["application/json", "application/x-tar", "100-continue", "e30="])),
                                   max_size=2))
    framing = draw(st.sampled_from(["auto"] * 8 + ["short", "long", "nan", "negative", "chunked-bad", "two"]))
    return _frame(method, target, headers, body, framing)


def _frame(method, target, headers, body, framing) -> bytes:
    body = body or b""
    if framing == "auto":
        return request(method, target, headers, body if body or method in ("POST", "PUT") else None)
    if framing == "short":
        return request(method, target, headers, body, str(max(len(body) - 3, 0)))
    if framing == "long":
        return request(method, target, headers, body, str(len(body) + 100))
    if framing == "nan":
        return request(method, target, headers, body, "12abc")
    if framing == "negative":
        return request(method, target, headers, body, "-5")
    if framing == "two":
        return request(method, target, {**headers, "Content-Length": "1"}, body, str(len(body)))
    return request(method, target, {**headers, "Transfer-Encoding": "chunked"}, b"zz\r\n" + body, None)


def _escape(value: str, draw) -> str:
    return value.replace("?", "%3F").replace("#", "%23") if draw(st.booleans()) else _q(value)


def _q(text: str) -> str:
    from urllib.parse import quote
    return quote(text, safe="/:@")


def _header_safe(text: str) -> str:
    return "".join(c for c in text if c in string.printable and c not in "\r\n")


# Requests that break HTTP itself, sent as they are.
MALFORMED = [
    b"GARBAGE\r\n\r\n", b"GET\r\n\r\n", b"GET / HTTP/9.9\r\nHost: x\r\n\r\n", b"\r\n\r\n\r\n",
    b"GET /_ping HTTP/1.1\r\n\r\n",                                   # no Host
    b"GET /_ping HTTP/1.0\r\n\r\n",
    b"GET http://x/_ping HTTP/1.1\r\nHost: x\r\n\r\n",                  # absolute form
    b"GET /_ping HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
    b"GET /_ping HTTP/1.1\r\nHost: x\r\nX: a\x00b\r\n\r\n",
    b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",          # huge request line
    b"GET /_ping HTTP/1.1\r\nHost: x\r\n" + b"X-Big: " + b"b" * 70_000 + b"\r\n\r\n",
    b"POST /containers/create HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
    b"POST /containers/create HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\nxx",
    b"POST /containers/create HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{}\r\n0\r\n\r\n",
    b"POST /containers/create HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n{}",
    b"POST /images/load HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nnot a tar!",
    b"POST /images/load HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n400\r\n" + b"\0" * 1024
    + b"\r\n0\r\n\r\n",
    b"GET /_ping HTTP/1.1\r\nHost: x\r\n\r\nGET /_ping HTTP/1.1\r\nHost: x\r\n\r\n",   # pipelined
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",                                 # a TLS hello
    request("GET", "/images/a%0Ab/json"), request("GET", "/nope%0D%0AX-Injected:%201"),   # line breaks
    request("DELETE", "/containers/a%0Ab"), request("POST", "/v1.44/images/x%0A/tag?repo=y"),
]


def docker_500(line: str, answer) -> bool:
    """The one 500 that is Docker's own answer: unpause of a container that is not paused
    (moby daemon/unpause.go returns a plain error; dockerd 20.10 answers 500)."""
    return (answer.status == 500 and "/unpause" in line
            and json.loads(answer.body).get("message", "").endswith(" is not paused"))


def check(daemon, raw: bytes) -> None:
    answer = exchange(str(daemon.sock), raw)
    RUNS["requests"] += 1
    RUNS["statuses"][answer.status] = RUNS["statuses"].get(answer.status, 0) + 1
    line = raw[:200].decode("latin-1").splitlines()[0] if raw else ""
    if answer.status == 201 and b'"Id"' in answer.body:
        LIVE.append(json.loads(answer.body)["Id"])
        del LIVE[:-20]
    if answer.status is None:
        return          # the server closed the connection: allowed for framing it could not read
    assert answer.status < 500 or answer.status == 501 or docker_500(line, answer), \
        f"{answer.status} for {line!r}: {answer.body[:300]!r}"
    head = raw.split(b" ", 1)[0] == b"HEAD"
    if answer.status >= 400 and not head:
        assert answer.headers.get("content-type") == "application/json", (line, answer.raw[:300])
        message = json.loads(answer.body)["message"]
        assert message and "\n" not in message and "Traceback" not in message, (line, message)


@pytest.fixture(scope="module")
def ids(refimpld):
    """Three containers that exist when the run starts (the fuzzer may remove them), and
    the local registry (last, for /auth)."""
    out = []
    for i in range(3):
        status, body, _ = refimpld.api(
            "POST", f"/v1.44/containers/create?name=fuzz{i}",
            json.dumps({"Image": "busybox", "Cmd": ["true"], "HostConfig": {"NetworkMode": "none"}}).encode(),
            {"Content-Type": "application/json"})
        assert status == 201, body
        out += [json.loads(body)["Id"], f"fuzz{i}"]
    return out + ["bridge", "none", "busybox", refimpld.registry]


def test_malformed_http(refimpld):
    for raw in MALFORMED:
        check(refimpld, raw)
    status, _, _ = refimpld.api("GET", "/_ping")
    assert status == 200


def test_fuzz_routes(refimpld, ids):
    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=not RANDOM,
              suppress_health_check=list(HealthCheck))
    @given(st.data())
    def one(data):
        check(refimpld, data.draw(fuzzed_request(ids)))

    before = RUNS["requests"]
    one()
    print(f"fuzz: {RUNS['requests'] - before} requests, answers by status {RUNS['statuses']}")
    assert RUNS["requests"] - before >= min(1000, EXAMPLES), RUNS
    assert refimpld.api("GET", "/_ping")[0] == 200


def test_no_traceback_in_the_log(refimpld):
    problems = log_problems(refimpld)
    assert not problems, "\n".join(problems[:20])
