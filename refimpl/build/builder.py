"""The classic builder: a context and a Dockerfile in, an image out, step by step.

Each instruction is a step that turns the stage's current image into the next
one. Steps that change the filesystem (RUN, COPY, ADD, WORKDIR of a new
directory) add a layer: RUN runs the command in a container of refimpl.runtime
(on the default bridge, as Docker's RUN) over the image's layers with a fresh overlay upper dir, and that upper dir
becomes the layer (refimpl.image.layers.diff_tar); COPY and ADD write the files
into an empty directory that becomes the layer. A step whose diff is empty adds
no layer, only a history entry (as Docker's commit does). The other
instructions only change the image config.

The cache: every step's result is an image config in the blob store, and
<data-root>/build/cache.json maps sha256(parent image ID + the step's key) to
it. The key is what Docker compares: RUN's command line with its shell and the
build args it sees, COPY/ADD's destination, flags and a hash of the copied
files' names, modes and contents (not mtimes), the metadata instructions' text
after substitution. A hit is used when its config and all its layers are still
there. Configs carry the build's time, so only the cache makes a rebuild give the
same image ID, unless the build arg SOURCE_DATE_EPOCH fixes every timestamp (the
configs' and the layer tars'): then equal builds give equal IDs even with --no-cache. Intermediate step images are not listed (only the final image is
marked as an image), like Docker's hidden intermediate images.

The final image of a build gets `Successfully built <id>` and one
`Successfully tagged <name>` per tag. A failing RUN ends the build with
"The command '...' returned a non-zero code: N" and the code.
"""
from __future__ import annotations

import copy
import fnmatch
import hashlib
import json
import os
import posixpath
import re
import secrets
import shutil
import stat
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import BinaryIO, Callable

from ..engine.errors import InvalidParameter, NotFound
from ..engine import persist
from ..engine.commit import layer_from_dir
from ..image import layers as layers_mod
from ..image import manifest as manifest_mod
from ..image import reference as ref_mod
from . import context as ctx_mod
from . import dockerfile as df
from .rootfs import RootView

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_SHELL = ["/bin/sh", "-c"]
# Build args Docker lets through without an ARG line (proxies), never recorded in history.
PREDEFINED_ARGS = {"HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY", "ftp_proxy",
                   "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy", "SOURCE_DATE_EPOCH"}
CGROUP_PARENT = "refimpl"


class BuildError(InvalidParameter):
    """A build that cannot go on; `code` is a failing RUN's exit code (1 otherwise)."""

    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.code = code


@dataclass
class BuildOptions:
    dockerfile: str = "Dockerfile"
    tags: list[str] = field(default_factory=list)
    buildargs: dict[str, str | None] = field(default_factory=dict)
    nocache: bool = False
    target: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    quiet: bool = False
    pull: bool = False


@dataclass
class Stage:
    name: str
    config: dict                       # the whole image config
    image_id: str | None               # None: nothing built yet (FROM scratch)
    args: dict[str, str] = field(default_factory=dict)
    cmd_set: bool = False

    @property
    def run(self) -> dict:
        return self.config.setdefault("config", {})

    @property
    def diff_ids(self) -> list[str]:
        return self.config.setdefault("rootfs", {"type": "layers", "diff_ids": []})["diff_ids"]

    def env(self) -> dict[str, str]:
        """Substitution environment: the stage's ARGs, overridden by its ENV."""
        out = dict(self.args)
        for item in self.run.get("Env") or []:
            k, _, v = item.partition("=")
            out[k] = v
        return out


def _now(epoch: int | None = None) -> str:
    when = datetime.now(timezone.utc) if epoch is None else datetime.fromtimestamp(epoch, timezone.utc)
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _short(image_id: str) -> str:
    return image_id.split(":", 1)[-1][:12]


def _duration(text: str, what: str) -> int:
    """Go durations for HEALTHCHECK flags ("30s", "1m30s", "500ms") in nanoseconds."""
    units = {"ns": 1, "us": 10**3, "µs": 10**3, "ms": 10**6, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)", text)
    if not text or "".join(a + b for a, b in parts) != text:
        raise BuildError(f"time: invalid duration \"{text}\" for --{what}")
    return int(sum(float(a) * units[b] for a, b in parts))


