"""Compatibility reports: per-target JSON-lines results → compat.md and compat.html.

The suite writes one ``<target>.jsonl`` file per target: a ``run`` record that
stamps the column (engine and API version, suite commit, kernel, date,
registry), then one ``scenario`` record per scenario with its status on the
ladder below. This module merges those files into two views of the same
matrix: Markdown (rendered by GitHub, diffable in review) and a single
self-contained HTML page (no assets, no required JS) with the failing output
one click away in a ``<details>``.

Why our own JSON lines and not Cucumber JSON: Cucumber knows pass/fail/skip and
loses the difference between a known divergence (xfail), an unexpected pass
(xpass), a capability the target lacks (unsupported), a host that lacks
something (env-skip) and a harness that broke (error). Those differences are
the point of a compatibility report.

The report is a record, not a gate: it is written whatever the statuses are
(exit 0). A results file cut short by a killed run is read as far as it
parses; its column is marked incomplete and one warning line goes to stderr.
Output depends only on the input (sorted, no clock), so regenerating an
unchanged report gives an unchanged diff.
"""
from __future__ import annotations

import argparse
import html
import json
import os
import re
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from tabulate import tabulate

# The status ladder, in report order.
STATUSES = ("pass", "fail", "xfail", "xpass", "unsupported", "env-skip", "error")
# Statuses that need a human: shown loudly everywhere.
LOUD = frozenset({"fail", "xpass", "error"})
LABEL = {"pass": "✓ pass", "fail": "✗ FAIL", "xfail": "xfail", "xpass": "⚠ XPASS",
         "unsupported": "unsupported", "env-skip": "env-skip", "error": "‼ ERROR"}
MEANING = {"pass": "behaves as specified",
           "fail": "does not behave as specified",
           "xfail": "known divergence, listed in the target's expectations",
           "xpass": "expected to fail but passed: update the expectations",
           "unsupported": "the target lacks the capability",
           "env-skip": "the host running the suite lacks something",
           "error": "the harness itself broke"}
NOT_RUN = "—"
# Column stamp: (heading, key in the run record).
STAMP = (("target", "target"), ("engine version", "version"), ("API", "api_version"),
         ("suite commit", "suite_commit"), ("kernel", "kernel"), ("date", "date"),
         ("registry", "registry"), ("host", "host"), ("CLI", "cli"), ("endpoint", "endpoint"))
MAX_OUTPUT = 8000  # characters of failing output kept (the tail, where the error is)


# --- text hygiene -------------------------------------------------------------

_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_URL = re.compile(r"https?://[^\s<>\"'`\\]+")


def block_text(value: object) -> str:
    """Multi-line text safe to embed: no ANSI colours, control characters or lone surrogates."""
    s = "" if value is None else str(value)
    s = s.encode("utf-8", "replace").decode("utf-8")
    s = _CONTROL.sub("", _ANSI.sub("", s.replace("\r\n", "\n").replace("\r", "\n")))
    if len(s) > MAX_OUTPUT:
        s = f"… {len(s) - MAX_OUTPUT} characters omitted …\n" + s[-MAX_OUTPUT:]
    return s


def one_line(value: object) -> str:
    """Text for a table cell or heading: one line, whitespace runs collapsed."""
    return " ".join(block_text(value).split())


def md(value: object) -> str:
    """Escape for a GitHub Markdown table cell or paragraph (CommonMark backslash escapes)."""
    return re.sub(r"([\\`*_\[\]<>|#&~!])", r"\\\1", one_line(value))


def h(value: object) -> str:
    return html.escape(one_line(value), quote=True)


def safe_url(value: object) -> str:
    """Only plain http(s) URLs become links; anything else is shown as text."""
    s = one_line(value)
    return s.replace("(", "%28").replace(")", "%29") if _URL.fullmatch(s) else ""


# --- reading results ----------------------------------------------------------

@dataclass(frozen=True)
class Result:
    feature: str
    feature_name: str
    scenario: str          # display name: one line, unique within its target and feature
    clause: str
    status: str
    duration: float | None
    failing_step: str
    output: str
    reason: str
    link: str


@dataclass
class Target:
    name: str
    run: dict[str, str]
    results: dict[tuple[str, str], Result] = field(default_factory=dict)
    incomplete: str = ""   # why the column is incomplete; empty when complete

    def stamp(self, key: str) -> str:
        return self.run.get(key, "") or (self.name if key == "target" else "")


