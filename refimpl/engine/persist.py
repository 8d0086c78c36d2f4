"""Atomic JSON records: write a temp file beside the target, fsync, rename.

A crash at any point leaves either the old record or the new one, never half
of one, plus at worst a `.<name>.tmp-*` file that sweep() removes at start-up.
Readers treat a missing file as "no record".
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

TMP_MARK = ".tmp-"        # `.<name>.tmp-XXXXXXXX` beside the record while it is written


def write_json(path: str | os.PathLike, data: Any) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}{TMP_MARK}", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=1, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def sweep(directory: str | os.PathLike) -> int:
    """Remove the temporary files write_json leaves in `directory` when the process dies
    before its rename (start-up recovery); returns how many."""
    n = 0
    try:
        names = os.listdir(directory)
    except (FileNotFoundError, NotADirectoryError):
        return 0
    for name in names:
        if name.startswith(".") and TMP_MARK in name:
            try:
                os.unlink(os.path.join(directory, name))
                n += 1
            except (IsADirectoryError, FileNotFoundError):
                pass
    return n


def read_json(path: str | os.PathLike, default: Any = None) -> Any:
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        return default
