"""Differential testing: random container lifecycles on two targets, compared step by step.

A Hypothesis state machine creates a few containers and fires random lifecycle
verbs at them (start, stop, kill, restart, pause, unpause, rm, rm -f, wait)
on a reference target and on a target under test at once, through each one's
CLI. After every step it compares what a user can observe:

* whether the verb succeeded or failed (exit status 0 or not),
* each container's State.Status, State.Running, State.Paused and, once
  exited, State.ExitCode; whether it still exists at all.

Texts are not compared (engines word errors differently); outcomes are. A
difference is reported with the whole sequence that led to it, shrunk by
Hypothesis to the shortest one.

    DOCKSPEC_DIFF="docker,podman" python -m pytest tests/conformance/test_differential.py
"""

from __future__ import annotations

import json
import secrets

from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, rule

from .targets import Target

VERBS = {
    "start": ["start"],
    "stop": ["stop", "-t", "1"],
    "kill": ["kill"],
    "restart": ["restart", "-t", "1"],
    "pause": ["pause"],
    "unpause": ["unpause"],
    "rm": ["rm"],
    "rm -f": ["rm", "-f"],
}


def observe(target: Target, name: str) -> dict:
    r = target.run(["inspect", "--type", "container", name])
    if r.rc != 0:
        return {"exists": False}
    s = json.loads(r.out)[0]["State"]
    seen = {"exists": True, "status": s["Status"], "running": s["Running"], "paused": s["Paused"]}
    if s["Status"] == "exited":
        seen["exit_code"] = s["ExitCode"]
    return seen


def machine(reference: Target, candidate: Target, image_ref: str, image_candidate: str | None = None):
    """A state machine class bound to two live targets and the image each one uses."""

    class Lifecycle(RuleBasedStateMachine):
        containers = Bundle("containers")

        @initialize()
        def setup(self):
            self.token = secrets.token_hex(3)
            self.names: list[str] = []
            self.log: list[str] = []

        def both(self, args: list[str]) -> tuple:
            a = reference.run(args, timeout=60)
            b = candidate.run(args, timeout=60)
            self.log.append(" ".join(args))
            return a, b

        @rule(target=containers, cmd=st.sampled_from(["sleep 600", "true", "sh -c 'exit 3'"]))
        def create(self, cmd):
            name = f"ds-diff-{self.token}-{len(self.names)}"
            self.names.append(name)
            a = reference.run(["create", "--name", name, image_ref, *cmd_args(cmd)])
            b = candidate.run(["create", "--name", name, image_candidate or image_ref, *cmd_args(cmd)])
            self.log.append(f"create {name} {cmd}")
            assert (a.rc == 0) == (b.rc == 0), self.report("create", a, b)
            return name

        @rule(name=containers, verb=st.sampled_from(sorted(VERBS)))
        def act(self, name, verb):
            a, b = self.both([*VERBS[verb], name])
            assert (a.rc == 0) == (b.rc == 0), self.report(verb, a, b)
            self.compare(name)

        def compare(self, name):
            x, y = observe(reference, name), observe(candidate, name)
            # A short-lived command may still be finishing on one side: settle once.
            if x != y and "running" in (x.get("status"), y.get("status")):
                import time
                time.sleep(1.0)
                x, y = observe(reference, name), observe(candidate, name)
            assert x == y, f"after {self.log}:\n{reference.name}: {x}\n{candidate.name}: {y}"

        def report(self, verb, a, b) -> str:
            return (f"{verb} succeeded on one target only after {self.log}:\n"
                    f"{reference.name}: {a.describe()}\n{candidate.name}: {b.describe()}")

        def teardown(self):
            for name in getattr(self, "names", []):
                reference.run(["rm", "-f", name])
                candidate.run(["rm", "-f", name])

    return Lifecycle


def cmd_args(cmd: str) -> list[str]:
    import shlex
    return shlex.split(cmd)
