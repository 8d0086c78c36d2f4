"""POST /build and POST /commit on a real refimpld, driven by the real docker CLI (classic
builder, DOCKER_BUILDKIT=0) and by the refimpl CLI: instructions, the cache, errors, commit."""
from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from tests.engine.test_containers_helpers import Daemon, why_not

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def d():
    reason = why_not()
    if reason:
        pytest.skip(reason)
    daemon = Daemon()
    daemon.bridge = "dsbl" + secrets.token_hex(4)
    daemon.env["DOCKER_BUILDKIT"] = "0"
    try:
        daemon.prepare().start()
        yield daemon
    finally:
        daemon.cleanup()


def context(tmp_path: Path, dockerfile: str, **files: str) -> str:
    (tmp_path / "Dockerfile").write_text(dockerfile)
    for name, text in files.items():
        p = tmp_path / name.replace("__", "/")
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return str(tmp_path)


def build(d, *args: str) -> subprocess.CompletedProcess:
    return d.docker("build", *args, timeout=60)


def test_instructions_shape_the_image(d, tmp_path):
    ctx = context(tmp_path, """\
ARG BASE=busybox
FROM ${BASE} AS first
RUN echo stage1 > /s1
FROM $BASE
COPY dir /d/
COPY *.md /mds/
COPY --chown=65534:65534 x1.md /owned.md
ADD arch.tar /unpacked/
COPY --from=first /s1 /from-first
SHELL ["/bin/sh", "-ec"]
RUN echo "shell=$0" > /shell.txt
ENV A=1 B="two words"
LABEL "x y"=z
EXPOSE 80 53/udp
VOLUME /data
STOPSIGNAL SIGUSR1
HEALTHCHECK --interval=5s --retries=2 CMD true
ONBUILD RUN echo trig > /trig
WORKDIR rel
CMD ["sh", "-c", "find /d /mds /unpacked -type f | sort; cat /from-first /shell.txt; stat -c %u /owned.md; pwd"]
""", dir__a="a", dir__sub__b="b", **{"x1.md": "1", "x2.md": "2"})
    import tarfile
    with tarfile.open(tmp_path / "arch.tar", "w") as t:
        t.add(tmp_path / "x1.md", "in.txt")
    r = build(d, "-t", "big", "--label", "from=cli", ctx)
    assert r.returncode == 0, r.stderr
    assert "Step 21/21 : LABEL from=cli\n" in r.stdout     # --label: one more LABEL step, as Docker
    assert d.out("run", "--rm", "big", "ls", "/unpacked") == "in.txt"
    assert d.out("run", "--rm", "big").split("\n") == [
        "/d/a", "/d/sub/b", "/mds/x1.md", "/mds/x2.md", "/unpacked/in.txt", "stage1", "shell=/bin/sh",
        "65534", "/rel"]
    cfg = json.loads(d.out("image", "inspect", "big", "--format", "{{json .Config}}"))
    assert cfg["Env"][-2:] == ["A=1", "B=two words"]
    assert cfg["Labels"] == {"x y": "z", "from": "cli"}
    assert cfg["ExposedPorts"] == {"80/tcp": {}, "53/udp": {}} and cfg["Volumes"] == {"/data": {}}
    assert cfg["StopSignal"] == "SIGUSR1" and cfg["Shell"] == ["/bin/sh", "-ec"]
    assert cfg["Healthcheck"] == {"Test": ["CMD-SHELL", "true"], "Interval": 5_000_000_000, "Retries": 2}
    assert cfg["OnBuild"] == ["RUN echo trig > /trig"]
    # the trigger runs in the child build, and is not inherited further
    (tmp_path / "Dockerfile").write_text("FROM big\nRUN cat /trig\n")
    r = build(d, "-t", "child", str(tmp_path))
    assert r.returncode == 0 and "# Executing 1 build trigger" in r.stdout and "trig" in r.stdout, r.stderr
    assert d.out("image", "inspect", "child", "--format", "{{json .Config.OnBuild}}") == "null"


