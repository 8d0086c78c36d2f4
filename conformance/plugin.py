"""The pytest plugin behind the suite: options, target selection, statuses, results.

* `--target NAME` (default $DOCKSPEC_TARGET, else "docker") selects the target.
* `--registry-prefix HOST:PORT/PATH` points the suite at images already pushed
  somewhere; without it the suite builds its offline images and pushes them to
  the local registry that conformance/services.py starts.
* `--results FILE` writes one JSON line per scenario (see conformance/report.py).

Tags: `@spec:<area>.<clause>` becomes a `spec` mark; `@needs:<capability>` a
`needs` mark, checked against the capabilities probed once per run. Expected
divergences come from conformance/expectations/<target>.toml and turn into
strict xfail marks, so an unexpected pass fails the run as loudly as a failure.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
import tomllib
from datetime import datetime, timezone
from pathlib import Path

import pytest

from . import images as images_mod
from . import services
from .targets import Target, TargetError, probe

ROOT = Path(__file__).resolve().parent.parent
EXPECTATIONS = Path(__file__).with_name("expectations")

# Exceptions that mean "the target did not behave as specified", as opposed to
# the harness breaking.
FAIL_TYPES = (AssertionError, TimeoutError, json.JSONDecodeError)


def pytest_addoption(parser):
    g = parser.getgroup("dockspec")
    g.addoption("--target", default=os.environ.get("DOCKSPEC_TARGET", "docker"),
                help="the target to run the features against (see conformance/targets.toml)")
    g.addoption("--registry-prefix", default=os.environ.get("DOCKSPEC_REGISTRY_PREFIX", ""),
                help="HOST:PORT/PATH under which the test images (busybox, debian) already exist")
    g.addoption("--results", default=os.environ.get("DOCKSPEC_RESULTS", ""),
                help="write per-scenario results as JSON lines to this file")


# --------------------------------------------------------------------------- tags

@pytest.hookimpl(tryfirst=True)
def pytest_bdd_apply_tag(tag, function):
    kind, sep, value = tag.partition(":")
    if sep and kind == "area":
        return True
    if sep and kind in ("spec", "needs"):
        getattr(pytest.mark, kind)(value)(function)
        return True
    return None


def _scenario_of(item):
    try:
        from pytest_bdd.scenario import scenario_wrapper_template_registry as reg
        return reg.get(getattr(item, "obj", None))
    except Exception:  # noqa: BLE001 - older or newer pytest-bdd: fall back to the docstring
        return None


def scenario_meta(item) -> dict:
    sc = _scenario_of(item)
    if sc is not None:
        feature_file = Path(sc.feature.filename).name
        return {"feature": feature_file, "feature_name": sc.feature.name, "scenario": sc.name}
    doc = (getattr(item, "obj", None).__doc__ or "") if hasattr(item, "obj") else ""
    fname, _, sname = doc.partition(": ")
    return {"feature": fname, "feature_name": fname, "scenario": sname or item.name}


def load_expectations(target: str) -> dict[str, dict]:
    path = EXPECTATIONS / f"{target}.toml"
    if not path.exists():
        return {}
    data = tomllib.loads(path.read_text())
    return {k: v for k, v in data.items() if isinstance(v, dict)}


@pytest.hookimpl(tryfirst=True)   # before -k deselects: the feature file is a keyword
def pytest_collection_modifyitems(config, items):
    target = config.getoption("--target")
    if any(item.get_closest_marker("spec") for item in items):
        try:
            Target.named(target)
        except TargetError as e:
            raise pytest.UsageError(f"dockspec: {e}") from None
    expected = {**registry_expectations(), **load_expectations(target)}
    for item in items:
        if item.get_closest_marker("spec") is None:
            continue
        meta = scenario_meta(item)
        item.extra_keyword_matches.add(meta["feature"])    # -k "registry.feature or ..."
        key = f"{meta['feature']}::{meta['scenario']}"
        exp = expected.get(key)
        if exp and exp.get("status", "xfail") == "xfail":
            reason = exp.get("reason", "known divergence")
            link = exp.get("link", "")
            item.add_marker(pytest.mark.xfail(reason=f"{reason}" + (f" ({link})" if link else ""),
                                              strict=True))
            item.stash[EXPECT_KEY] = exp


def registry_expectations() -> dict[str, dict]:
    """Known divergences of the registry server under test (DOCKSPEC_REGISTRY_KIND), from
    expectations/registry-<kind>.toml: they hold whichever engine the target is."""
    try:
        return load_expectations(f"registry-{services.registry_kind()}")
    except services.ServiceError:
        return {}


EXPECT_KEY = pytest.StashKey[dict]()
STEP_KEY = pytest.StashKey[dict]()


# --------------------------------------------------------------------------- session

class Session:
    """What the run shares: the target, the services, the images, the results file."""

    def __init__(self, config):
        self.config = config
        self.target: Target | None = None
        self.services: services.Services | None = None
        self.started_here = False
        self.images: dict[str, dict] = {}
        self.results_path = config.getoption("--results")
        self.results = None
        self.error: str | None = None
        self.example_plugin = None     # the example volume plugin, started on first use

    def volume_plugin(self):
        """The example volume plugin serving this run (started the first time a scenario names it)."""
        if self.example_plugin is None:
            from .volume_plugins import ExampleDriver
            self.example_plugin = ExampleDriver()
        return self.example_plugin

    def setup(self) -> Target:
        if self.target is not None:
            return self.target
        if self.error:
            pytest.fail(self.error, pytrace=False)
        name = self.config.getoption("--target")
        try:
            target = Target.named(name)
            if target.service not in ("docker", "podman", "refimpl"):
                target.check_alive()      # an engine the suite does not start itself
            before = services.Services.load()
            before_pids = {s.pid for s in before.started}
            need = ["registry"] if self.config.getoption("--registry-prefix") else ["registry"]
            if target.service in ("docker", "podman"):
                need.append(target.service)
            self.services = services.up(need)
            self.started_here = {s.pid for s in self.services.started if s.pid not in before_pids}
            if target.service == "podman":
                target.base_env = services.podman_env(self.services)
            if target.service == "refimpl":
                from . import refimpl_service
                refimpl_service.ensure(self.services, target)
            # What this session started (and stops at its end); the rest was running before.
            self.started_here = {s.pid for s in self.services.started if s.pid not in before_pids}
            target.check_alive()
            target.capabilities = probe(target)
            if target.service == "docker" and not target.capabilities.get("legacy-plugins"):
                from .volume_plugins import why_not_dockerd
                target.capabilities["legacy-plugins"] = why_not_dockerd(self.services, self.started_here)
            prefix = self.config.getoption("--registry-prefix")
            if prefix:
                self.images = {n: {"ref": f"{prefix}/{n}:latest", "repo": f"{prefix}/{n}",
                                   "registry": prefix.split("/")[0]} for n in images_mod.BUILDERS}
            else:
                self.images = images_mod.publish(self.services.registry)
                for v in self.images.values():
                    v["registry"] = self.services.registry
        except (TargetError, services.ServiceError, images_mod.ImageError) as e:
            self.error = str(e)
            pytest.exit(f"dockspec: {e}", returncode=3)
        self.target = target
        self._open_results()
        return target

    @property
    def column(self) -> str:
        """The report column: the target, and the registry when it is not the default kind."""
        kind = self.services.registry_kind if self.services else "distribution"
        return self.target.name if kind == "distribution" else f"{self.target.name}+{kind}-registry"

    def _open_results(self):
        if not self.results_path:
            return
        Path(self.results_path).parent.mkdir(parents=True, exist_ok=True)
        self.results = open(self.results_path, "w")
        t = self.target
        v = t.version()
        run = {"type": "run", "target": self.column, "cli": " ".join(t.cli), "endpoint": t.endpoint,
               "version": v.get("Version", "?"), "api_version": v.get("ApiVersion", "?"),
               "suite_commit": _git_commit(), "kernel": platform.release(),
               "date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
               "registry": (f"{self.services.registry} ({self.services.registry_kind})"
                            if self.services else ""),
               "host": _host_name()}
        self.write(run)

    def write(self, record: dict) -> None:
        if self.results:
            self.results.write(json.dumps(record) + "\n")
            self.results.flush()

    def teardown(self) -> None:
        from . import second
        second.stop_all()
        if self.example_plugin is not None:
            self.example_plugin.stop()
            self.example_plugin = None
        if self.results:
            self.results.close()
        if self.target is not None and self.images:
            _remove_suite_images(self.target, self.images)
        if self.services is not None and self.started_here and not os.environ.get("DOCKSPEC_KEEP_SERVICES"):
            self.services.stop(only=self.started_here)
            if self.target is not None and self.target.service == "refimpl":
                from . import refimpl_service
                refimpl_service.cleanup()


def _remove_suite_images(target: Target, imgs: dict) -> None:
    """Remove the local copies of the suite's images (names the suite made up)."""
    repos = {v["repo"] for v in imgs.values()}
    r = target.run(["images", "--digests", "--format", "{{.Repository}}:{{.Tag}} {{.Repository}}@{{.Digest}}"])
    for ref in r.out.split():
        if ref.endswith((":<none>", "@<none>")):
            continue
        if ref.rsplit(":", 1)[0] in repos or ref.split("@", 1)[0] in repos:
            target.run(["rmi", "-f", ref])


