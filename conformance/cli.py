"""`conformance`: the suite's command line.

  conformance services up [docker] [podman]   start what is not running (state in /run/dockspec)
  conformance services down                   stop what `up` started, and nothing else
  conformance images                          build the offline images and push them
  conformance check-steps                     fail when a step line matches 0 or 2+ definitions
  conformance run-all --results DIR T1 T2 …   run the suite once per target
  conformance report --results DIR --out DIR  merge results into compat.md and compat.html
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0
    cmd, rest = argv[0], argv[1:]
    try:
        if cmd == "services":
            return _services(rest)
        if cmd == "images":
            from . import images, services
            svc = services.up([])
            for name, info in images.publish(svc.registry).items():
                print(f"{name}: {info['ref']} {info['digest']}")
            svc.save()
            return 0
        if cmd == "check-steps":
            from .stepcheck import check
            problems = check(ROOT / "features")
            for p in problems:
                print(p, file=sys.stderr)
            print(f"check-steps: {len(problems)} problem(s)" if problems else "check-steps: every step line matches one definition")
            return 1 if problems else 0
        if cmd == "run-all":
            return _run_all(rest)
        if cmd == "report":
            from . import report
            return report.main(rest)
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # noqa: BLE001 - one line, not a traceback, for known failures
        from .images import ImageError
        from .services import ServiceError
        from .targets import TargetError
        if isinstance(e, (ImageError, ServiceError, TargetError)):
            print(f"conformance {cmd}: {e}", file=sys.stderr)
            return 2
        raise
    print(f"conformance: unknown command {cmd!r} (see conformance --help)", file=sys.stderr)
    return 2


def _services(rest: list[str]) -> int:
    from . import services
    if not rest or rest[0] not in ("up", "down"):
        print("usage: conformance services up [docker] [podman] | down", file=sys.stderr)
        return 2
    if rest[0] == "up":
        svc = services.up(rest[1:] or ["docker"])
        print(f"registry {svc.registry}; " + "; ".join(f"{k} {v}" for k, v in svc.endpoints.items()))
        return 0
    services.Services.load().stop()
    print("services: stopped what was started")
    return 0


def _run_all(rest: list[str]) -> int:
    p = argparse.ArgumentParser(prog="conformance run-all")
    p.add_argument("--results", default="reports/results")
    p.add_argument("targets", nargs="+")
    a = p.parse_args(rest)
    from .targets import Target, TargetError
    worst = 0
    Path(a.results).mkdir(parents=True, exist_ok=True)
    for name in a.targets:
        try:
            Target.named(name)
        except TargetError as e:
            print(f"run-all: {e}", file=sys.stderr)
            worst = 2
            continue
        print(f"run-all: target {name}", flush=True)
        rc = subprocess.call([sys.executable, "-m", "pytest", str(ROOT / "conformance"), "-q",
                              "--target", name, "--results", f"{a.results}/{name}.jsonl"], cwd=ROOT)
        # 1 = some scenarios failed: recorded in the results, not fatal for the report.
        if rc not in (0, 1):
            print(f"run-all: target {name} could not run (pytest exit {rc})", file=sys.stderr)
            worst = max(worst, 1)
    return worst
