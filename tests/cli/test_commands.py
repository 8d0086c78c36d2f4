"""ps, inspect, logs, lifecycle verbs, images, cp, pull and errors, against a real
daemon; where docker's CLI formats the same data, its output is the expected one."""
from __future__ import annotations

import json
import os
import re
import tarfile
import sys
import time

import pexpect

from .conftest import HOST, IMAGE, cli_env, docker, exists, refimpl


def _state(name: str) -> str:
    return docker("inspect", "-f", "{{.State.Status}}", name).strip()


def test_ps_table_and_formats_match_docker(image, name):
    assert refimpl("run", "--network=none", "--name", name, "--label", "dscli=1", image, "sh", "-c", "exit 3").rc == 3
    args = ["ps", "-a", "--filter", f"name={name}"]
    fmt = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.Names}}\t{{.State}}\t{{.Labels}}\t{{.Ports}}"
    assert refimpl(*args, "--format", fmt).out == docker(*args, "--format", fmt)
    status = refimpl(*args, "--format", "{{.Status}}").out
    assert re.fullmatch(r"Exited \(3\) .* ago\n", status)
    table = refimpl(*args).out.splitlines()
    # (column widths follow the STATUS text, "Exited (3) 2 seconds ago", so the header is
    # compared by shape: the two CLIs run a moment apart)
    assert re.match(r"CONTAINER ID +IMAGE +COMMAND +CREATED +STATUS +PORTS +NAMES$", table[0])
    assert table[1].endswith(name) and '"sh -c \'exit 3\'"' in table[1]
    assert refimpl(*args, "-q").out == docker(*args, "-q")
    assert refimpl(*args, "-q", "--no-trunc").out == docker(*args, "-q", "--no-trunc")
    assert refimpl("ps", "--filter", f"name={name}", "-q").out == ""


def test_inspect_templates_match_docker(image, name):
    assert refimpl("create", "--network=none", "--name", name, "--label", "a=b", "--label", "c=d", "-e", "X=1",
                   image, "sh").rc == 0
    fmt = "|".join(['{{.State.Status}} {{.Name}} {{.Config.Image}}', '{{json .Config.Labels}}',
                    '{{len .Config.Env}} {{index .Config.Labels "c"}}', '{{.Config.Cmd}} {{.State.Running}}',
                    '{{range $k, $v := .Config.Labels}}{{$k}}={{$v}};{{end}}', '{{.Config.Labels}}',
                    '{{if .State.Running}}up{{else}}down{{end}} {{upper .State.Status}}',
                    '{{json .HostConfig.RestartPolicy}} {{.HostConfig.Memory}} {{.State.Pid}}'])
    mine = refimpl("inspect", "--format", fmt, name).out
    assert mine == docker("inspect", "--format", fmt, name) and "|down CREATED|" in mine
    r = refimpl("inspect", "--format", "{{.NoSuchKey}}", name)
    assert r.rc == 1 and 'map has no entry for key "NoSuchKey"' in r.err
    data = json.loads(refimpl("inspect", name).out)
    assert len(data) == 1 and data[0]["Name"] == "/" + name
    img = json.loads(refimpl("image", "inspect", IMAGE).out)
    assert img[0]["Id"] == json.loads(docker("image", "inspect", IMAGE))[0]["Id"]


def test_inspect_missing_object(daemon):
    r = refimpl("inspect", "dscli-no-such-thing")
    assert (r.rc, r.out.strip()) == (1, "[]")
    assert r.err == "refimpl: Error: No such object: dscli-no-such-thing\n"
    r = refimpl("inspect", "--format", "{{.State", "dscli-no-such-thing")
    assert r.rc == 1 and "Traceback" not in r.err


def test_bad_template_is_a_one_line_error(image, name):
    assert refimpl("create", "--network=none", "--name", name, image).rc == 0
    r = refimpl("inspect", "--format", "{{.Name", name)
    assert r.rc == 1 and r.err.startswith("refimpl: template parsing error:") and r.err.count("\n") == 1


