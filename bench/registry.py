"""Push and pull throughput of the Debian test image: refimpl-registry against Debian's docker-registry.

    python -m bench.registry [--reps 5] [--out bench/results/registry.json]

One run starts both registries side by side (conformance.registries.start, plain
HTTP on 127.0.0.1, storage in a temporary directory each), builds the suite's
Debian image once (conformance.images.build_debian, about 30 MB gzipped), then
for each repetition and each registry, alternating so neither always goes
first:

* push: the suite's own push client (conformance.images.push) into a fresh
  repository, so every blob is uploaded (POST, then PUT with the whole blob);
* pull: GET the manifest and every blob (conformance.registries.Client.pull),
  each checked against its digest and thrown away.

MB/s counts the manifest, config and layer bytes moved (1 MB = 10^6 bytes). The
median of the repetitions is reported per registry, with the ratio
refimpl / distribution (above 1: refimpl-registry is faster), as a table and as
JSON. Both servers and the client share this machine's cores, so the figures
compare the servers under the same load rather than measure a network.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from conformance import images, registries, services

ROOT = Path(__file__).resolve().parent.parent
KINDS = ("refimpl", "distribution")


def mb_per_s(nbytes: int, seconds: float) -> float:
    return nbytes / 1e6 / seconds if seconds > 0 else float("inf")


def summarise(samples: dict[str, dict[str, list[float]]]) -> dict:
    """{kind: {"push": [MB/s, ...], "pull": [...]}} -> medians and refimpl/distribution ratios."""
    out = {"median_mb_s": {k: {op: round(statistics.median(v), 1) for op, v in ops.items()}
                           for k, ops in samples.items()}}
    med = out["median_mb_s"]
    out["ratio_refimpl_over_distribution"] = {
        op: round(med["refimpl"][op] / med["distribution"][op], 2) for op in ("push", "pull")}
    return out


def table(summary: dict) -> str:
    med, ratio = summary["median_mb_s"], summary["ratio_refimpl_over_distribution"]
    rows = [("", "refimpl-registry", "docker-registry", "ratio")]
    rows += [(f"{op} MB/s", f"{med['refimpl'][op]:.1f}", f"{med['distribution'][op]:.1f}", f"{ratio[op]:.2f}")
             for op in ("push", "pull")]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    return "\n".join("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths)))
                     for r in rows)


def run(reps: int) -> dict:
    built = images.build_debian()
    size = len(built.manifest) + len(built.config) + sum(len(b) for b in built.layers)
    started = {k: registries.start(k) for k in KINDS}
    samples = {k: {"push": [], "pull": []} for k in KINDS}
    try:
        for rep in range(reps):
            for kind in (KINDS if rep % 2 == 0 else KINDS[::-1]):
                reg = started[kind]
                repo = f"bench/debian-{rep}"
                t0 = time.perf_counter()
                images.push(built, reg.address, repo)
                samples[kind]["push"].append(mb_per_s(size, time.perf_counter() - t0))
                t0 = time.perf_counter()
                pulled = registries.Client(reg.address).pull(repo, "latest", sink=lambda chunk: None)
                samples[kind]["pull"].append(mb_per_s(pulled, time.perf_counter() - t0))
    finally:
        for reg in started.values():
            reg.stop()
    return {"image": "debian (conformance.images.build_debian)", "bytes": size, "layers": len(built.layers),
            "repetitions": reps, "samples_mb_s": {k: {op: [round(x, 1) for x in v] for op, v in ops.items()}
                                                  for k, ops in samples.items()},
            **summarise(samples), "registries": {"refimpl": "refimpl-registry", "distribution": _registry_version()},
            "client": "conformance.images.push (POST + PUT per blob); registries.Client.pull (GET manifest + blobs)",
            "host": platform.node(), "kernel": platform.release(), "python": platform.python_version(),
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}


def _registry_version() -> str:
    try:
        out = subprocess.run(["docker-registry", "--version"], capture_output=True, text=True, timeout=10).stdout
        return out.strip() or "docker-registry"
    except OSError:
        return "docker-registry"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.registry", description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5, help="repetitions per registry (default 5)")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "registry.json"))
    args = parser.parse_args(argv)
    if args.reps < 1:
        parser.error("--reps must be at least 1")
    try:
        result = run(args.reps)
    except (services.ServiceError, images.ImageError, registries.RegistryClientError) as e:
        print(f"bench.registry: {e}", file=sys.stderr)
        return 1
    print(f"{result['bytes'] / 1e6:.1f} MB image, {args.reps} repetitions, median MB/s\n")
    print(table(result))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"\nwritten to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
