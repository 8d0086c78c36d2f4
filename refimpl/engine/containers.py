"""Containers: records, the lifecycle, and the link to each container's supervisor.

A container is a record (Docker's inspect shape, persisted atomically in
``<data-root>/containers/<id>/config.v2.json``) plus, while it runs, a
supervisor (refimpl.runtime's shim) found through ``<exec-root>/containers/<id>``.
Its read-write layer (overlay ``upper``/``work`` dirs), its /etc/hosts,
/etc/resolv.conf and /etc/hostname and its json-file log live beside the record
until the container is removed.

Every change of state goes through refimpl.engine.state: a request is checked
against the table first (that is where Docker's 304/409 answers come from), and
the state moves only when the thing has happened: `start` once the process has
exec'd, `die` when the supervisor reports the exit. One asyncio task per
running container (the monitor) waits on the supervisor's `wait` op and then
records the exit, applies the restart policy or AutoRemove, gives the network
endpoint back and wakes every `wait` request.

The supervisor is spawned at start, not at create: a created container is only
a record. `docker run` attaches before it starts, so an attach to a container
that is not running waits (as a pending future) until the next start connects
it to the new supervisor, between set-up and exec, so no output is missed.

Blocking calls into the runtime are short (set-up, a JSON line over a UNIX
socket); the long waits (exit, stop's grace period) are awaited on the loop.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import shutil
import socket
import time
from pathlib import Path

from . import container_config as cc
from . import logs as logs_mod
from . import persist
from . import volumes as vol
from .errors import Conflict, EngineError, Forbidden, InvalidParameter, NotFound
from .state import Event, Lifecycle, State, StateError, inspect_flags

log = logging.getLogger("refimpl.engine.containers")
CGROUP_PARENT = "refimpl"
RESTART_DELAY = 0.25          # Docker backs off from 100 ms doubling; a fixed short delay here
def _config_error(text: str) -> bool:
    """A start that failed on the container's own configuration (a --user the image does not
    know): the client's error, 400, where dockerd answers 500 (its runtime errors are "unknown")."""
    return "unable to find user" in text or "unable to find group" in text


START_FAILED = ("failed to create task for container: failed to create shim task: OCI runtime create "
                "failed: runc create failed: unable to start container process: {}: unknown")


class StartFailed(EngineError):
    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


def attach(engine, bridge: str = "refimpl0", bip: str | None = None) -> "ContainerService":
    """Wire containers and networks into the engine (called once by refimpld)."""
    from .networks import NetworkService
    from .volumes import VolumeService
    engine.networks = NetworkService(engine.data_root, bridge, bip)
    engine.networks.setup()
    from .volume_plugins import plugin_dirs
    engine.volumes = VolumeService(engine.data_root, plugin_dirs(engine.exec_root))
    engine.containers = ContainerService(engine)
    engine.volumes.users = engine.containers.volume_users
    return engine.containers


class Container:
    """One container: its persisted record and its runtime links."""

    PERSISTED = ("id", "name", "created", "path", "args", "config", "host_config", "image_id",
                 "state", "pid", "exit_code", "error", "started_at", "finished_at", "oom_killed",
                 "restart_count", "manual_stop", "has_started", "mounts")

    def __init__(self, root: Path, **rec):
        self.id: str = rec["id"]
        self.name: str = rec["name"]
        self.created: str = rec["created"]
        self.path: str = rec["path"]
        self.args: list[str] = rec["args"]
        self.config: dict = rec["config"]
        self.host_config: dict = rec["host_config"]
        self.image_id: str = rec["image_id"]
        self.life = Lifecycle(self.id, State(rec.get("state", "created")))
        self.pid: int = rec.get("pid", 0)
        self.exit_code: int = rec.get("exit_code", 0)
        self.error: str = rec.get("error", "")
        self.started_at: str = rec.get("started_at", cc.ZERO_TIME)
        self.finished_at: str = rec.get("finished_at", cc.ZERO_TIME)
        self.oom_killed: bool = rec.get("oom_killed", False)
        self.restart_count: int = rec.get("restart_count", 0)
        self.manual_stop: bool = rec.get("manual_stop", False)
        self.has_started: bool = rec.get("has_started", False)
        self.mounts: list[dict] = rec.get("mounts") or []     # mount points (engine/volumes.py)
        self.dir = root / self.id
        self.shim = None                                   # refimpl.runtime.Shim while it runs
        self.exit_waiters: list[asyncio.Future] = []       # woken at the next exit
        self.remove_waiters: list[asyncio.Future] = []     # woken when the record is gone
        self.pending_attaches: list[tuple[dict, asyncio.Future]] = []
        self.restart_task: asyncio.Task | None = None
        self.lock = asyncio.Lock()

    @property
    def state(self) -> State:
        return self.life.state

    @property
    def tty(self) -> bool:
        return bool(self.config.get("Tty"))

    @property
    def log_path(self) -> Path:
        return self.dir / f"{self.id}-json.log"

    def save(self) -> None:
        rec = {k: getattr(self, k) for k in self.PERSISTED if k != "state"}
        rec["state"] = self.state.value
        persist.write_json(self.dir / "config.v2.json", rec)

    def wake(self, waiters: list[asyncio.Future]) -> None:
        for fut in waiters:
            if not fut.done():
                fut.set_result(self.exit_code)
        waiters.clear()


