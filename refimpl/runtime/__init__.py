"""refimpl.runtime: run one container, Docker-style, and keep it supervised.

The seam the engine uses (everything else in the package is internal):

    spec  = ContainerSpec(id=..., lower_dirs=[...], upper_dir=..., work_dir=...,
                          merged_dir=..., args=["sh"], tty=True, open_stdin=True, ...)
    shim  = spawn(spec, state_dir, on_netns=None)   # created: set up, not yet exec'd;
                                                     # ValueError (bad spec) or StartError (set-up)
    att   = shim.attach(stdin=True)                  # optional, before start: miss nothing
    pid   = shim.start()                             # StartError(text, exit_code): Docker's exec texts
    shim.resize(h, w); shim.signal("SIGHUP"); shim.pause(); shim.resume(); shim.pids()
    st    = shim.stop(timeout=10)                    # stop signal, grace, SIGKILL
    st    = shim.wait()                              # ExitStatus(exit_code, finished_at, oom_killed)
    shim  = Shim.find(state_dir)                     # after an engine restart; None if gone
    st    = Shim(state_dir).exit_status()            # from <state_dir>/exit.json

One supervisor process per container (shim.py) owns the container's init, its
pty or pipes and the json-file log, and serves ``<state_dir>/shim.sock``; it is
double-forked into its own session so the engine may die and come back. The
container's init (init.py) builds the namespaces, overlay root and devices and
reports Docker's exec errors before start returns. cgroups.py speaks v1 and v2;
netconf.py configures a bridge veth from inside the container's netns;
syscalls.py is the only ctypes module.

Both spawn and start may raise StartError: a bad user or mount fails at spawn,
exec errors ("executable file not found", ...) at start; either way exit.json
holds the exit code and no process, mount or cgroup is left behind. An engine
should import refimpl.runtime (and netconf.preload() for bridge networking) at
start-up: spawn forks it, so nothing is imported per container.

State dir files: spec.json, shim.pid, shim.sock, shim.log (the supervisor's own
errors), json.log (container output), started.json, exit.json.
"""
from .cgroups import Cgroup
from .client import Attachment, ExitStatus, Shim, ShimGone, StartError, spawn
from .netconf import configure_interface
from .spec import ContainerSpec, Mount, NetConfig, resolve_user

__all__ = ["Attachment", "Cgroup", "ContainerSpec", "ExitStatus", "Mount", "NetConfig", "Shim",
           "ShimGone", "StartError", "configure_interface", "resolve_user", "spawn"]
