"""Classic builds through the same docker CLI: refimpld against dockerd.

    python -m bench.build [--reps 3] [--out bench/results/build.json]

A 10-instruction Dockerfile (FROM, ENV, two RUNs, two COPYs, WORKDIR, LABEL,
EXPOSE, CMD) over the suite's offline busybox, built with DOCKER_BUILDKIT=0:
* cold: `build --no-cache` (every step runs);
* cached: the same build again (every step "Using cache").
refimpld runs from this tree with its own data root and bridge (dsbl…); dockerd
is the host's, given the busybox image under a tag of its own (saved from
refimpld and loaded) which is removed afterwards with every image built here.
The median of the repetitions is reported with the ratio refimpld / dockerd
(below 1: refimpld is faster).
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

DOCKERFILE = """\
FROM {base}
ENV APP=/srv/app MODE=bench
RUN mkdir -p /srv/app && echo built > /srv/app/built.txt
COPY a.txt /srv/app/a.txt
RUN cat /srv/app/a.txt > /srv/app/copy.txt
WORKDIR /srv/app
COPY dir/ /srv/app/dir/
LABEL org.example.bench=build
EXPOSE 8080
CMD ["cat", "/srv/app/built.txt"]
"""


def _docker(env: dict, *args: str) -> subprocess.CompletedProcess:
    p = subprocess.run(["docker", *args], env=env, capture_output=True, text=True, timeout=300)
    if p.returncode:
        raise RuntimeError(f"docker {' '.join(args)}: {p.stderr.strip()}")
    return p


def _timed(env: dict, *args: str) -> float:
    t = time.perf_counter()
    _docker(env, *args)
    return time.perf_counter() - t


def run(reps: int) -> dict:
    from tests.engine.test_containers_helpers import Daemon
    d = Daemon()
    d.bridge = "dsbl" + secrets.token_hex(4)
    ours = dict(d.env, DOCKER_BUILDKIT="0")
    theirs = {k: v for k, v in ours.items() if k != "DOCKER_HOST"}
    base_tag = f"dsbl-bench-busybox:{secrets.token_hex(4)}"
    built: list[str] = []
    results: dict = {"refimpld": {"cold": [], "cached": []}, "dockerd": {"cold": [], "cached": []}}
    with tempfile.TemporaryDirectory(prefix="dsbl-bench-") as tmp:
        try:
            d.prepare().start()
            archive = Path(tmp) / "busybox.tar"
            _docker(ours, "tag", "busybox", base_tag)
            _docker(ours, "save", "-o", str(archive), base_tag)
            _docker(theirs, "load", "-i", str(archive))
            ctx = Path(tmp) / "ctx"
            (ctx / "dir").mkdir(parents=True)
            (ctx / "Dockerfile").write_text(DOCKERFILE.format(base=base_tag))
            (ctx / "a.txt").write_text("a\n")
            for i in range(20):
                (ctx / "dir" / f"f{i}.txt").write_text(f"file {i}\n" * 50)
            for _ in range(reps):
                for name, env in (("dockerd", theirs), ("refimpld", ours)):
                    tag = f"dsbl-bench:{secrets.token_hex(4)}"
                    built.append(tag) if name == "dockerd" else None
                    results[name]["cold"].append(_timed(env, "build", "--no-cache", "-t", tag, str(ctx)))
                    results[name]["cached"].append(_timed(env, "build", "-t", tag, str(ctx)))
        finally:
            for tag in built + [base_tag]:
                subprocess.run(["docker", "rmi", "-f", tag], env=theirs, capture_output=True)
            d.cleanup()
    out = {}
    for phase in ("cold", "cached"):
        r, k = statistics.median(results["refimpld"][phase]), statistics.median(results["dockerd"][phase])
        out[phase] = {"refimpld_s": round(r, 3), "dockerd_s": round(k, 3), "ratio": round(r / k, 2)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--out")
    a = ap.parse_args()
    res = run(a.reps)
    for phase, r in res.items():
        print(f"{phase:7} refimpld {r['refimpld_s']:.3f}s  dockerd {r['dockerd_s']:.3f}s  ratio {r['ratio']}")
    if a.out:
        os.makedirs(os.path.dirname(a.out) or ".", exist_ok=True)
        with open(a.out, "w") as f:
            json.dump({"reps": a.reps, "results": res}, f, indent=2)


if __name__ == "__main__":
    main()
