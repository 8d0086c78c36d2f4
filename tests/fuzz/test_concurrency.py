"""Over 200 Engine API requests at once against one refimpld: list, inspect, create,
start, rm (and pairs of creates racing for one name), each on its own connection
from a pool of 48 threads, in a shuffled order. Every answer must be the right
one, and the state afterwards must be exactly what the requests asked for."""
from __future__ import annotations

import json
import random
import time
from concurrent.futures import ThreadPoolExecutor

from .conftest import log_problems

BODY = {"Image": "busybox", "Cmd": ["true"], "HostConfig": {"NetworkMode": "none"}}


def call(daemon, method: str, path: str, body=None):
    data = json.dumps(body).encode() if body is not None else None
    status, raw, _ = daemon.api(method, "/v1.44" + path, data,
                                {"Content-Type": "application/json"} if data is not None else None)
    return status, (json.loads(raw) if raw.strip() else None)


def test_concurrent_mixed_requests(refimpld):
    d = refimpld
    stable = [call(d, "POST", f"/containers/create?name=stable{i}", BODY)[1]["Id"] for i in range(5)]
    to_start = [call(d, "POST", f"/containers/create?name=start{i}", BODY)[1]["Id"] for i in range(20)]
    to_rm = [call(d, "POST", f"/containers/create?name=rm{i}", BODY)[1]["Id"] for i in range(20)]

    def lister():
        status, rows = call(d, "GET", "/containers/json?all=1")
        assert status == 200 and isinstance(rows, list)
        ids = {r["Id"] for r in rows}
        assert set(stable) <= ids and set(to_start) <= ids          # never removed, always listed
        return "list"

    def inspector(cid):
        def run():
            status, doc = call(d, "GET", f"/containers/{cid}/json")
            assert status == 200 and doc["Id"] == cid and doc["Name"].startswith("/stable"), (status, doc)
            return "inspect"
        return run

    def creator(name, expect=(201,)):
        def run():
            status, doc = call(d, "POST", f"/containers/create?name={name}", BODY)
            assert status in expect, (name, status, doc)
            return ("create", name, status)
        return run

    def starter(cid):
        def run():
            status, doc = call(d, "POST", f"/containers/{cid}/start")
            assert status == 204, (status, doc)
            return "start"
        return run

    def remover(cid):
        def run():
            status, doc = call(d, "DELETE", f"/containers/{cid}")
            assert status == 204, (status, doc)
            return "rm"
        return run

    jobs = [lister] * 60 + [inspector(stable[i % 5]) for i in range(60)]
    jobs += [creator(f"new{i}") for i in range(40)]
    jobs += [starter(c) for c in to_start] + [remover(c) for c in to_rm]
    jobs += [creator(f"race{i}", (201, 409)) for i in range(12) for _ in range(2)]
    random.Random(7).shuffle(jobs)
    assert len(jobs) >= 200
    t0 = time.monotonic()
    with ThreadPoolExecutor(max_workers=48) as pool:
        results = list(pool.map(lambda job: job(), jobs))
    elapsed = time.monotonic() - t0
    print(f"{len(jobs)} concurrent requests answered in {elapsed:.2f} s")

    races = {}
    for r in results:
        if isinstance(r, tuple) and r[1].startswith("race"):
            races.setdefault(r[1], []).append(r[2])
    assert all(sorted(v) == [201, 409] for v in races.values()), races   # one winner per name

    # The state is what was asked for.
    status, rows = call(d, "GET", "/containers/json?all=1")
    names = {r["Names"][0].lstrip("/") for r in rows}
    expected = ({f"stable{i}" for i in range(5)} | {f"start{i}" for i in range(20)}
                | {f"new{i}" for i in range(40)} | {f"race{i}" for i in range(12)})
    assert expected <= names and not any(n.startswith("rm") for n in names), names - expected
    for cid in to_rm:
        assert call(d, "GET", f"/containers/{cid}/json")[0] == 404
    deadline = time.monotonic() + 20
    for cid in to_start:
        while True:
            state = call(d, "GET", f"/containers/{cid}/json")[1]["State"]
            if state["Status"] == "exited" or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert state["Status"] == "exited" and state["ExitCode"] == 0, state
    assert not log_problems(d)


def test_pause_racing_the_exit_is_a_conflict(refimpld):
    """`pause` right after `start` of a container that exits at once: the process may be
    gone (and its cgroup with it) before refimpld has seen the exit. The answer is 204 or
    409, never an unhandled error; unpause answers as Docker does (500 "is not paused")."""
    d = refimpld
    for i in range(15):
        cid = call(d, "POST", f"/containers/create?name=racer{i}", BODY)[1]["Id"]
        assert call(d, "POST", f"/containers/{cid}/start")[0] == 204
        for _ in range(3):
            status, doc = call(d, "POST", f"/containers/{cid}/pause")
            assert status in (204, 409), (status, doc)
            status, doc = call(d, "POST", f"/containers/{cid}/unpause")
            assert status in (204, 409) or (status == 500 and doc["message"].endswith("is not paused")), doc
        call(d, "DELETE", f"/containers/{cid}?force=1")
    assert not log_problems(d), log_problems(d)[:5]
