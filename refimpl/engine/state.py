"""The container lifecycle: states, events, and one table of what each event does.

Modelled on h11's `_state.py`: the whole machine is data. `TRANSITIONS` says
where an allowed event leads; `REFUSALS` says what Docker answers when it is not
allowed (HTTP status and message text, taken from moby's daemon and checked
against dockerd 20.10). Every (state, request) pair is in exactly one of the two,
so nothing is decided by scattered `if`s in the engine.

Requests come from clients (start, stop, kill, ...). Reports come from the
runtime (the process died; the restart policy restarts it; a removal failed).
A target state is the state once the operation has finished: `stop` of a running
container leads to `exited` after the process is gone. `removing` is the last
state the machine sees; when removal succeeds the engine drops the record.

Two of Docker's answers are not errors but 304 Not Modified: `start` of a running
container and `stop` of a stopped one. They are raised as StateError all the
same (status 304) so that nothing changes and the API maps status to response.
Docker today stops, kills and restarts a paused container (it unpauses it);
older daemons refused with "Container X is paused. Unpause the container before
stopping or killing": we follow the current behaviour.
"""
from __future__ import annotations

from enum import Enum


class State(str, Enum):
    CREATED = "created"
    RUNNING = "running"
    PAUSED = "paused"
    RESTARTING = "restarting"
    REMOVING = "removing"
    EXITED = "exited"
    DEAD = "dead"


class Event(str, Enum):
    # requests (the Engine API verbs)
    START = "start"
    STOP = "stop"
    KILL = "kill"
    PAUSE = "pause"
    UNPAUSE = "unpause"
    RESTART = "restart"
    REMOVE = "remove"
    FORCE_REMOVE = "force-remove"
    EXEC = "exec"                   # needs a running, unpaused container; changes nothing
    # reports from the runtime
    DIE = "die"                     # the process exited and will not be restarted
    AUTO_RESTART = "auto-restart"   # the process exited and the restart policy restarts it
    RESTARTED = "restarted"         # the restart policy brought it back
    REMOVE_FAILED = "remove-failed"


REQUESTS = frozenset({Event.START, Event.STOP, Event.KILL, Event.PAUSE, Event.UNPAUSE, Event.RESTART,
                      Event.REMOVE, Event.FORCE_REMOVE, Event.EXEC})
REPORTS = frozenset(Event) - REQUESTS

S, E = State, Event
TRANSITIONS: dict[State, dict[Event, State]] = {
    S.CREATED: {E.START: S.RUNNING, E.RESTART: S.RUNNING, E.REMOVE: S.REMOVING, E.FORCE_REMOVE: S.REMOVING},
    S.RUNNING: {E.STOP: S.EXITED, E.KILL: S.EXITED, E.PAUSE: S.PAUSED, E.RESTART: S.RUNNING,
                E.FORCE_REMOVE: S.REMOVING, E.EXEC: S.RUNNING,
                E.DIE: S.EXITED, E.AUTO_RESTART: S.RESTARTING},
    S.PAUSED: {E.STOP: S.EXITED, E.KILL: S.EXITED, E.UNPAUSE: S.RUNNING, E.RESTART: S.RUNNING,
               E.FORCE_REMOVE: S.REMOVING, E.DIE: S.EXITED},
    S.RESTARTING: {E.STOP: S.EXITED, E.KILL: S.EXITED, E.RESTART: S.RUNNING, E.FORCE_REMOVE: S.REMOVING,
                   E.RESTARTED: S.RUNNING, E.DIE: S.EXITED},
    S.EXITED: {E.START: S.RUNNING, E.RESTART: S.RUNNING, E.REMOVE: S.REMOVING, E.FORCE_REMOVE: S.REMOVING},
    S.DEAD: {E.REMOVE: S.REMOVING, E.FORCE_REMOVE: S.REMOVING},
    S.REMOVING: {E.REMOVE_FAILED: S.DEAD},
}