class Builder:
    """One build: `Builder(engine, say).build(context_stream, options) -> image ID`."""

    def __init__(self, engine, say: Callable[[dict], None]):
        self.engine, self.images = engine, engine.images
        self._say = say
        self.root = engine.data_root / "build"
        self.root.mkdir(parents=True, exist_ok=True)
        self.cache_path = self.root / "cache.json"
        self.quiet = False

    def say(self, text: str) -> None:
        if not self.quiet:
            self._say({"stream": text})

    # ------------------------------------------------------------------ the build
    def build(self, context: BinaryIO, opts: BuildOptions) -> str:
        self.opts, self.quiet = opts, opts.quiet
        epoch = opts.buildargs.get("SOURCE_DATE_EPOCH")
        try:
            self.epoch = int(epoch) if epoch not in (None, "") else None
        except ValueError:
            raise BuildError(f"invalid SOURCE_DATE_EPOCH: {epoch!r} is not a number of seconds") from None
        for t in opts.tags:
            ref = ref_mod.parse_normalized(t)          # a bad tag fails before anything runs
            if ref.digest:
                raise BuildError(f"invalid reference format: {t} is a digest reference")
        work = tempfile.mkdtemp(prefix="ctx-", dir=self.root)
        try:
            self.ctx = os.path.join(work, "ctx")
            ctx_mod.unpack(context, self.ctx)
            name = posixpath.normpath(opts.dockerfile or "Dockerfile").lstrip("/")
            path = os.path.join(self.ctx, name)
            if name.startswith("..") or not os.path.isfile(path):
                raise BuildError(f"Cannot locate specified Dockerfile: {opts.dockerfile or 'Dockerfile'}")
            ctx_mod.apply_dockerignore(self.ctx, keep=[name])
            with open(path, encoding="utf-8", errors="replace") as f:
                parsed = df.parse(f.read())
            return self._run(parsed)
        except (df.DockerfileError, ctx_mod.ContextError) as e:
            raise BuildError(str(e)) from None
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _run(self, parsed: df.Dockerfile) -> str:
        self.escape = parsed.escape
        stages: list[list[df.Instruction]] = []
        head: list[df.Instruction] = []
        for ins in parsed.instructions:
            if ins.name == "FROM":
                stages.append([ins])
            elif not stages:
                if ins.name != "ARG":
                    raise BuildError(f"Dockerfile parse error line {ins.line}: "
                                     f"{ins.name} before the first FROM (only ARG may come first)")
                head.append(ins)
            else:
                stages[-1].append(ins)
        if not stages:
            raise BuildError("Dockerfile parse error: no FROM instruction (file with no instructions?)")
        names = [self._stage_name(s[0]) for s in stages]
        if self.opts.target:
            t = self.opts.target.lower()
            if t not in names:
                raise BuildError(f"failed to reach build target {self.opts.target} in Dockerfile")
            stages = stages[:names.index(t) + 1]
        if self.opts.labels:
            q = lambda t: t if t and not re.search(r"[\s\"'\\$=]", t) else json.dumps(t)  # noqa: E731
            line = " ".join(f"{q(k)}={q(v)}" for k, v in sorted(self.opts.labels.items()))
            stages[-1].append(df._instruction("LABEL " + line, 0, "\\"))
        self.total = len(head) + sum(len(s) for s in stages)
        self._say(None)         # the build has started: later errors travel in the stream
        self.step = 0
        self.used_args: set[str] = set()
        self.global_args: dict[str, str] = {}
        for ins in head:
            self._next(ins)
            self._declare_args(ins, self.global_args, self.global_args)
        self.built: dict[str, Stage] = {}
        stage = None
        for i, instructions in enumerate(stages):
            stage = self._from(instructions[0], i)
            for ins in instructions[1:]:
                self._next(ins)
                try:
                    self._dispatch(stage, ins)
                except df.DockerfileError as e:     # from expanding variables: name the line
                    raise BuildError(str(e) if e.line else f"Dockerfile parse error line {ins.line}: {e}") \
                        from None
            self.built[str(i)] = stage
            if stage.name:
                self.built[stage.name] = stage
        unused = sorted(k for k in self.opts.buildargs if k not in self.used_args and k not in PREDEFINED_ARGS)
        if unused:
            self.say(f"[Warning] One or more build-args [{' '.join(unused)}] were not consumed\n")
        final = stage.image_id
        if final is None:
            raise BuildError("No image was generated. Is your Dockerfile empty?")
        self.images.mark_image(final)
        self._say({"aux": {"ID": final}})
        if self.quiet:
            self._say({"stream": final + "\n"})
        self.say(f"Successfully built {_short(final)}\n")
        for t in self.opts.tags:
            key = self.images.tag(final, t)
            self.say(f"Successfully tagged {ref_mod.parse_normalized(key).familiar()}\n")
        return final

    def _stage_name(self, ins: df.Instruction) -> str:
        w = df.words(ins.args, self.escape)
        return w[2].lower() if len(w) == 3 else ""

    def _next(self, ins: df.Instruction) -> None:
        self.step += 1
        self.say(f"Step {self.step}/{self.total} : {ins.original}\n")

    # ------------------------------------------------------------------ FROM
    def _from(self, ins: df.Instruction, index: int) -> Stage:
        self._next(ins)
        w = df.words(ins.args, self.escape)
        env = dict(self.global_args)
        base = df.expand(w[0], env, self.escape)
        if not base:
            raise BuildError(f"Dockerfile parse error line {ins.line}: base name ({w[0]}) should not be blank")
        name = w[2].lower() if len(w) == 3 else ""
        if base.lower() in self.built:
            parent = self.built[base.lower()]
            stage = Stage(name, copy.deepcopy(parent.config), parent.image_id)
            stage.config.pop("created", None)
        elif base == "scratch":
            stage = Stage(name, {"architecture": "amd64", "os": "linux", "config": {},
                                 "rootfs": {"type": "layers", "diff_ids": []}, "history": []}, None)
        else:
            img = self._base_image(base)
            stage = Stage(name, copy.deepcopy(img.config), img.id)
        env_list = stage.run.get("Env") or []
        if not any(e.startswith("PATH=") for e in env_list):
            stage.run["Env"] = env_list + [f"PATH={DEFAULT_PATH}"]
        if stage.image_id:
            self.say(f" ---> {_short(stage.image_id)}\n")
        triggers = stage.run.get("OnBuild") or []
        if triggers:
            self.say(f"# Executing {len(triggers)} build trigger{'s' if len(triggers) > 1 else ''}\n")
            stage.run["OnBuild"] = None
            for text in triggers:
                try:
                    sub = df._instruction(text, ins.line, self.escape, onbuild=True)
                except df.DockerfileError as e:
                    raise BuildError(f"invalid ONBUILD trigger {text!r}: {e}") from None
                self._dispatch(stage, sub)
        return stage

    def _base_image(self, name: str):
        try:
            if not self.opts.pull:
                return self.images.resolve(name)
        except NotFound:
            pass
        from ..engine.pull import pull
        try:
            ref = ref_mod.parse_normalized(name)
        except ref_mod.ReferenceError as e:
            raise BuildError(f"invalid reference format: {name}: {e}") from None
        try:
            pull(self.images, str(ref.tagged_or_latest() if not ref.digest else ref), None, lambda m: None)
        except Exception as e:  # noqa: BLE001 - reported as the build's error, one line
            text = (str(e).splitlines() or [type(e).__name__])[0]
            raise BuildError(f"failed to get the base image {name}: {text}") from None
        return self.images.resolve(str(ref))

    # ------------------------------------------------------------------ dispatch
    def _declare_args(self, ins: df.Instruction, into: dict, env: dict) -> None:
        for word in df.words(ins.args, self.escape):
            key, eq, default = word.partition("=")
            value = df.expand(default, env, self.escape) if eq else None
            if key in self.opts.buildargs and self.opts.buildargs[key] is not None:
                value = self.opts.buildargs[key]
                self.used_args.add(key)
            elif value is None and key in self.global_args and into is not self.global_args:
                value = self.global_args[key]
            if value is not None:
                into[key] = value      # declared without any value: stays unset

    def _dispatch(self, st: Stage, ins: df.Instruction) -> None:
        name, env = ins.name, st.env()
        exp = (lambda s: df.expand(s, env, self.escape)) if name in df.EXPANDS else (lambda s: s)
        if name == "RUN":
            return self._run_step(st, ins)
        if name in ("COPY", "ADD"):
            return self._copy_step(st, ins, exp)
        if name == "ARG":
            self._declare_args(ins, st.args, env)
            return self._meta(st, f"ARG {ins.args}")
        run = st.run
        if name == "ENV":
            items, shown = list(run.get("Env") or []), []
            for k, v in df.pairs(ins.args, self.escape, "ENV", ins.line):
                k, v = exp(k), exp(v)
                items = [e for e in items if e.partition("=")[0] != k] + [f"{k}={v}"]
                shown.append(f"{k}={v}")
            run["Env"] = items
            text = "ENV " + " ".join(shown)
        elif name == "LABEL":
            labels = dict(run.get("Labels") or {})
            shown = []
            for k, v in df.pairs(ins.args, self.escape, "LABEL", ins.line):
                k, v = exp(k), exp(v)
                labels[k] = v
                shown.append(f"{k}={v}")
            run["Labels"] = labels
            text = "LABEL " + " ".join(shown)
        elif name in ("CMD", "ENTRYPOINT"):
            if ins.json is not None:
                value = ins.json
            elif ins.args:
                value = list(run.get("Shell") or DEFAULT_SHELL) + [ins.args]
            else:
                value = None
            run["Cmd" if name == "CMD" else "Entrypoint"] = value
            if name == "CMD":
                st.cmd_set = True
            elif not st.cmd_set:
                run["Cmd"] = None
            text = f"{name} {json.dumps(value)}"
        elif name == "SHELL":
            run["Shell"] = ins.json
            text = f"SHELL {json.dumps(ins.json)}"
        elif name == "WORKDIR":
            path = exp(ins.args)
            cur = run.get("WorkingDir") or "/"
            run["WorkingDir"] = posixpath.normpath(posixpath.join(cur, path))
            return self._workdir_step(st, f"WORKDIR {run['WorkingDir']}")
        elif name == "USER":
            run["User"] = exp(ins.args)
            text = f"USER {run['User']}"
        elif name == "EXPOSE":
            ports = dict(run.get("ExposedPorts") or {})
            for p in df.expand_words(ins.args, env, self.escape):
                port, _, proto = p.partition("/")
                if not re.fullmatch(r"\d+(-\d+)?", port) or proto not in ("", "tcp", "udp", "sctp"):
                    raise BuildError(f"Dockerfile line {ins.line}: invalid containerPort: {p}")
                ports[f"{port}/{proto or 'tcp'}"] = {}
            run["ExposedPorts"] = ports
            text = "EXPOSE " + " ".join(sorted(ports))
        elif name == "VOLUME":
            vols = dict(run.get("Volumes") or {})
            for v in ins.json if ins.json is not None else df.expand_words(ins.args, env, self.escape):
                if not v.strip():
                    raise BuildError(f"Dockerfile line {ins.line}: VOLUME specified can not be an empty string")
                vols[exp(v) if ins.json is not None else v] = {}
            run["Volumes"] = vols
            text = "VOLUME " + json.dumps(sorted(vols))
        elif name == "STOPSIGNAL":
            run["StopSignal"] = exp(ins.args)
            text = f"STOPSIGNAL {run['StopSignal']}"
        elif name == "MAINTAINER":
            st.config["author"] = ins.args
            text = f"MAINTAINER {ins.args}"
        elif name == "ONBUILD":
            run["OnBuild"] = list(run.get("OnBuild") or []) + [ins.sub.original]
            text = f"ONBUILD {ins.sub.original}"
        elif name == "HEALTHCHECK":
            run["Healthcheck"] = self._healthcheck(ins, st)
            text = f"HEALTHCHECK {json.dumps(run['Healthcheck'], sort_keys=True)}"
        else:                                       # FROM is handled per stage
            raise BuildError(f"Dockerfile line {ins.line}: unexpected {name}")
        self._meta(st, text)

    def _healthcheck(self, ins: df.Instruction, st: Stage) -> dict:
        kind, _, rest = ins.args.partition(" ")
        if kind.upper() == "NONE":
            return {"Test": ["NONE"]}
        sub = df._instruction("CMD " + rest.strip(), ins.line, self.escape)
        test = ["CMD"] + sub.json if sub.json is not None else ["CMD-SHELL", sub.args]
        hc: dict = {"Test": test}
        for flag, key in (("interval", "Interval"), ("timeout", "Timeout"), ("start-period", "StartPeriod"),
                          ("start-interval", "StartInterval")):
            if flag in ins.flags:
                hc[key] = _duration(ins.flags[flag], flag)
        if "retries" in ins.flags:
            try:
                hc["Retries"] = int(ins.flags["retries"])
            except ValueError:
                raise BuildError(f"Dockerfile line {ins.line}: invalid --retries {ins.flags['retries']}") from None
        return hc

    # ------------------------------------------------------------------ cache and commit
    def _cache(self) -> dict:
        return persist.read_json(self.cache_path, {}) or {}

    def _key(self, st: Stage, what: str) -> str:
        return hashlib.sha256(f"{st.image_id or 'scratch'}\n{what}".encode()).hexdigest()

    def _lookup(self, st: Stage, what: str) -> bool:
        """Move the stage to a cached result of this step, if there is one."""
        if self.opts.nocache:
            return False
        image_id = self._cache().get(self._key(st, what))
        if not image_id or image_id not in self.images.blobs:
            return False
        config = manifest_mod.parse_config(self.images.blobs.get(image_id))
        chains = manifest_mod.chain_ids(config.get("rootfs", {}).get("diff_ids", []))
        if not all(self.images.has_layer(str(c)) for c in chains):
            return False
        st.config, st.image_id = config, image_id
        self.say(" ---> Using cache\n")
        self.say(f" ---> {_short(image_id)}\n")
        return True

    def _commit(self, st: Stage, what: str | None, created_by: str = "", empty: bool = True) -> str:
        """Write the stage's config as a new step image; remember it in the cache under `what`."""
        st.config["created"] = _now(self.epoch)
        if what is not None:
            item = {"created": st.config["created"], "created_by": created_by}
            if empty:
                item["empty_layer"] = True
            st.config.setdefault("history", []).append(item)
        raw = json.dumps(st.config, separators=(",", ":"), sort_keys=True).encode()
        key = self._key(st, what) if what is not None else None
        image_id = str(self.images.blobs.put(raw))
        st.image_id = image_id
        if key:
            cache = self._cache()
            cache[key] = image_id
            persist.write_json(self.cache_path, cache)
        return image_id

    def _meta(self, st: Stage, text: str) -> None:
        created_by = f"/bin/sh -c #(nop)  {text}"
        if self._lookup(st, created_by):
            return
        self._commit(st, created_by, created_by)
        self.say(f" ---> {_short(st.image_id)}\n")

    def _add_layer(self, st: Stage, upper: str) -> bool:
        """Turn a directory of changes into a layer on the stage; False when it is empty."""
        if not os.listdir(upper):
            return False
        chains = manifest_mod.chain_ids(st.diff_ids)
        parent = str(chains[-1]) if chains else None
        st.diff_ids.append(layer_from_dir(self.images, upper, parent, mtime=self.epoch))
        return True

    def _view(self, st: Stage) -> RootView:
        img_dirs = [self.images.layer_dir(str(c)) for c in reversed(manifest_mod.chain_ids(st.diff_ids))]
        return RootView(img_dirs)

    # ------------------------------------------------------------------ RUN
    def _run_step(self, st: Stage, ins: df.Instruction) -> None:
        run = st.run
        argv = ins.json if ins.json is not None else list(run.get("Shell") or DEFAULT_SHELL) + [ins.args]
        env = dict(st.env())
        arg_env = {k: v for k, v in st.args.items()
                   if not any(e.partition("=")[0] == k for e in run.get("Env") or [])}
        recorded = {k: v for k, v in sorted(arg_env.items()) if k not in PREDEFINED_ARGS}
        prefix = f"|{len(recorded)} " + " ".join(f"{k}={v}" for k, v in recorded.items()) + " " if recorded else ""
        created_by = prefix + " ".join(argv)
        if self._lookup(st, "RUN " + json.dumps([recorded, argv])):
            return
        cid = secrets.token_hex(32)
        self.say(f" ---> Running in {cid[:12]}\n")
        work = tempfile.mkdtemp(prefix="run-", dir=self.root)
        try:
            code = self._execute(st, cid, work, argv, [f"{k}={v}" for k, v in env.items()])
            if code != 0:
                shown = json.dumps(argv) if ins.json is not None else " ".join(argv)
                raise BuildError(f"The command '{shown}' returned a non-zero code: {code}", code)
            upper = os.path.join(work, "upper")
            self._drop_mount_points(st, upper)
            empty = not self._add_layer(st, upper)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        self.say(f"Removing intermediate container {cid[:12]}\n")
        self._commit(st, "RUN " + json.dumps([recorded, argv]), created_by, empty)
        self.say(f" ---> {_short(st.image_id)}\n")

    def _execute(self, st: Stage, cid: str, work: str, argv: list[str], env: list[str]) -> int:
        from ..network import files
        from ..runtime import ContainerSpec, NetConfig, StartError, spawn
        for sub in ("upper", "work", "merged", "lower"):
            os.makedirs(os.path.join(work, sub))
        lower = self._view(st).layers or [os.path.join(work, "lower")]
        etc = {}
        for name, text in (("hosts", _read("/etc/hosts") or files.hosts_file(None, cid[:12])),
                           ("resolv.conf", _read("/etc/resolv.conf")), ("hostname", cid[:12] + "\n")):
            etc[name] = os.path.join(work, name)
            with open(etc[name], "w") as f:
                f.write(text)
        run = st.run
        # The default bridge, as Docker's RUN; the host's network when the bridge is unavailable.
        networks = getattr(self.engine, "networks", None)
        mode, net, on_netns = "host", None, None
        if networks is not None and not networks.error:
            ep = networks.allocate(cid)
            mode, net = "bridge", NetConfig("eth0", f"{ep['IPAddress']}/{ep['IPPrefixLen']}", ep["Gateway"],
                                            ep["MacAddress"])
            on_netns = lambda pid: networks.plug(cid, pid)  # noqa: E731
            with open(etc["hosts"], "w") as f:
                f.write(files.hosts_file(ep["IPAddress"], cid[:12], ipv6=False))
            with open(etc["resolv.conf"], "w") as f:
                f.write(files.resolv_conf(_read("/etc/resolv.conf"), bridge=True))
        spec = ContainerSpec(id=cid, lower_dirs=lower, upper_dir=os.path.join(work, "upper"),
                             work_dir=os.path.join(work, "work"), merged_dir=os.path.join(work, "merged"),
                             args=argv, env=env, cwd=run.get("WorkingDir") or "/", user=run.get("User") or "",
                             hostname=cid[:12], etc_files=etc, network_mode=mode, net=net,
                             cgroup_parent=CGROUP_PARENT, log_path=os.path.join(work, "json.log"))
        state_dir = os.path.join(str(self.engine.exec_root), "build", cid[:12])
        try:
            try:
                shim = spawn(spec, state_dir, on_netns=on_netns)
                att = shim.attach(stdin=False, stdout=True, stderr=True)
                shim.start()
            except (StartError, ValueError, OSError) as e:
                text = (str(e).splitlines() or [type(e).__name__])[0]
                raise BuildError(f"failed to run {json.dumps(argv)}: {text}",
                                 getattr(e, "exit_code", 1) or 1) from None
            with att:
                self._relay(att)
            return shim.wait().exit_code
        finally:
            if net is not None:
                networks.release(cid)
            shutil.rmtree(state_dir, ignore_errors=True)

    def _relay(self, att) -> None:
        """Send the RUN's output (stdcopy frames) on as stream lines."""
        buf = b""
        while True:
            chunk = att.recv()
            if not chunk:
                break
            buf += chunk
            while len(buf) >= 8 and len(buf) >= 8 + int.from_bytes(buf[4:8], "big"):
                size = int.from_bytes(buf[4:8], "big")
                data, buf = buf[8:8 + size], buf[8 + size:]
                if data:
                    self.say(data.decode("utf-8", "replace"))

    def _drop_mount_points(self, st: Stage, upper: str) -> None:
        """Remove the empty files the runtime made as mount points for /etc/hosts & co."""
        view = self._view(st)
        for rel in ("etc/hosts", "etc/resolv.conf", "etc/hostname"):
            p = os.path.join(upper, rel)
            if os.path.isfile(p) and not os.path.islink(p) and os.path.getsize(p) == 0 \
                    and view.lookup(rel) is None:
                os.unlink(p)
                d = os.path.dirname(p)
                if not os.listdir(d) and view.lookup("etc") is not None:
                    os.rmdir(d)

    # ------------------------------------------------------------------ WORKDIR
    def _workdir_step(self, st: Stage, text: str) -> None:
        path = st.run["WorkingDir"]
        created_by = f"/bin/sh -c #(nop) {text}"
        if self._lookup(st, created_by):
            return
        view = self._view(st)
        empty = True
        if view.lookup(path) is None:
            work = tempfile.mkdtemp(prefix="wd-", dir=self.root)
            try:
                self._make_parents(view, work, path, include_self=True)
                empty = not self._add_layer(st, work)
            finally:
                shutil.rmtree(work, ignore_errors=True)
        self._commit(st, created_by, created_by, empty)
        self.say(f" ---> {_short(st.image_id)}\n")

    def _make_parents(self, view: RootView, upper: str, path: str, include_self: bool = False,
                      uid: int = 0, gid: int = 0) -> None:
        """Create `path`'s parents (and itself) in `upper`, with the image's modes where they exist."""
        parts = [p for p in posixpath.normpath(path).split("/") if p]
        if not include_self:
            parts = parts[:-1]
        cur = ""
        for part in parts:
            cur += "/" + part
            dest = os.path.join(upper, cur.lstrip("/"))
            if os.path.isdir(dest):
                continue
            existing = view.lookup(cur)
            os.mkdir(dest)
            if existing and os.path.isdir(existing) and not os.path.islink(existing):
                s = os.lstat(existing)
                os.chmod(dest, stat.S_IMODE(s.st_mode))
                os.chown(dest, s.st_uid, s.st_gid)
            else:
                os.chmod(dest, 0o755)
                os.chown(dest, uid, gid)

    # ------------------------------------------------------------------ COPY / ADD
    def _copy_step(self, st: Stage, ins: df.Instruction, exp) -> None:
        args = ins.json if ins.json is not None else df.words(ins.args, self.escape)
        args = [exp(a) for a in args]
        srcs, dest = args[:-1], args[-1]
        workdir = st.run.get("WorkingDir") or "/"
        dest_dir = dest.endswith("/") or dest in (".", "..") or dest.endswith("/.")
        dest = posixpath.normpath(posixpath.join(workdir, dest))
        uid = gid = None
        if ins.flags.get("chown"):
            uid, gid = self._chown(st, exp(ins.flags["chown"]))
        mode = None
        if ins.flags.get("chmod"):
            try:
                mode = int(ins.flags["chmod"], 8)
            except ValueError:
                raise BuildError(f"Dockerfile line {ins.line}: invalid --chmod {ins.flags['chmod']}") from None
        src_from = ins.flags.get("from")
        if src_from is not None and ins.name == "ADD":
            raise BuildError(f"Dockerfile line {ins.line}: ADD does not support --from")
        for s in srcs:
            if re.match(r"^[a-z][a-z0-9+.-]*://", s, re.I) or s.startswith("git@"):
                raise BuildError(f"{ins.name} failed: cannot fetch {s}: remote sources are not supported "
                                 f"by this builder (no network access); put the file in the context")
        if src_from is not None:
            source_view, rels, digest = self._from_stage(exp(src_from), srcs)
        else:
            source_view = None
            rels = [r for s in srcs for r in ctx_mod.resolve_sources(self.ctx, s)]
            digest = ctx_mod.content_hash(self.ctx, rels)
        if len(rels) > 1 or any(ch in s for s in srcs for ch in "*?["):
            dest_dir = True
        kind = "multi" if len(rels) > 1 else "dir" if self._is_dir(source_view, rels[0]) else "file"
        flags = " ".join(f"--{k}={v}" for k, v in sorted(ins.flags.items()))
        created_by = f"/bin/sh -c #(nop) {ins.name} {flags + ' ' if flags else ''}{kind}:" \
                     f"{digest.split(':')[-1]} in {dest + ('/' if dest_dir and dest != '/' else '')} "
        if self._lookup(st, created_by):
            return
        view = self._view(st)
        existing = view.lookup(dest)
        if existing and os.path.isdir(existing) and not os.path.islink(existing):
            dest_dir = True
        work = tempfile.mkdtemp(prefix="copy-", dir=self.root)
        try:
            for rel in rels:
                self._copy_one(view, work, source_view, rel, dest, dest_dir, uid, gid, mode,
                               unpack=ins.name == "ADD" and source_view is None)
            empty = not self._add_layer(st, work)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        self._commit(st, created_by, created_by, empty)
        self.say(f" ---> {_short(st.image_id)}\n")

    def _is_dir(self, view: RootView | None, rel: str) -> bool:
        p = view.lookup(rel) if view else os.path.join(self.ctx, rel)
        return bool(p) and os.path.isdir(p) and not os.path.islink(p)

    def _from_stage(self, name: str, srcs: list[str]):
        stage = self.built.get(name.lower())
        if stage is not None:
            if stage.image_id is None:
                self._commit(stage, None)
            image_id, diff_ids = stage.image_id, stage.diff_ids
        else:
            img = self._base_image(name)
            image_id, diff_ids = img.id, img.diff_ids
        view = RootView([self.images.layer_dir(str(c)) for c in reversed(manifest_mod.chain_ids(diff_ids))])
        rels = []
        for s in srcs:
            clean = posixpath.normpath("/" + s)
            if any(ch in clean for ch in "*?["):
                parent = posixpath.dirname(clean)
                found = [posixpath.join(parent, n) for n in view.listdir(parent)
                         if fnmatch.fnmatchcase(n, posixpath.basename(clean))]
                if not found:
                    raise BuildError(f"COPY failed: no source files were specified in {name} for {s}")
                rels += found
            elif view.lookup(clean) is None:
                raise BuildError(f"COPY failed: stat {clean}: file does not exist in stage or image {name}")
            else:
                rels.append(clean)
        return view, rels, hashlib.sha256(f"{image_id}\n{json.dumps(rels)}".encode()).hexdigest()

    def _copy_one(self, view, upper, source_view, rel, dest, dest_dir, uid, gid, mode, unpack) -> None:
        src = source_view.lookup(rel) if source_view else os.path.join(self.ctx, rel)
        is_dir = os.path.isdir(src) and not os.path.islink(src)
        if is_dir:
            target = dest
        elif dest_dir:
            target = posixpath.join(dest, posixpath.basename(rel.rstrip("/")))
        else:
            target = dest
        archive = unpack and not is_dir and ctx_mod.is_archive(src)
        tdir = dest if archive else target if is_dir else posixpath.dirname(target)
        self._make_parents(view, upper, tdir, include_self=True)
        host = os.path.join(upper, target.lstrip("/"))
        if archive:                    # ADD unpacks a local archive into the destination directory
            with ctx_mod.open_archive(src) as f:
                try:
                    layers_mod.apply_layer(f, os.path.join(upper, dest.lstrip("/")))
                except layers_mod.LayerError as e:
                    raise BuildError(f"ADD failed: {rel}: {e}") from None
            return
        if is_dir:
            if source_view:
                for name in source_view.listdir(rel):
                    source_view.copy_out(posixpath.join(rel, name), os.path.join(host, name))
            else:
                shutil.copytree(src, host, symlinks=True, dirs_exist_ok=True, copy_function=shutil.copy2)
            roots = [os.path.join(host, n) for n in os.listdir(host)]
            self._owners(roots, uid if uid is not None else (None if source_view else 0),
                         gid if gid is not None else (None if source_view else 0), mode)
        else:
            if os.path.isdir(host) and not os.path.islink(host):
                shutil.rmtree(host)
            if source_view:
                source_view.copy_out(rel, host)
            elif os.path.islink(src):
                os.symlink(os.readlink(src), host)
            else:
                shutil.copy2(src, host)
            self._owners([host], uid if uid is not None else (None if source_view else 0),
                         gid if gid is not None else (None if source_view else 0), mode)

    @staticmethod
    def _owners(paths: list[str], uid, gid, mode) -> None:
        """COPY's owner (0:0 unless --chown) and --chmod, applied to everything copied."""
        def one(p: str) -> None:
            if uid is not None:
                os.lchown(p, uid, gid if gid is not None else uid)
            if mode is not None and not os.path.islink(p):
                os.chmod(p, mode)
        for top in paths:
            one(top)
            if os.path.isdir(top) and not os.path.islink(top):
                for dirpath, dirnames, filenames in os.walk(top):
                    for n in dirnames + filenames:
                        one(os.path.join(dirpath, n))

    def _chown(self, st: Stage, spec: str) -> tuple[int, int]:
        from ..runtime.spec import resolve_user
        view = self._view(st)
        texts = []
        for f in ("/etc/passwd", "/etc/group"):
            p = view.lookup(f)
            texts.append(_read(p) if p else "")
        user, _, group = spec.partition(":")
        try:
            uid, gid, _, _ = resolve_user(spec, *texts)
        except ValueError as e:
            raise BuildError(f"unable to convert uid/gid chown string to host mapping: {e}") from None
        if not group and user.isdigit():
            gid = uid
        return uid, gid


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def prune(engine) -> dict:
    """`docker builder prune`: forget the cache, and delete the step images and the layers that
    only the cache held (layers of listed images stay). Returns Docker's answer."""
    images = engine.images
    path = engine.data_root / "build" / "cache.json"
    cache = persist.read_json(path, {}) or {}
    persist.write_json(path, {})
    used: set[str] = set()
    for img in images.images():
        used.update(img.chain_ids)
    deleted, reclaimed = [], 0
    chains: set[str] = set()
    for image_id in set(cache.values()):
        if image_id not in images.blobs or images._is_image(image_id):
            continue
        config = manifest_mod.parse_config(images.blobs.get(image_id))
        chains.update(str(c) for c in manifest_mod.chain_ids(config.get("rootfs", {}).get("diff_ids", [])))
        images.blobs.delete(image_id)
        deleted.append(image_id)
    for chain in sorted(chains - used):
        if not images.has_layer(chain):
            continue
        reclaimed += int(images.layer_meta(chain).get("size", 0))
        blob = images.layer_blob(chain)
        shutil.rmtree(images.layer_path(chain), ignore_errors=True)
        if blob and not images.blob_in_use(blob):
            images.blobs.delete(blob)
    return {"CachesDeleted": deleted or None, "SpaceReclaimed": reclaimed}
