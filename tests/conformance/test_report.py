"""Tests for conformance.report: results files in, compat.md and compat.html out."""
from __future__ import annotations

import json
import random
import re
import subprocess
import sys
import tempfile
from html.parser import HTMLParser
from pathlib import Path

from hypothesis import HealthCheck, given, settings, strategies as st

from conformance import report
from conformance.report import STATUSES

VOID = {"meta", "br", "hr", "img", "input", "link", "wbr"}


def run_record(target: str, **kw) -> dict:
    rec = {"type": "run", "target": target, "cli": target, "endpoint": f"unix:///run/{target}.sock",
           "version": "20.10.24+dfsg1", "api_version": "1.41", "suite_commit": "617e90f",
           "kernel": "6.18.44", "date": "2026-11-29T02:40:00Z", "registry": "127.0.0.1:5000",
           "host": "debian 12"}
    return {**rec, **kw}


def scenario(target: str, name: str, status: str = "pass", feature: str = "run.feature", **kw) -> dict:
    rec = {"type": "scenario", "target": target, "feature": feature, "feature_name": "Running a container",
           "scenario": name, "clause": "run.x", "tags": [], "status": status, "duration": 0.5,
           "failing_step": None, "output": "", "reason": None}
    return {**rec, **kw}


def write(results: Path, target: str, records: list[dict], tail: str = "") -> None:
    results.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(r) + "\n" for r in [run_record(target)] + records) + tail
    (results / f"{target}.jsonl").write_text(text, encoding="utf-8")


def generate(tmp_path: Path, capsys=None) -> tuple[str, str, str]:
    """Run the command line; returns (compat.md, compat.html, stderr)."""
    assert report.main(["--results", str(tmp_path / "results"), "--out", str(tmp_path / "out")]) == 0
    err = capsys.readouterr().err if capsys else ""
    out = tmp_path / "out"
    return (out / "compat.md").read_text(encoding="utf-8"), (out / "compat.html").read_text(encoding="utf-8"), err


class Page(HTMLParser):
    """Checks that tags nest and close, and collects the bits of the page the tests look at."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.tags: list[tuple[str, dict]] = []
        self.scenarios: list[str] = []
        self.totals: list[dict[str, int]] = []
        self._scn = self._total = False
        self._col = 0
        self.feed(text)
        self.close()
        assert not self.stack, f"unclosed tags: {self.stack}"

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append((tag, a))
        if tag not in VOID:
            self.stack.append(tag)
        if tag == "span" and a.get("class") == "scn":
            self._scn = True
            self.scenarios.append("")
        if tag == "tr":
            self._total, self._col = a.get("class") == "total", 0
        if tag == "td":
            self._col += 1
            if self._total and self._col > 1:     # the first cell is the "Total" label
                self.totals.append({})
        if tag == "span" and self._total and "data-n" in a:
            self.totals[-1][a["data-status"]] = int(a["data-n"])

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes {self.stack[-1:]}"
        self.stack.pop()
        if tag == "span":
            self._scn = False

    def handle_data(self, data):
        if self._scn:
            self.scenarios[-1] += data


def md_cells(line: str) -> list[str]:
    """Split a Markdown table row on unescaped pipes, then undo the backslash escapes."""
    cells, cur, i = [], "", 0
    while i < len(line):
        if line[i] == "\\" and i + 1 < len(line):
            cur += line[i:i + 2]
            i += 2
            continue
        if line[i] == "|":
            cells.append(cur)
            cur = ""
        else:
            cur += line[i]
        i += 1
    cells.append(cur)
    return [re.sub(r"\\(.)", r"\1", c.strip()) for c in cells[1:-1]]


def md_tables(text: str) -> list[list[list[str]]]:
    """Every table in the document as rows of cells; asserts each row has the header's width."""
    tables, rows = [], []
    for line in text.split("\n") + [""]:
        if line.startswith("|"):
            rows.append(md_cells(line))
        elif rows:
            assert all(len(r) == len(rows[0]) for r in rows), rows
            tables.append([rows[0]] + rows[2:])  # drop the |---| separator
            rows = []
    return tables


def parse_counts(cell: str) -> dict[str, int]:
    counts = {}
    for part in cell.strip("*").split(" · "):
        n, _, status = part.partition(" ")
        if status in STATUSES:
            counts[status] = int(n)
    assert list(counts) == [s for s in STATUSES if s in counts], "ladder order"
    return counts


# --- examples -----------------------------------------------------------------

