"""Start errors, exit codes, tty and stdin, pause, stop, limits, the supervisor's survival."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from refimpl.runtime import Shim, StartError, spawn
from refimpl.runtime.cgroups import Cgroup


@pytest.mark.parametrize("args,code,text", [
    (["nope"], 127, 'exec: "nope": executable file not found in $PATH'),
    (["/nope"], 127, 'exec: "/nope": stat /nope: no such file or directory'),
    (["/data/noexec"], 126, 'exec: "/data/noexec": permission denied'),
    (["/data/dir"], 126, 'exec: "/data/dir": is a directory'),
])
def test_exec_failures_use_dockers_texts_and_codes(containers, args, code, text):
    spec, state = containers.spec(args)
    shim = spawn(spec, state)
    with pytest.raises(StartError) as e:
        shim.start()
    assert (str(e.value), e.value.exit_code) == (text, code)
    assert shim.wait(timeout=10).exit_code == code
    assert not Cgroup(spec.cgroup_parent, spec.id).exists()
    assert not os.path.exists(f"{state}/shim.sock")


def test_exit_code_and_signal_exit_code(containers):
    st, _, _, _ = containers.run(["sh", "-c", "exit 3"])
    assert st.exit_code == 3 and st.oom_killed is False
    spec, state = containers.spec(["sleep", "30"])
    shim = spawn(spec, state)
    shim.start()
    shim.signal("SIGKILL")
    assert shim.wait(timeout=10).exit_code == 137


def test_bad_spec_is_refused_before_anything_is_made(containers):
    spec, state = containers.spec([])
    with pytest.raises(ValueError, match="no command specified"):
        spawn(spec, state)
    spec, state = containers.spec(["true"], network_mode="overlay")
    with pytest.raises(ValueError, match="invalid network mode"):
        spawn(spec, state)
    assert not Cgroup(spec.cgroup_parent, spec.id).exists() and os.listdir(state) == []


def test_json_file_log(containers):
    st, _, _, shim = containers.run(["sh", "-c", "echo one; echo two >&2; printf tail"])
    with open(f"{shim.state_dir}/json.log") as f:
        entries = [json.loads(line) for line in f]
    assert st.exit_code == 0
    assert sorted((e["stream"], e["log"]) for e in entries) == [
        ("stderr", "two\n"), ("stdout", "one\n"), ("stdout", "tail")]
    assert all(e["time"].endswith("Z") and "T" in e["time"] for e in entries)


def test_tty_attach_and_resize(containers):
    spec, state = containers.spec(["sh"], tty=True, open_stdin=True, stdin_once=True)
    shim = spawn(spec, state)
    with shim.attach(stdin=True) as att:
        shim.start()
        shim.resize(33, 101)
        att.send(b"tty; stty size; echo he''llo\n")
        att.send(b"exit 5\n")
        out = att.read_all()
    assert shim.wait(timeout=10).exit_code == 5
    assert b"/dev/pts/0" in out and b"33 101" in out and b"hello" in out
    assert b"\r\n" in out


def test_tty_stdin_eof_ends_cat(containers):
    st, out, _, _ = containers.run(["cat"], stdin=b"typed\n", tty=True)
    assert st.exit_code == 0 and out.count(b"typed") == 2     # the echo and cat's copy


def test_stdin_half_close_reaches_the_process(containers):
    st, out, _, _ = containers.run(["sh", "-c", "cat; echo done"], stdin=b"abc")
    assert (st.exit_code, out) == (0, b"abcdone\n")


def test_pause_freezes_and_resume_thaws(containers):
    spec, state = containers.spec(["sh", "-c", "i=0; while true; do i=$((i+1)); echo $i > /c; sleep 0.01; done"])
    shim = spawn(spec, state)
    shim.start()
    counter = f"{spec.upper_dir}/c"
    read = lambda: open(counter).read() if os.path.exists(counter) else ""
    deadline = time.monotonic() + 10
    while read() == "" and time.monotonic() < deadline:
        time.sleep(0.05)
    shim.pause()
    assert shim.status()["paused"] is True
    before = read()
    time.sleep(0.2)
    assert read() == before
    shim.resume()
    deadline = time.monotonic() + 10          # a loaded machine may take a while to schedule it
    while read() in ("", before) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert read() not in ("", before) and shim.status()["paused"] is False
    assert len(shim.pids()) >= 1
    assert shim.stop(timeout=0.2).exit_code == 137        # PID 1 has no TERM handler


def test_stop_escalates_to_sigkill_after_the_timeout(containers):
    spec, state = containers.spec(["sleep", "30"])
    shim = spawn(spec, state)
    shim.start()
    t = time.monotonic()
    st = shim.stop(timeout=0.5)
    assert st.exit_code == 137 and 0.5 <= time.monotonic() - t < 3


def test_stop_signal_honoured_by_a_handler(containers):
    spec, state = containers.spec(["sh", "-c", "trap 'exit 7' USR1; while true; do sleep 0.05; done"],
                                  stop_signal="SIGUSR1")
    shim = spawn(spec, state)
    shim.start()
    time.sleep(0.1)
    assert shim.stop(timeout=5).exit_code == 7


def test_pids_limit_stops_a_fork_bomb(containers):
    st, out, err, _ = containers.run(
        ["sh", "-c", "(for i in $(seq 30); do sleep 30 & done); echo /proc/[0-9]*; kill -9 -1"],
        pids_limit=10)
    assert b"can't fork" in err or b"Resource temporarily unavailable" in err
    assert 5 <= len(out.split()) <= 10, out      # pids.max counts the shell too


def test_memory_limit_oom_kills(containers):
    st, out, _, _ = containers.run(
        ["sh", "-c", "x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo survived"], memory=32 << 20)
    assert (st.exit_code, st.oom_killed) == (137, True) and b"survived" not in out


def test_cpu_quota_written(containers):
    spec, state = containers.spec(["sleep", "30"], nano_cpus=500_000_000)
    shim = spawn(spec, state)
    cg = Cgroup(spec.cgroup_parent, spec.id)
    if cg.v == 1:
        assert open(f"{cg.dirs['cpu']}/cpu.cfs_quota_us").read().strip() == "50000"
    else:
        assert open(f"{cg.dirs['']}/cpu.max").read().split() == ["50000", "100000"]
    shim.start()
    assert shim.stop(timeout=0.2).exit_code == 137


CALLER = """
import sys
from refimpl.runtime import ContainerSpec, spawn
spec = ContainerSpec.from_json(sys.stdin.read())
shim = spawn(spec, sys.argv[1], fresh=sys.argv[2] == "fresh")
shim.start()
print(shim.pid)
"""


@pytest.mark.parametrize("mode", ["fork", "fresh"])
def test_supervisor_outlives_its_caller_and_is_found_again(containers, mode):
    spec, state = containers.spec(["sh", "-c", "echo started; sleep 30"])
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    caller = subprocess.run([sys.executable, "-c", CALLER, state, mode], input=spec.to_json(),
                            capture_output=True, text=True, timeout=30, cwd=root,
                            env=dict(os.environ, PYTHONPATH=root))
    assert caller.returncode == 0, caller.stderr
    pid = int(caller.stdout)
    shim = Shim.find(state)                        # the caller is gone; the shim is not
    assert shim is not None and shim.pid == pid
    assert shim.status()["running"] is True and pid in shim.pids()
    os.kill(shim.supervisor_pid(), 0)
    shim.signal(signal.SIGKILL)
    st = shim.wait(timeout=10)
    assert st.exit_code == 137
    assert Shim(state).exit_status() == st
    deadline = time.monotonic() + 5
    while _alive(shim.supervisor_pid()) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not _alive(shim.supervisor_pid())
    assert Shim.find(state) is None
    with open(f"{state}/json.log") as f:
        assert json.loads(f.readline())["log"] == "started\n"


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline") as f:
            return bool(f.read())              # a zombie's cmdline is empty
    except FileNotFoundError:
        return False
