"""The scenario's world: names, placeholders, what was run, and clean-up.

Every object a scenario creates carries a unique name made from a placeholder
(`{c}`, `{c2}`, `{img}`, `{net}`, `{vol}`, `{ctx}`, ...) and is removed when the
scenario ends, even when it fails. Objects that existed before are never
touched: clean-up only removes names this world made up, plus containers that
were created from the suite's own images during the scenario.

Placeholders:
  {busybox} {debian}            the suite's images (registry prefix applied)
  {busybox_repo} {busybox_digest}
  {registry}                    host:port of the registry the suite pushes to
  {default_network}             the target's default network name
  {api_version}                 the API version the target advertises
  {tmp}                         a temporary directory on the host
  {octet}                       a number 1-250, fixed for the scenario
  {$name}                       a value remembered earlier in the scenario
  {plugin} {plugin_root}        the example volume plugin serving this run, and the
                                directory that holds its volumes (one directory each)
  {c} {c2} {img} {net} {vol} {ctx} {fresh} {plug...} ...   unique names, by prefix:
      c → container, img/fresh → image, net → network, vol → volume,
      ctx → build-context directory, plug → a plugin of this scenario
"""

from __future__ import annotations

import json
import random
import re
import secrets
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from ..targets import Result, Target, Terminal

PLACEHOLDER = re.compile(r"\{(\$?[a-z_][a-z0-9_]*)\}")
KINDS = [("img", "image"), ("fresh", "image"), ("net", "network"), ("vol", "volume"),
         ("ctx", "dir"), ("plug", "plugin"), ("c", "container")]