def test_every_status_is_shown_with_its_details(tmp_path, capsys):
    write(tmp_path / "results", "docker", [
        scenario("docker", "s-pass"),
        scenario("docker", "s-fail", "fail", failing_step="Then the exit code is 3", output="got 0"),
        scenario("docker", "s-xfail", "xfail", reason="known: no --init", link="https://example.com/issue/7"),
        scenario("docker", "s-xpass", "xpass", reason="was known broken"),
        scenario("docker", "s-unsupported", "unsupported", reason="needs:tty"),
        scenario("docker", "s-env-skip", "env-skip", reason="host lacks nftables"),
        scenario("docker", "s-error", "error", failing_step="Given a daemon", output="Traceback: boom"),
    ])
    md, page, err = generate(tmp_path, capsys)
    assert err == ""
    for s in STATUSES:
        assert f'class="badge s-{s}"' in page
    assert "**✗ FAIL**" in md and "**⚠ XPASS**" in md and "**‼ ERROR**" in md
    assert "1 pass · 1 fail · 1 xfail · 1 xpass · 1 unsupported · 1 env-skip · 1 error" in md
    p = Page(page)
    assert p.totals == [{s: 1 for s in STATUSES}]
    # failing output is one click away, the xfail reason and link are visible
    assert re.search(r"<details><summary><span class=\"badge s-fail\"[^>]*>.*?</summary>.*?"
                     r"Then the exit code is 3.*?<pre>got 0</pre>", page)
    assert '<a href="https://example.com/issue/7">' in page and "known: no --init" in page
    assert "known: no --init ([link](<https://example.com/issue/7>))" in md
    assert "Traceback: boom" in md and "Failing step: Given a daemon" in md
    assert "host lacks nftables" in md and "host lacks nftables" in page
    # the column stamp
    for value in ("20.10.24+dfsg1", "1.41", "617e90f", "6.18.44", "2026-11-29T02:40:00Z", "127.0.0.1:5000"):
        assert value in md and value in page


def test_missing_scenarios_show_as_not_run(tmp_path, capsys):
    write(tmp_path / "results", "alpha", [scenario("alpha", "one"), scenario("alpha", "two")])
    write(tmp_path / "results", "beta", [scenario("beta", "one"),
                                         scenario("beta", "three", feature="net.feature")])
    md, page, _ = generate(tmp_path, capsys)
    tables = md_tables(md)
    summary = tables[1]
    assert summary[0] == ["Feature", "alpha", "beta"]
    assert summary[1][1:] == ["1 not run", "1 pass"]         # net.feature: alpha ran none of it
    assert summary[2][1:] == ["2 pass", "1 pass · 1 not run"]
    assert summary[3][1:] == ["**2 pass · 1 not run**"] * 2
    run_table = tables[3]
    assert ["two", "run.x", "✓ pass", "—"] in run_table
    assert Page(page).totals == [{"pass": 2}, {"pass": 2}]


def test_truncated_file_is_read_as_far_as_it_parses(tmp_path, capsys):
    write(tmp_path / "results", "docker", [scenario("docker", "one"), scenario("docker", "two", "fail")],
          tail='{"type": "scenario", "target": "docker", "feat')
    write(tmp_path / "results", "refimpl", [scenario("refimpl", "one"), scenario("refimpl", "two"),
                                            scenario("refimpl", "three")])
    md, page, err = generate(tmp_path, capsys)
    assert err.count("\n") == 1 and err.startswith("warning: ") and "docker" in err and "incomplete" in err
    assert "line 4" in err
    assert "docker (incomplete)" in md and "refimpl (incomplete)" not in md
    assert page.count('class="badge inc"') == 2              # the summary's column and the feature's
    assert "Column <b>docker</b> is incomplete" in page
    assert Page(page).totals == [{"pass": 1, "fail": 1}, {"pass": 3}]
    assert "1 pass · 1 fail · 1 not run" in md


def test_file_without_run_record_is_incomplete(tmp_path, capsys):
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "odd.jsonl").write_text(
        json.dumps(scenario("odd", "one")) + "\nnot json\n[1, 2]\n" + json.dumps(scenario("odd", "x", "bogus")) + "\n")
    md, page, err = generate(tmp_path, capsys)
    assert err == ("warning: " + str(tmp_path / "results" / "odd.jsonl")
                   + ": 3 unreadable lines (first: line 2); no run record; column 'odd' marked incomplete\n")
    assert Page(page).totals == [{"pass": 1}]


def test_escaping_in_markdown_and_html(tmp_path, capsys):
    nasty = "a|b <script>alert(1)</script>"
    write(tmp_path / "results", "docker", [
        scenario("docker", nasty, "fail", failing_step="When I run `echo |`\nand more",
                 output="```\n</details></pre><script>x</script>\n\x1b[31mred\x1b[0m & done",
                 reason="see `x` | *y*", link="javascript:alert(1)"),
        scenario("docker", "plain", feature="we|ird`.feature"),
    ])
    md, page, _ = generate(tmp_path, capsys)
    p = Page(page)                                   # nests properly
    assert not any(tag == "script" for tag, _ in p.tags)
    assert "a|b &lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert nasty in p.scenarios
    assert 'href="javascript' not in page and "javascript:alert(1)" in page
    assert "\x1b" not in page and "\x1b" not in md and "red &amp; done" in page
    tables = md_tables(md)                           # every row as wide as its header
    assert any(row[0] == nasty for t in tables for row in t)
    assert any(row[0] == "plain" for t in tables for row in t)
    assert "a\\|b \\<script\\>" in md
    assert "Failing step: When I run \\`echo \\|\\` and more" in md
    # the output's own ``` cannot close the fence around it
    assert "````text\n  ```\n  </details></pre><script>x</script>\n  red & done\n  ````" in md
    assert "<script>" not in md.replace("  </details></pre><script>x</script>", "")


