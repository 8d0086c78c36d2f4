"""Starting refimpld for the `refimpl` and `refimpl-dockercli` targets.

Each run gets its own refimpld with temporary data and exec roots and a socket
under the suite's state directory; it is stopped when the run ends.
"""

from __future__ import annotations

import shutil

from . import services


def ensure(svc: services.Services, target) -> str:
    if shutil.which("refimpld") is None:
        raise services.ServiceError(
            f"target {target.name}: refimpld is not installed (the reference engine is not built yet)")
    raise services.ServiceError(f"target {target.name}: starting refimpld is not implemented yet")