def test_logs(image, name):
    r = refimpl("run", "--network=none", "--name", name, image, "sh", "-c", "echo one; echo two >&2; echo three")
    assert r.rc == 0
    r = refimpl("logs", name)
    assert (r.out, r.err) == ("one\nthree\n", "two\n")
    assert refimpl("logs", "--tail", "1", name).out + refimpl("logs", "--tail", "1", name).err in ("three\n", "two\n")
    ts = refimpl("logs", "-t", name).out.splitlines()
    assert all(re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z ", line) for line in ts) and len(ts) == 2
    assert refimpl("logs", "--since", "2099-01-01T00:00:00Z", name).out == ""


def test_logs_follow(image, name):
    assert refimpl("run", "--network=none", "-d", "--name", name, image, "sh", "-c", "echo a; sleep 0.6; echo b").rc == 0
    t = time.monotonic()
    r = refimpl("logs", "-f", name)
    assert r.out == "a\nb\n" and time.monotonic() - t > 0.3


def test_logs_of_a_tty_container_are_raw(image, name):
    refimpl("create", "--network=none", "-t", "--name", name, image, "echo", "tty-out")
    assert refimpl("start", name).rc == 0
    assert refimpl("wait", name).out == "0\n"
    assert refimpl("logs", name).out == "tty-out\r\n"


def test_lifecycle_verbs(image, names):
    a, b = names(), names()
    assert refimpl("run", "--network=none", "-d", "--name", a, image,
                   "sh", "-c", "trap 'exit 0' TERM; sleep 60 & wait").rc == 0
    assert refimpl("pause", a).out == a + "\n" and _state(a) == "paused"
    assert refimpl("unpause", a).out == a + "\n" and _state(a) == "running"
    top = refimpl("top", a).out.splitlines()
    assert top[0].split()[0] == "UID" and any("sleep 60" in line for line in top[1:])
    assert refimpl("rename", a, b).rc == 0 and exists(b) and not exists(a)
    assert refimpl("restart", "-t", "5", b).out == b + "\n" and _state(b) == "running"
    assert refimpl("kill", "-s", "KILL", b).out == b + "\n"
    assert refimpl("wait", b).out == "137\n"
    assert refimpl("start", b).rc == 0
    t = time.monotonic()
    assert refimpl("stop", "-t", "5", b).out == b + "\n" and _state(b) == "exited"
    assert time.monotonic() - t < 4       # the TERM trap ended it, not the 5 s timeout
    r = refimpl("rm", b, "dscli-no-such-container")
    assert r.rc == 1 and r.out == b + "\n" and "No such container: dscli-no-such-container" in r.err
    assert not exists(b)


def test_rm_of_running_container_needs_force(image, name):
    assert refimpl("run", "--network=none", "-d", "--name", name, image, "sleep", "60").rc == 0
    r = refimpl("rm", name)
    assert r.rc == 1 and r.err.startswith("refimpl: Error response from daemon: ") and exists(name)
    assert refimpl("rm", "-f", name).rc == 0 and not exists(name)


def test_images_tag_history_save_load_rmi(image, tmp_path):
    other = "dscli-busybox:other"
    try:
        assert refimpl("tag", IMAGE, other).rc == 0
        fmt = "{{.Repository}}:{{.Tag}} {{.ID}} {{.Size}}"
        mine = refimpl("images", "--format", fmt, "dscli-busybox").out
        assert mine == docker("images", "--format", fmt, "dscli-busybox") and other in mine
        table = refimpl("images", "dscli-busybox").out.splitlines()
        assert table[0] == docker("images", "dscli-busybox").splitlines()[0]
        assert refimpl("images", "-q", "dscli-busybox").out == docker("images", "-q", "dscli-busybox")
        hist = refimpl("history", IMAGE).out.splitlines()
        assert re.match(r"IMAGE +CREATED +CREATED BY +SIZE +COMMENT", hist[0]) and len(hist) >= 2
        out = tmp_path / "img.tar"
        assert refimpl("save", "-o", str(out), other).rc == 0
        assert "manifest.json" in tarfile.open(out).getnames()
        r = refimpl("rmi", other)
        assert r.rc == 0 and r.out == f"Untagged: {other}\n"
        r = refimpl("load", "-i", str(out))
        assert r.rc == 0 and f"Loaded image: {other}" in r.out
        assert docker("images", "-q", other).strip()
    finally:
        docker("rmi", other, check=False)


def test_cp_both_ways(image, name, tmp_path):
    assert refimpl("run", "--network=none", "-d", "--name", name, image, "sleep", "60").rc == 0
    src = tmp_path / "hello.txt"
    src.write_text("hello from the host\n")
    assert refimpl("cp", str(src), f"{name}:/tmp/").rc == 0
    assert refimpl("cp", str(src), f"{name}:/tmp/renamed.txt").rc == 0
    assert docker("exec", name, "cat", "/tmp/hello.txt", "/tmp/renamed.txt") == "hello from the host\n" * 2
    dest = tmp_path / "out"
    dest.mkdir()
    assert refimpl("cp", f"{name}:/etc/passwd", str(dest)).rc == 0
    assert (dest / "passwd").read_text().startswith("root:")
    assert refimpl("cp", f"{name}:/etc", str(tmp_path / "etc-copy")).rc == 0
    assert {"group", "passwd", "hosts"} <= set(os.listdir(tmp_path / "etc-copy"))
    assert os.readlink(tmp_path / "etc-copy" / "mtab").startswith("/proc")
    r = refimpl("cp", f"{name}:/no/such/file", str(dest))
    assert r.rc == 1 and "Error response from daemon" in r.err


def test_pull_from_local_registry_and_run_pulls_missing_image(registry, name):
    test, fresh = f"{registry}:test", f"{registry}:fresh"
    try:
        r = refimpl("pull", test)
        assert r.rc == 0, r.err
        assert "Digest: sha256:" in r.out and r.out.endswith(test + "\n")
        assert docker("images", "-q", test).strip()
        r = refimpl("run", "--network=none", "--rm", "--name", name, fresh, "cat", "/etc/marker")
        assert r.rc == 0 and r.out == registry.split(":")[1].split("/")[0]
        assert f"Unable to find image '{fresh}' locally" in r.err
        assert re.search(r"^[0-9a-f]{12}: Pull complete$", r.err, re.M) and "Downloading" not in r.err
        r = refimpl("pull", f"{registry}:no-such-tag")
        assert r.rc == 1 and len(r.err.strip().splitlines()) == 1 and "Traceback" not in r.err
    finally:
        docker("rmi", test, fresh, check=False)


def test_pull_shows_progress_bars_on_a_terminal(registry):
    fresh = f"{registry}:fresh"
    try:
        child = pexpect.spawn(sys.executable, ["-m", "refimpl.cli", "-H", HOST, "pull", fresh],
                              env=cli_env(TERM="xterm"), timeout=30, encoding="utf-8", dimensions=(24, 100))
        screen = child.read()
        child.close()
        assert child.exitstatus == 0 and "Downloaded newer image" in screen
        assert "━" in screen and re.search(r"[0-9a-f]{12}: Pull complete", screen)   # rich's bars
    finally:
        docker("rmi", fresh, check=False)


def test_no_daemon_is_a_one_line_error(tmp_path):
    sock = f"unix://{tmp_path}/none.sock"
    for args, rc in ((["ps"], 1), (["run", "busybox"], 125), (["version"], 1)):
        r = refimpl(*args, host=sock)
        assert r.rc == rc and "Traceback" not in r.err
        assert r.err.strip().splitlines()[-1] == \
            f"refimpl: Cannot connect to the Docker daemon at {sock}. Is the docker daemon running?"
    r = refimpl("ps", host="tcp://127.0.0.1:1")
    assert r.rc == 1 and "Cannot connect to the Docker daemon at tcp://127.0.0.1:1" in r.err


def test_docker_host_and_bad_hosts(daemon):
    from .conftest import HOST, cli_env
    r = refimpl("version", "--format", "{{.Server.ApiVersion}}", host=None, env=cli_env(DOCKER_HOST=HOST))
    assert r.rc == 0 and re.fullmatch(r"1\.\d+\n", r.out)
    r = refimpl("ps", host="ftp://x")
    assert r.rc == 1 and r.err.count("\n") == 1 and "unsupported host" in r.err


def test_usage_errors(daemon):
    r = refimpl("ps", "--nope")
    assert r.rc == 125 and r.err == "refimpl: unknown flag: --nope\n"
    r = refimpl("no-such-command")
    assert r.rc == 125 and r.err.count("\n") == 1
    assert refimpl("--version").out.startswith("refimpl version ")