class World:
    def __init__(self, target: Target, session) -> None:
        self.target = target
        self.session = session
        self.token = secrets.token_hex(3)
        self.names: dict[str, str] = {}
        self.kinds: dict[str, str] = {}
        self.saved: dict[str, str] = {}
        self.result: Result | None = None
        self.api = None
        self.terminal: Terminal | None = None
        self.terminals: list[Terminal] = []
        self.tmp = Path(tempfile.mkdtemp(prefix=f"dockspec-{self.token}-"))
        self.host_procs: list[subprocess.Popen] = []
        self.host_mounts: list[Path] = []
        self.host_files: list[Path] = []
        self.plugins: list = []         # plugins and spec files of this scenario (volume_plugins.py)
        self.octet = random.Random(self.token).randint(1, 250)
        self.second = None  # a second daemon (client-server scenarios)
        self.build_ids: list[str] = []
        self.build_containers: list[str] = []
        self.before_containers = self._container_ids()

    # ------------------------------------------------------------ placeholders
    def name(self, key: str) -> str:
        if key not in self.names:
            kind = next((k for p, k in KINDS if key.startswith(p)), "container")
            if kind == "dir":
                path = self.tmp / key
                path.mkdir(parents=True, exist_ok=True)
                value = str(path)
            elif key.startswith("fresh"):
                value = f"{self.session.images['busybox']['repo']}:{key}-{self.token}"
            else:
                value = f"ds-{key}-{self.token}"
            self.names[key] = value
            self.kinds[key] = kind
        return self.names[key]

    def sub(self, text: str) -> str:
        imgs = self.session.images

        def one(m: re.Match) -> str:
            key = m.group(1)
            if key.startswith("$"):
                if key[1:] not in self.saved:
                    raise AssertionError(f"nothing was remembered as {key[1:]!r}")
                return self.saved[key[1:]]
            if key in imgs:
                return imgs[key]["ref"]
            if key.endswith("_repo") and key[:-5] in imgs:
                return imgs[key[:-5]]["repo"]
            if key.endswith("_digest") and key[:-7] in imgs:
                return imgs[key[:-7]]["digest"]
            fixed = {"registry": self.registry, "default_network": self.target.default_network,
                     "tmp": str(self.tmp), "octet": str(self.octet), "api_version": self.api_version}
            if key in fixed:
                return fixed[key]
            if key == "plugin":
                return self.session.volume_plugin().name
            if key == "plugin_root":
                return str(self.session.volume_plugin().volumes)
            return self.name(key)
        return PLACEHOLDER.sub(one, text)

    @property
    def registry(self) -> str:
        return next(iter(self.session.images.values()))["registry"]

    @property
    def api_version(self) -> str:
        if "api_version" not in self.saved:
            v = self.target.api("GET", "/version").json()
            self.saved["api_version"] = v.get("ApiVersion", "1.41")
        return self.saved["api_version"]

    def args(self, text: str) -> list[str]:
        # Feature files escape quotes inside a quoted step argument as \".
        return shlex.split(self.sub(text).replace('\\"', '"'))

    # ------------------------------------------------------------ running
    def run(self, text: str, input: str | None = None, second: bool = False) -> Result:
        args = self.args(text)
        cli = self.second.cli if second and self.second else None
        env = self.second.env if second and self.second else None
        self.result = self.target.run(args, input=input, cli=cli, env=env)
        if args and args[0] == "build":
            # Intermediate images a build leaves behind (the classic builder's cache).
            text = self.result.out + self.result.err
            for image_id in re.findall(r"(?:--->|-->) ([0-9a-f]{12,64})\b", text):
                if image_id not in self.build_ids:
                    self.build_ids.append(image_id)
            # The classic builder's step containers ("Running in <id>"): a failed step leaves one.
            self.build_containers.extend(re.findall(r"Running in ([0-9a-f]{12,64})\b", text))
        return self.result

    def open_terminal(self, text: str) -> Terminal:
        self.terminal = self.target.terminal(self.args(text))
        self.terminals.append(self.terminal)
        return self.terminal

    def inspect(self, obj: str, kind: str = "") -> dict:
        return self.target.inspect(self.sub(obj), kind)

    # ------------------------------------------------------------ clean-up
    def _container_ids(self) -> set[str]:
        r = self.target.run(["ps", "-aq", "--no-trunc"])
        return set(r.out.split()) if r.rc == 0 else set()

    def cleanup(self) -> None:
        for t in self.terminals:
            t.close()
        t = self.target
        containers = [v for k, v in self.names.items() if self.kinds[k] == "container"]
        repos = {i["repo"] for i in self.session.images.values()}
        # Containers made during this scenario from the suite's own images (named by
        # reference: the registry's port makes the reference this run's own; image IDs
        # are not used, since the offline images have the same ID in every run).
        for cid in self._container_ids() - self.before_containers:
            r = t.run(["inspect", "--format", "{{.Config.Image}}", cid])
            image = r.out.strip()
            if r.rc == 0 and (image.rsplit(":", 1)[0] in repos or image.split("@")[0] in repos
                              or self.token in image):
                containers.append(cid)
        containers += self.build_containers
        if containers:
            t.run(["rm", "-f", "-v", *containers], timeout=120)
        # Every image name this world made up contains its token.
        r = t.run(["images", "--digests", "--format", "{{.Repository}}:{{.Tag}} {{.Repository}}@{{.Digest}}"])
        for ref in r.out.split():
            if self.token in ref and not ref.endswith((":<none>", "@<none>")):
                t.run(["rmi", "-f", ref])
        # Build cache images: only those no name points at (never a tagged image).
        for image_id in reversed(self.build_ids):   # children before parents
            r = t.run(["image", "inspect", "--format", "{{len .RepoTags}} {{len .RepoDigests}}", image_id])
            if r.rc == 0 and r.out.split() == ["0", "0"]:
                t.run(["rmi", image_id])
        for k, v in self.names.items():
            if self.kinds[k] == "network":
                t.run(["network", "rm", v])
        for k, v in self.names.items():
            if self.kinds[k] == "volume":
                t.run(["volume", "rm", "-f", v])
        for v in self.saved.get("_volumes", "").split():
            t.run(["volume", "rm", "-f", v])
        for plugin in self.plugins:
            plugin.stop()
        for p in self.host_procs:
            p.kill()
            p.wait()
        for m in self.host_mounts:
            subprocess.run(["umount", str(m)], capture_output=True)
        for f in self.host_files:
            f.unlink(missing_ok=True)
        shutil.rmtree(self.tmp, ignore_errors=True)


@pytest.fixture
def world(dockspec, target):
    w = World(target, dockspec)
    yield w
    w.cleanup()


def dig(data, path: str):
    """Follow a dotted path ("State.ExitCode", "0.Config.Cmd") through JSON data."""
    cur = data
    for part in path.split("."):
        if isinstance(cur, list):
            cur = cur[int(part)]
        elif isinstance(cur, dict):
            if part not in cur:
                raise AssertionError(f"no field {part!r} in {json.dumps(cur)[:300]}")
            cur = cur[part]
        else:
            raise AssertionError(f"cannot follow {part!r} into {cur!r}")
    return cur


def as_text(value) -> str:
    """Render a JSON value the way scenarios write it (true/false, lists as Python)."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "null"
    if isinstance(value, (list, dict)):
        return str(value)
    return str(value)