def _scenario(rec: dict) -> Result | None:
    feature, name, status = rec.get("feature"), rec.get("scenario"), rec.get("status")
    if not (isinstance(feature, str) and one_line(feature) and isinstance(name, str)
            and status in STATUSES):
        return None
    dur = rec.get("duration")
    dur = float(dur) if isinstance(dur, (int, float)) and not isinstance(dur, bool) else None
    return Result(feature=one_line(feature), feature_name=one_line(rec.get("feature_name")),
                  scenario=one_line(name) or "(unnamed)", clause=one_line(rec.get("clause")),
                  status=status, duration=dur, failing_step=one_line(rec.get("failing_step")),
                  output=block_text(rec.get("output")).strip("\n"),
                  reason=one_line(rec.get("reason")), link=one_line(rec.get("link")))


def read_target(path: Path) -> tuple[Target, str]:
    """Parse one results file as far as it parses; returns the target and a warning ('' if none)."""
    target = Target(name=path.stem, run={})
    bad: list[int] = []
    for n, line in enumerate(path.read_bytes().decode("utf-8", "replace").split("\n"), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            rec = None
        kind = rec.get("type") if isinstance(rec, dict) else None
        if kind == "run" and not target.run:
            target.run = {k: one_line(v) for k, v in rec.items() if k != "type" and v is not None}
        elif kind == "scenario" and (res := _scenario(rec)):
            name, k = res.scenario, 1
            while (res.feature, name) in target.results:  # outlines may repeat a name
                k += 1
                name = f"{res.scenario} ({k})"
            target.results[(res.feature, name)] = Result(**{**res.__dict__, "scenario": name})
        elif kind not in ("run", "scenario") and isinstance(kind, str):
            continue  # a record type from a newer suite: not ours to judge
        else:
            bad.append(n)
    problems = []
    if bad:
        problems.append(f"{len(bad)} unreadable line{'s' * (len(bad) > 1)} (first: line {bad[0]})")
    if not target.run:
        problems.append("no run record")
    target.incomplete = "; ".join(problems)
    warning = f"warning: {path}: {target.incomplete}; column '{target.name}' marked incomplete"
    return target, warning if problems else ""


def load_results(results_dir: Path) -> tuple[list[Target], list[str]]:
    """Every ``*.jsonl`` in a directory, sorted by target name. Raises ValueError if none."""
    if not results_dir.is_dir():
        raise ValueError(f"results directory not found: {results_dir}")
    files = sorted(results_dir.glob("*.jsonl"))
    if not files:
        raise ValueError(f"no results files (*.jsonl) in {results_dir}")
    loaded = [read_target(f) for f in files]
    return [t for t, _ in loaded], [w for _, w in loaded if w]


# --- the merged matrix ----------------------------------------------------------

@dataclass
class Feature:
    file: str
    name: str
    scenarios: list[tuple[str, str]]   # (scenario, clause), sorted


@dataclass
class Report:
    targets: list[Target]
    features: list[Feature]

    def result(self, target: Target, feature: Feature, scenario: str) -> Result | None:
        return target.results.get((feature.file, scenario))

    def counts(self, target: Target, feature: Feature | None = None) -> Counter:
        return Counter(r.status for (f, _), r in target.results.items()
                       if feature is None or f == feature.file)

    def not_run(self, target: Target, feature: Feature | None = None) -> int:
        feats = [feature] if feature else self.features
        return sum(self.result(target, f, s) is None for f in feats for s, _ in f.scenarios)


def build(targets: list[Target]) -> Report:
    targets = sorted(targets, key=lambda t: t.name)
    names: dict[str, str] = {}
    scenarios: dict[str, dict[str, str]] = {}
    for t in targets:
        for (f, s), r in t.results.items():
            names[f] = names.get(f) or r.feature_name
            clauses = scenarios.setdefault(f, {})
            clauses[s] = clauses.get(s) or r.clause
    features = [Feature(f, names[f] or f, sorted(scenarios[f].items(), key=lambda sc: (sc[0].casefold(), sc[0])))
                for f in sorted(scenarios)]
    return Report(targets, features)


def count_text(counts: Counter, not_run: int = 0) -> str:
    parts = [f"{counts[s]} {s}" for s in STATUSES if counts[s]]
    if not_run:
        parts.append(f"{not_run} not run")
    return " · ".join(parts) or NOT_RUN


# --- Markdown -----------------------------------------------------------------------

def _md_table(headers: list[str], rows: list[list[str]]) -> str:
    return tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)


def _md_fenced(text: str) -> str:
    fence = "`" * max(3, 1 + max((len(run) for run in re.findall(r"`+", text)), default=0))
    return f"{fence}text\n{text}\n{fence}"


