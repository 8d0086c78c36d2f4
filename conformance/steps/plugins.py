"""Steps of the plugins feature: plugins of a scenario, and what the example plugin holds.

The example volume plugin of the run is `{plugin}`; its volumes are directories
under `{plugin_root}` (conformance/volume_plugins.py). Plugins made by a step
here exist for the scenario only and are removed when it ends.
"""

from __future__ import annotations

from pathlib import Path

from .common import Q, step


@step(r"a volume plugin " + Q.format("name") + r" that answers garbage is running")
def garbage_plugin(world, name):
    from ..volume_plugins import GarbagePlugin
    world.plugins.append(GarbagePlugin(world.sub(name)))


@step(r"a volume plugin " + Q.format("name") + r" has a socket that nobody answers")
def dead_plugin(world, name):
    from ..volume_plugins import DeadPlugin
    world.plugins.append(DeadPlugin(world.sub(name)))


@step(r"a plugin spec file names " + Q.format("name") + r" with the address of the socket of " + Q.format("of"))
def spec_file(world, name, of):
    from ..volume_plugins import SOCKET_DIR, SpecFile
    world.plugins.append(SpecFile(world.sub(name), f"unix://{SOCKET_DIR / world.sub(of)}.sock"))


@step(r"the example plugin holds a volume " + Q.format("vol"))
def plugin_holds(world, vol):
    path = Path(world.sub("{plugin_root}")) / world.sub(vol)
    assert path.is_dir(), f"the plugin has no volume {world.sub(vol)} (no directory {path})"


@step(r"the example plugin holds no volume " + Q.format("vol"))
def plugin_lacks(world, vol):
    path = Path(world.sub("{plugin_root}")) / world.sub(vol)
    assert not path.exists(), f"the plugin still holds volume {world.sub(vol)} ({path})"