class ContainerService:
    def __init__(self, engine):
        self.engine = engine
        self.root = engine.data_root / "containers"
        self.exec_root = engine.exec_root / "containers"
        self.root.mkdir(parents=True, exist_ok=True)
        self.exec_root.mkdir(parents=True, exist_ok=True)
        self.by_id: dict[str, Container] = {}
        self.names: dict[str, str] = {}          # "/name" -> id
        self._tasks: set[asyncio.Task] = set()   # asyncio keeps only weak references to tasks
        import refimpl.runtime  # noqa: F401  - loaded once: spawn forks this process
        from ..runtime import netconf
        netconf.preload()
        self._load()

    # --- records ------------------------------------------------------------------------
    def _load(self) -> None:
        for d in sorted(self.root.iterdir()):
            persist.sweep(d)
            rec = persist.read_json(d / "config.v2.json")
            if not rec:
                # A create that died before its record was written, or a removal that had
                # deleted the record already: finish the job.
                log.info("removing %s: a container directory without its record", d.name[:12])
                shutil.rmtree(d, ignore_errors=True)
                continue
            c = Container(self.root, **rec)
            self.by_id[c.id] = c
            self.names[c.name] = c.id
        for d in sorted(self.exec_root.iterdir()):
            if d.name not in self.by_id:      # the runtime state of a container that is gone
                self._discard_supervisor(d)
                shutil.rmtree(d, ignore_errors=True)
        nets = self.engine.networks       # endpoints and attachments of containers that are gone
        stale = set(nets.endpoints) | set(nets.attached)
        stale.update(cid for n in nets.nets.values() for cid in n.get("Endpoints") or {})
        for cid in sorted(stale - set(self.by_id)):
            nets.forget(cid)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        for c in list(self.by_id.values()):
            self._recover(c, loop)

    @staticmethod
    def _discard_supervisor(state_dir: Path) -> None:
        """Stop a supervisor whose container never started (or is not ours any more): kill
        its process and wait (briefly) for the supervisor to clean up and go."""
        from ..runtime import Shim
        shim = Shim.find(str(state_dir)) if (state_dir / "spec.json").exists() else None
        if shim is None:
            return
        log.info("stopping the supervisor in %s: its container never started", state_dir)
        try:
            shim.signal(9)
        except (OSError, ValueError):
            pass
        try:
            spid = shim.supervisor_pid()
        except (OSError, ValueError):
            return
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and _alive(spid):
            time.sleep(0.02)
        if _alive(spid):
            log.warning("the supervisor %d in %s does not go away", spid, state_dir)

    def _unrecorded_start(self, c: Container) -> dict | None:
        """started.json of a start the daemon died before recording (None if there is none)."""
        rec = _read_json(self.exec_root / c.id / "started.json")
        if not rec or "started_at" not in rec:
            return None
        try:
            newer = cc.parse_time(rec["started_at"]) > cc.parse_time(c.started_at)
        except ValueError:
            return None
        return rec if newer else None

    def _recover(self, c: Container, loop) -> None:
        """After a daemon restart: re-adopt a live supervisor, or record the exit it left.

        The daemon may have died in the middle of a start: after it spawned the supervisor
        but before the process exec'd (the supervisor is stopped, the container stays as it
        was), or after the exec but before the record said "running" (the container is
        adopted as running, or its exit is recorded if it ended meanwhile)."""
        from ..runtime import Shim
        state_dir = self.exec_root / c.id
        if c.state not in (State.RUNNING, State.PAUSED, State.RESTARTING) and state_dir.exists():
            started = self._unrecorded_start(c)
            if started is not None:
                log.info("container %s: recording a start cut short by the daemon's exit", c.id[:12])
                c.life.state = State.RUNNING
                c.started_at, c.finished_at = started["started_at"], cc.ZERO_TIME
                c.exit_code, c.error, c.oom_killed = 0, "", False
                c.manual_stop, c.has_started = False, True
            elif not (state_dir / "started.json").exists():
                self._discard_supervisor(state_dir)     # set up, never started
        if c.state not in (State.RUNNING, State.PAUSED, State.RESTARTING):
            self.engine.networks.release(c.id)
            if state_dir.exists() and not _alive(_pid_in(state_dir / "shim.pid")):
                shutil.rmtree(state_dir, ignore_errors=True)   # runtime state of no process
            if loop and c.state is State.EXITED and c.has_started and self._should_restart(c, True):
                self._task(self._boot_start(c), loop)     # "always" comes back with the daemon
            return
        shim = Shim.find(str(self.exec_root / c.id)) if (self.exec_root / c.id / "spec.json").exists() else None
        status = None
        if shim is not None:
            try:
                status = shim.status()
            except (OSError, ValueError):
                shim = None
        if shim is not None and status and status.get("running"):
            if status.get("paused") and c.state is not State.PAUSED:
                # frozen by a commit (pause=true) the daemon died in the middle of: thaw it
                try:
                    log.info("container %s: thawing it after a commit cut short", c.id[:12])
                    shim.resume()
                    status["paused"] = False
                except (OSError, ValueError) as e:
                    log.warning("resuming %s after a commit cut short: %s", c.id[:12], e)
            c.shim, c.pid = shim, status["pid"]
            c.life.state = State.PAUSED if status.get("paused") else State.RUNNING
            c.save()
            if loop:
                self._task(self._monitor(c, shim), loop)
                self._task(self._republish(c), loop)
            return
        st = None
        if shim is not None and status and not status.get("started"):
            # a restart (policy) cut short between set-up and start: the last exit stands
            self._discard_supervisor(state_dir)
            c.finished_at = cc.now_rfc3339() if not cc.parse_time(c.finished_at) else c.finished_at
        else:
            if (self.exec_root / c.id / "spec.json").exists():
                st = Shim(str(self.exec_root / c.id)).exit_status()
            c.exit_code = st.exit_code if st else 255
            c.finished_at = st.finished_at if st else cc.now_rfc3339()
            c.oom_killed = st.oom_killed if st else False
        c.pid = 0
        c.life.state = State.EXITED
        self.engine.networks.release(c.id)
        c.save()
        if loop and self._should_restart(c, at_boot=True):
            self._task(self._boot_start(c), loop)

    async def _republish(self, c: Container) -> None:
        """A re-adopted container's published ports: the proxies died with the old daemon."""
        mode = c.host_config["NetworkMode"]
        nets = self.engine.networks
        ep = nets.endpoint(c.id) if mode == "bridge" else nets.user_endpoint(c.id, mode)
        if not ep:
            return
        try:
            await nets.publish(c.id, _port_requests(c.config, c.host_config), ep["IPAddress"])
        except (OSError, EngineError) as e:
            log.warning("publishing the ports of %s again: %s", c.id[:12], e)

    def _task(self, coro, loop=None) -> asyncio.Task:
        task = (loop or asyncio.get_running_loop()).create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _boot_start(self, c: Container) -> None:
        try:
            await self._start(c)
        except Exception as e:  # noqa: BLE001 - logged, the container stays exited
            log.warning("restarting %s at start-up: %s", c.id[:12], e)

    def get(self, ref: str) -> Container:
        """By full ID, name (with or without "/"), or unique ID prefix."""
        if ref in self.by_id:
            return self.by_id[ref]
        cid = self.names.get("/" + ref.lstrip("/"))
        if cid:
            return self.by_id[cid]
        if ref:
            found = [c for i, c in self.by_id.items() if i.startswith(ref)]
            if len(found) == 1:
                return found[0]
            if len(found) > 1:
                raise InvalidParameter(f"multiple IDs found with provided prefix: {ref}")
        raise NotFound(f"No such container: {ref}")

    def counts(self) -> dict:
        states = [c.state for c in self.by_id.values()]
        running = sum(s in (State.RUNNING, State.RESTARTING) for s in states)
        paused = sum(s is State.PAUSED for s in states)
        return {"total": len(states), "running": running, "paused": paused,
                "stopped": len(states) - running - paused}

    def image_users(self, image_id: str) -> list[str]:
        return [c.id for c in self.by_id.values() if c.image_id == image_id]

    def volume_users(self, name: str) -> list[str]:
        return [c.id for c in self.by_id.values()
                if any(m.get("Name") == name for m in c.mounts if m["Type"] == "volume")]

    # --- create -------------------------------------------------------------------------
    def create(self, raw_body: bytes, name: str | None = None) -> dict:
        body = cc.parse_body(raw_body)
        if name:
            name = cc.check_name(name)
        image_ref = body.get("Image") or ""
        if not image_ref:
            raise InvalidParameter("No image specified")
        image = self.engine.images.resolve(image_ref)
        config, host = cc.merge(body, image.config)
        if host["NetworkMode"] not in ("bridge", "host", "none"):
            try:
                host["NetworkMode"] = self.engine.networks.resolve(host["NetworkMode"])
            except NotFound as e:    # 400, not 404: a 404 makes the docker CLI pull the image
                raise InvalidParameter(str(e)) from None
        endpoints = (body.get("NetworkingConfig") or {}).get("EndpointsConfig") or {}
        if host["NetworkMode"] == "bridge" and self.engine.networks.error:
            raise EngineError(self.engine.networks.error)
        if name is None:
            name = "/" + cc.random_name()
            while name in self.names:
                name = "/" + cc.random_name() + str(secrets.randbelow(100))
        if name in self.names:
            raise Conflict(_name_conflict(name, self.names[name]))
        img = image.config.get("config") or image.config.get("Config") or {}
        if img.get("ExposedPorts"):
            config["ExposedPorts"] = {**img["ExposedPorts"], **(config.get("ExposedPorts") or {})}
        _port_requests(config, host)                                 # validates the bindings
        if img.get("Volumes"):
            config["Volumes"] = {**img["Volumes"], **(config.get("Volumes") or {})}
        volumes_from = []
        for spec in host.get("VolumesFrom") or []:
            ref, mode = vol.parse_volumes_from(spec)
            volumes_from.append((self.get(ref).mounts, mode))
        mounts = self.engine.volumes.plan_mounts(host, config.get("Volumes"), volumes_from)
        cid = secrets.token_hex(32)
        if not config.get("Hostname"):
            config["Hostname"] = socket.gethostname() if host["NetworkMode"] == "host" else cid[:12]
        argv = (config.get("Entrypoint") or []) + (config.get("Cmd") or [])
        c = Container(self.root, id=cid, name=name, created=cc.now_rfc3339(), path=argv[0],
                      args=argv[1:], config=config, host_config=host, image_id=image.id,
                      mounts=mounts)
        try:
            for sub in ("upper", "work", "merged"):
                (c.dir / sub).mkdir(parents=True, exist_ok=True)
            if self.engine.networks.user_net(host["NetworkMode"]):
                mode = host["NetworkMode"]
                self.engine.networks.attach_config(cid, mode, endpoints.get(mode) or next(
                    (v for k, v in endpoints.items() if self.engine.networks.resolve(k) == mode), None))
            c.save()
        except BaseException:
            shutil.rmtree(c.dir, ignore_errors=True)
            self._remove_anonymous(c)
            self.engine.networks.forget(cid)
            raise
        self.by_id[cid] = c
        self.names[name] = cid
        return {"Id": cid, "Warnings": []}

    # --- start --------------------------------------------------------------------------
    async def start(self, ref: str) -> None:
        c = self.get(ref)
        c.life.check(Event.START, ref)
        await self._start(c)

    async def _start(self, c: Container) -> None:
        from ..network.bridge import NetworkError
        from ..runtime import StartError, spawn
        async with c.lock:
            if c.state in (State.RUNNING, State.PAUSED):
                raise StateError(304, "Container is already started", c.state, Event.START)
            event = Event.RESTARTED if c.state is State.RESTARTING else Event.START
            state_dir = self.exec_root / c.id
            shutil.rmtree(state_dir, ignore_errors=True)
            networks = self.engine.networks
            try:
                spec, on_netns = self._spec(c)
                if spec.net is not None:
                    await networks.publish(c.id, _port_requests(c.config, c.host_config),
                                           spec.net.address.split("/")[0])
                shim = spawn(spec, str(state_dir), on_netns=on_netns)
                self._connect_pending(c, shim)
                pid = shim.start()
            except (StartError, ValueError, OSError, NetworkError, EngineError) as e:
                networks.release(c.id)
                self._unmount_volumes(c)
                text = str(e).splitlines()[0] if str(e) else type(e).__name__
                code = getattr(e, "exit_code", 128)
                if isinstance(e, StartError):
                    text = START_FAILED.format(text)
                c.exit_code, c.error = code, text
                if c.state is State.RESTARTING:
                    c.life.fire(Event.DIE)
                c.save()
                self._fail_pending(c)
                c.wake(c.exit_waiters)
                if c.host_config.get("AutoRemove"):
                    self._task(self._remove_quietly(c))
                raise StartFailed(text, 400 if code in (126, 127) or _config_error(text) else 500) from None
            c.shim, c.pid = shim, pid
            c.life.fire(event)
            c.started_at, c.finished_at = cc.now_rfc3339(), cc.ZERO_TIME
            c.exit_code, c.error, c.oom_killed = 0, "", False
            c.manual_stop, c.has_started = False, True
            c.save()
        self._task(self._monitor(c, shim))

    def _spec(self, c: Container):
        """The runtime's ContainerSpec for a start, and its on_netns hook."""
        from ..network import files
        from ..runtime import ContainerSpec, Mount, NetConfig
        image = self.engine.images.get(c.image_id)
        host, cfg = c.host_config, c.config
        mode = host["NetworkMode"]
        nets = self.engine.networks
        net, on_netns, ip, dns = None, None, None, []
        if mode == "bridge":
            ep = nets.allocate(c.id)
        elif mode not in ("host", "none"):
            ep = nets.allocate_user(c.id, mode, self._dns_names(c), 0)
            dns = [ep["DNSServer"]]
        if mode not in ("host", "none"):
            ip = ep["IPAddress"]
            net = NetConfig("eth0", f"{ip}/{ep['IPPrefixLen']}", ep["Gateway"], ep["MacAddress"])
            extra = [n for n in nets.networks_of(c.id, mode) if n != mode]
            for i, name in enumerate(extra, 1):
                nets.allocate_user(c.id, name, self._dns_names(c), i)

            def on_netns(pid):
                if mode == "bridge":
                    nets.plug(c.id, pid)
                else:
                    nets.plug_user(c.id, mode, pid, configure=False)
                for name in extra:
                    nets.plug_user(c.id, name, pid, configure=True)
        hostname = cfg.get("Hostname") or c.id[:12]
        try:
            host_resolv = Path("/etc/resolv.conf").read_text()
        except OSError:
            host_resolv = ""
        if mode == "host":
            try:
                hosts = Path("/etc/hosts").read_text()
            except OSError:
                hosts = files.hosts_file(None, hostname)
        else:
            hosts = files.hosts_file(ip, hostname, ipv6=False)
        etc = {"hosts": hosts, "resolv.conf": files.resolv_conf(host_resolv, bridge=mode != "host", dns=dns),
               "hostname": hostname + "\n"}
        for name, text in etc.items():
            (c.dir / name).write_text(text)
        mounts = []
        layers = [str(c.dir / "upper"), *self.engine.images.layer_dirs(image)]
        for m in c.mounts:
            if m["Type"] == "tmpfs":
                mounts.append(Mount(m["Destination"], "", "tmpfs", not m["RW"], m.get("Options") or ""))
                continue
            source = m["Source"]
            if m["Type"] == "volume":
                if not self.engine.volumes.exists(m["Name"]):
                    self.engine.volumes.create(m["Name"], m.get("Driver"))   # removed behind our back
                source = self.engine.volumes.mount(m["Name"], c.id)
                if m.get("CopyUp"):
                    self.engine.volumes.copy_up(source, layers, m["Destination"])
            elif not os.path.exists(source):
                os.makedirs(source, exist_ok=True)      # as Docker does for -v binds
            mounts.append(Mount(m["Destination"], source, "bind", not m["RW"]))
        nano = host.get("NanoCpus") or 0
        if not nano and host.get("CpuQuota") and host.get("CpuQuota") > 0:
            nano = host["CpuQuota"] * 10**9 // (host.get("CpuPeriod") or 100_000)
        size = host.get("ConsoleSize")
        spec = ContainerSpec(
            id=c.id, lower_dirs=self.engine.images.layer_dirs(image), upper_dir=str(c.dir / "upper"),
            work_dir=str(c.dir / "work"), merged_dir=str(c.dir / "merged"), args=[c.path, *c.args],
            env=list(cfg.get("Env") or []), cwd=cfg.get("WorkingDir") or "/", user=cfg.get("User") or "",
            hostname=hostname, tty=c.tty, open_stdin=bool(cfg.get("OpenStdin")),
            stdin_once=bool(cfg.get("StdinOnce")), readonly_rootfs=bool(host.get("ReadonlyRootfs")),
            mounts=mounts, etc_files={n: str(c.dir / n) for n in etc},
            network_mode=mode if mode in ("host", "none") else "bridge", net=net,
            memory=host.get("Memory") or 0, memory_swap=host.get("MemorySwap") or 0, nano_cpus=nano,
            pids_limit=max(host.get("PidsLimit") or 0, 0), stop_signal=cfg.get("StopSignal") or "SIGTERM",
            cgroup_parent=CGROUP_PARENT, log_path=str(c.log_path),
            no_new_privileges=cc.no_new_privileges(host.get("SecurityOpt")),
            console_size=tuple(size) if size and all(size) else None)
        return spec, on_netns

    # --- exits and restarts -----------------------------------------------------------------
    async def _monitor(self, c: Container, shim) -> None:
        """Wait for the supervisor's report of the exit, then record it."""
        try:
            sock = shim.connect({"op": "wait"}, None)
            reader, writer = await asyncio.open_unix_connection(sock=sock)
            await reader.readline()
            writer.close()
        except (OSError, ValueError):
            pass
        await self._on_exit(c, shim.exit_status())

    def _unmount_volumes(self, c: Container) -> None:
        """Give plugin volumes back (`VolumeDriver.Unmount`) once the container has stopped."""
        for m in c.mounts:
            if m["Type"] == "volume" and m.get("Driver", "local") != "local":
                try:
                    self.engine.volumes.unmount(m["Name"], c.id)
                except EngineError as e:
                    log.warning("unmounting volume %s of %s: %s", m["Name"], c.id[:12], e)

    async def _on_exit(self, c: Container, st) -> None:
        c.shim, c.pid = None, 0
        await asyncio.to_thread(self._unmount_volumes, c)
        c.exit_code = st.exit_code if st else 255
        c.finished_at = st.finished_at if st else cc.now_rfc3339()
        c.oom_killed = st.oom_killed if st else False
        self.engine.networks.release(c.id)
        if c.state in (State.REMOVING, State.DEAD) or c.id not in self.by_id:
            c.wake(c.exit_waiters)
            return
        if c.state is State.RUNNING and self._should_restart(c):
            c.life.fire(Event.AUTO_RESTART)
            c.save()
            c.wake(c.exit_waiters)
            c.restart_task = self._task(self._restart_later(c))
            return
        if c.state is not State.EXITED:
            c.life.fire(Event.DIE)
        c.save()
        c.wake(c.exit_waiters)
        if c.host_config.get("AutoRemove"):
            await self._remove_quietly(c)

    def _should_restart(self, c: Container, at_boot: bool = False) -> bool:
        policy = c.host_config.get("RestartPolicy") or {}
        name = policy.get("Name") or "no"
        if c.manual_stop and (name != "always" or not at_boot):
            return False
        if name in ("always", "unless-stopped"):
            return True
        if name == "on-failure" and not at_boot:
            limit = policy.get("MaximumRetryCount") or 0
            return c.exit_code != 0 and (not limit or c.restart_count < limit)
        return False

    async def _restart_later(self, c: Container) -> None:
        await asyncio.sleep(RESTART_DELAY)
        if c.state is not State.RESTARTING or c.id not in self.by_id:
            return
        c.restart_count += 1
        c.restart_task = None
        try:
            await self._start(c)
        except Exception as e:  # noqa: BLE001 - the failure is recorded on the container
            log.info("restart of %s failed: %s", c.id[:12], e)

    async def _await_exit(self, c: Container, timeout: float | None) -> bool:
        """True once the current process has exited (at most `timeout` seconds)."""
        if c.shim is None:
            return True
        fut = asyncio.get_running_loop().create_future()
        c.exit_waiters.append(fut)
        try:
            await asyncio.wait_for(asyncio.shield(fut), timeout)
            return True
        except asyncio.TimeoutError:
            return False

    # --- stop, kill, restart, pause --------------------------------------------------------
    async def stop(self, ref: str, timeout: int | None = None, sig: str | None = None) -> None:
        c = self.get(ref)
        c.life.check(Event.STOP, ref)
        await self._stop(c, timeout, sig)

    async def _stop(self, c: Container, timeout: int | None, sig: str | None = None) -> None:
        from ..runtime.spec import signal_number
        c.manual_stop = True
        if c.state is State.RESTARTING:
            if c.restart_task:
                c.restart_task.cancel()
            c.life.fire(Event.STOP)
            c.save()
            c.wake(c.exit_waiters)
            return
        if timeout is None:
            timeout = c.config.get("StopTimeout")
            timeout = 10 if timeout is None else timeout
        shim = c.shim
        if shim is None:
            return
        try:
            number = signal_number(sig or c.config.get("StopSignal") or "SIGTERM")
        except ValueError as e:
            raise InvalidParameter(str(e)) from None
        if timeout != 0:
            self._signal(shim, number)
            if c.state is State.PAUSED:
                shim.resume()
            if await self._await_exit(c, None if timeout < 0 else timeout):
                return
        self._signal(shim, 9)
        await self._await_exit(c, None)

    @staticmethod
    def _signal(shim, number: int) -> None:
        try:
            shim.signal(number)
        except (ValueError, OSError):      # it is exiting already
            pass

    async def kill(self, ref: str, sig: str | None = None) -> None:
        from ..runtime.spec import signal_number
        c = self.get(ref)
        try:
            number = signal_number(sig or "SIGKILL")
        except ValueError:
            raise InvalidParameter(f"Invalid signal: {sig}") from None
        c.life.check(Event.KILL, ref)
        c.manual_stop = True
        if c.state is State.RESTARTING:
            await self._stop(c, 0)
            return
        if c.shim is not None:
            self._signal(c.shim, number)
            if number == 9:
                await self._await_exit(c, 10)

    async def restart(self, ref: str, timeout: int | None = None, sig: str | None = None) -> None:
        c = self.get(ref)
        c.life.check(Event.RESTART, ref)
        if c.state in (State.RUNNING, State.PAUSED, State.RESTARTING):
            await self._stop(c, timeout, sig)
        if c.state is State.RUNNING:          # a restart policy got there first
            return
        await self._start(c)

    def pause(self, ref: str) -> None:
        c = self.get(ref)
        c.life.check(Event.PAUSE, ref)
        try:
            if c.shim is None:      # the exit is being recorded right now
                raise OSError("no supervisor")
            c.shim.pause()
        except OSError:     # the process exited before its exit was seen: its cgroup is gone
            raise Conflict(f"Container {c.id} is not running") from None
        c.life.fire(Event.PAUSE)
        c.save()

    def unpause(self, ref: str) -> None:
        c = self.get(ref)
        c.life.check(Event.UNPAUSE, ref)
        try:
            if c.shim is None:
                raise OSError("no supervisor")
            c.shim.resume()
        except OSError:
            raise Conflict(f"Container {c.id} is not running") from None
        c.life.fire(Event.UNPAUSE)
        c.save()

    # --- remove, rename -------------------------------------------------------------------
    async def remove(self, ref: str, force: bool = False, volumes: bool = False) -> None:
        c = self.get(ref)
        c.life.check(Event.FORCE_REMOVE if force else Event.REMOVE, ref)
        if c.state in (State.RUNNING, State.PAUSED, State.RESTARTING):
            await self._stop(c, 0)
        await self._remove(c, Event.FORCE_REMOVE if force else Event.REMOVE, volumes)

    async def _remove_quietly(self, c: Container) -> None:
        try:
            if c.id in self.by_id and c.state not in (State.REMOVING, State.DEAD):
                await self._remove(c, Event.FORCE_REMOVE, volumes=True)
        except Exception as e:  # noqa: BLE001
            log.warning("auto-removing %s: %s", c.id[:12], e)

    async def _remove(self, c: Container, event: Event, volumes: bool = False) -> None:
        c.life.fire(event)
        self.engine.networks.forget(c.id)
        try:
            # The record goes first: a daemon killed half-way through leaves a directory
            # without a record, which the next start-up removes, never half a container.
            (c.dir / "config.v2.json").unlink(missing_ok=True)
            shutil.rmtree(self.exec_root / c.id, ignore_errors=True)
            shutil.rmtree(c.dir)
        except OSError as e:
            c.life.fire(Event.REMOVE_FAILED)
            c.error = f"unable to remove filesystem for {c.id}: {e.strerror}"
            c.save()
            raise EngineError(c.error) from None
        self.by_id.pop(c.id, None)
        if self.names.get(c.name) == c.id:
            del self.names[c.name]
        if volumes:
            self._remove_anonymous(c)
        self._fail_pending(c)
        c.wake(c.exit_waiters)
        c.wake(c.remove_waiters)

    async def prune(self, filters: str | None = None) -> dict:
        """Remove every stopped container (matching `label` filters): docker container prune."""
        f = cc.parse_filters(filters)
        deleted, reclaimed = [], 0
        for c in list(self.by_id.values()):
            if c.state not in (State.CREATED, State.EXITED, State.DEAD):
                continue
            if not all(cc.label_matches(c.config.get("Labels") or {}, v) for v in f.get("label", [])):
                continue
            size = _du(c.dir / "upper")
            await self._remove(c, Event.REMOVE)
            deleted.append(c.id)
            reclaimed += size
        return {"ContainersDeleted": deleted or None, "SpaceReclaimed": reclaimed}

    def rename(self, ref: str, new: str) -> None:
        c = self.get(ref)
        if not new:
            raise InvalidParameter("Neither old nor new names may be empty")
        name = cc.check_name(new)
        if name == c.name:
            raise InvalidParameter("Renaming a container with the same name as its current name")
        if name in self.names:
            raise Conflict("Error when allocating new name: " + _name_conflict(name, self.names[name]))
        del self.names[c.name]
        self.engine.networks.rename(c.id, c.name.lstrip("/"), name.lstrip("/"))
        c.name = name
        self.names[name] = c.id
        c.save()

    # --- wait, attach, resize ---------------------------------------------------------------
    def waiter(self, ref: str, condition: str = "not-running") -> asyncio.Future:
        """A future of the exit code for `condition`; raises NotFound before anything is sent."""
        c = self.get(ref)
        fut = asyncio.get_running_loop().create_future()
        if condition in ("", "not-running"):
            if c.state not in (State.RUNNING, State.PAUSED, State.RESTARTING):
                fut.set_result(c.exit_code)
            else:
                c.exit_waiters.append(fut)
        elif condition == "next-exit":
            c.exit_waiters.append(fut)
        elif condition == "removed":
            c.remove_waiters.append(fut)
        else:
            raise InvalidParameter(f"invalid condition: {condition!r}")
        return fut

    def attach_prepare(self, ref: str, *, stdin: bool, stdout: bool, stderr: bool, logs: bool,
                       stream: bool):
        """Check an attach request before the connection is hijacked. Returns the
        container, the log replay (bytes) and a future of the runtime's Attachment
        (None when nothing will be streamed)."""
        c = self.get(ref)
        replay = b""
        if logs:
            replay = b"".join(logs_mod.render(e, tty=c.tty) for e in logs_mod.select(
                self._entries(c), stdout=stdout, stderr=stderr))
        if not stream:
            return c, replay, None
        opts = {"stdin": stdin and bool(c.config.get("OpenStdin")), "stdout": stdout, "stderr": stderr}
        fut = asyncio.get_running_loop().create_future()
        if c.shim is not None and c.state in (State.RUNNING, State.PAUSED):
            try:
                fut.set_result(c.shim.attach(**opts))
            except (OSError, ValueError):
                fut.set_result(None)
        else:
            c.pending_attaches.append((opts, fut))
        return c, replay, fut

    @staticmethod
    def _connect_pending(c: Container, shim) -> None:
        pending, c.pending_attaches = c.pending_attaches, []
        for opts, fut in pending:
            if fut.done():
                continue
            try:
                fut.set_result(shim.attach(**opts))
            except (OSError, ValueError):
                fut.set_result(None)

    @staticmethod
    def _fail_pending(c: Container) -> None:
        pending, c.pending_attaches = c.pending_attaches, []
        for _, fut in pending:
            if not fut.done():
                fut.set_result(None)

    def resize(self, ref: str, height: int, width: int) -> None:
        c = self.get(ref)
        if c.shim is None or c.state not in (State.RUNNING, State.PAUSED):
            raise Conflict(f"Container {c.id} is not running")
        try:
            c.shim.resize(height, width)
        except ValueError as e:
            raise InvalidParameter(f"cannot resize: {e}") from None

    # --- logs ------------------------------------------------------------------------------
    def _entries(self, c: Container) -> list[logs_mod.Entry]:
        try:
            data = c.log_path.read_bytes()
        except FileNotFoundError:
            return []
        return [e for e in map(logs_mod.parse_line, data.splitlines()) if e is not None]

    def logs(self, ref: str, *, stdout: bool, stderr: bool, follow: bool, timestamps: bool,
             tail: int | None, since: float, until: float):
        """(tty, async iterator of the rendered log) — NotFound is raised here, not in the iterator."""
        c = self.get(ref)
        if not (stdout or stderr):
            raise InvalidParameter("You must choose at least one stream")

        async def gen():
            try:
                f = open(c.log_path, "rb")
            except FileNotFoundError:
                f = None
            data = f.read() if f else b""
            lines, rest = data.split(b"\n"), b""
            rest = lines.pop()
            entries = [e for e in map(logs_mod.parse_line, lines) if e]
            for e in logs_mod.select(entries, stdout=stdout, stderr=stderr, tail=tail, since=since,
                                     until=until):
                yield logs_mod.render(e, tty=c.tty, timestamps=timestamps)
            while follow and c.id in self.by_id and not until:
                running = c.state in (State.RUNNING, State.PAUSED, State.RESTARTING)
                if f is None and c.log_path.exists():
                    f = open(c.log_path, "rb")
                more = f.read() if f else b""
                if more:
                    lines = (rest + more).split(b"\n")
                    rest = lines.pop()
                    for e in logs_mod.select([e for e in map(logs_mod.parse_line, lines) if e],
                                             stdout=stdout, stderr=stderr, since=since):
                        yield logs_mod.render(e, tty=c.tty, timestamps=timestamps)
                elif not running:
                    break
                else:
                    await asyncio.sleep(0.1)
            if f:
                f.close()
        return c.tty, gen()

    # --- top -------------------------------------------------------------------------------
    async def top(self, ref: str, ps_args: str = "-ef") -> dict:
        c = self.get(ref)
        if c.shim is None or c.state not in (State.RUNNING, State.PAUSED):
            raise Conflict(f"Container {c.id} is not running")
        pids = set(c.shim.pids())
        proc = await asyncio.create_subprocess_exec(
            "ps", *(ps_args.split() or ["-ef"]), stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE)
        out, err = await proc.communicate()
        if proc.returncode:
            raise EngineError(f"ps: {err.decode(errors='replace').strip()}")
        lines = out.decode(errors="replace").splitlines()
        titles = lines[0].split()
        if "PID" not in titles:
            raise EngineError(f"Couldn't find PID field in ps output")
        at = titles.index("PID")
        rows = []
        for line in lines[1:]:
            fields = line.split(None, len(titles) - 1)
            if len(fields) > at and fields[at].isdigit() and int(fields[at]) in pids:
                rows.append(fields)
        return {"Titles": titles, "Processes": rows}

    # --- archive (docker cp) ---------------------------------------------------------------
    async def archive(self, ref: str, path: str, head: bool = False):
        """(stat, tar chunks or None for HEAD) of `path` in the container's file system."""
        from . import copyout as archive
        c = self.get(ref)
        if not path:
            raise InvalidParameter("path cannot be empty")
        if c.shim is not None and c.pid and c.state in (State.RUNNING, State.PAUSED):
            layers = [f"/proc/{c.pid}/root"]
        else:
            layers = [str(c.dir / "upper"), *self._lower_dirs(c)]
        found = archive.path_stat(layers, path)
        if found is None:
            raise NotFound(f"Could not find the file {path} in container {ref}")
        stat, paths = found
        return stat, None if head else archive.tar_stream(paths, path)

    # --- list and inspect --------------------------------------------------------------------
    def _networks(self, c: Container) -> dict:
        nets = self.engine.networks
        mode = c.host_config["NetworkMode"]
        out = {}
        for name in nets.networks_of(c.id, mode) or [mode]:
            if name in ("bridge", "host", "none"):
                ep = (nets.endpoint(c.id) if name == "bridge" else None) or {}
            else:
                ep = nets.user_endpoint(c.id, name) or {}
            cfg = nets.attached.get(c.id, {}).get(nets.id_of(name)) if nets.user_net(name) else None
            out[name] = {
                "IPAMConfig": {"IPv4Address": cfg["IPv4Address"]} if cfg and cfg["IPv4Address"] else None,
                "Links": None, "Aliases": (cfg or {}).get("Aliases") or None,
                "MacAddress": ep.get("MacAddress", ""), "NetworkID": nets.id_of(name),
                "EndpointID": ep.get("EndpointID", ""), "Gateway": ep.get("Gateway", ""),
                "IPAddress": ep.get("IPAddress", ""), "IPPrefixLen": ep.get("IPPrefixLen", 0),
                "IPv6Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "DriverOpts": None,
                "DNSNames": ep.get("DNSNames") or None}
        return out

    def _dns_names(self, c: Container) -> list[str]:
        return [c.name.lstrip("/"), c.id[:12]]

    # --- network connect / disconnect ----------------------------------------------------------
    async def connect(self, net_ref: str, ref: str, config: dict | None) -> None:
        from ..network.bridge import NetworkError
        nets = self.engine.networks
        name, c = nets.resolve(net_ref), self.get(ref)
        mode = c.host_config["NetworkMode"]
        if mode in ("host", "none") or name in ("host", "none"):
            raise InvalidParameter("container sharing network namespace with another container or host "
                                   "cannot be connected to any other network")
        if nets.user_net(name) is None:
            raise InvalidParameter(f"connecting to the predefined network {name} is not supported")
        if name == mode or nets.is_attached(c.id, name):
            raise Forbidden(f"endpoint with name {c.name.lstrip('/')} already exists in network {name}")
        nets.attach_config(c.id, name, config)
        if c.shim is None or c.state not in (State.RUNNING, State.PAUSED):
            return
        used = {ep["Ifname"] for n in nets.networks_of(c.id, mode)
                if (ep := nets.user_endpoint(c.id, n)) and "Ifname" in ep}
        index = next(i for i in range(1, 64) if f"eth{i}" not in used)
        try:
            nets.allocate_user(c.id, name, self._dns_names(c), index)
            await asyncio.to_thread(nets.plug_user, c.id, name, c.pid, True)
        except BaseException as e:
            await asyncio.to_thread(nets.detach_config, c.id, name)
            if isinstance(e, (NetworkError, OSError)):
                raise EngineError(f"cannot connect {c.name.lstrip('/')} to {name}: {e}") from None
            raise

    async def disconnect(self, net_ref: str, ref: str, force: bool = False) -> None:
        nets = self.engine.networks
        name = nets.resolve(net_ref)
        try:
            c = self.get(ref)
        except NotFound:
            if force:
                return
            raise
        if nets.user_net(name) is None or not nets.is_attached(c.id, name):
            if name == c.host_config["NetworkMode"]:
                raise InvalidParameter(f"disconnecting from the predefined network {name} is not supported")
            raise Forbidden(f"container {c.id} is not connected to network {name}")
        await asyncio.to_thread(nets.detach_config, c.id, name)


    def summary(self, c: Container, size: bool = False) -> dict:
        image = c.config.get("Image", "")
        out = {"Id": c.id, "Names": [c.name], "Image": image, "ImageID": c.image_id,
               "Command": " ".join([c.path, *c.args]), "Created": int(cc.parse_time(c.created)),
               "Ports": _ports_summary(self.engine.networks.ports(c.id)), "Labels": c.config.get("Labels") or {},
               "State": c.state.value,
               "Status": cc.status_text(c.state.value, c.exit_code, c.started_at, c.finished_at,
                                        time.time()),
               "HostConfig": {"NetworkMode": c.host_config["NetworkMode"]},
               "NetworkSettings": {"Networks": self._networks(c)}, "Mounts": self._mounts(c)}
        if size:
            out["SizeRw"] = _du(c.dir / "upper")
            out["SizeRootFs"] = out["SizeRw"] + self._image_size(c)
        return out

    def _image_size(self, c: Container) -> int:
        try:
            return self.engine.images.size(self.engine.images.get(c.image_id))
        except NotFound:
            return 0

    @staticmethod
    def _mounts(c: Container) -> list[dict]:
        return [{k: v for k, v in m.items() if k not in ("CopyUp", "Options")} for m in c.mounts]

    def _remove_anonymous(self, c: Container) -> None:
        """`rm -v`, `--rm`: the container's anonymous volumes that no other container uses."""
        for m in c.mounts:
            if m["Type"] != "volume" or not self.engine.volumes.exists(m["Name"]):
                continue
            if vol.ANON_LABEL not in (self.engine.volumes.inspect(m["Name"])["Labels"] or {}):
                continue
            try:
                self.engine.volumes.remove(m["Name"])
            except Conflict:
                pass

    def list(self, include_stopped: bool = False, limit: int | None = None, size: bool = False,
             filters: str | None = None) -> list[dict]:
        f = cc.parse_filters(filters)
        cs = sorted(self.by_id.values(), key=lambda c: c.created, reverse=True)
        if not include_stopped and not (limit and limit > 0) and "status" not in f and "exited" not in f:
            cs = [c for c in cs if c.state in (State.RUNNING, State.PAUSED, State.RESTARTING)]
        ancestors = set()
        for a in f.get("ancestor", []):
            try:
                ancestors.add(self.engine.images.resolve(a).id)
            except (NotFound, InvalidParameter, ValueError):
                pass
        before = [self.get(r) for r in f.get("before", [])]
        since = [self.get(r) for r in f.get("since", [])]
        out = []
        for c in cs:
            if "name" in f and not any(_name_match(v, c.name) for v in f["name"]):
                continue
            if "id" in f and not any(c.id.startswith(v) for v in f["id"]):
                continue
            if "label" in f and not all(cc.label_matches(c.config.get("Labels") or {}, v)
                                        for v in f["label"]):
                continue
            if "status" in f and c.state.value not in f["status"]:
                continue
            if "exited" in f and not (c.state is State.EXITED and str(c.exit_code) in f["exited"]):
                continue
            if "ancestor" in f and c.image_id not in ancestors:
                continue
            joined = self.engine.networks.networks_of(c.id, c.host_config["NetworkMode"])
            if "network" in f and not any(n in joined or n in map(self.engine.networks.id_of, joined)
                                          for n in f["network"]):
                continue
            if any(c.created >= b.created for b in before) or any(c.created <= x.created for x in since):
                continue
            if any(k in f for k in ("volume", "publish", "expose")):      # none of these exist yet
                continue
            if not all(v in ok for k, ok in (("health", ("none",)), ("is-task", ("false", "0")),
                                             ("isolation", ("default", ""))) for v in f.get(k, [])):
                continue
            out.append(self.summary(c, size))
            if limit and limit > 0 and len(out) >= limit:
                break
        return out

    def inspect(self, ref: str, size: bool = False) -> dict:
        c = self.get(ref)
        nets = self._networks(c)
        net = next(iter(nets.values()))
        out = {
            "Id": c.id, "Created": c.created, "Path": c.path, "Args": c.args,
            "State": {**inspect_flags(c.state), "OOMKilled": c.oom_killed, "Pid": c.pid,
                      "ExitCode": c.exit_code, "Error": c.error, "StartedAt": c.started_at,
                      "FinishedAt": c.finished_at},
            "Image": c.image_id, "ResolvConfPath": str(c.dir / "resolv.conf"),
            "HostnamePath": str(c.dir / "hostname"), "HostsPath": str(c.dir / "hosts"),
            "LogPath": str(c.log_path), "Name": c.name, "RestartCount": c.restart_count,
            "Driver": "overlay2", "Platform": "linux", "MountLabel": "", "ProcessLabel": "",
            "AppArmorProfile": "", "ExecIDs": None, "HostConfig": c.host_config,
            "GraphDriver": {"Name": "overlay2", "Data": {
                "LowerDir": ":".join(self._lower_dirs(c)), "UpperDir": str(c.dir / "upper"),
                "WorkDir": str(c.dir / "work"), "MergedDir": str(c.dir / "merged")}},
            "Mounts": self._mounts(c), "Config": c.config,
            "NetworkSettings": {"Bridge": "", "SandboxID": "", "SandboxKey": "", "HairpinMode": False,
                                "LinkLocalIPv6Address": "", "LinkLocalIPv6PrefixLen": 0,
                                "Ports": {**{k: None for k in c.config.get("ExposedPorts") or {}},
                                          **self.engine.networks.ports(c.id)},
                                "EndpointID": net["EndpointID"], "Gateway": net["Gateway"],
                                "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0,
                                "IPAddress": net["IPAddress"], "IPPrefixLen": net["IPPrefixLen"],
                                "IPv6Gateway": "", "MacAddress": net["MacAddress"], "Networks": nets},
        }
        if size:
            out["SizeRw"] = _du(c.dir / "upper")
            out["SizeRootFs"] = out["SizeRw"] + self._image_size(c)
        return out

    def _lower_dirs(self, c: Container) -> list[str]:
        try:
            return self.engine.images.layer_dirs(self.engine.images.get(c.image_id))
        except NotFound:
            return []

    def network_containers(self, network: str) -> dict:
        """The `Containers` section of a network's inspect."""
        out = {}
        for c in self.by_id.values():
            ep = self.engine.networks.endpoint(c.id) if network == "bridge" else None
            if ep and c.host_config["NetworkMode"] == network:
                out[c.id] = {"Name": c.name.lstrip("/"), "EndpointID": ep["EndpointID"],
                             "MacAddress": ep["MacAddress"],
                             "IPv4Address": f"{ep['IPAddress']}/{ep['IPPrefixLen']}", "IPv6Address": ""}
        return out