def test_cache_reuse_invalidation_and_identical_ids(d, tmp_path):
    ctx = context(tmp_path, "FROM busybox\nRUN echo x > /x\nCOPY a.txt /a.txt\nRUN cat /a.txt > /after\n",
                  **{"a.txt": "one"})
    first = build(d, "-q", ctx).stdout.strip()
    second = build(d, ctx)
    assert second.stdout.count("Using cache") == 3 and f"Successfully built {first[7:19]}" in second.stdout
    os.utime(tmp_path / "a.txt", (1, 1))             # the mtime is not part of the key
    assert build(d, "-q", ctx).stdout.strip() == first
    (tmp_path / "a.txt").write_text("two")
    third = build(d, "-t", "cached", ctx)
    assert third.stdout.count("Using cache") == 1
    assert d.out("run", "--rm", "cached", "cat", "/after") == "two"
    assert "Using cache" not in build(d, "--no-cache", ctx).stdout


def test_build_errors_are_one_line_and_leave_nothing(d, tmp_path):
    cases = [("FROM busybox\nNOPE x\n", "Dockerfile parse error line 2: unknown instruction: NOPE", 1),
             ("FROM busybox\nCOPY ../x /x\n", "forbidden path outside the build context: ../x", 1),
             ("FROM busybox\nENV A=1\nENV B=${A\n", "Dockerfile parse error line 3: syntax error: missing '}'", 1),
             ("FROM 127.0.0.1:9/no-such-image\n", "failed to get the base image 127.0.0.1:9/no-such-image", 1),
             ("FROM busybox\nADD http://127.0.0.1:9/x /x\n", "remote sources are not supported", 1),
             ("FROM busybox\nRUN echo about to fail && exit 3\n",
              "The command '/bin/sh -c echo about to fail && exit 3' returned a non-zero code: 3", 3)]
    for dockerfile, message, code in cases:
        r = build(d, "-t", "broken", context(tmp_path, dockerfile))
        assert r.returncode == code and message in r.stderr, (dockerfile, r.stdout, r.stderr)
        assert "Traceback" not in r.stderr
    assert d.docker("image", "inspect", "broken").returncode != 0
    assert [p for p in (d.data / "build").iterdir() if p.name != "cache.json"] == []


def test_refimpl_cli_builds_and_commits(d, tmp_path):
    env = dict(d.env, PYTHONPATH=str(ROOT))

    def refimpl(*args):
        return subprocess.run([sys.executable, "-m", "refimpl.cli", *args], capture_output=True, text=True,
                              env=env, timeout=60)
    ctx = context(tmp_path, "FROM busybox\nARG FLAVOUR=plain\nRUN echo $FLAVOUR > /f\n")
    r = refimpl("build", "-q", "--build-arg", "FLAVOUR=spicy", "-t", "cli-a", "-t", "cli-b", ctx)
    assert r.returncode == 0 and r.stdout.startswith("sha256:"), r.stderr
    assert d.out("run", "--rm", "cli-b", "cat", "/f") == "spicy"
    (tmp_path / "Dockerfile").write_text("FROM busybox\nRUN exit 4\n")
    r = refimpl("build", ctx)
    assert r.returncode == 4 and "returned a non-zero code: 4" in r.stderr
    d.out("run", "--name", "tocommit", "busybox", "sh", "-c", "echo committed > /state.txt; rm /etc/group")
    r = refimpl("commit", "-a", "someone", "-m", "a message", "-c", "ENV X=1", "-c", 'CMD ["cat", "/state.txt"]',
                "tocommit", "snap:1")
    assert r.returncode == 0 and r.stdout.startswith("sha256:"), r.stderr
    assert d.out("run", "--rm", "snap:1") == "committed"
    assert d.docker("run", "--rm", "snap:1", "ls", "/etc/group").returncode != 0     # deletions carry over
    img = json.loads(d.out("image", "inspect", "snap:1"))[0]
    assert img["Author"] == "someone" and img["Comment"] == "a message" and "X=1" in img["Config"]["Env"]
    assert "a message" in d.out("history", "snap:1")


