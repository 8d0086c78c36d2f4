"""Showing a daemon's JSON progress stream (pull, load, push).

Each message is `{"status", "id", "progressDetail": {"current", "total"}, "progress"}`,
`{"stream": text}` or `{"error": text}`. On a terminal, layers get live rich progress
bars; elsewhere lines are printed as docker's jsonmessage prints them for a
non-terminal: `id: status`, skipping the messages that carry a progress bar.
"""
from __future__ import annotations

from typing import Iterable, TextIO

from .client import CLIError


def _plain(messages: Iterable[dict], out: TextIO) -> None:
    for m in messages:
        if "error" in m:
            raise CLIError(m["error"])
        if m.get("stream"):
            out.write(m["stream"])
        elif m.get("progress") or "status" not in m:
            continue
        else:
            out.write((f"{m['id']}: " if m.get("id") else "") + m["status"] + "\n")
        out.flush()


def _bars(messages: Iterable[dict], out: TextIO) -> None:
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

    console = Console(file=out)
    tasks: dict[str, int] = {}
    with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                  console=console, transient=False) as bars:
        for m in messages:
            if "error" in m:
                raise CLIError(m["error"])
            if m.get("stream"):
                bars.console.print(m["stream"].rstrip("\n"), markup=False, highlight=False)
                continue
            status, ident = m.get("status", ""), m.get("id")
            detail = m.get("progressDetail") or {}
            if not ident or ident == m.get("tag") or status.startswith("Pulling from"):
                bars.console.print((f"{ident}: " if ident else "") + status, markup=False, highlight=False)
                continue
            if ident not in tasks:
                tasks[ident] = bars.add_task(ident, total=None)
            kw = {"description": f"{ident}: {status}"}
            if detail.get("total"):
                kw.update(total=detail["total"], completed=detail.get("current", 0))
            elif status in ("Pull complete", "Already exists", "Download complete"):
                total = next((t.total for t in bars.tasks if t.id == tasks[ident]), None)
                kw.update(total=total or 1, completed=total or 1)
            bars.update(tasks[ident], **kw)


def fail(m: dict):
    raise CLIError(m["error"])


def show(messages: Iterable[dict], out: TextIO) -> None:
    """Render a progress stream to `out`; an `error` message raises CLIError."""
    if out.isatty():
        _bars(messages, out)
    else:
        _plain(messages, out)