# Docker's answers. {id} is the full container ID, {ref} the name or ID as the client gave it.
NOT_RUNNING = (409, "Container {id} is not running")
KILL_NOT_RUNNING = (409, "Cannot kill container: {ref}: Container {id} is not running")
ALREADY_STARTED = (304, "Container is already started")
ALREADY_STOPPED = (304, "Container is already stopped")
START_PAUSED = (409, "cannot start a paused container, try unpause instead")
MARKED_FOR_REMOVAL = (409, "container is marked for removal and cannot be started")
RESTART_MARKED = (409, "Cannot restart container {ref}: container is marked for removal and cannot be started")
ALREADY_PAUSED = (409, "Container {id} is already paused")
NOT_PAUSED = (500, "Container {id} is not paused")
IS_RESTARTING = (409, "Container {id} is restarting, wait until the container is running")
EXEC_PAUSED = (409, "Container {id} is paused, unpause the container before exec")
RM_IN_PROGRESS = (409, "removal of container {ref} is already in progress")
_RM = "You cannot remove a {state} container {id}. "
RM_RUNNING = (409, _RM + "Stop the container before attempting removal or force remove")
RM_PAUSED = (409, _RM + "Unpause and then stop the container before attempting removal or force remove")
IMPOSSIBLE = (500, "container {id}: {event} is not possible when the container is {state}")

_STOPPED = {E.STOP: ALREADY_STOPPED, E.KILL: KILL_NOT_RUNNING, E.PAUSE: NOT_RUNNING, E.UNPAUSE: NOT_PAUSED,
            E.EXEC: NOT_RUNNING}
REFUSALS: dict[State, dict[Event, tuple[int, str]]] = {
    S.CREATED: dict(_STOPPED),
    S.EXITED: dict(_STOPPED),
    S.RUNNING: {E.START: ALREADY_STARTED, E.UNPAUSE: NOT_PAUSED, E.REMOVE: RM_RUNNING},
    S.PAUSED: {E.START: START_PAUSED, E.PAUSE: ALREADY_PAUSED, E.REMOVE: RM_PAUSED, E.EXEC: EXEC_PAUSED},
    S.RESTARTING: {E.START: ALREADY_STARTED, E.PAUSE: IS_RESTARTING, E.UNPAUSE: NOT_PAUSED,
                   E.REMOVE: RM_RUNNING, E.EXEC: IS_RESTARTING},
    S.DEAD: {**_STOPPED, E.START: MARKED_FOR_REMOVAL, E.RESTART: RESTART_MARKED},
    S.REMOVING: {**_STOPPED, E.START: MARKED_FOR_REMOVAL, E.RESTART: RESTART_MARKED,
                 E.REMOVE: RM_IN_PROGRESS, E.FORCE_REMOVE: RM_IN_PROGRESS},
}
del S, E


class StateError(Exception):
    """A refused event: `status` is the HTTP status Docker answers with (304, 409
    or 500) and `str(err)` its message."""

    def __init__(self, status: int, message: str, state: State, event: Event):
        super().__init__(message)
        self.status, self.message, self.state, self.event = status, message, state, event

    @property
    def not_modified(self) -> bool:
        return self.status == 304


def transition(state: State, event: Event, *, id: str = "", ref: str | None = None) -> State:
    """The state `event` leads to from `state`, or StateError with Docker's answer."""
    state, event = State(state), Event(event)
    target = TRANSITIONS[state].get(event)
    if target is not None:
        return target
    status, template = REFUSALS[state].get(event, IMPOSSIBLE)
    message = template.format(id=id, ref=ref or id, state=state.value, event=event.value)
    raise StateError(status, message, state, event)


def allowed(state: State, event: Event) -> bool:
    return Event(event) in TRANSITIONS[State(state)]


def inspect_flags(state: State) -> dict:
    """The booleans `docker inspect` shows in `.State` for a state."""
    state = State(state)
    return {"Status": state.value,
            "Running": state in (State.RUNNING, State.PAUSED, State.RESTARTING),
            "Paused": state is State.PAUSED,
            "Restarting": state is State.RESTARTING,
            "Dead": state is State.DEAD}


class Lifecycle:
    """One container's current state. `fire` moves it (or raises, leaving it be);
    `check` answers the same question without moving."""

    def __init__(self, id: str, state: State = State.CREATED):
        self.id, self.state = id, State(state)

    def check(self, event: Event, ref: str | None = None) -> State:
        return transition(self.state, event, id=self.id, ref=ref)

    def fire(self, event: Event, ref: str | None = None) -> State:
        self.state = self.check(event, ref)
        return self.state

    def __repr__(self) -> str:
        return f"Lifecycle({self.id[:12]!r}, {self.state.value})"
