"""refimpld killed with SIGKILL at random points of pull, commit, create, start and rm.

One refimpld (its own data root, exec root and bridge dsk0) and a registry on
127.0.0.1 serving the offline busybox and a bigger image (busybox + a few MB of
incompressible layers, so a pull has a window to be killed in). For each
operation: time it once, then repeatedly start it over the raw API, SIGKILL the
daemon at a random point of that duration (seeded RNG; the seed is printed and
DOCKSPEC_CRASH_SEED replays it), restart refimpld on the same roots and check
the store (check_store): it answers, every image and container inspects, every
image's layers are on disk with the right chain and their blobs, nothing
partial is left (temp blobs, tmp-* layer dirs, temp JSON records, container
dirs without a record, exec dirs or supervisors of containers that do not run,
mounts, veths), everything complete before the kill is still there in its
state (a container that was running runs, or has the exit code it exited
with), and then retrying the operation completes and its image runs. Commit
takes turns between an exited container and a running one (which it freezes
while it reads). The refimpld log's recovery lines are counted and printed
(run with -s), to see which windows a seed hit.

The tests after it lay out by hand what a kill in each window leaves, so every
recovery is exercised on every run whatever the random points.
"""
from __future__ import annotations

import http.client
import io
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from conformance.images import PATH_ENV, assemble, build_busybox
from refimpl.image import manifest as mf

from .imagekit import push_raw, start_registry
from .test_containers_helpers import why_not

pytestmark = pytest.mark.skipif(why_not() is not None, reason=why_not() or "")

ROOT = Path(__file__).resolve().parents[2]
DOCKER = shutil.which("docker") or "/usr/local/bin/docker"
BRIDGE = "dsk0"
HEX64 = re.compile(r"[0-9a-f]{64}")
KILLS = {"pull": 8, "commit": 6, "create": 5, "start": 6, "rm": 6}
RECOVERY_LOGS = ("a container directory without its record", "a start cut short",
                 "its container never started", "no image needs it", "after a commit cut short")