def test_output_is_deterministic_whatever_the_input_order(tmp_path, capsys):
    recs = {t: [scenario(t, f"s{i}", random.Random(i).choice(STATUSES), feature=f"f{i % 3}.feature")
                for i in range(12)] for t in ("b", "a", "c")}
    for t, rs in recs.items():
        write(tmp_path / "results", t, rs)
    first = generate(tmp_path, capsys)
    assert generate(tmp_path, capsys) == first
    shuffled = tmp_path / "shuffled"
    for t, rs in reversed(recs.items()):
        write(shuffled / "results", t, random.Random(t).sample(rs, len(rs)))
    assert generate(shuffled, capsys)[:2] == first[:2]


def test_missing_or_empty_results_dir_is_a_one_line_error(tmp_path, capsys):
    out = tmp_path / "out"
    assert report.main(["--results", str(tmp_path / "nope"), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: results directory not found") and err.count("\n") == 1
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("x")
    assert report.main(["--results", str(tmp_path / "empty"), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no results files") and err.count("\n") == 1
    assert not out.exists()                          # no partial state


def test_long_output_keeps_its_tail():
    text = report.block_text("x" * 10 + "y" * report.MAX_OUTPUT)
    assert text.endswith("y" * report.MAX_OUTPUT) and text.startswith("… 10 characters omitted …")


# --- the property -----------------------------------------------------------------

names = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=16).filter(str.strip)
optional = st.none() | st.text(max_size=30)
records = st.fixed_dictionaries({
    "feature": st.sampled_from(["run.feature", "network.feature", "a|b`.feature"]),
    "feature_name": optional, "scenario": names, "status": st.sampled_from(STATUSES),
    "failing_step": optional, "output": optional, "reason": optional,
    "link": st.none() | st.sampled_from(["https://example.com/a?b=(c)", "javascript:x", "<b>", "https://x/\\"]),
})
runs = st.dictionaries(st.sampled_from(["docker", "podman", "refimpl", "x"]), st.lists(records, max_size=8),
                       min_size=1, max_size=3)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(runs)
def test_any_wellformed_results_give_a_valid_complete_report(runs):
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        for t, rs in runs.items():
            write(tmp_path / "results", t, [{"type": "scenario", "target": t, **r} for r in rs])
        md, page, _ = generate(tmp_path)
    targets = sorted(runs)
    expected = [{s: n for s in STATUSES if (n := sum(r["status"] == s for r in runs[t]))} for t in targets]
    # HTML: well nested, no script, every scenario, totals add up to the records
    p = Page(page)
    assert not any(tag == "script" for tag, _ in p.tags)
    assert p.totals == expected
    shown = set(p.scenarios)
    for rs in runs.values():
        for r in rs:
            base = " ".join(r["scenario"].split())
            assert base in shown or any(s.startswith(base + " (") for s in shown)
    # Markdown: every table row as wide as its header, same totals, every scenario
    tables = md_tables(md)
    summary = tables[1]
    assert summary[0][1:] == targets and summary[-1][0] == "**Total**"
    assert [parse_counts(c) for c in summary[-1][1:]] == expected
    for col, want in enumerate(expected, 1):         # the feature rows add up to the totals row
        got: dict[str, int] = {}
        for row in summary[1:-1]:
            for s, n in parse_counts(row[col]).items():
                got[s] = got.get(s, 0) + n
        assert got == want
    md_names = {row[0] for t in tables[2:] for row in t[1:]}
    for rs in runs.values():
        for r in rs:
            base = " ".join(r["scenario"].split())
            assert base in md_names or any(s.startswith(base + " (") for s in md_names)


def test_module_entry_point(tmp_path):
    write(tmp_path / "results", "docker", [scenario("docker", "one")])
    cmd = [sys.executable, "-m", "conformance.report", "--results", str(tmp_path / "results"), "--out", str(tmp_path)]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=Path(report.__file__).parent.parent)
    assert done.returncode == 0 and done.stderr == "" and (tmp_path / "compat.html").is_file()
    done = subprocess.run(cmd[:4] + [str(tmp_path / "nope")], capture_output=True, text=True,
                          cwd=Path(report.__file__).parent.parent)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
