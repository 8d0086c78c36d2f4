"""Container routes: create, start, attach, wait, resize, stop, kill, restart, pause,
unpause, rm, list, inspect, logs, rename, top."""


def register(router, engine) -> None:
    pass
