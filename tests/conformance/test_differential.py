"""Random lifecycles on two targets, compared (conformance/differential.py).

Needs two live targets, so it runs only when asked:
    DOCKSPEC_DIFF=docker,podman make differential
"""
from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

from conformance import images, services
from conformance.differential import machine
from conformance.targets import Target

PAIR = os.environ.get("DOCKSPEC_DIFF", "")
pytestmark = pytest.mark.skipif(not PAIR, reason="set DOCKSPEC_DIFF=reference,candidate to compare two targets")


@pytest.fixture(scope="module")
def pair():
    ref_name, cand_name = PAIR.split(",")
    targets = [Target.named(ref_name), Target.named(cand_name)]
    svc = services.up([t.service for t in targets if t.service in ("docker", "podman")])
    for t in targets:
        if t.service == "podman":
            t.base_env = services.podman_env(svc)
        if t.service == "refimpl":
            from conformance import refimpl_service
            refimpl_service.ensure(svc, t)
    info = images.publish(svc.registry, names=["busybox"])["busybox"]
    for t in targets:
        t.ok(["pull", info["ref"]], timeout=300)
    yield targets[0], targets[1], info["ref"]
    svc.stop()


def test_lifecycles_agree(pair):
    reference, candidate, ref = pair
    Lifecycle = machine(reference, candidate, ref)
    Lifecycle.TestCase.settings = settings(max_examples=int(os.environ.get("DOCKSPEC_DIFF_EXAMPLES", "15")),
                                           stateful_step_count=8, deadline=None,
                                           suppress_health_check=list(HealthCheck))
    Lifecycle.TestCase().runTest()
