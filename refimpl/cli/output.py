"""Tables and `--format` output as the docker CLI writes them.

A format is a template run once per row, each result followed by a newline; the
escapes `\\t` and `\\n` typed on a command line become real ones. A `table` format
also gets a header row (the same template run over the column titles) and goes
through Go's tabwriter with docker's settings: columns at least 10 wide, padded
by 3 spaces, the last column unpadded.
"""
from __future__ import annotations

import json
import sys

from .client import CLIError
from .template import TemplateError, parse


def tabwrite(lines: list[str], minwidth: int = 10, padding: int = 3) -> str:
    """Go's text/tabwriter for tab-terminated cells (flags 0, padchar ' ')."""
    rows = [line.split("\t") for line in lines]
    ncols = max((len(r) for r in rows), default=0)
    widths = []
    for c in range(ncols - 1):
        cells = [len(r[c]) for r in rows if len(r) > c + 1]
        widths.append(max([minwidth] + [w + padding for w in cells]))
    out = []
    for r in rows:
        cells = [cell.ljust(widths[i]) if i < len(r) - 1 else cell for i, cell in enumerate(r)]
        out.append("".join(cells))
    return "".join(line + "\n" for line in out)


def ellipsis(s: str, width: int) -> str:
    return s if len(s) <= width else s[:width - 1] + "…"


def render_rows(fmt: str, rows: list[dict], headers: dict[str, str]) -> str:
    """Render rows with a (possibly `table `) docker format."""
    is_table = fmt.startswith("table")
    body = fmt[5:] if is_table else fmt
    body = body.strip(" ").replace("\\t", "\t").replace("\\n", "\n")
    try:
        tmpl = parse(body)
        lines = [tmpl.execute(row) for row in rows]
        if is_table:
            lines.insert(0, tmpl.execute(headers))
    except TemplateError as e:
        raise CLIError(f"template parsing error: {e}") from None
    if not is_table:
        return "".join(line + "\n" for line in lines)
    return tabwrite("\n".join(lines).split("\n")) if lines else ""


def render_each(fmt: str, items: list) -> str:
    """`inspect --format`: the template on each object, one per line."""
    fmt = fmt.replace("\\t", "\t").replace("\\n", "\n")
    try:
        tmpl = parse(fmt)
        return "".join(tmpl.execute(it) + "\n" for it in items)
    except TemplateError as e:
        raise CLIError(f"template parsing error: {e}") from None


def dump_json(items) -> str:
    """docker's indented JSON (4 spaces, HTML characters escaped as Go does)."""
    text = json.dumps(items, indent=4, ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026") + "\n"


def write(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def report(error: Exception) -> None:
    """One failure among several (rm a b c): reported, and the command goes on."""
    warn(f"refimpl: {error}")


def warn(text: str) -> None:
    sys.stderr.write(text.rstrip("\n") + "\n")
    sys.stderr.flush()
