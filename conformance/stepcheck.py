"""Step hygiene: every step line of every feature matches exactly one definition.

A step line that matches two definitions runs whichever pytest-bdd finds first,
which hides mistakes; a line that matches none fails only when run. This check
reads every feature, resolves And/But to Given/When/Then, and counts the
definitions (from the modules the root conftest registers) that match.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from pytest_bdd.parser import FeatureParser
from pytest_bdd.steps import step_function_context_registry

STEP_MODULES = ["conformance.steps.world", "conformance.steps.common", "conformance.steps.distribution",
                "conformance.steps.plugins"]


def definitions():
    out = []
    for name in STEP_MODULES:
        mod = importlib.import_module(name)
        for attr, value in vars(mod).items():
            if attr.startswith("pytestbdd_stepdef_"):
                marker = getattr(value, "__wrapped__", value)
                ctx = step_function_context_registry.get(marker)
                if ctx is None:  # pytest's fixture wrapper keeps the function elsewhere
                    ctx = step_function_context_registry.get(getattr(value, "_get_wrapped_function",
                                                                     lambda: None)())
                if ctx is not None:
                    out.append(ctx)
    return out


def check(features_dir: Path) -> list[str]:
    defs = definitions()
    problems = []
    for path in sorted(features_dir.glob("*.feature")):
        feature = FeatureParser(str(features_dir), path.name).parse()
        for scenario in feature.scenarios.values():
            for step in scenario.steps:
                matching = [d for d in defs
                            if d.type in (None, step.type) and d.parser.is_matching(step.name)]
                if len(matching) != 1:
                    names = ", ".join(d.step_func.__name__ for d in matching) or "no definition"
                    problems.append(f"{path.name}:{step.line_number}: {step.type} {step.name!r} "
                                    f"matches {len(matching)} ({names})")
    return problems
