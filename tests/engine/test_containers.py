"""Containers in refimpld, driven by the real docker CLI (and raw API calls for bad input).

One daemon serves the whole module; each test names its containers after itself.
"""

from __future__ import annotations

import os
import re
import socket
import time

import pytest

from refimpl.runtime.cgroups import Cgroup

from .test_containers_helpers import DOCKER, Daemon, daemon_fixture, why_not

pytestmark = pytest.mark.skipif(why_not() is not None, reason=why_not() or "")


@pytest.fixture(scope="module")
def d():
    yield from daemon_fixture()


def test_run_interactive_tty_then_start_again(d: Daemon):
    pexpect = pytest.importorskip("pexpect")
    p = pexpect.spawn(DOCKER, ["run", "-i", "-t", "--name", "it1", "busybox", "sh"], env=d.env, timeout=15,
                      encoding="utf-8", dimensions=(30, 100))
    p.expect("# ")
    p.sendline("echo $((6*7)); stty size")
    p.expect("42")
    p.expect("30 100")
    p.expect("# ")
    p.sendline("exit 3")
    p.expect(pexpect.EOF)
    p.close()
    assert p.exitstatus == 3
    assert re.match(r"Exited \(3\) ", d.out("ps", "-a", "--filter", "name=it1", "--format", "{{.Status}}"))
    p = pexpect.spawn(DOCKER, ["start", "-a", "-i", "it1"], env=d.env, timeout=15, encoding="utf-8")
    p.expect("# ")
    p.sendline("echo again; exit 4")
    p.expect("again")
    p.expect(pexpect.EOF)
    p.close()
    assert p.exitstatus == 4
    assert d.docker("rm", "it1").returncode == 0
    assert d.docker("inspect", "it1").returncode == 1


def test_exit_codes_of_failed_starts(d: Daemon):
    r = d.docker("run", "--network", "none", "busybox", "nosuchcommand")
    assert r.returncode == 127 and "executable file not found" in r.stderr
    r = d.docker("run", "--network", "none", "busybox", "/etc")
    assert r.returncode == 126 and "is a directory" in r.stderr
    r = d.docker("run", "--network", "none", "busybox", "/etc/passwd")
    assert r.returncode == 126 and "permission denied" in r.stderr
    r = d.docker("run", "--network", "none", "--memory", "1k", "busybox", "true")
    assert r.returncode == 125 and "Minimum memory limit" in r.stderr
    r = d.docker("run", "--network", "none", "busybox", "sh", "-c", "exit 42")
    assert r.returncode == 42


def test_piped_stdin_and_separate_streams(d: Daemon):
    r = d.docker("run", "-i", "--rm", "--network", "none", "busybox", "sh", "-c",
                 "cat; echo done; echo oops >&2", input="a\nb\n")
    assert (r.returncode, r.stdout, r.stderr) == (0, "a\nb\ndone\n", "oops\n")


def test_detached_stop_sigterm_then_sigkill(d: Daemon):
    cid = d.out("run", "-d", "--name", "stop1", "--network", "none", "busybox", "sleep", "60")
    assert re.fullmatch(r"[0-9a-f]{64}", cid)
    t = time.monotonic()
    d.out("stop", "-t", "1", "stop1")          # sleep as PID 1 ignores SIGTERM
    assert 0.9 < time.monotonic() - t < 5
    st = d.inspect("stop1")["State"]
    assert (st["Status"], st["ExitCode"], st["Running"]) == ("exited", 137, False)
    d.out("run", "-d", "--name", "stop2", "--network", "none", "busybox", "sh", "-c",
          "trap 'exit 7' TERM; while true; do sleep 0.1; done")
    time.sleep(0.3)
    t = time.monotonic()
    d.out("stop", "-t", "10", "stop2")
    assert time.monotonic() - t < 3
    assert d.inspect("stop2")["State"]["ExitCode"] == 7
    assert d.api("POST", "/containers/stop2/stop")[0] == 304


