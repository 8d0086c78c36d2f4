"""Property tests for the runtime's pure parts: spec JSON, users, log lines, frames, times."""
import json
import re
import tempfile

from hypothesis import given, settings, strategies as st

from refimpl.runtime.init import exit_code_for
from refimpl.runtime.shim import JsonLog, LOG_LINE_MAX, frame, rfc3339nano
from refimpl.runtime.spec import ContainerSpec, Mount, NetConfig, resolve_user, signal_number

import pytest

names = st.from_regex(r"[a-z_][a-z0-9_-]{0,15}", fullmatch=True)
ids = st.integers(0, 2**31 - 2)
text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)


@settings(max_examples=50)
@given(args=st.lists(text, min_size=1, max_size=4), env=st.lists(text, max_size=3), tty=st.booleans(),
       mounts=st.lists(st.builds(Mount, target=st.just("/m"), source=text, readonly=st.booleans()), max_size=2),
       net=st.none() | st.builds(NetConfig, ifname=names, address=st.just("10.0.0.2/24")),
       size=st.none() | st.tuples(st.integers(1, 500), st.integers(1, 500)))
def test_spec_json_round_trip(args, env, tty, mounts, net, size):
    spec = ContainerSpec(id="c", lower_dirs=["/l2", "/l1"], upper_dir="/u", work_dir="/w", merged_dir="/m",
                         args=args, env=env, tty=tty, mounts=mounts, net=net, console_size=size)
    assert ContainerSpec.from_json(spec.to_json()) == spec


@settings(max_examples=50)
@given(uid=ids, gid=ids, uname=names, gname=names, numeric=st.booleans())
def test_resolve_user(uid, gid, uname, gname, numeric):
    passwd = f"root:x:0:0:root:/root:/bin/sh\n{uname}:x:{uid}:{gid}::/home/{uname}:/bin/sh\n"
    group = f"root:x:0:\n{gname}:x:{gid + 1}:{uname}\n"
    who = str(uid) if numeric else uname
    got = resolve_user(who, passwd, group)
    if uid == 0 and numeric:                      # uid 0 is root's line, which comes first
        assert got[:2] == (0, 0)
    else:
        assert got == (uid, gid, [gid + 1], f"/home/{uname}")
    assert resolve_user(f"{who}:{gname}", passwd, group)[1] == gid + 1
    assert resolve_user(f"{who}:77", passwd, group)[1] == 77


def test_resolve_user_errors_read_as_dockers():
    with pytest.raises(ValueError, match="^unable to find user bob: no matching entries in passwd file$"):
        resolve_user("bob", "root:x:0:0::/:/bin/sh\n", "")
    with pytest.raises(ValueError, match="^unable to find group staff: no matching entries in group file$"):
        resolve_user("0:staff", "", "")
    assert resolve_user("", "", "") == (0, 0, [], "/")
    assert resolve_user("1234:99", "", "") == (1234, 99, [], "/")


@settings(max_examples=50, deadline=None)
@given(chunks=st.lists(st.binary(max_size=300).map(lambda b: b.replace(b"\r", b"")), max_size=12),
       stream=st.sampled_from(["stdout", "stderr"]))
def test_json_log_reassembles_any_chunking(chunks, stream):
    with tempfile.NamedTemporaryFile() as f:
        log = JsonLog(f.name)
        for c in chunks:
            log.write(stream, c)
        log.close()
        entries = [json.loads(line) for line in open(f.name)]
    data = b"".join(chunks).decode("utf-8", "replace")
    assert all(e["stream"] == stream for e in entries)
    joined = "".join(e["log"] for e in entries)
    assert joined == data
    for e in entries[:-1]:
        assert e["log"].endswith("\n") or len(e["log"].encode()) >= LOG_LINE_MAX - 3


def test_json_log_splits_long_lines_like_docker(tmp_path):
    log = JsonLog(str(tmp_path / "l"))
    log.write("stdout", b"a" * (LOG_LINE_MAX + 5) + b"\n")
    log.close()
    entries = [json.loads(line)["log"] for line in open(tmp_path / "l")]
    assert entries == ["a" * LOG_LINE_MAX, "aaaaa\n"]


@given(ns=st.integers(0, 2**62))
def test_rfc3339nano(ns):
    s = rfc3339nano(ns)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{0,8}[1-9])?Z", s)
    frac = s[20:-1] if "." in s else ""
    assert int((frac + "000000000")[:9]) == ns % 10**9


@given(stream=st.sampled_from([1, 2]), data=st.binary(max_size=500))
def test_stdcopy_frame(stream, data):
    f = frame(stream, data)
    assert f[0] == stream and f[1:4] == b"\0\0\0" and int.from_bytes(f[4:8], "big") == len(data)
    assert f[8:] == data


@pytest.mark.parametrize("msg,code", [
    ('exec: "x": executable file not found in $PATH', 127),
    ('exec: "/x": stat /x: no such file or directory', 127),
    ('exec: "/x": permission denied', 126), ('exec: "/x": is a directory', 126),
    ("unable to find user x: no matching entries in passwd file", 128)])
def test_exit_code_for_start_errors(msg, code):
    assert exit_code_for(msg) == code


def test_signal_numbers():
    assert signal_number("SIGTERM") == signal_number("TERM") == signal_number("15") == 15
    for bad in ("SIGNOPE", "0", "99", ""):
        with pytest.raises(ValueError, match="invalid signal"):
            signal_number(bad)