def _md_cell(r: Result | None) -> str:
    if r is None:
        return NOT_RUN
    return f"**{LABEL[r.status]}**" if r.status in LOUD else LABEL[r.status]


def _md_notes(rep: Report, feat: Feature) -> list[str]:
    """Reasons, failing steps and output under a feature's table, one entry per non-pass result."""
    out = []
    for scenario, _ in feat.scenarios:
        for t in rep.targets:
            r = rep.result(t, feat, scenario)
            if r is None or r.status == "pass":
                continue
            line = f"- {_md_cell(r)} · {md(t.name)} · {md(scenario)}"
            if r.reason:
                line += f" — {md(r.reason)}"
            if url := safe_url(r.link):
                line += f" ([link](<{url}>))"
            elif r.link:
                line += f" ({md(r.link)})"
            out.append(line)
            if r.failing_step or r.output:
                summary = f"{html.escape(t.name)}: {html.escape(scenario)}"
                body = [f"Failing step: {md(r.failing_step)}", ""] if r.failing_step else []
                if r.output:
                    body.append(_md_fenced(r.output))
                out += ["", f"  <details><summary>{summary}</summary>", "",
                        *("\n".join("  " + ln if ln else "" for ln in b.split("\n")) for b in body),
                        "", "  </details>", ""]
    return out


def render_markdown(rep: Report) -> str:
    tnames = [md(t.name) + (" (incomplete)" if t.incomplete else "") for t in rep.targets]
    out = ["# Compatibility report", "",
           f"{len(rep.targets)} target{'s' * (len(rep.targets) != 1)}, "
           f"{len(rep.features)} feature{'s' * (len(rep.features) != 1)}, "
           f"{sum(len(f.scenarios) for f in rep.features)} scenarios. "
           "Statuses: " + "; ".join(f"{LABEL[s]}: {MEANING[s]}" for s in STATUSES) + f"; {NOT_RUN}: not run.",
           "", "## Targets", ""]
    rows = [[md(t.stamp(k)) or NOT_RUN for _, k in STAMP] + [md(t.incomplete) or "complete"] for t in rep.targets]
    out += [_md_table([label for label, _ in STAMP] + ["results"], rows), ""]
    out += _commit_warning(rep, md)
    out += ["## Summary", ""]
    rows = [[f"{md(f.name)} ({md(f.file)})"] + [count_text(rep.counts(t, f), rep.not_run(t, f)) for t in rep.targets]
            for f in rep.features]
    rows.append(["**Total**"] + [f"**{count_text(rep.counts(t), rep.not_run(t))}**" for t in rep.targets])
    out += [_md_table(["Feature"] + tnames, rows), ""]
    for f in rep.features:
        out += [f"## {md(f.name)} ({md(f.file)})", ""]
        rows = [[md(s), md(c)] + [_md_cell(rep.result(t, f, s)) for t in rep.targets] for s, c in f.scenarios]
        out += [_md_table(["Scenario", "Clause"] + tnames, rows), ""]
        if notes := _md_notes(rep, f):
            out += notes + [""]
    return "\n".join(out).rstrip("\n") + "\n"


def _commit_warning(rep: Report, esc) -> list[str]:
    commits = sorted({t.stamp("suite_commit") for t in rep.targets})
    if len(commits) > 1:
        return [f"Note: columns come from different suite commits ({', '.join(esc(c) or NOT_RUN for c in commits)}).", ""]
    return []


# --- HTML -----------------------------------------------------------------------------