def test_kill_with_a_signal_and_wait(d: Daemon):
    d.out("run", "-d", "--name", "kill1", "--network", "none", "busybox", "sh", "-c",
          "trap 'exit 9' HUP; while true; do sleep 0.1; done")
    time.sleep(0.3)
    d.out("kill", "-s", "HUP", "kill1")
    assert d.out("wait", "kill1") == "9"
    r = d.docker("kill", "kill1")
    assert r.returncode == 1 and "is not running" in r.stderr
    assert d.api("POST", "/containers/kill1/kill?signal=NOPE")[0] == 400


def test_restart_pause_unpause(d: Daemon):
    d.out("run", "-d", "--name", "rp1", "--network", "none", "busybox", "sleep", "60")
    before = d.inspect("rp1")["State"]
    d.out("pause", "rp1")
    assert d.inspect("rp1")["State"]["Status"] == "paused"
    assert "(Paused)" in d.out("ps", "--filter", "name=rp1", "--format", "{{.Status}}")
    assert d.docker("pause", "rp1").returncode == 1
    d.out("unpause", "rp1")
    assert d.inspect("rp1")["State"]["Status"] == "running"
    d.out("restart", "-t", "0", "rp1")
    after = d.inspect("rp1")["State"]
    assert after["Status"] == "running" and after["Pid"] != before["Pid"]
    assert after["StartedAt"] > before["StartedAt"]
    d.out("rm", "-f", "rp1")


def test_logs_tail_timestamps_and_streams(d: Daemon):
    d.out("run", "--name", "logs1", "--network", "none", "busybox", "sh", "-c",
          "for i in 1 2 3 4; do echo line$i; done; echo bad >&2")
    r = d.docker("logs", "logs1")
    assert (r.stdout, r.stderr) == ("line1\nline2\nline3\nline4\n", "bad\n")
    r = d.docker("logs", "--tail", "2", "logs1")
    assert (r.stdout, r.stderr) == ("line4\n", "bad\n")
    stamped = d.out("logs", "-t", "logs1").splitlines()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z line1", stamped[0])
    d.out("run", "-t", "--name", "logs2", "--network", "none", "busybox", "echo", "tty")
    assert d.docker("logs", "logs2").stdout == "tty\n"     # "tty\r\n" from the pty, read as text
    d.out("run", "-d", "--name", "logs3", "--network", "none", "busybox", "sh", "-c",
          "echo first; sleep 1; echo second")
    r = d.docker("logs", "-f", "logs3", timeout=10)
    assert r.stdout == "first\nsecond\n"


def test_ps_filters_and_shape(d: Daemon):
    d.out("create", "--name", "ps-created", "--label", "team=a", "--network", "none", "busybox", "true")
    d.docker("run", "--name", "ps-exited", "--label", "team=b", "--network", "none", "busybox", "sh", "-c",
          "exit 5")
    d.out("run", "-d", "--name", "ps-running", "--label", "team=a", "--network", "none", "busybox",
          "sleep", "60")
    names = lambda *f: set(d.out("ps", "-a", *f, "--format", "{{.Names}}").split())  # noqa: E731
    assert "ps-running" in set(d.out("ps", "--format", "{{.Names}}").split())
    assert "ps-exited" not in set(d.out("ps", "--format", "{{.Names}}").split())
    assert names("--filter", "label=team=a") == {"ps-created", "ps-running"}
    assert names("--filter", "label=team") >= {"ps-created", "ps-running", "ps-exited"}
    assert names("--filter", "status=created", "--filter", "name=ps-") == {"ps-created"}
    assert names("--filter", "exited=5") >= {"ps-exited"} and "ps-running" not in names("--filter", "exited=5")
    assert names("--filter", "ancestor=busybox", "--filter", "name=ps-") == \
        {"ps-created", "ps-exited", "ps-running"}
    assert names("--filter", "since=ps-created", "--filter", "name=ps-") == {"ps-exited", "ps-running"}
    assert names("--filter", "before=ps-exited", "--filter", "name=ps-") == {"ps-created"}
    assert names("--filter", "network=none", "--filter", "name=ps-") == {"ps-created", "ps-exited",
                                                                        "ps-running"}
    assert names("--filter", "network=bridge", "--filter", "name=ps-") == set()
    rid = d.inspect("ps-running")["Id"]
    assert names("--filter", f"id={rid[:10]}") == {"ps-running"}
    status = dict(line.split(" ", 1) for line in d.out("ps", "-a", "--filter", "name=ps-", "--format",
                                                     "{{.Names}} {{.Status}}").splitlines())
    assert status["ps-created"] == "Created"
    assert re.fullmatch(r"Exited \(5\) .* ago", status["ps-exited"])
    assert status["ps-running"].startswith("Up ")
    assert d.docker("ps", "--filter", "status=bogus").returncode == 1
    code, rows = d.api("GET", "/containers/json?all=1&limit=1")
    assert code == 200 and len(rows) == 1
    row = next(r for r in d.api("GET", "/containers/json")[1] if r["Names"] == ["/ps-running"])
    assert row["Image"] == "busybox" and row["ImageID"] == d.image_id and row["Command"] == "sleep 60"
    assert row["State"] == "running" and isinstance(row["Created"], int)
    d.out("rm", "-f", "ps-running", "ps-exited", "ps-created")