def _git_commit() -> str:
    try:
        return subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, timeout=5).stdout.strip() or "?"
    except OSError:
        return "?"


def _host_name() -> str:
    try:
        rel = dict(line.split("=", 1) for line in Path("/etc/os-release").read_text().splitlines() if "=" in line)
        return rel.get("PRETTY_NAME", "?").strip('"')
    except OSError:
        return "?"


def pytest_configure(config):
    config.stash[SESSION_KEY] = Session(config)


def pytest_unconfigure(config):
    s = config.stash.get(SESSION_KEY, None)
    if s is not None:
        s.teardown()


SESSION_KEY = pytest.StashKey[Session]()


@pytest.fixture(scope="session")
def dockspec(request) -> Session:
    s = request.config.stash[SESSION_KEY]
    s.setup()
    return s


@pytest.fixture(scope="session")
def target(dockspec) -> Target:
    return dockspec.target


# --------------------------------------------------------------------------- capabilities

def pytest_bdd_before_scenario(request, feature, scenario):
    s = request.config.stash[SESSION_KEY]
    t = s.setup()
    for mark in request.node.iter_markers("needs"):
        for cap in mark.args:
            reason = t.capabilities.get(cap, f"unsupported: unknown capability {cap}")
            if reason:
                request.node.stash[EXPECT_KEY] = request.node.stash.get(EXPECT_KEY, {})
                pytest.skip(reason)


