"""Property tests for the pure half of containers: create bodies, names, times, filters, logs."""

from __future__ import annotations

import json
import time

import pytest
from hypothesis import given, settings, strategies as st

from refimpl.engine import container_config as cc
from refimpl.engine import logs
from refimpl.engine.errors import InvalidParameter

IMAGE = {"config": {"Env": ["PATH=/bin", "A=image"], "Cmd": ["sh"], "WorkingDir": "/w",
                    "Labels": {"from": "image", "both": "image"}}}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8)
fields = st.sampled_from(sorted(cc.CONFIG_FIELDS))
host_fields = st.sampled_from(sorted(cc.HOST_FIELDS))


@settings(max_examples=100)
@given(st.dictionaries(fields, json_values, max_size=4), st.dictionaries(host_fields, json_values, max_size=3))
def test_any_body_is_accepted_or_refused_with_one_line(config, host):
    body = dict(config, Image="busybox", HostConfig=host)
    try:
        cfg, hc = cc.merge(cc.parse_body(json.dumps(body).encode()), IMAGE)
    except InvalidParameter as e:
        assert str(e) and "\n" not in str(e)
        return
    assert isinstance(cfg["Env"], list) and (cfg["Entrypoint"] or []) + (cfg["Cmd"] or [])
    # a predefined network or a user network's name (whether it exists is checked at create)
    assert hc["NetworkMode"] in ("bridge", "host", "none") or (
        isinstance(hc["NetworkMode"], str) and hc["NetworkMode"] and not hc["NetworkMode"].startswith("container:"))
    assert hc["RestartPolicy"]["Name"] in ("no", "always", "unless-stopped", "on-failure")


@given(st.binary(max_size=40))
def test_garbage_bodies_are_400(raw):
    try:
        cc.parse_body(raw)
    except InvalidParameter as e:
        assert "\n" not in str(e)


def test_wrong_types_read_like_go():
    with pytest.raises(InvalidParameter, match="^json: cannot unmarshal string into Go struct field "
                                               "Config.Tty of type bool$"):
        cc.parse_body(b'{"Tty": "yes"}')
    with pytest.raises(InvalidParameter, match="HostConfig.RestartPolicy.MaximumRetryCount of type int64"):
        cc.parse_body(b'{"HostConfig": {"RestartPolicy": {"MaximumRetryCount": "3"}}}')
    with pytest.raises(InvalidParameter, match="Config.Env of type \\[\\]string"):
        cc.parse_body(b'{"Env": "A=1"}')
    assert cc.parse_body(b'{"Cmd": "echo hi"}')["Cmd"] == "echo hi"       # strslice takes a string


def test_merge_follows_docker():
    cfg, _ = cc.merge({"Image": "x", "Env": ["A=user", "B=2"], "Labels": {"both": "user"}}, IMAGE)
    assert cfg["Env"] == ["A=user", "B=2", "PATH=/bin"]
    assert cfg["Cmd"] == ["sh"] and cfg["WorkingDir"] == "/w"
    assert cfg["Labels"] == {"from": "image", "both": "user"}
    cfg, _ = cc.merge({"Image": "x", "Entrypoint": ["top"]}, IMAGE)
    assert cfg["Entrypoint"] == ["top"] and cfg["Cmd"] is None          # an entrypoint drops image Cmd
    with pytest.raises(InvalidParameter, match="No command specified"):
        cc.merge({"Image": "x"}, {"config": {}})
    with pytest.raises(InvalidParameter, match="AutoRemove"):
        cc.merge({"Image": "x", "HostConfig": {"AutoRemove": True, "RestartPolicy": {"Name": "always"}}},
                 IMAGE)


@given(st.text(max_size=20))
def test_names_follow_the_grammar(name):
    ok = len(name) >= 2 and name[0].isascii() and name[0].isalnum() and \
        all(c.isascii() and (c.isalnum() or c in "_.-") for c in name[1:])
    try:
        assert cc.check_name(name) == "/" + name and ok
    except InvalidParameter:
        assert not ok or name.startswith("/")


