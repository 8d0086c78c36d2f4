import pytest
from hypothesis import settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from refimpl.engine.state import (REFUSALS, REPORTS, REQUESTS, TRANSITIONS, Event, Lifecycle, State, StateError,
                                  allowed, inspect_flags, transition)

ID = "de94e58470802b663e7999c6aa7210a0340c9814528631d6d3111e7a0956d176"
S, E = State, Event


def test_every_request_is_either_allowed_or_refused_with_an_answer():
    assert set(TRANSITIONS) == set(REFUSALS) == set(State)
    for state in State:
        for event in REQUESTS:
            assert (event in TRANSITIONS[state]) != (event in REFUSALS[state]), (state, event)
        assert not set(REFUSALS[state]) & REPORTS
        assert set(TRANSITIONS[state].values()) <= set(State)


# What dockerd 20.10 answered for a container named wt-pure-c1 with this ID.
@pytest.mark.parametrize("state,event,status,message", [
    (S.CREATED, E.STOP, 304, "Container is already stopped"),
    (S.CREATED, E.KILL, 409, f"Cannot kill container: wt-pure-c1: Container {ID} is not running"),
    (S.CREATED, E.PAUSE, 409, f"Container {ID} is not running"),
    (S.CREATED, E.UNPAUSE, 500, f"Container {ID} is not paused"),
    (S.RUNNING, E.START, 304, "Container is already started"),
    (S.RUNNING, E.UNPAUSE, 500, f"Container {ID} is not paused"),
    (S.RUNNING, E.REMOVE, 409, f"You cannot remove a running container {ID}. "
                                "Stop the container before attempting removal or force remove"),
    (S.PAUSED, E.PAUSE, 409, f"Container {ID} is already paused"),
    (S.PAUSED, E.START, 409, "cannot start a paused container, try unpause instead"),
    (S.PAUSED, E.REMOVE, 409, f"You cannot remove a paused container {ID}. "
                               "Unpause and then stop the container before attempting removal or force remove"),
    (S.PAUSED, E.EXEC, 409, f"Container {ID} is paused, unpause the container before exec"),
    (S.EXITED, E.STOP, 304, "Container is already stopped"),
    (S.EXITED, E.KILL, 409, f"Cannot kill container: wt-pure-c1: Container {ID} is not running"),
    (S.RESTARTING, E.PAUSE, 409, f"Container {ID} is restarting, wait until the container is running"),
    (S.RESTARTING, E.REMOVE, 409, f"You cannot remove a restarting container {ID}. "
                                   "Stop the container before attempting removal or force remove"),
    (S.DEAD, E.START, 409, "container is marked for removal and cannot be started"),
    (S.REMOVING, E.REMOVE, 409, "removal of container wt-pure-c1 is already in progress"),
    (S.CREATED, E.DIE, 500, f"container {ID}: die is not possible when the container is created"),
])
def test_dockers_answers(state, event, status, message):
    with pytest.raises(StateError) as e:
        transition(state, event, id=ID, ref="wt-pure-c1")
    assert (e.value.status, str(e.value)) == (status, message)
    assert e.value.not_modified == (status == 304)


@pytest.mark.parametrize("state,event,target", [
    (S.CREATED, E.START, S.RUNNING), (S.RUNNING, E.STOP, S.EXITED), (S.PAUSED, E.KILL, S.EXITED),
    (S.PAUSED, E.STOP, S.EXITED), (S.PAUSED, E.RESTART, S.RUNNING), (S.EXITED, E.RESTART, S.RUNNING),
    (S.RUNNING, E.AUTO_RESTART, S.RESTARTING), (S.RESTARTING, E.RESTARTED, S.RUNNING),
    (S.PAUSED, E.FORCE_REMOVE, S.REMOVING), (S.REMOVING, E.REMOVE_FAILED, S.DEAD), (S.DEAD, E.REMOVE, S.REMOVING),
])
def test_allowed_transitions(state, event, target):
    assert transition(state, event, id=ID) is target and allowed(state, event)


def test_lifecycle_object_and_inspect_flags():
    c = Lifecycle(ID)
    assert c.fire("start") is S.RUNNING and c.fire(E.PAUSE) is S.PAUSED
    with pytest.raises(StateError):
        c.fire(E.START)
    assert c.state is S.PAUSED and c.check(E.UNPAUSE) is S.RUNNING and c.state is S.PAUSED
    assert inspect_flags(S.PAUSED) == {"Status": "paused", "Running": True, "Paused": True,
                                       "Restarting": False, "Dead": False}
    assert inspect_flags(S.EXITED)["Running"] is False
    with pytest.raises(ValueError):
        transition(S.RUNNING, "fly")


class LifecycleMachine(RuleBasedStateMachine):
    """Random event sequences: only declared states, refusals change nothing, and
    Docker's rules hold whatever the table says."""

    def __init__(self):
        super().__init__()
        self.c = Lifecycle(ID)
        self.was_removed = False

    @rule(event=st.sampled_from(list(Event)))
    def fire(self, event):
        before = self.c.state
        try:
            after = self.c.fire(event, ref="c1")
        except StateError as e:
            assert self.c.state is before and e.state is before and e.event is event
            assert e.status in (304, 409, 500) and "\n" not in str(e) and str(e)
            assert event not in TRANSITIONS[before]
            if e.status == 304:
                assert event in (E.START, E.STOP)
            if event in REPORTS:
                assert e.status == 500
            return
        assert isinstance(after, State) and event in TRANSITIONS[before]
        if event in (E.START, E.RESTART, E.UNPAUSE, E.RESTARTED):
            assert after is S.RUNNING
        if event is E.PAUSE:
            assert before is S.RUNNING
        if event is E.UNPAUSE:
            assert before is S.PAUSED
        if event is E.REMOVE:
            assert not inspect_flags(before)["Running"]      # stop first, or force
        if event in (E.STOP, E.KILL, E.DIE):
            assert after is S.EXITED
        if after in (S.REMOVING, S.DEAD):
            self.was_removed = True

    @invariant()
    def removal_is_one_way(self):
        assert self.c.state in set(State)
        if self.was_removed:
            assert self.c.state in (S.REMOVING, S.DEAD)


LifecycleMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=25, deadline=None)
TestLifecycle = LifecycleMachine.TestCase