def _port_requests(config: dict, host: dict) -> list[tuple[str, str, str]]:
    """("80/tcp", host ip, host port or "" for any) for each port to publish: HostConfig.PortBindings,
    and with PublishAllPorts every exposed port not bound otherwise."""
    out = []
    bindings = dict(host.get("PortBindings") or {})
    if host.get("PublishAllPorts"):
        for key in config.get("ExposedPorts") or {}:
            bindings.setdefault(key, [{"HostIp": "", "HostPort": ""}])
    for key, binds in bindings.items():
        port, _, proto = key.partition("/")
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise InvalidParameter(f"invalid port specification: \"{key}\"")
        proto = proto or "tcp"
        if proto not in ("tcp", "udp"):
            raise InvalidParameter(f"publishing {proto} ports is not supported: {key}")
        for b in binds or [{}]:
            hp = str((b or {}).get("HostPort") or "")
            if hp and not all(x.isdigit() and int(x) < 65536 for x in hp.split("-", 1)):
                raise InvalidParameter(f"invalid port specification: \"{hp}\"")
            out.append((f"{port}/{proto}", (b or {}).get("HostIp") or "", hp))
    return out


def _ports_summary(ports: dict) -> list[dict]:
    return [{"IP": b["HostIp"], "PrivatePort": int(k.split("/")[0]), "PublicPort": int(b["HostPort"]),
             "Type": k.split("/")[1]} for k, binds in ports.items() for b in binds]


def _name_conflict(name: str, cid: str) -> str:
    return (f'Conflict. The container name "{name}" is already in use by container "{cid}". '
            "You have to remove (or rename) that container to be able to reuse that name.")


def _name_match(pattern: str, name: str) -> bool:
    import re
    try:
        return re.search(pattern, name) is not None
    except re.error:
        return pattern in name


def _du(path: Path) -> int:
    total = 0
    for root, dirs, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(root, f)).st_size
            except OSError:
                pass
    return total


def _alive(pid: int) -> bool:
    """Does process `pid` exist (and is it no zombie)?"""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _pid_in(path: Path) -> int:
    try:
        return int(path.read_text())
    except (OSError, ValueError):
        return 0


def _read_json(path: Path):
    try:
        return persist.read_json(path)
    except ValueError:
        return None
