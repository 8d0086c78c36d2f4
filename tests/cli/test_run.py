"""`refimpl run` (and create/start/exec) against a real daemon: exit statuses, streams,
stdin half-close, a real pseudo-terminal, detached and auto-removed containers."""
from __future__ import annotations

import json
import re
import sys

import pexpect

from .conftest import HOST, cli_env, docker, exists, refimpl


def inspect(name: str) -> dict:
    return json.loads(docker("inspect", name))[0]


def test_exit_status_and_separate_streams(image, name):
    r = refimpl("run", "--network=none", "--name", name, image, "sh", "-c", "echo out; echo err >&2; exit 3")
    assert (r.rc, r.out, r.err) == (3, "out\n", "err\n")
    assert inspect(name)["State"]["ExitCode"] == 3


def test_command_not_found_is_127_and_rm_cleans_up(image, name):
    r = refimpl("run", "--network=none", "--rm", "--name", name, image, "no-such-command-here")
    assert r.rc == 127
    assert r.err.startswith("refimpl: Error response from daemon: ") and "executable file not found" in r.err
    assert len(r.err.strip().splitlines()) == 1
    assert not exists(name)


def test_command_not_executable_is_126(image, name):
    r = refimpl("run", "--network=none", "--name", name, image, "/etc/passwd")
    assert r.rc == 126, r.err
    assert "permission denied" in r.err


def test_daemon_error_is_125_and_does_not_pull(image, name):
    r = refimpl("run", "--network=none", "--name", name, "--network", "dscli-no-such-network", image, "true")
    assert r.rc == 125
    assert "Unable to find image" not in r.err
    assert "dscli-no-such-network" in r.err and len(r.err.strip().splitlines()) == 1


def test_unknown_flag_is_125(image, name):
    r = refimpl("run", "--network=none", "--name", name, "--no-such-flag", image, "true")
    assert r.rc == 125 and "unknown flag: --no-such-flag" in r.err and "Traceback" not in r.err
    assert not exists(name)


def test_stdin_is_copied_then_half_closed(image):
    r = refimpl("run", "--network=none", "--rm", "-i", image, "sh", "-c", "wc -l; echo done", input="a\nb\nc\n")
    assert r.rc == 0, r.err
    assert r.out.split() == ["3", "done"]


def test_stdin_to_default_command(image):
    r = refimpl("run", "--network=none", "--rm", "-i", image, input="echo via-default-cmd\n")
    assert (r.rc, r.out) == (0, "via-default-cmd\n")


def test_without_i_stdin_is_not_attached(image):
    r = refimpl("run", "--network=none", "--rm", image, "sh", "-c", "cat; echo end", input="ignored\n")
    assert (r.rc, r.out) == (0, "end\n")


def test_detached_prints_id_and_keeps_running(image, name):
    r = refimpl("run", "--network=none", "-d", "--name", name, image, "sleep", "60")
    assert r.rc == 0 and re.fullmatch(r"[0-9a-f]{64}\n", r.out)
    info = inspect(name)
    assert info["Id"] == r.out.strip() and info["State"]["Running"]
    assert refimpl("rm", "-f", name).rc == 0
    assert not exists(name)


def test_rm_removes_after_exit(image, name):
    r = refimpl("run", "--network=none", "--rm", "--name", name, image, "echo", "bye")
    assert (r.rc, r.out) == (0, "bye\n")
    assert not exists(name)


def test_env_workdir_user_entrypoint(image):
    r = refimpl("run", "--network=none", "--rm", "-e", "GREETING=hello", "-w", "/tmp", "-u", "65534", image,
                "sh", "-c", "echo $GREETING; pwd; id -u")
    assert r.out.split() == ["hello", "/tmp", "65534"], r.err
    r = refimpl("run", "--network=none", "--rm", "--entrypoint", "echo", image, "from-entrypoint")
    assert r.out == "from-entrypoint\n"


def test_create_flags_reach_the_daemon(image, name):
    r = refimpl("create", "--network=none", "--name", name, "--memory", "64m", "--memory-swap", "128m", "--cpus", "0.5",
                "--pids-limit", "50", "--read-only", "--restart", "on-failure:2", "--hostname", "dscli-h",
                "--label", "dscli.k=v", "-p", "127.0.0.1::80", "-v", "/data", "-e", "A=1", image, "true")
    assert r.rc == 0 and re.fullmatch(r"[0-9a-f]{64}\n", r.out), r.err
    info = inspect(name)
    hc, cfg = info["HostConfig"], info["Config"]
    assert (hc["Memory"], hc["MemorySwap"], hc["NanoCpus"], hc["PidsLimit"]) == (64 << 20, 128 << 20, 5 * 10**8, 50)
    assert hc["ReadonlyRootfs"] and hc["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 2}
    assert hc["PortBindings"] == {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": ""}]}
    assert cfg["Hostname"] == "dscli-h" and cfg["Labels"] == {"dscli.k": "v"} and "A=1" in cfg["Env"]
    assert "/data" in cfg["Volumes"] and info["State"]["Status"] == "created"


def test_bad_flag_values_are_one_line_125(image, name):
    for flags in (["--memory", "lots"], ["--restart", "sometimes"], ["-p", "99999:80"], ["--cpus", "x"]):
        r = refimpl("run", "--network=none", "--name", name, *flags, image, "true")
        assert r.rc == 125 and len(r.err.strip().splitlines()) == 1 and "Traceback" not in r.err, (flags, r.err)
    assert not exists(name)


def test_start_attach_stdin(image, name):
    assert refimpl("create", "--network=none", "-i", "--name", name, image, "sh", "-c", "read x; echo got-$x; exit 5").rc == 0
    r = refimpl("start", "-a", "-i", name, input="hello\n")
    assert (r.rc, r.out) == (5, "got-hello\n")
    assert refimpl("start", name).out == name + "\n"


def test_exec(image, name):
    assert refimpl("run", "--network=none", "-d", "--name", name, image, "sleep", "60").rc == 0
    r = refimpl("exec", "-e", "X=4", name, "sh", "-c", "echo $((X+1)); echo e >&2; exit 4")
    assert (r.rc, r.out, r.err) == (4, "5\n", "e\n")
    r = refimpl("exec", "-i", name, "sh", "-c", "tr a-z A-Z", input="shout\n")
    assert (r.rc, r.out) == (0, "SHOUT\n")


def _spawn(*args):
    argv = ["-m", "refimpl.cli", "-H", HOST, *args]
    child = pexpect.spawn(sys.executable, argv, env=cli_env(), timeout=20, encoding="utf-8",
                          dimensions=(24, 80))
    return child


def test_tty_session_through_a_real_pty(image, name):
    child = _spawn("run", "-i", "-t", "--name", name, image, "sh")
    child.expect(r"[#$] ")
    child.sendline("tty; echo $((6*7))-inside")
    child.expect(r"/dev/pts/\d+")
    child.expect("42-inside")
    child.setwinsize(33, 101)          # SIGWINCH -> POST /resize
    child.expect(r"[#$] ")
    child.sendline("sleep 0.3; stty size")
    child.expect("33 101")
    child.sendline("exit 3")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 3
    assert inspect(name)["Config"]["Tty"] is True


def test_tty_requires_a_terminal_for_input(image, name):
    r = refimpl("run", "--network=none", "-i", "-t", "--name", name, image, "true", input="")
    assert r.rc != 0 and "the input device is not a TTY" in r.err