CSS = """
:root{--fg:#1f2328;--muted:#59636e;--line:#d1d9e0;--head:#f6f8fa}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;color:var(--fg);margin:2rem auto;padding:0 1.5rem;max-width:1400px}
h1{font-size:1.7rem;margin:0 0 .3rem}h2{font-size:1.25rem;margin:2.2rem 0 .6rem;padding-bottom:.3rem;border-bottom:1px solid var(--line)}
h2 small{font-weight:normal;color:var(--muted);font-size:.85rem}
p.lead{color:var(--muted);margin:.2rem 0 1rem}
table{border-collapse:collapse;margin:.4rem 0 1rem}
th,td{border:1px solid var(--line);padding:.35rem .6rem;text-align:left;vertical-align:top}
thead th{background:var(--head);position:sticky;top:0;z-index:1}
tbody tr:nth-child(even) td{background:#fbfcfd}
tr.total td{font-weight:600;background:var(--head)!important;border-top:2px solid var(--muted)}
tr.loud td:first-child{box-shadow:inset 4px 0 0 #cf222e}
.tname{display:block;font-weight:600}.tver{display:block;font-weight:normal;color:var(--muted);font-size:.8rem}
.clause{display:block;color:var(--muted);font:12px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
.badge,.chip{display:inline-block;border-radius:1em;padding:0 .55em;font-size:.85rem;white-space:nowrap;border:1px solid transparent}
.chip{margin:1px 0}
.s-pass{background:#dafbe1;color:#116329}
.s-fail{background:#cf222e;color:#fff;font-weight:700}
.s-xfail{background:#fff8c5;color:#7d4e00;border-color:#e5d38a}
.s-xpass{background:#8250df;color:#fff;font-weight:700}
.s-unsupported{background:#eaeef2;color:#424a53}
.s-env-skip{background:#ddf4ff;color:#0550ae}
.s-error{background:#82071e;color:#fff;font-weight:700}
.notrun{color:#8c959f}
.inc{background:#fff1e5;color:#953800;border-color:#ffb77c;font-size:.75rem}
th.t{min-width:11rem}
.warn{background:#fff1e5;color:#953800;border:1px solid #ffb77c;border-radius:6px;padding:.4rem .7rem;margin:.6rem 0}
.attention{font-weight:600;color:#cf222e}
.reason{color:var(--muted);font-size:.85rem;max-width:40ch;margin-top:.15rem}
details summary{cursor:pointer;list-style-position:inside}
details[open]{background:#fff}
.detail{margin-top:.35rem;max-width:80ch}
.detail code{background:var(--head);padding:0 .25em;border-radius:4px;font-size:.85rem}
pre{background:#f6f8fa;border:1px solid var(--line);border-radius:6px;padding:.5rem .7rem;margin:.35rem 0 0;max-height:28em;overflow:auto;white-space:pre-wrap;word-break:break-word;font:12px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
dl.legend{display:grid;grid-template-columns:max-content 1fr;gap:.2rem .8rem;margin:.5rem 0 1rem}
dl.legend dd{margin:0;color:var(--muted)}
a{color:#0969da}
.scroll{overflow-x:auto}table.stamp td,table.stamp th{white-space:nowrap}
"""


def _h_target_head(t: Target) -> str:
    ver = " · ".join(x for x in (t.stamp("version"), t.stamp("api_version") and "API " + t.stamp("api_version")) if x)
    inc = f' <span class="badge inc" title="{h(t.incomplete)}">incomplete</span>' if t.incomplete else ""
    return f'<th class="t"><span class="tname">{h(t.name)}{inc}</span><span class="tver">{h(ver)}</span></th>'


def _h_counts(counts: Counter, not_run: int) -> str:
    chips = [f'<span class="chip s-{s}" data-status="{s}" data-n="{counts[s]}">{counts[s]} {s}</span>'
             for s in STATUSES if counts[s]]
    if not_run:
        chips.append(f'<span class="chip notrun">{not_run} not run</span>')
    return " ".join(chips) or f'<span class="notrun">{NOT_RUN}</span>'


def _h_cell(r: Result | None) -> str:
    if r is None:
        return f'<td><span class="notrun" title="not run">{NOT_RUN}</span></td>'
    title = f' title="{r.duration:.2f} s"' if r.duration is not None else ""
    badge = f'<span class="badge s-{r.status}"{title}>{html.escape(LABEL[r.status])}</span>'
    reason = ""
    if r.reason or r.link:
        url = safe_url(r.link)
        link = f' <a href="{html.escape(url, quote=True)}">link</a>' if url else (f" ({h(r.link)})" if r.link else "")
        reason = f'<div class="reason">{h(r.reason)}{link}</div>'
    if not (r.failing_step or r.output):
        return f"<td>{badge}{reason}</td>"
    step = f"<div>Failing step: <code>{h(r.failing_step)}</code></div>" if r.failing_step else ""
    out = f"<pre>{html.escape(r.output)}</pre>" if r.output else ""
    return f'<td><details><summary>{badge}</summary><div class="detail">{step}{out}</div></details>{reason}</td>'


