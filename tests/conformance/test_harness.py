"""The harness itself: target selection errors, reproducible images, step hygiene."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from conformance import images
from conformance.stepcheck import check
from conformance.targets import Target, TargetError

ROOT = Path(__file__).resolve().parents[2]


def run_pytest(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", str(ROOT / "conformance"), "-q",
                           "-p", "no:cacheprovider", *args], capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, **(env or {})}, timeout=120)


def test_unknown_target_is_a_one_line_usage_error():
    p = run_pytest("--target", "no-such-engine")
    assert p.returncode == 4
    err_lines = [ln for ln in (p.stdout + p.stderr).splitlines() if "no-such-engine" in ln]
    assert err_lines == ["ERROR: dockspec: unknown target 'no-such-engine' (known targets: "
                         "docker, podman, refimpl, refimpl-dockercli)"]
    assert "Traceback" not in p.stdout + p.stderr


def test_target_whose_socket_does_not_answer_names_the_socket(tmp_path):
    targets = tmp_path / "targets.toml"
    sock = tmp_path / "nothing-here.sock"
    targets.write_text(f'[ghost]\ncli = ["docker", "-H", "{{endpoint}}"]\n'
                       f'endpoint = "unix://{sock}"\nservice = "external"\n')
    p = run_pytest("--target", "ghost", "-x", "-k", "ping_over", env={"DOCKSPEC_TARGETS": str(targets)})
    out = p.stdout + p.stderr
    assert p.returncode != 0
    assert f"target ghost: nothing answers on unix://{sock}" in out
    assert "Traceback" not in out


def test_targets_file_names_cli_and_endpoint():
    t = Target.named("docker")
    assert t.cli[0] == "docker" and t.endpoint.startswith("unix://")
    with pytest.raises(TargetError, match="unknown target"):
        Target.named("nope")


def test_every_step_line_matches_exactly_one_definition():
    assert check(ROOT / "features") == []


@pytest.mark.skipif(not images.BUSYBOX.exists(), reason="env-skip: busybox-static is not installed")
def test_busybox_image_is_reproducible_and_complete():
    a, b = images.build_busybox(), images.build_busybox()
    assert a.digest == b.digest and a.image_id == b.image_id
    config = json.loads(a.config)
    assert config["config"]["Cmd"] == ["sh"]
    assert any(e.startswith("PATH=") for e in config["config"]["Env"])
    assert "created" not in config
    assert len(a.layers) >= 2
    manifest = json.loads(a.manifest)
    for desc, blob in zip(manifest["layers"], a.layers):
        assert desc["digest"] == "sha256:" + hashlib.sha256(blob).hexdigest()
    with tarfile.open(fileobj=io.BytesIO(a.layers[0]), mode="r:gz") as tf:
        members = {m.name: m for m in tf.getmembers()}
    applets = subprocess.run([str(images.BUSYBOX), "--list-full"], capture_output=True,
                             text=True).stdout.split()
    assert all(path in members for path in applets), "every applet is linked"
    assert {m.mtime for m in members.values()} == {images.EPOCH}
    assert list(members) == sorted(members)


def test_layer_writer_is_deterministic_and_sorted(tmp_path):
    def build():
        w = images.LayerWriter()
        w.file("b/z.txt", b"z")
        w.file("a/y.txt", b"y", 0o600)
        w.symlink("c/link", "/a/y.txt")
        return w.tar()
    assert build() == build()
    with tarfile.open(fileobj=io.BytesIO(build())) as tf:
        names = tf.getnames()
    assert names == sorted(names)
    assert images.gzip_bytes(b"x" * 1000) == images.gzip_bytes(b"x" * 1000)


def test_a_session_stops_only_what_it_started(tmp_path, monkeypatch):
    """Services an earlier `services up` started stay running and recorded."""
    from conformance import services
    monkeypatch.setattr(services, "STATE_DIR", tmp_path)
    monkeypatch.setattr(services, "STATE_FILE", tmp_path / "services.json")
    earlier = subprocess.Popen(["sleep", "60"])
    mine = subprocess.Popen(["sleep", "60"])
    try:
        svc = services.Services(registry="127.0.0.1:1",
                                started=[services.Started("registry", earlier.pid),
                                         services.Started("dockerd", mine.pid)])
        svc.save()
        svc.stop(only={mine.pid})
        assert mine.wait(timeout=30) is not None
        assert earlier.poll() is None
        again = services.Services.load()
        assert [s.pid for s in again.started] == [earlier.pid]
        again.stop()
        assert earlier.wait(timeout=30) is not None
        assert not (tmp_path / "services.json").exists()
    finally:
        for p in (earlier, mine):
            if p.poll() is None:
                p.kill()
                p.wait()