def test_inspect_fields_and_limits(d: Daemon):
    d.out("run", "-d", "--name", "lim1", "--memory", "64m", "--pids-limit", "20", "-e", "A=1",
          "-w", "/tmp", "--network", "none", "busybox", "sleep", "60")
    c = d.inspect("lim1")
    assert c["Name"] == "/lim1" and c["Path"] == "sleep" and c["Args"] == ["60"]
    assert c["Config"]["Hostname"] == c["Id"][:12] and c["Config"]["WorkingDir"] == "/tmp"
    assert "A=1" in c["Config"]["Env"] and any(e.startswith("PATH=") for e in c["Config"]["Env"])
    assert c["Config"]["Cmd"] == ["sleep", "60"] and c["Image"] == d.image_id
    assert c["HostConfig"]["Memory"] == 64 * 2**20 and c["HostConfig"]["PidsLimit"] == 20
    assert c["State"]["Running"] and c["State"]["Pid"] > 0 and c["RestartCount"] == 0
    assert set(c["GraphDriver"]["Data"]) == {"LowerDir", "UpperDir", "WorkDir", "MergedDir"}
    cg = Cgroup("refimpl", c["Id"])
    mem = cg._dir("memory")
    if mem:
        name = "memory.max" if cg.v == 2 else "memory.limit_in_bytes"
        assert open(f"{mem}/{name}").read().strip() == str(64 * 2**20)
    assert open(f"{cg._dir('pids')}/pids.max").read().strip() == "20"
    r = d.docker("run", "--rm", "--pids-limit", "5", "--network", "none", "busybox", "sh", "-c",
                 "for i in 1 2 3 4 5 6 7 8; do sleep 1 & done; wait")
    assert "can't fork" in r.stderr or r.returncode != 0
    r = d.docker("run", "--rm", "--read-only", "--network", "none", "busybox", "touch", "/x")
    assert r.returncode == 1 and "Read-only file system" in r.stderr
    assert d.docker("run", "--rm", "--network", "none", "busybox", "touch", "/x").returncode == 0
    r = d.docker("run", "--name", "oom1", "--memory", "8m", "--memory-swap", "8m", "--network", "none",
                 "busybox", "sh", "-c", "head -c 100m /dev/zero | tail > /dev/null")
    assert r.returncode == 137
    st = d.inspect("oom1")["State"]
    assert (st["OOMKilled"], st["ExitCode"]) == (True, 137)
    d.out("rm", "-f", "lim1", "oom1")


