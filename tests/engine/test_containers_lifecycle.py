"""A state machine drives random API call sequences against a real refimpld and checks
every answer against the lifecycle table (refimpl.engine.state): an allowed request
succeeds and leads where the table says, a refused one gets Docker's status and
changes nothing, and no container is ever seen in a state the table does not declare."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings, strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule

from refimpl.engine.state import REFUSALS, TRANSITIONS, Event, State, inspect_flags

from .test_containers_helpers import Daemon, daemon_fixture, why_not

pytestmark = pytest.mark.skipif(why_not() is not None, reason=why_not() or "")

CALLS = {  # event -> (method, path template)
    Event.START: ("POST", "/containers/{}/start"),
    Event.STOP: ("POST", "/containers/{}/stop?t=0"),
    Event.KILL: ("POST", "/containers/{}/kill"),
    Event.PAUSE: ("POST", "/containers/{}/pause"),
    Event.UNPAUSE: ("POST", "/containers/{}/unpause"),
    Event.RESTART: ("POST", "/containers/{}/restart?t=0"),
    Event.REMOVE: ("DELETE", "/containers/{}"),
    Event.FORCE_REMOVE: ("DELETE", "/containers/{}?force=1"),
}


@pytest.fixture(scope="module")
def d():
    yield from daemon_fixture()


def test_no_call_sequence_leaves_the_declared_states(d: Daemon):
    class Lifecycle(RuleBasedStateMachine):
        containers = Bundle("containers")

        def __init__(self):
            super().__init__()
            self.model: dict[str, State] = {}

        @rule(target=containers)
        def create(self):
            code, body = d.api("POST", "/containers/create", {
                "Image": "busybox", "Cmd": ["sleep", "60"], "HostConfig": {"NetworkMode": "none"}})
            assert code == 201, body
            self.model[body["Id"]] = State.CREATED
            return body["Id"]

        @rule(cid=containers, event=st.sampled_from(sorted(CALLS)))
        def call(self, cid, event):
            method, path = CALLS[event]
            code, body = d.api(method, path.format(cid))
            if cid not in self.model:
                assert code == 404, (event, code, body)
                return
            state = self.model[cid]
            target = TRANSITIONS[state].get(event)
            if target is None:
                assert code == REFUSALS[state][event][0], (state, event, code, body)
            else:
                assert code == 204, (state, event, code, body)
                if target is State.REMOVING:
                    del self.model[cid]
                else:
                    self.model[cid] = target

        @invariant()
        def states_match_the_model(self):
            for cid, want in self.model.items():
                c = d.inspect(cid)
                assert State(c["State"]["Status"]) is want
                assert {k: c["State"][k] for k in inspect_flags(want)} == inspect_flags(want)

        def teardown(self):
            for cid in self.model:
                d.api("DELETE", f"/containers/{cid}?force=1")

    Lifecycle.TestCase.settings = settings(max_examples=6, stateful_step_count=12, deadline=None,
                                           suppress_health_check=list(HealthCheck))
    Lifecycle.TestCase().runTest()