def render_html(rep: Report) -> str:
    heads = "".join(_h_target_head(t) for t in rep.targets)
    n_scen = sum(len(f.scenarios) for f in rep.features)
    p = ['<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
         '<meta name="viewport" content="width=device-width,initial-scale=1">'
         f"<title>Compatibility report</title><style>{CSS}</style></head><body>",
         "<h1>Compatibility report</h1>",
         f'<p class="lead">{len(rep.targets)} target{"s" * (len(rep.targets) != 1)} · '
         f'{len(rep.features)} feature{"s" * (len(rep.features) != 1)} · {n_scen} scenarios</p>']
    loud = Counter()
    for t in rep.targets:
        loud.update({s: n for s, n in rep.counts(t).items() if s in LOUD})
    if loud:
        p.append('<p class="attention">Needs attention: '
                 + ", ".join(f"{loud[s]} {s}" for s in STATUSES if loud[s]) + "</p>")
    for t in rep.targets:
        if t.incomplete:
            p.append(f'<div class="warn">Column <b>{h(t.name)}</b> is incomplete: {h(t.incomplete)}. '
                     "The run may have been cut short: scenarios it did not record show as not run.</div>")
    p += [f'<div class="warn">{x}</div>' for x in _commit_warning(rep, h) if x]
    p.append('<h2>Targets</h2><div class="scroll"><table class="stamp"><thead><tr>'
             + "".join(f"<th>{h(label)}</th>" for label, _ in STAMP) + "</tr></thead><tbody>")
    for t in rep.targets:
        cells = [h(t.stamp(k)) or f'<span class="notrun">{NOT_RUN}</span>' for _, k in STAMP]
        p.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    p.append("</tbody></table></div>")
    p.append("<h2>Summary</h2><table><thead><tr><th>Feature</th>" + heads + "</tr></thead><tbody>")
    for i, f in enumerate(rep.features):
        flag = ' class="loud"' if any(rep.counts(t, f).keys() & LOUD for t in rep.targets) else ""
        p.append(f'<tr{flag}><td><a href="#f{i}">{h(f.name)}</a><span class="clause">{h(f.file)}</span></td>'
                 + "".join(f"<td>{_h_counts(rep.counts(t, f), rep.not_run(t, f))}</td>" for t in rep.targets)
                 + "</tr>")
    p.append('<tr class="total"><td>Total</td>'
             + "".join(f"<td>{_h_counts(rep.counts(t), rep.not_run(t))}</td>" for t in rep.targets)
             + "</tr></tbody></table>")
    p.append('<dl class="legend">' + "".join(
        f'<dt><span class="badge s-{s}">{html.escape(LABEL[s])}</span></dt><dd>{html.escape(MEANING[s])}</dd>'
        for s in STATUSES) + f'<dt><span class="notrun">{NOT_RUN}</span></dt><dd>not run</dd></dl>')
    for i, f in enumerate(rep.features):
        p.append(f'<h2 id="f{i}">{h(f.name)} <small>{h(f.file)}</small></h2>'
                 f"<table><thead><tr><th>Scenario</th>{heads}</tr></thead><tbody>")
        for s, clause in f.scenarios:
            rs = [rep.result(t, f, s) for t in rep.targets]
            flag = ' class="loud"' if any(r and r.status in LOUD for r in rs) else ""
            cl = f'<span class="clause">{h(clause)}</span>' if clause else ""
            p.append(f'<tr{flag}><td><span class="scn">{h(s)}</span>{cl}</td>'
                     + "".join(_h_cell(r) for r in rs) + "</tr>")
        p.append("</tbody></table>")
    p.append(f'<p class="lead">Generated by conformance/report.py from {len(rep.targets)} results '
             f'file{"s" * (len(rep.targets) != 1)}.</p></body></html>')
    return "\n".join(p) + "\n"


# --- command line ---------------------------------------------------------------------

def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="conformance report",
                                 description="Merge per-target results into compat.md and compat.html.")
    ap.add_argument("--results", type=Path, default=Path("reports/results"),
                    help="directory of <target>.jsonl files (default: reports/results)")
    ap.add_argument("--out", type=Path, default=Path("reports"),
                    help="directory to write compat.md and compat.html (default: reports)")
    args = ap.parse_args(argv)
    try:
        targets, warnings = load_results(args.results)
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for w in warnings:
        print(w, file=sys.stderr)
    rep = build(targets)
    md_text, html_text = render_markdown(rep), render_html(rep)
    try:
        args.out.mkdir(parents=True, exist_ok=True)
        _write(args.out / "compat.md", md_text)
        _write(args.out / "compat.html", html_text)
    except OSError as e:
        print(f"error: cannot write report: {e}", file=sys.stderr)
        return 1
    n = sum(len(f.scenarios) for f in rep.features)
    print(f"wrote {args.out / 'compat.md'} and {args.out / 'compat.html'} "
          f"({len(rep.targets)} targets, {len(rep.features)} features, {n} scenarios)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
