"""Start N containers on one user-defined network until all resolve each other by name:
refimpld against dockerd, both driven by the same docker CLI.

    python -m bench.network [--containers 20] [--reps 3]

Each repetition creates a fresh network, starts N `sleep` containers on it with
`run -d`, then waits until every container resolves every other one's name
(one `exec … nslookup` per container, all names at once), and removes it all.
The time is from the first `run -d` to the last successful resolution. Medians
and the refimpld/dockerd ratio go to stdout and bench/results/network.json.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from .engine import ROOT, BenchError, Engine, _cleanup_refimpld, start_refimpld

RESOLVE = ("for n in {names}; do nslookup $n >/dev/null 2>&1 || ping -c 1 -W 1 $n >/dev/null 2>&1 "
           "|| exit 1; done")


def one_round(eng: Engine, image: str, n: int, tag: str) -> float:
    net = f"dsbench-{tag}"
    names = [f"dsbench-{tag}-{i}" for i in range(n)]
    eng.docker("network", "create", net)
    try:
        t0 = time.perf_counter()
        for name in names:
            eng.docker("run", "-d", "--name", name, "--network", net, image, "sleep", "600")
        pending = list(names)
        deadline = time.monotonic() + 120
        while pending:
            if time.monotonic() > deadline:
                raise BenchError(f"{eng.name}: names not resolved within 120 s: {pending[:3]}")
            name = pending[0]
            others = " ".join(x for x in names if x != name)
            r = eng.docker("exec", name, "sh", "-c", RESOLVE.format(names=others), check=False)
            if r.returncode == 0:
                pending.pop(0)
            else:
                time.sleep(0.1)
        return time.perf_counter() - t0
    finally:
        eng.docker("rm", "-f", *names, check=False)
        eng.docker("network", "rm", net, check=False)


def run(n: int, reps: int) -> dict:
    from conformance import images, registries
    run_id = os.urandom(3).hex()
    reg = registries.start("refimpl")
    work = Path(tempfile.mkdtemp(prefix="dockspec-bench-net-", dir="/tmp"))
    proc = bridge = None
    image = ""
    engines: list[Engine] = []
    try:
        busybox = images.build_busybox()
        images.push(busybox, reg.address, f"bench-{run_id}/busybox")
        image = f"{reg.address}/bench-{run_id}/busybox"
        proc, bridge, host = start_refimpld(work, reg.address)
        engines = [Engine("dockerd", os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")),
                   Engine("refimpld", host, proc.pid)]
        for e in engines:
            e.docker("pull", "-q", image)
        samples: dict[str, list[float]] = {e.name: [] for e in engines}
        for rep in range(reps):
            for e in (engines if rep % 2 == 0 else engines[::-1]):
                samples[e.name].append(one_round(e, image, n, f"{run_id}{rep}"))
        med = {k: statistics.median(v) for k, v in samples.items()}
        return {"containers": n, "reps": reps, "seconds": samples, "median_s": med,
                "ratio": round(med["refimpld"] / med["dockerd"], 2),
                "load_average": round(os.getloadavg()[0], 2)}
    finally:
        for e in engines:
            if image:
                e.docker("rmi", "-f", image, check=False)
        if proc is not None:
            proc.terminate()
            proc.wait(20)
        _cleanup_refimpld(work, bridge)
        reg.stop()
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench.network", description=__doc__.splitlines()[0])
    p.add_argument("--containers", type=int, default=20)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--json", default=str(ROOT / "bench" / "results" / "network.json"))
    a = p.parse_args(argv)
    if os.geteuid() != 0:
        print("bench.network: refimpld needs root (namespaces, mounts, cgroups)", file=sys.stderr)
        return 1
    try:
        result = run(a.containers, a.reps)
    except (BenchError, OSError) as e:
        print(f"bench.network: {e}", file=sys.stderr)
        return 1
    m = result["median_s"]
    print(f"{a.containers} containers on one user network until all resolve each other by name "
          f"(median of {a.reps}): dockerd {m['dockerd']:.2f} s, refimpld {m['refimpld']:.2f} s, "
          f"ratio {result['ratio']}")
    Path(a.json).parent.mkdir(parents=True, exist_ok=True)
    Path(a.json).write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