def test_top_rename_wait(d: Daemon):
    d.out("run", "-d", "--name", "top1", "--network", "none", "busybox", "sleep", "60")
    lines = d.out("top", "top1").splitlines()
    assert lines[0].split() == ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
    assert lines[1].split()[-2:] == ["sleep", "60"]
    d.out("rename", "top1", "top2")
    assert d.inspect("top2")["Name"] == "/top2"
    assert d.api("GET", "/containers/top1/json")[0] == 404
    d.out("run", "-d", "--name", "top3", "--network", "none", "busybox", "sh", "-c", "sleep 0.3; exit 6")
    assert d.out("wait", "top3") == "6"
    r = d.docker("rename", "top2", "top3")
    assert r.returncode == 1 and 'The container name "/top3" is already in use' in r.stderr
    assert d.docker("top", "top3").returncode == 1
    d.out("rm", "-f", "top2", "top3")


def test_rm_rules_and_auto_remove(d: Daemon):
    cid = d.out("run", "-d", "--name", "rm1", "--network", "none", "busybox", "sleep", "60")
    code, body = d.api("DELETE", "/containers/rm1")
    assert code == 409 and body["message"] == (
        f"You cannot remove a running container {cid}. "
        "Stop the container before attempting removal or force remove")
    assert d.api("DELETE", "/containers/rm1?force=1")[0] == 204
    assert d.api("GET", f"/containers/{cid}/json")[0] == 404
    r = d.docker("run", "--rm", "--name", "rm2", "--network", "none", "busybox", "sh", "-c", "exit 2")
    assert r.returncode == 2
    assert d.api("GET", "/containers/rm2/json")[0] == 404
    d.out("create", "--name", "prune1", "--label", "prune=yes", "--network", "none", "busybox", "true")
    d.out("create", "--name", "prune2", "--network", "none", "busybox", "true")
    out = d.out("container", "prune", "-f", "--filter", "label=prune=yes")
    assert d.api("GET", "/containers/prune1/json")[0] == 404
    assert d.api("GET", "/containers/prune2/json")[0] == 200 and "Total reclaimed space" in out
    d.out("rm", "prune2")
    d.out("run", "-d", "--rm", "--name", "rm3", "--network", "none", "busybox", "sleep", "60")
    d.out("stop", "-t", "0", "rm3")
    deadline = time.monotonic() + 5
    while d.api("GET", "/containers/rm3/json")[0] != 404 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert d.api("GET", "/containers/rm3/json")[0] == 404


def test_bad_input(d: Daemon):
    code, body = d.api("POST", "/containers/create", raw=b"{not json")
    assert code == 400 and "\n" not in body["message"]
    code, body = d.api("POST", "/containers/create", {"Image": "busybox", "Tty": "yes"})
    assert (code, body["message"]) == (400, "json: cannot unmarshal string into Go struct field "
                                            "Config.Tty of type bool")
    code, body = d.api("POST", "/containers/create", {"Image": "busybox", "HostConfig": {"Memory": "1g"}})
    assert code == 400 and "HostConfig.Memory" in body["message"]
    assert d.api("POST", "/containers/create", {"Image": "nosuchimage"}) == \
        (404, {"message": "No such image: nosuchimage"})
    assert d.api("GET", "/containers/nosuch/json") == (404, {"message": "No such container: nosuch"})
    assert d.api("POST", "/containers/nosuch/start") == (404, {"message": "No such container: nosuch"})
    code, body = d.api("POST", "/containers/create?name=-bad", {"Image": "busybox"})
    assert code == 400 and "Invalid container name" in body["message"]
    code, first = d.api("POST", "/containers/create?name=dup1", {"Image": "busybox"})
    assert code == 201
    code, body = d.api("POST", "/containers/create?name=dup1", {"Image": "busybox"})
    assert (code, body["message"]) == (409, (
        f'Conflict. The container name "/dup1" is already in use by container "{first["Id"]}". '
        "You have to remove (or rename) that container to be able to reuse that name."))
    assert d.api("POST", "/containers/create", {"Image": "busybox", "HostConfig": {
        "RestartPolicy": {"Name": "sometimes"}}})[0] == 400
    before = len(d.api("GET", "/containers/json?all=1")[1])
    assert d.api("POST", "/containers/create", {"Image": "busybox", "Env": "A=1"})[0] == 400
    assert len(d.api("GET", "/containers/json?all=1")[1]) == before   # nothing half-made
    assert d.api("DELETE", "/containers/dup1")[0] == 204