def pytest_bdd_step_error(request, feature, scenario, step, step_func, step_func_args, exception):
    request.node.stash[STEP_KEY] = {"step": f"{step.keyword} {step.name}", "exception": exception}


# --------------------------------------------------------------------------- results

@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    spec = item.get_closest_marker("spec")
    if spec is None:
        return
    t0 = item.stash.get(START_KEY, None)
    if call.when == "setup":
        item.stash[START_KEY] = time.monotonic()
    status = None
    if rep.when == "setup" and rep.skipped:
        status = _skip_status(rep)
    elif rep.when == "setup" and rep.failed:
        status = "error"
    elif rep.when == "call":
        if rep.passed:
            status = "xpass" if hasattr(rep, "wasxfail") else "pass"
        elif rep.skipped:
            status = "xfail" if hasattr(rep, "wasxfail") else _skip_status(rep)
        else:
            text = str(rep.longrepr)
            if "XPASS(strict)" in text:
                status = "xpass"
            else:
                exc = call.excinfo.value if call.excinfo else None
                status = "fail" if isinstance(exc, FAIL_TYPES) or exc is None or \
                    type(exc).__name__ == "Failed" else "error"
    elif rep.when == "teardown" and rep.failed:
        status = "error"
    if status is None or STATUS_KEY in item.stash:
        return
    item.stash[STATUS_KEY] = status
    s = item.config.stash[SESSION_KEY]
    meta = scenario_meta(item)
    step = item.stash.get(STEP_KEY, {})
    exp = item.stash.get(EXPECT_KEY, {})
    reason = None
    if status in ("unsupported", "env-skip"):
        reason = _skip_reason(rep)
    elif status in ("xfail", "xpass"):
        reason = exp.get("reason")
    output = ""
    if status in ("fail", "error", "xfail"):
        exc = step.get("exception")
        output = str(exc) if exc is not None else str(rep.longrepr)[-4000:]
    record = {"type": "scenario", "target": s.column if s.target else item.config.getoption("--target"),
              **meta, "clause": spec.args[0], "tags": _tags(item), "status": status,
              "duration": round(time.monotonic() - t0, 3) if t0 else rep.duration,
              "failing_step": step.get("step") if status in ("fail", "error", "xfail") else None,
              "output": output[-4000:], "reason": reason}
    if exp.get("link"):
        record["link"] = exp["link"]
    s.write(record)


START_KEY = pytest.StashKey[float]()
STATUS_KEY = pytest.StashKey[str]()


def _skip_reason(rep) -> str:
    if isinstance(rep.longrepr, tuple):
        return rep.longrepr[2].removeprefix("Skipped: ")
    return str(rep.longrepr)


def _skip_status(rep) -> str:
    return "env-skip" if _skip_reason(rep).startswith("env-skip") else "unsupported"


def _tags(item) -> list[str]:
    tags = [f"spec:{a}" for m in item.iter_markers("spec") for a in m.args]
    tags += [f"needs:{a}" for m in item.iter_markers("needs") for a in m.args]
    return sorted(set(tags))
