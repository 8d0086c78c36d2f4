"""bench.engine's arithmetic: medians, ratios, goals, and the markdown table."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from bench.engine import markdown, met, summarise

TIMES = st.lists(st.floats(0.001, 30.0, allow_nan=False), min_size=1, max_size=7)


@given(d=TIMES, r=TIMES)
@settings(max_examples=50)
def test_medians_in_ms_and_ratio(d, r):
    s = summarise({"dockerd": {"create": d}, "refimpld": {"create": r}}, 1)["create"]
    assert min(d) * 1000 - 0.05 <= s["dockerd"] <= max(d) * 1000 + 0.05
    assert abs(s["ratio"] - s["refimpld"] / s["dockerd"]) < 0.01


def test_pull_is_megabytes_per_second_and_goals():
    s = summarise({"dockerd": {"pull_debian": [2.0, 4.0, 3.0]}, "refimpld": {"pull_debian": [1.0]}}, 30_000_000)
    assert s["pull_debian"] == {"dockerd": 10.0, "refimpld": 30.0, "ratio": 3.0}
    assert met((">=", 1.0), 3.0).endswith("met") and met(("<=", 0.5), 0.6).endswith("MISSED")
    assert met(None, 1.0) == ""


def test_markdown_has_a_row_per_measured_benchmark():
    s = summarise({"dockerd": {"run_rm": [0.4], "ps_100": [0.02]}, "refimpld": {"run_rm": [0.1], "ps_100": [0.04]}},
                  1)
    text = markdown({"summary": s, "reps": 1, "pull_bytes": 1, "date": "d", "host": "h", "kernel": "k",
                     "cli": "c", "dockerd": "x", "refimpld_peak_rss_mb": 40.0, "notes": ["a note"]})
    assert "| `run --rm busybox true` | 400.0 ms | 100.0 ms | 0.25 | <= 0.5: met |" in text
    assert "| 2.0 |" in text and "< 150 MB: met" in text and "- a note" in text
