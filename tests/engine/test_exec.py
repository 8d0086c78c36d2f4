"""docker exec against refimpld: output and exit codes, stdin, a TTY, the container's user,
namespaces and capabilities, and the errors."""
from __future__ import annotations

import re

import pytest

from .test_containers_helpers import DOCKER, Daemon, daemon_fixture


@pytest.fixture(scope="module")
def d():
    yield from daemon_fixture()


@pytest.fixture(scope="module")
def box(d: Daemon):
    d.out("run", "-d", "--name", "ex1", "-e", "FROM_RUN=yes", "-w", "/tmp", "busybox", "sleep", "600")
    yield "ex1"
    d.docker("rm", "-f", "ex1")


def test_exec_output_exit_code_and_environment(d: Daemon, box):
    r = d.docker("exec", box, "sh", "-c", "echo out; echo err >&2; echo $FROM_RUN $EXTRA; pwd; exit 7",
                 "-e", "EXTRA=1")
    assert r.returncode == 7, r
    assert r.stdout.splitlines()[0] == "out" and "err" in r.stderr
    r = d.docker("exec", "-e", "EXTRA=set", box, "sh", "-c", "echo $FROM_RUN $EXTRA; pwd")
    assert r.returncode == 0 and r.stdout.split() == ["yes", "set", "/tmp"], r


def test_exec_joins_the_container_namespaces_with_default_capabilities(d: Daemon, box):
    ps = d.out("exec", box, "ps", "-o", "pid,args")
    assert re.search(r"^\s*1\s+sleep 600", ps, re.M), ps            # the container's PID namespace
    assert d.out("exec", box, "hostname") == d.inspect(box)["Config"]["Hostname"]
    r = d.docker("exec", box, "ip", "link", "add", "dummy0", "type", "dummy")
    assert r.returncode != 0                                           # no CAP_NET_ADMIN
    assert d.out("exec", "-u", "65534", box, "id", "-u") == "65534"


def test_exec_with_stdin_and_with_a_tty(d: Daemon, box):
    r = d.docker("exec", "-i", box, "sh", "-c", "wc -l", input="a\nb\nc\n")
    assert r.returncode == 0 and r.stdout.strip() == "3", r
    pexpect = pytest.importorskip("pexpect")
    p = pexpect.spawn(DOCKER, ["exec", "-i", "-t", box, "sh"], env=d.env, timeout=15, encoding="utf-8",
                      dimensions=(33, 101))
    p.expect("# ")
    p.sendline("stty size; echo $((6*7)); exit 4")
    p.expect("33 101")
    p.expect("42")
    p.expect(pexpect.EOF)
    p.close()
    assert p.exitstatus == 4


def test_exec_errors(d: Daemon, box):
    r = d.docker("exec", box, "no-such-command")
    assert r.returncode in (126, 127) and "executable file not found" in r.stdout + r.stderr, r
    d.out("create", "--name", "ex-stopped", "busybox", "true")
    try:
        r = d.docker("exec", "ex-stopped", "true")
        assert r.returncode != 0 and "is not running" in r.stderr, r
    finally:
        d.docker("rm", "ex-stopped")
    r = d.docker("exec", "no-such-container", "true")
    assert r.returncode != 0 and "No such container" in r.stderr, r
    status, body = d.api("POST", f"/containers/{box}/exec", raw=b"{nope")[:2]
    assert status == 400, body