def test_commit_of_a_running_container_and_save_load(d, tmp_path):
    d.out("run", "-d", "--name", "live", "busybox", "sh", "-c", "echo up > /up; sleep 30")
    try:
        new_id = d.out("commit", "live", "live:snap")
        assert d.inspect("live")["State"]["Status"] == "running"
        assert d.out("run", "--rm", "live:snap", "cat", "/up") == "up"
        archive = tmp_path / "snap.tar"
        d.out("save", "-o", str(archive), "live:snap")
        d.out("rmi", "live:snap")
        d.out("load", "-i", str(archive))
        assert d.out("image", "inspect", "live:snap", "--format", "{{.Id}}") == new_id
    finally:
        d.docker("rm", "-f", "live")


def test_diff_export_and_import(d, tmp_path):
    d.out("run", "--name", "changed", "busybox", "sh", "-c",
          "echo hi > /new; rm /etc/group; mkdir -p /tmp/x; echo z > /tmp/x/z")
    assert d.out("diff", "changed").split("\n") == ["C /etc", "D /etc/group", "A /new", "C /tmp", "A /tmp/x",
                                                    "A /tmp/x/z"]
    archive = tmp_path / "fs.tar"
    d.out("export", "-o", str(archive), "changed")
    import tarfile
    with tarfile.open(archive) as t:
        names = set(t.getnames())
    assert {"new", "tmp/x/z", "bin/busybox"} <= names and "etc/group" not in names
    image_id = d.out("import", "-c", 'CMD ["cat", "/new"]', "-m", "from a tar", str(archive), "imported:1")
    assert image_id.startswith("sha256:")
    assert d.out("run", "--rm", "imported:1") == "hi"
    assert "from a tar" in d.out("history", "imported:1")
    bad = tmp_path / "bad.tar"
    bad.write_bytes(b"not a tar at all" * 64)
    r = d.docker("import", str(bad), "imported:bad")
    assert r.returncode != 0 and "invalid tar archive for import" in r.stderr


def _tar(entries: dict[str, bytes]) -> bytes:
    import io
    import tarfile
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for name, data in entries.items():
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            t.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def test_build_api_contexts(d):
    import gzip
    ok = gzip.compress(_tar({"Dockerfile": b"FROM busybox\nCOPY f /f\n", "f": b"gz"}))
    status, body = d.api("POST", "/build?t=gzctx", raw=ok)
    assert status == 200 and any("aux" in json.loads(line) for line in body.splitlines() if line.strip()), body
    assert d.out("run", "--rm", "gzctx", "cat", "/f") == "gz"
    status, body = d.api("POST", "/build", raw=_tar({"Dockerfile": b"FROM busybox\n", "../evil": b"x"}))
    assert status == 400 and "invalid build context" in body["message"] and "../evil" in body["message"]
    status, body = d.api("POST", "/build?dockerfile=Nope", raw=_tar({"Dockerfile": b"FROM busybox\n"}))
    assert status == 400 and body["message"] == "Cannot locate specified Dockerfile: Nope"
    status, body = d.api("POST", "/build?t=Bad:Tag:x", raw=_tar({"Dockerfile": b"FROM busybox\n"}))
    assert status == 400
    assert [p for p in (d.data / "build").iterdir() if p.name != "cache.json"] == []


def test_builder_prune_forgets_the_cache_but_keeps_listed_images(d, tmp_path):
    ctx = context(tmp_path, "FROM busybox\nRUN echo p > /p\nRUN echo q > /q\n")
    assert build(d, "-t", "pruned", ctx).returncode == 0
    status, body = d.api("POST", "/build/prune")
    assert status == 200 and body["CachesDeleted"]
    assert d.out("run", "--rm", "pruned", "cat", "/p", "/q") == "p\nq"
    assert "Using cache" not in build(d, ctx).stdout


def test_source_date_epoch_makes_builds_reproducible(d, tmp_path):
    ctx = context(tmp_path, "FROM busybox\nRUN echo r > /r\nCOPY a.txt /a.txt\nENV E=1\n", **{"a.txt": "a"})
    ids = [build(d, "-q", "--no-cache", "--build-arg", "SOURCE_DATE_EPOCH=1700000000", ctx).stdout.strip()
           for _ in range(2)]
    assert ids[0].startswith("sha256:") and ids[0] == ids[1]
    assert d.out("image", "inspect", ids[0], "--format", "{{.Created}}").startswith("2023-11-14T22:13:20")
    assert build(d, "-q", "--no-cache", ctx).stdout.strip() != ids[0]
