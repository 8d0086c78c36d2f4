"""Volumes in refimpld, driven by the real docker CLI (and raw API calls for bad input)."""
from __future__ import annotations

import json
import os

import pytest

from tests.engine.test_containers_helpers import why_not

pytestmark = pytest.mark.skipif(why_not() is not None, reason=why_not() or "")


def test_named_volume_lifecycle(d):
    assert d.out("volume", "create", "--label", "k=v", "nv1") == "nv1"
    d.out("run", "--name", "nvc1", "-v", "nv1:/data", "busybox", "sh", "-c", "echo kept > /data/f")
    mounts = d.inspect("nvc1")["Mounts"]
    assert mounts == [{"Type": "volume", "Name": "nv1", "Source": str(d.data / "volumes/nv1/_data"),
                       "Destination": "/data", "Driver": "local", "Mode": "z", "RW": True,
                       "Propagation": ""}]
    p = d.docker("volume", "rm", "nv1")
    assert p.returncode == 1 and "volume is in use" in p.stderr
    d.out("rm", "nvc1")
    assert d.out("run", "--rm", "-v", "nv1:/data:ro", "busybox", "cat", "/data/f") == "kept"
    assert d.out("volume", "ls", "-q", "--filter", "label=k=v") == "nv1"
    assert json.loads(d.out("volume", "inspect", "nv1"))[0]["Labels"] == {"k": "v"}
    d.out("volume", "rm", "nv1")
    assert d.docker("volume", "inspect", "nv1").returncode == 1
    assert not (d.data / "volumes/nv1").exists()


def test_copy_up_and_anonymous_volumes(d):
    assert "root:x:0:0" in d.out("run", "--rm", "-v", "nvetc:/etc", "busybox", "cat", "/etc/passwd")
    assert "passwd" in os.listdir(d.data / "volumes/nvetc/_data")
    d.out("create", "--name", "nvc2", "-v", "/scratch", "--mount", "type=tmpfs,dst=/t", "busybox", "true")
    anon = [m for m in d.inspect("nvc2")["Mounts"] if m["Destination"] == "/scratch"][0]["Name"]
    assert len(anon) == 64
    d.out("run", "--rm", "--volumes-from", "nvc2:ro", "busybox", "sh", "-c",
          "grep -q ' /scratch .*ro,' /proc/mounts && grep -q ' /t tmpfs' /proc/mounts")
    d.out("rm", "-v", "nvc2")
    assert d.docker("volume", "inspect", anon).returncode == 1
    assert d.docker("volume", "inspect", "nvetc").returncode == 0    # named volumes stay
    d.out("run", "--rm", "-v", "/anon2", "busybox", "true")           # --rm takes its anonymous volume
    assert d.out("volume", "ls", "-q").split() == ["nvetc"]
    d.out("volume", "rm", "nvetc")


def test_bind_mounts_and_bad_input(d, tmp_path):
    (tmp_path / "in.txt").write_text("host")
    assert d.out("run", "--rm", "--mount", f"type=bind,src={tmp_path},dst=/h", "busybox",
                 "sh", "-c", "cat /h/in.txt; echo back > /h/out.txt") == "host"
    assert (tmp_path / "out.txt").read_text() == "back\n"
    p = d.docker("run", "--rm", "-v", f"{tmp_path}:/h:ro", "busybox", "touch", "/h/x")
    assert p.returncode == 1 and "Read-only file system" in p.stderr
    before = d.out("volume", "ls", "-q")
    for bad in ({"Binds": ["nv-x:rel"]}, {"Binds": ["a/b:/x"]}, {"Binds": ["v9:/x", "v8:/x"]},
                {"Mounts": [{"Type": "bind", "Source": str(tmp_path / "none"), "Target": "/x"}]},
                {"Mounts": [{"Type": "nfs", "Target": "/x"}]}, {"VolumesFrom": ["no-such-c"]}):
        status, body = d.api("POST", "/containers/create", {"Image": "busybox", "HostConfig": bad})
        assert status in (400, 404) and "\n" not in body["message"], (bad, status, body)
    assert d.out("volume", "ls", "-q") == before                    # nothing left behind
    status, body = d.api("POST", "/volumes/create", {"Name": "x/y"})
    assert status == 400 and "invalid characters" in body["message"]
    assert d.api("GET", "/volumes/nope")[0] == 404
    assert d.api("GET", '/volumes?filters={"bogus":["1"]}')[0] == 400


def test_prune(d):
    d.out("volume", "create", "nvkeep")
    d.out("create", "--name", "nvc3", "-v", "/a", "busybox", "true")
    anon = d.inspect("nvc3")["Mounts"][0]["Name"]
    assert "Total reclaimed space" in d.out("volume", "prune", "-f")
    assert anon in d.out("volume", "ls", "-q")                      # still used by nvc3
    d.out("rm", "nvc3")
    out = d.out("volume", "prune", "-f")
    assert anon in out and "nvkeep" not in out
    assert "nvkeep" in d.out("volume", "prune", "-af")
    assert d.out("volume", "ls", "-q") == ""


def test_volume_plugin(d, tmp_path):
    """The example plugin (examples/volume-plugin/dirvolume.py) on a socket in refimpld's plugin dir."""
    import subprocess
    import sys
    import time
    from pathlib import Path
    script = Path(__file__).resolve().parents[2] / "examples/volume-plugin/dirvolume.py"
    sock = d.exec / "plugins" / "nvdir.sock"
    proc = subprocess.Popen([sys.executable, str(script), "--socket", str(sock), "--root", str(tmp_path / "vols")])
    try:
        deadline = time.monotonic() + 10
        while not sock.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert d.out("volume", "create", "-d", "nvdir", "pv1") == "pv1"
        assert (tmp_path / "vols/pv1").is_dir()
        d.out("run", "--rm", "-v", "pv1:/data", "busybox", "sh", "-c", "echo via-plugin > /data/f")
        assert (tmp_path / "vols/pv1/f").read_text() == "via-plugin\n"
        d.out("run", "--rm", "--mount", "type=volume,src=pv2,dst=/d,volume-driver=nvdir", "busybox", "true")
        assert (tmp_path / "vols/pv2").is_dir()
        assert json.loads(d.out("volume", "inspect", "pv1"))[0]["Driver"] == "nvdir"
        d.out("volume", "rm", "pv1", "pv2")
        assert not (tmp_path / "vols/pv1").exists()
        p = d.docker("volume", "create", "-d", "nosuchplugin", "pv3")
        assert p.returncode == 1 and 'plugin "nosuchplugin" not found' in p.stderr
    finally:
        proc.terminate()
        proc.wait(5)