@given(st.integers(10**9, 2**62))
def test_time_round_trip_and_status(ns):
    secs, frac = divmod(ns, 10**9)
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{frac:09d}Z"
    assert abs(cc.parse_time(text) - ns / 1e9) < 1e-6
    assert cc.status_text("exited", 3, text, text, ns / 1e9 + 5.5).startswith("Exited (3) 5 seconds ago")
    assert cc.status_text("running", 0, text, cc.ZERO_TIME, ns / 1e9 + 61) == "Up About a minute"


def test_human_durations():
    assert [cc.human_duration(s) for s in (0.5, 1, 59, 60, 3599, 3600, 86400 * 3, 86400 * 20)] == \
        ["Less than a second", "1 second", "59 seconds", "About a minute", "59 minutes", "About an hour",
         "3 days", "2 weeks"]


def test_filters():
    assert cc.parse_filters('{"label": {"a=b": true}, "name": ["x"]}') == {"label": ["a=b"], "name": ["x"]}
    for bad in ('{"bogus": ["x"]}', '{"status": ["sleepy"]}', '{"exited": ["x"]}', "[1]", "{"):
        with pytest.raises(InvalidParameter):
            cc.parse_filters(bad)
    assert cc.label_matches({"a": "b"}, "a") and cc.label_matches({"a": "b"}, "a=b")
    assert not cc.label_matches({"a": "b"}, "a=c")


entries = st.lists(st.builds(logs.Entry, st.sampled_from(["stdout", "stderr"]), st.binary(max_size=10),
                             st.just("2024-01-01T00:00:00.5Z")), max_size=12)


@given(entries, st.booleans(), st.booleans(), st.none() | st.integers(0, 15))
def test_log_selection(es, out, err, tail):
    got = logs.select(es, stdout=out, stderr=err, tail=tail)
    wanted = [e for e in es if (e.stream == "stdout" and out) or (e.stream == "stderr" and err)]
    assert got == (wanted if tail is None else wanted[len(wanted) - tail:] if tail else [])


@given(entries)
def test_log_frames_decode(es):
    raw = b"".join(logs.render(e, tty=False) for e in es)
    back = []
    while raw:
        size = int.from_bytes(raw[4:8], "big")
        back.append(("stderr" if raw[0] == 2 else "stdout", raw[8:8 + size]))
        raw = raw[8 + size:]
    assert back == [(e.stream, e.data) for e in es]


def test_log_lines():
    line = json.dumps({"log": "hi\n", "stream": "stderr", "time": "2024-01-01T00:00:00Z"}).encode()
    assert logs.parse_line(line) == logs.Entry("stderr", b"hi\n", "2024-01-01T00:00:00Z")
    assert logs.parse_line(b'{"log": ') is None
    assert logs.render(logs.parse_line(line), tty=True, timestamps=True) == b"2024-01-01T00:00:00Z hi\n"


def test_security_opts_as_dockerd_checks_them():
    from refimpl.engine import container_config as cc
    assert cc.security_opts(None) is None
    for ok in (["no-new-privileges"], ["no-new-privileges=true"], ["no-new-privileges:false"],
               ["seccomp=unconfined", "apparmor=unconfined", "label=disable"]):
        assert cc.security_opts(ok) == ok
    for bad, msg in ((["nonsense"], "invalid --security-opt 1"), (["no-new-privileges=maybe"], "invalid --security-opt 2"),
                     (["seccomp={}"], "not supported by refimpl"), (["apparmor=docker-default"], "not supported")):
        with pytest.raises(cc.InvalidParameter, match=msg):
            cc.security_opts(bad)
    assert cc.no_new_privileges(["no-new-privileges"])
    assert cc.no_new_privileges(["no-new-privileges:true"])
    assert not cc.no_new_privileges(["no-new-privileges=true", "no-new-privileges=false"])
    assert not cc.no_new_privileges(None)