class Refimpld:
    def __init__(self, workdir: Path):
        self.dir = workdir
        self.sock = str(workdir / "refimpl.sock")
        self.data, self.exec = workdir / "data", workdir / "exec"
        self.proc: subprocess.Popen | None = None
        self.env = dict(os.environ, DOCKER_HOST=f"unix://{self.sock}", DOCKER_CLI_HINTS="false",
                        DOCKER_CONFIG=str(workdir / "docker-config"))
        self.env.pop("DOCKER_CONTEXT", None)

    def start(self) -> "Refimpld":
        log = open(self.dir / "refimpld.log", "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "refimpl.daemon", "-H", f"unix://{self.sock}", "--data-root",
             str(self.data), "--exec-root", str(self.exec), "--bridge", BRIDGE, "--log-level", "info"],
            cwd=ROOT, stdout=log, stderr=log, env=dict(os.environ, PYTHONPATH=str(ROOT)))
        log.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"refimpld exited at start-up: {self.log_tail()}")
            try:
                if self.api("GET", "/_ping")[0] == 200:
                    return self
            except OSError:
                time.sleep(0.05)
        raise AssertionError("refimpld did not answer /_ping in 30 s")

    def log_tail(self) -> str:
        return (self.dir / "refimpld.log").read_text(errors="replace")[-3000:]

    def kill(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def api(self, method: str, path: str, body=None, timeout: float = 60):
        conn = _Unix(self.sock, timeout)
        try:
            data = json.dumps(body).encode() if body is not None else None
            conn.request(method, path if path.startswith("/_") else "/v1.44" + path, body=data,
                         headers={"Content-Type": "application/json"} if data is not None else {})
            resp = conn.getresponse()
            payload = resp.read()
            try:
                return resp.status, json.loads(payload) if payload.strip() else None
            except ValueError:
                return resp.status, payload
        finally:
            conn.close()

    def docker(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run([DOCKER, *args], capture_output=True, text=True, env=self.env,
                              timeout=timeout)


class _Unix(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float):
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.path)


def _pull_ok(d: Refimpld, ref: str) -> None:
    repo, _, tag = ref.rpartition(":")
    status, body = d.api("POST", f"/images/create?fromImage={repo}&tag={tag}")
    assert status == 200, (status, body)
    text = body.decode() if isinstance(body, bytes) else json.dumps(body)
    assert '"error' not in text and "Status:" in text, text[-500:]


# ----------------------------------------------------------------------------- the store check
class Model:
    """What was complete before a kill and must be there after it."""

    def __init__(self):
        self.images: dict[str, str] = {}          # image ID -> a tag that points at it
        self.containers: dict[str, dict] = {}     # container ID -> {"state": ..., "exit": ...}


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def check_store(d: Refimpld, model: Model, why: str) -> dict:
    """Everything the brief's list asks of a store after a restart; returns {id: inspect}."""
    problems: list[str] = []
    st, images = d.api("GET", "/images/json?all=1")
    assert st == 200, (why, st, images)
    st, containers = d.api("GET", "/containers/json?all=1")
    assert st == 200, (why, st, containers)
    for args in (("images",), ("ps", "-a")):
        p = d.docker(*args)
        assert p.returncode == 0, (why, args, p.stderr)
    image_root = d.data / "image"
    chains_in_use: set[str] = set()
    for img in images:
        st, info = d.api("GET", f"/images/{img['Id']}/json")
        assert st == 200, (why, img["Id"], info)
        parent = None
        for diff_id in info["RootFS"]["Layers"]:
            chain = _chain(parent, diff_id)
            layer = image_root / "layers" / chain.split(":")[1]
            meta = _read(layer / "layer.json")
            if not meta or meta.get("diff_id") != diff_id or meta.get("parent") != parent:
                problems.append(f"image {img['Id'][:19]}: layer {chain[:19]} missing or wrong: {meta}")
            elif not (layer / "diff").is_dir():
                problems.append(f"image {img['Id'][:19]}: layer {chain[:19]} has no diff dir")
            blob = (_read(layer / "blob.json") or {}).get("blob", "")
            if not blob or not (image_root / "blobs" / "blobs" / "sha256" / blob.split(":")[-1]).is_file():
                problems.append(f"image {img['Id'][:19]}: layer {chain[:19]} has no blob ({blob!r})")
            chains_in_use.add(chain.split(":")[1])
            parent = chain
    inspects = {}
    for c in containers:
        st, info = d.api("GET", f"/containers/{c['Id']}/json")
        assert st == 200, (why, c["Id"], info)
        inspects[c["Id"]] = info
    # nothing partial or stray
    for p in (image_root / "blobs" / "blobs" / "sha256").iterdir():
        if not HEX64.fullmatch(p.name):
            problems.append(f"partial blob {p.name}")
    for p in (image_root / "layers").iterdir():
        if not HEX64.fullmatch(p.name) or not (p / "layer.json").exists():
            problems.append(f"half-unpacked layer dir {p.name}")
        elif p.name not in chains_in_use:
            problems.append(f"layer {p.name[:12]} of no image")
    for p in _records(d.data):
        if p.name.startswith("."):
            problems.append(f"temporary record {p.relative_to(d.data)}")
    for p in (d.data / "containers").iterdir():
        if p.name not in inspects:
            problems.append(f"container dir of no container: {p.name[:12]} {sorted(os.listdir(p))}")
    running = {cid for cid, i in inspects.items() if i["State"]["Running"]}
    exec_containers = d.exec / "containers"
    for p in exec_containers.iterdir() if exec_containers.exists() else []:
        if p.name not in inspects:
            problems.append(f"exec dir of no container: {p.name[:12]}")
        for f in p.iterdir():
            if ".tmp" in f.name:
                problems.append(f"temporary file {f.relative_to(d.exec)}")
        if p.name not in running and not (p / "exit.json").exists():   # (it lingers after an exit)
            try:
                pid = int((p / "shim.pid").read_text())
            except (OSError, ValueError):
                continue
            if _alive(pid):
                problems.append(f"a supervisor runs for {p.name[:12]}, which is "
                                f"{inspects.get(p.name, {}).get('State', {}).get('Status', 'unknown')}")
    with open("/proc/self/mountinfo") as f:
        for line in f:
            if str(d.dir) in line:
                problems.append(f"mount left: {line.split()[4]}")
    brif = Path(f"/sys/class/net/{BRIDGE}/brif")
    veths = sorted(os.listdir(brif)) if brif.exists() else []
    bridged = {cid[:11] for cid in running if inspects[cid]["HostConfig"]["NetworkMode"] == "bridge"}
    for v in veths:
        if v.removeprefix("veth") not in bridged:
            problems.append(f"veth {v} of no running container")
    # everything complete before the kill is still there
    listed = {i["Id"] for i in images}
    for image_id, tag in model.images.items():
        if image_id not in listed:
            problems.append(f"image {tag} ({image_id[:19]}) lost")
        else:
            st, info = d.api("GET", f"/images/{tag}/json")
            if st != 200 or info["Id"] != image_id:
                problems.append(f"tag {tag} lost: {st}")
    for cid, want in model.containers.items():
        info = inspects.get(cid)
        if info is None:
            problems.append(f"container {cid[:12]} ({want}) lost")
            continue
        s = info["State"]
        if want["state"] == "running":
            if s["Status"] == "running":
                if not _alive(s["Pid"]):
                    problems.append(f"container {cid[:12]} is 'running' with no process {s['Pid']}")
            elif not (want.get("may_exit") is not None and s["Status"] == "exited"
                      and s["ExitCode"] == want["may_exit"]):
                problems.append(f"container {cid[:12]} was running, now {s['Status']} {s['ExitCode']}")
        elif s["Status"] != want["state"] or ("exit" in want and s["ExitCode"] != want["exit"]):
            problems.append(f"container {cid[:12]} was {want}, now {s['Status']} {s['ExitCode']}")
    assert not problems, f"{why}:\n  " + "\n  ".join(problems)
    return inspects


def _chain(parent: str | None, diff_id: str) -> str:
    import hashlib
    if parent is None:
        return diff_id
    return "sha256:" + hashlib.sha256(f"{parent} {diff_id}".encode()).hexdigest()


def _read(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _records(data: Path):
    """The files of the data root outside image layers, container file systems and volume data."""
    for dirpath, dirnames, filenames in os.walk(data):
        rel = Path(dirpath).relative_to(data).parts
        if rel[:2] == ("image", "layers") and len(rel) == 3:
            dirnames[:] = []
        elif rel[:1] == ("containers",) and len(rel) == 2:
            dirnames[:] = []
        elif rel[:1] == ("volumes",) and len(rel) == 2:
            dirnames[:] = []
        for name in filenames:
            yield Path(dirpath) / name


# ----------------------------------------------------------------------------- the test
@pytest.fixture
def env():
    workdir = Path(tempfile.mkdtemp(prefix="dsk-crash-", dir="/tmp"))
    (workdir / "docker-config").mkdir()
    server, host = start_registry(workdir / "registry")
    d = Refimpld(workdir)
    try:
        yield d, host
    finally:
        ids = {p.name for root in (d.data / "containers", d.exec / "containers") if root.exists()
               for p in root.iterdir()}
        supervisors = [p / "shim.pid" for p in (d.exec / "containers").glob("*")]
        try:
            if d.proc is None or d.proc.poll() is not None:
                d.start()
            for c in d.api("GET", "/containers/json?all=1")[1] or []:
                d.api("DELETE", f"/containers/{c['Id']}?force=1")
        except Exception:  # noqa: BLE001 - best effort; the sweep below is the backstop
            pass
        d.stop()
        _sweep(ids, supervisors)
        server.stop()
        try:
            from refimpl.network.bridge import delete_bridge
            delete_bridge(BRIDGE)
        except Exception:  # noqa: BLE001
            pass
        with open("/proc/self/mountinfo") as f:
            for line in f:
                if str(workdir) in line:
                    subprocess.run(["umount", "-l", line.split()[4]], check=False)
        shutil.rmtree(workdir, ignore_errors=True)


def _sweep(ids: set[str], supervisors: list[Path]) -> None:
    """Kill whatever is left of the containers this test made (by their cgroups and the
    supervisors' recorded PIDs) and remove their cgroups."""
    from refimpl.runtime.cgroups import Cgroup
    for pidfile in supervisors:
        try:
            pid = int(pidfile.read_text())
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if b"refimpl" in f.read():
                    os.kill(pid, signal.SIGKILL)
        except (OSError, ValueError):
            pass
    for cid in ids:
        cg = Cgroup("refimpl", cid)
        if not cg.exists():
            continue
        for pid in cg.pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if cg.frozen():
            cg.thaw()
        try:
            cg.remove(timeout=3)
        except OSError:
            pass


def _publish(host: str) -> tuple[str, str]:
    busybox = build_busybox()
    blobs = {"sha256:" + __import__("hashlib").sha256(b).hexdigest(): b
             for b in [busybox.config, *busybox.layers]}
    push_raw(host, "dsk/busybox", "latest", blobs, busybox.manifest, mf.DOCKER_MANIFEST)
    # The bigger image: busybox's layers and three layers of incompressible bytes (~6 MB).
    rng = random.Random(1)
    tars = []
    import tarfile
    for i in range(3):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
            data = rng.randbytes(2 << 20)
            ti = tarfile.TarInfo(f"big/part{i}")
            ti.size, ti.mode, ti.mtime = len(data), 0o644, 0
            tar.addfile(ti, io.BytesIO(data))
        tars.append((buf.getvalue(), f"COPY part{i}"))
    import gzip
    base = [(gzip.decompress(b), "busybox") for b in busybox.layers]
    big = assemble("big", base + tars, {"Env": [PATH_ENV], "Cmd": ["sh"]})
    blobs = {"sha256:" + __import__("hashlib").sha256(b).hexdigest(): b for b in [big.config, *big.layers]}
    push_raw(host, "dsk/big", "latest", blobs, big.manifest, mf.DOCKER_MANIFEST)
    return f"{host}/dsk/busybox:latest", f"{host}/dsk/big:latest"


def test_sigkill_at_random_points_leaves_a_consistent_store(env):
    d, host = env
    seed = int(os.environ.get("DOCKSPEC_CRASH_SEED") or random.randrange(2**32))
    print(f"crash test seed {seed} (DOCKSPEC_CRASH_SEED={seed} replays it)")
    rng = random.Random(seed)
    busybox, big = _publish(host)
    d.start()
    model = Model()
    _pull_ok(d, busybox)
    model.images[d.api("GET", f"/images/{busybox}/json")[1]["Id"]] = busybox

    def create(name: str, cmd: list[str], network: str = "none") -> str:
        st, body = d.api("POST", f"/containers/create?name={name}",
                         {"Image": busybox, "Cmd": cmd, "HostConfig": {"NetworkMode": network}})
        assert st == 201, (st, body)
        return body["Id"]

    def run(name: str, cmd: list[str], network: str = "none") -> str:
        cid = create(name, cmd, network)
        st, body = d.api("POST", f"/containers/{cid}/start")
        assert st == 204, (st, body)
        return cid

    # Containers that live through every kill: one running, one that exits while we kill, one exited.
    keep = run("dsk-keep", ["sleep", "3600"], "bridge")
    model.containers[keep] = {"state": "running"}
    late = run("dsk-late", ["sh", "-c", "sleep 4; exit 7"])
    model.containers[late] = {"state": "running", "may_exit": 7}
    done = run("dsk-done", ["sh", "-c", "exit 3"])
    assert d.api("POST", f"/containers/{done}/wait")[1]["StatusCode"] == 3
    model.containers[done] = {"state": "exited", "exit": 3}
    # The container commit works on: 3 MB of random bytes in its read-write layer.
    src = run("dsk-src", ["sh", "-c", "head -c 3000000 /dev/urandom > /payload"])
    assert d.api("POST", f"/containers/{src}/wait")[1]["StatusCode"] == 0
    model.containers[src] = {"state": "exited", "exit": 0}

    kills = 0
    timings = {}

    def crash(what: str, call, duration: float) -> None:
        """Run `call` in a thread and SIGKILL refimpld at a random point of `duration`."""
        nonlocal kills
        delay = rng.uniform(0, max(duration, 0.05))
        errors = []

        def go():
            try:
                call()
            except Exception as e:  # noqa: BLE001 - the connection dies with the daemon
                errors.append(e)
        t = threading.Thread(target=go, daemon=True)
        t.start()
        time.sleep(delay)
        d.kill()
        t.join(30)
        kills += 1
        d.start()
        check_store(d, model, f"after a kill {delay:.3f}s into {what} (seed {seed})")

    def timed(call) -> float:
        t0 = time.monotonic()
        call()
        return time.monotonic() - t0

    def can_run(ref: str, *cmd: str) -> None:
        p = d.docker("run", "--rm", "--network", "none", ref, *(cmd or ("true",)))
        assert p.returncode == 0, (ref, p.stderr)

    # --- pull
    def rmi(ref):
        st, _ = d.api("DELETE", f"/images/{ref}?force=1")
        assert st in (200, 404)
        model.images = {i: t for i, t in model.images.items() if t != ref}
    rmi(big)
    timings["pull"] = timed(lambda: _pull_ok(d, big))
    for _ in range(KILLS["pull"]):
        rmi(big)
        crash("pull", lambda: d.api("POST", f"/images/create?fromImage={big.rsplit(':', 1)[0]}&tag=latest"),
              timings["pull"])
        _pull_ok(d, big)
        can_run(big, "test", "-s", "/big/part2")
    model.images[d.api("GET", f"/images/{big}/json")[1]["Id"]] = big

    # --- commit: of the exited container with 3 MB of changes, and (every third time) of the
    # running one, which commit freezes while it reads
    def commit(tag, of=src):
        st, body = d.api("POST", f"/commit?container={of}&repo=dsk-commit&tag={tag}")
        assert st == 201, (st, body)
        return body["Id"]
    timings["commit"] = timed(lambda: commit("t0"))
    rmi("dsk-commit:t0")
    for n in range(KILLS["commit"]):
        of = keep if n % 3 == 2 else src
        crash("commit", lambda: commit(f"c{n}", of), timings["commit"])
        image_id = commit(f"c{n}", of)
        can_run(f"dsk-commit:c{n}", *(("test", "-s", "/payload") if of == src else ("true",)))
        rmi(f"dsk-commit:c{n}")        # so the next commit makes its layer again
        assert d.api("GET", f"/images/{image_id}/json")[0] == 404

    # --- create
    timings["create"] = timed(lambda: create("dsk-t0", ["true"]))
    for n in range(KILLS["create"]):
        crash("create", lambda: create(f"dsk-c{n}", ["true"]), timings["create"])
        st, body = d.api("POST", f"/containers/create?name=dsk-c{n}",
                         {"Image": busybox, "Cmd": ["true"], "HostConfig": {"NetworkMode": "none"}})
        assert st in (201, 409), (st, body)        # 409: the create before the kill completed
        info = d.api("GET", f"/containers/dsk-c{n}/json")[1]
        assert info["State"]["Status"] == "created", info["State"]
        model.containers[info["Id"]] = {"state": "created"}

    # --- start and rm, in turns
    def start(cid):
        st, body = d.api("POST", f"/containers/{cid}/start")
        assert st in (204, 304), (st, body)

    def rm(cid):
        st, body = d.api("DELETE", f"/containers/{cid}?force=1")
        assert st in (204, 404), (st, body)
    t = create("dsk-t1", ["sleep", "3600"], "bridge")
    timings["start"] = timed(lambda: start(t))
    timings["rm"] = timed(lambda: rm(t))
    for n in range(max(KILLS["start"], KILLS["rm"])):
        cid = create(f"dsk-s{n}", ["sleep", "3600"], "bridge")
        if n < KILLS["start"]:          # the container under the kill: created or running after it
            crash("start", lambda: start(cid), timings["start"])
            st = d.api("GET", f"/containers/{cid}/json")[1]["State"]
            assert st["Status"] in ("created", "running"), st
        start(cid)
        st = d.api("GET", f"/containers/{cid}/json")[1]["State"]
        assert st["Status"] == "running" and _alive(st["Pid"]), st
        p = d.docker("exec", cid, "true")
        assert p.returncode == 0, p.stderr
        model.containers[cid] = {"state": "running"}
        if n < KILLS["rm"]:
            del model.containers[cid]
            crash("rm", lambda: rm(cid), timings["rm"])
        rm(cid)
        assert d.api("GET", f"/containers/{cid}/json")[0] == 404
        assert not (d.data / "containers" / cid).exists() and not (d.exec / "containers" / cid).exists()

    check_store(d, model, f"at the end (seed {seed})")
    logged = (d.dir / "refimpld.log").read_text(errors="replace")
    print("recoveries logged: " + ", ".join(f"{k!r} {logged.count(k)}" for k in RECOVERY_LOGS))
    print(f"{kills} kills; one undisturbed run of each operation took "
          + ", ".join(f"{k} {v:.2f}s" for k, v in timings.items()))
    assert kills >= 20


# ----------------------------------------------------------------------------- one window each
# The random kills above find the windows; these lay out on disk exactly what a kill in
# one of them leaves, so each recovery is checked every run.
def _setup(d: Refimpld, host: str) -> str:
    busybox, _ = _publish(host)
    d.start()
    _pull_ok(d, busybox)
    return busybox


def _record(d: Refimpld, cid: str) -> Path:
    return d.data / "containers" / cid / "config.v2.json"


def test_a_start_the_daemon_did_not_record_is_adopted(env):
    """Killed after the process exec'd but before the record said "running": at the next
    start the container is running (or, if it ended meanwhile, exited with its code)."""
    d, host = env
    busybox = _setup(d, host)
    cids = {}
    for name, cmd in (("dsk-run", ["sleep", "3600"]), ("dsk-end", ["sh", "-c", "exit 5"])):
        st, body = d.api("POST", f"/containers/create?name={name}",
                         {"Image": busybox, "Cmd": cmd, "HostConfig": {"NetworkMode": "none"}})
        assert st == 201, body
        cids[name] = body["Id"]
    before = {cid: _read(_record(d, cid)) for cid in cids.values()}     # as create left them
    for cid in cids.values():
        assert d.api("POST", f"/containers/{cid}/start")[0] == 204
    d.api("POST", f"/containers/{cids['dsk-end']}/wait")
    d.kill()
    for cid, rec in before.items():          # the record as it was before the start
        _record(d, cid).write_text(json.dumps(rec))
    d.start()
    run = d.api("GET", f"/containers/{cids['dsk-run']}/json")[1]
    assert run["State"]["Status"] == "running" and _alive(run["State"]["Pid"]), run["State"]
    started = _read(d.exec / "containers" / cids["dsk-run"] / "started.json")
    assert run["State"]["StartedAt"] == started["started_at"]
    assert d.docker("exec", cids["dsk-run"], "true").returncode == 0
    end = d.api("GET", f"/containers/{cids['dsk-end']}/json")[1]["State"]
    assert (end["Status"], end["ExitCode"]) == ("exited", 5), end
    assert d.api("POST", f"/containers/{cids['dsk-run']}/stop?t=0")[0] == 204


@pytest.mark.parametrize("recorded", ["created", "restarting"])
def test_a_supervisor_whose_container_never_started_is_stopped(env, recorded):
    """Killed between spawning the supervisor and starting the process (a start, or a restart
    by the restart policy): the next start-up ends the set-up container, the container is as
    it was recorded (created; or exited with its last exit code), and a start then works."""
    from refimpl.runtime import ContainerSpec, spawn
    d, host = env
    busybox = _setup(d, host)
    st, body = d.api("POST", "/containers/create?name=dsk-never",
                     {"Image": busybox, "Cmd": ["sleep", "3600"], "HostConfig": {"NetworkMode": "none"}})
    assert st == 201, body
    cid = body["Id"]
    g = d.api("GET", f"/containers/{cid}/json")[1]["GraphDriver"]["Data"]
    d.kill()
    state = d.exec / "containers" / cid
    shim = spawn(ContainerSpec(id=cid, lower_dirs=g["LowerDir"].split(":"), upper_dir=g["UpperDir"],
                               work_dir=g["WorkDir"], merged_dir=g["MergedDir"], args=["sleep", "3600"],
                               cgroup_parent="refimpl", log_path=str(d.data / "containers" / cid / "x.log")),
                 str(state))
    supervisor = shim.supervisor_pid()
    assert _alive(supervisor) and not shim.status()["started"]
    if recorded == "restarting":
        rec = _read(_record(d, cid))
        rec.update(state="restarting", exit_code=3, has_started=True, started_at="2026-01-01T00:00:00Z",
                   finished_at="2026-01-01T00:00:01Z")
        _record(d, cid).write_text(json.dumps(rec))
    d.start()
    assert not _alive(supervisor)
    info = d.api("GET", f"/containers/{cid}/json")[1]
    if recorded == "created":
        assert info["State"]["Status"] == "created", info["State"]
    else:
        assert (info["State"]["Status"], info["State"]["ExitCode"]) == ("exited", 3), info["State"]
    assert d.api("POST", f"/containers/{cid}/start")[0] == 204
    assert d.api("GET", f"/containers/{cid}/json")[1]["State"]["Status"] == "running"
    assert d.api("DELETE", f"/containers/{cid}?force=1")[0] == 204


def test_a_create_or_rm_cut_short_leaves_no_container_dir(env):
    """A container dir without its record (a create killed before the record was written, an
    rm killed after it deleted the record), an exec dir of no container and temporary
    records are removed at start-up; the name is free again."""
    d, host = env
    busybox = _setup(d, host)
    st, body = d.api("POST", "/containers/create?name=dsk-gone",
                     {"Image": busybox, "Cmd": ["true"], "HostConfig": {"NetworkMode": "none"}})
    gone = body["Id"]
    st, body = d.api("POST", "/containers/create?name=dsk-stays",
                     {"Image": busybox, "Cmd": ["true"], "HostConfig": {"NetworkMode": "none"}})
    stays = body["Id"]
    d.kill()
    _record(d, gone).unlink()                                  # what rm does first
    half = d.data / "containers" / ("f" * 64)
    for sub in ("upper", "work", "merged"):                    # a create before its record
        (half / sub).mkdir(parents=True)
    (d.exec / "containers" / ("f" * 64)).mkdir(parents=True)
    (d.exec / "containers" / stays).mkdir(parents=True)         # a start killed writing its spec
    (d.exec / "containers" / stays / "spec.json.tmp").write_text("{")
    (_record(d, stays).parent / ".config.v2.json.tmp-1234abcd").write_text("{")
    (d.data / "network" / ".bridge.json.tmp-1234abcd").write_text("{")
    net = _read(d.data / "network" / "bridge.json")          # an endpoint of no container
    import ipaddress
    ip = str(ipaddress.ip_network(net["Pool"]["Subnet"])[200])
    net["Endpoints"]["f" * 64] = {"IPAddress": ip, "IPPrefixLen": 16, "Gateway": net["Pool"]["Gateway"],
                                  "MacAddress": "02:42:00:00:00:01", "EndpointID": "e" * 64,
                                  "NetworkID": net["Ids"]["bridge"], "Veth": "veth" + "f" * 11}
    net["Pool"]["Allocated"] = sorted(net["Pool"]["Allocated"] + [ip])
    (d.data / "network" / "bridge.json").write_text(json.dumps(net))
    d.start()
    net = _read(d.data / "network" / "bridge.json")
    assert "f" * 64 not in net["Endpoints"] and ip not in net["Pool"]["Allocated"]
    assert sorted(os.listdir(d.data / "containers")) == [stays]
    assert not (d.exec / "containers" / ("f" * 64)).exists()
    assert not (d.exec / "containers" / stays).exists()
    assert sorted(os.listdir(_record(d, stays).parent)) == ["config.v2.json", "merged", "upper", "work"]
    assert not list((d.data / "network").glob(".*"))
    assert d.api("GET", f"/containers/{gone}/json")[0] == 404
    st, body = d.api("POST", "/containers/create?name=dsk-gone",
                     {"Image": busybox, "Cmd": ["true"], "HostConfig": {"NetworkMode": "none"}})
    assert st == 201, body


def test_a_container_frozen_by_a_commit_cut_short_runs_again(env):
    """commit freezes a running container while it reads its changes; killed then, the
    daemon finds the container frozen though nobody paused it, and thaws it."""
    from refimpl.runtime import Shim
    d, host = env
    busybox = _setup(d, host)
    st, body = d.api("POST", "/containers/create?name=dsk-frozen",
                     {"Image": busybox, "Cmd": ["sleep", "3600"], "HostConfig": {"NetworkMode": "none"}})
    cid = body["Id"]
    assert d.api("POST", f"/containers/{cid}/start")[0] == 204
    d.kill()
    shim = Shim.find(str(d.exec / "containers" / cid))
    shim.pause()                                      # what commit does before reading
    assert shim.status()["paused"]
    d.start()
    info = d.api("GET", f"/containers/{cid}/json")[1]["State"]
    assert info["Status"] == "running" and not info["Paused"], info
    assert not shim.status()["paused"]
    assert d.docker("exec", cid, "true").returncode == 0
