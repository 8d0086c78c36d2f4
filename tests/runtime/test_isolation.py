"""Namespaces, root filesystem, /proc /sys /dev, users and capabilities."""
import os
import stat

import pytest

from refimpl.runtime import Mount, Shim, StartError, spawn


def test_pid_1_and_own_hostname(containers):
    st, out, err, _ = containers.run(["sh", "-c", "echo $$; hostname"], hostname="box1")
    assert (st.exit_code, out, err) == (0, b"1\nbox1\n", b"")


def test_no_host_processes_visible(containers):
    st, out, _, _ = containers.run(["sh", "-c", "ls /proc | grep '^[0-9]*$'"])
    pids = {int(p) for p in out.split()}
    assert st.exit_code == 0 and 1 in pids and max(pids) < 10, pids


def test_own_mount_table(containers):
    st, out, _, shim = containers.run(["cat", "/proc/self/mountinfo"])
    lines = out.decode().splitlines()
    root = [l for l in lines if l.split()[4] == "/"]
    assert st.exit_code == 0 and len(root) == 1 and " - overlay " in root[0]
    assert shim.spec.merged_dir not in out.decode()          # the host's paths are gone
    assert not any(" /work" in l for l in lines)
    with open("/proc/self/mountinfo") as f:                   # and the host never saw the overlay
        assert shim.spec.merged_dir not in f.read()


def test_network_none_gives_only_lo(containers):
    st, out, _, _ = containers.run(["sh", "-c", "ls /sys/class/net; ip -o link"], network_mode="none")
    names, _, links = out.decode().partition("1: lo")
    assert st.exit_code == 0 and names.split() == ["lo"]
    assert "UP" in links and "2:" not in links


def test_host_network_sees_host_interfaces(containers):
    st, out, _, _ = containers.run(["ls", "/sys/class/net"], network_mode="host")
    assert st.exit_code == 0 and sorted(out.split()) == sorted(n.encode() for n in os.listdir("/sys/class/net"))


def test_writes_land_in_the_upper_dir_only(containers, rootfs):
    st, _, _, shim = containers.run(["sh", "-c", "echo hello > /new.txt; rm /data/lower.txt"])
    assert st.exit_code == 0
    upper = shim.spec.upper_dir
    assert open(f"{upper}/new.txt").read() == "hello\n"
    assert not os.path.exists(f"{rootfs}/new.txt")
    assert os.path.exists(f"{rootfs}/data/lower.txt")         # lower untouched ...
    wh = os.stat(f"{upper}/data/lower.txt")                   # ... and the removal is a whiteout
    assert stat.S_ISCHR(wh.st_mode) and wh.st_rdev == 0


def test_read_only_rootfs_refuses_writes(containers):
    st, _, err, shim = containers.run(
        ["sh", "-c", "touch /x || exit 9; echo ok > /tmp/y"], readonly_rootfs=True,
        mounts=[Mount(target="/tmp", type="tmpfs")])
    assert st.exit_code == 9 and b"Read-only file system" in err
    st, out, err, _ = containers.run(["sh", "-c", "echo ok > /tmp/y && cat /tmp/y"], readonly_rootfs=True,
                                     mounts=[Mount(target="/tmp", type="tmpfs")])
    assert (st.exit_code, out) == (0, b"ok\n"), err


def test_bind_mounts_and_etc_files(containers, tmp_path):
    (tmp_path / "vol").mkdir()
    (tmp_path / "vol" / "f").write_text("shared\n")
    (tmp_path / "hosts").write_text("127.0.0.1 localhost\n10.9.9.9 peer\n")
    st, out, err, _ = containers.run(
        ["sh", "-c", "cat /v/f; echo no > /v/g || echo refused; grep peer /etc/hosts"],
        mounts=[Mount(target="/v", source=str(tmp_path / "vol"), readonly=True)],
        etc_files={"hosts": str(tmp_path / "hosts")})
    assert (st.exit_code, out) == (0, b"shared\nrefused\n10.9.9.9 peer\n"), err
    assert not (tmp_path / "vol" / "g").exists()


def test_proc_and_sys_are_masked_and_read_only(containers):
    script = ("cat /proc/timer_list | wc -c; ls /sys/firmware | wc -l; "
              "echo h > /proc/sysrq-trigger || echo ro-proc; touch /sys/x || echo ro-sys; "
              "ls /dev | tr '\\n' ' '")
    st, out, _, _ = containers.run(["sh", "-c", script])
    lines = out.decode().splitlines()
    assert st.exit_code == 0
    assert lines[:4] == ["0", "0", "ro-proc", "ro-sys"]
    for dev in ("null", "zero", "full", "random", "urandom", "tty", "ptmx", "pts", "shm", "mqueue", "fd"):
        assert dev in lines[4].split()


def test_default_capabilities_as_docker(containers):
    st, out, _, _ = containers.run(["sh", "-c", "grep -E 'CapEff|CapBnd' /proc/self/status"])
    assert st.exit_code == 0
    assert out.decode().split() == ["CapEff:", "00000000a80425fb", "CapBnd:", "00000000a80425fb"]


def test_user_by_name_drops_all_effective_capabilities(containers):
    st, out, _, _ = containers.run(["sh", "-c", "id -u; id -g; id -G; grep CapEff /proc/self/status; pwd"],
                                   user="app", cwd="/work/dir")
    assert st.exit_code == 0
    assert out.decode().split() == ["1000", "1000", "1000", "2000", "CapEff:", "0000000000000000",
                                    "/work/dir"]


def test_unknown_user_is_a_start_error(containers):
    spec, state = containers.spec(["true"], user="ghost")
    with pytest.raises(StartError, match="unable to find user ghost: no matching entries in passwd file"):
        spawn(spec, state).start()
    assert Shim(state).wait(timeout=10).exit_code == 128