def test_default_bridge_network(d: Daemon):
    d.out("run", "-d", "--name", "net1", "busybox", "sleep", "60")
    c = d.inspect("net1")
    net = c["NetworkSettings"]["Networks"]["bridge"]
    ip = net["IPAddress"]
    assert ip and net["Gateway"] and net["IPPrefixLen"] > 0 and c["NetworkSettings"]["IPAddress"] == ip
    assert net["MacAddress"] == "02:42:" + ":".join(f"{int(b):02x}" for b in ip.split("."))
    assert not ip.startswith("172.17.")
    r = d.docker("run", "--rm", "busybox", "sh", "-c",
                 f"ping -c 1 -W 2 {ip} && cat /etc/hostname /etc/hosts && ip -o addr show eth0")
    assert r.returncode == 0, r.stderr
    assert "1 packets received" in r.stdout
    hostname = r.stdout.split("\n")[r.stdout.split("\n").index("--- " + ip + " ping statistics ---") + 3]
    assert re.fullmatch(r"[0-9a-f]{12}", hostname)
    assert re.search(rf"\n[0-9.]+\t{hostname}\n", r.stdout)
    assert d.api("GET", "/networks/bridge")[1]["IPAM"]["Config"][0]["Gateway"] == net["Gateway"]
    d.out("stop", "-t", "0", "net1")
    assert d.inspect("net1")["NetworkSettings"]["Networks"]["bridge"]["IPAddress"] == ""
    d.out("start", "net1")
    assert d.inspect("net1")["NetworkSettings"]["IPAddress"] == ip        # lowest free again
    d.out("rm", "-f", "net1")


def test_network_none_and_host(d: Daemon):
    out = d.out("run", "--rm", "--network", "none", "busybox", "ls", "/sys/class/net")
    assert out.split() == ["lo"]
    c = d.out("create", "--network", "none", "busybox", "true")
    assert list(d.inspect(c)["NetworkSettings"]["Networks"]) == ["none"]
    d.out("rm", c)
    assert d.out("run", "--rm", "--network", "host", "busybox", "hostname") == socket.gethostname()


def test_restart_policies(d: Daemon):
    d.out("run", "-d", "--name", "pol1", "--restart", "on-failure:2", "--network", "none", "busybox",
          "sh", "-c", "exit 1")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        c = d.inspect("pol1")
        if c["State"]["Status"] == "exited" and c["RestartCount"] == 2:
            break
        time.sleep(0.1)
    assert (c["State"]["Status"], c["RestartCount"], c["State"]["ExitCode"]) == ("exited", 2, 1)
    d.out("run", "-d", "--name", "pol2", "--restart", "always", "--network", "none", "busybox",
          "sh", "-c", "sleep 0.2; exit 0")
    deadline = time.monotonic() + 10
    while d.inspect("pol2")["RestartCount"] < 1 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert d.inspect("pol2")["RestartCount"] >= 1
    d.out("stop", "-t", "0", "pol2")
    time.sleep(0.6)
    assert d.inspect("pol2")["State"]["Status"] == "exited"     # a manual stop is final
    d.out("rm", "-f", "pol1", "pol2")


def test_daemon_restart_keeps_containers(d: Daemon):
    d.out("run", "-d", "--name", "live1", "busybox", "sh", "-c",
          "trap 'exit 11' TERM; while true; do echo tick; sleep 0.1; done")
    d.docker("run", "--name", "dead1", "--network", "none", "busybox", "sh", "-c", "exit 4")
    d.out("run", "-d", "--name", "gone1", "--network", "none", "busybox", "sh", "-c", "sleep 0.5; exit 8")
    d.out("run", "-d", "--name", "always1", "--restart", "always", "--network", "none", "busybox",
          "sleep", "60")
    d.out("stop", "-t", "0", "always1")
    pid, ip = d.inspect("live1")["State"]["Pid"], d.inspect("live1")["NetworkSettings"]["IPAddress"]
    d.stop()
    time.sleep(0.8)                           # gone1 exits while the daemon is down
    d.start()
    live = d.inspect("live1")
    assert (live["State"]["Status"], live["State"]["Pid"]) == ("running", pid)
    assert live["NetworkSettings"]["IPAddress"] == ip
    assert d.inspect("dead1")["State"]["ExitCode"] == 4
    gone = d.inspect("gone1")["State"]
    assert (gone["Status"], gone["ExitCode"]) == ("exited", 8)
    with socket.socket(socket.AF_UNIX) as s:  # re-attachable: output flows again
        s.settimeout(5)
        s.connect(d.sock)
        s.sendall(b"POST /v1.44/containers/live1/attach?stream=1&stdout=1 HTTP/1.1\r\nHost: x\r\n"
                  b"Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
        got = b""
        while got.count(b"tick") < 2:
            got += s.recv(4096)
        assert got.startswith(b"HTTP/1.1 101 UPGRADED")
        assert b"\x01\x00\x00\x00\x00\x00\x00\x05tick\n" in got      # stdcopy frames
    d.out("stop", "live1")                    # the supervisor is reachable again
    assert d.inspect("live1")["State"]["ExitCode"] == 11
    deadline = time.monotonic() + 5           # "always" restarts with the daemon, even if stopped
    while d.inspect("always1")["State"]["Status"] != "running" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert d.inspect("always1")["State"]["Status"] == "running"
    d.out("rm", "-f", "live1", "dead1", "gone1", "always1")


def test_cp_out_of_stopped_and_running_containers(d: Daemon, tmp_path):
    d.out("run", "--name", "cp1", "--network", "none", "busybox", "sh", "-c",
          "mkdir -p /data/sub; echo hi > /data/a; echo deep > /data/sub/b; ln -s a /data/l; rm /etc/group")
    d.out("cp", "cp1:/data", str(tmp_path))
    assert (tmp_path / "data" / "a").read_text() == "hi\n"
    assert (tmp_path / "data" / "sub" / "b").read_text() == "deep\n"
    assert os.readlink(tmp_path / "data" / "l") == "a"
    d.out("cp", "cp1:/etc/passwd", str(tmp_path / "passwd"))          # from the image's layer
    assert (tmp_path / "passwd").read_text().startswith("root:")
    r = d.docker("cp", "cp1:/etc/group", str(tmp_path))               # whited out in the upper dir
    assert r.returncode == 1 and "Could not find the file /etc/group in container cp1" in r.stderr
    code, _ = d.api("HEAD", "/containers/cp1/archive?path=/data/a")
    assert code == 200
    d.out("run", "-d", "--name", "cp2", "--network", "none", "busybox", "sh", "-c",
          "echo live > /r; sleep 60")
    deadline = time.monotonic() + 5
    while d.docker("cp", "cp2:/r", str(tmp_path / "r")).returncode and time.monotonic() < deadline:
        time.sleep(0.1)
    assert (tmp_path / "r").read_text() == "live\n"
    d.out("rm", "-f", "cp1", "cp2")


def test_a_user_the_image_does_not_know_is_a_client_error(d: Daemon):
    """The fuzzer's find: start with such a --user was a 500; it is the client's configuration."""
    d.out("create", "--name", "ghost1", "--user", "ghost", "--network", "none", "busybox", "true")
    code, body = d.api("POST", "/containers/ghost1/start")
    assert code == 400, body
    assert "unable to find user ghost: no matching entries in passwd file" in body["message"]
    r = d.docker("start", "ghost1")
    assert r.returncode == 1 and "unable to find user ghost" in r.stderr
    d.out("rm", "ghost1")
