"""bench.registry's arithmetic: MB/s, medians, the ratio, and its table."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from bench.registry import mb_per_s, summarise, table

RATES = st.lists(st.floats(1.0, 5000.0, allow_nan=False), min_size=1, max_size=7)


def test_mb_per_s_counts_decimal_megabytes():
    assert mb_per_s(50_000_000, 2.0) == 25.0


@given(a_push=RATES, a_pull=RATES, b_push=RATES, b_pull=RATES)
@settings(max_examples=50)
def test_summary_medians_and_ratios(a_push, a_pull, b_push, b_pull):
    s = summarise({"refimpl": {"push": a_push, "pull": a_pull},
                   "distribution": {"push": b_push, "pull": b_pull}})
    med = s["median_mb_s"]
    for op, xs in (("push", a_push), ("pull", a_pull)):
        assert min(xs) - 0.05 <= med["refimpl"][op] <= max(xs) + 0.05
    ratio = s["ratio_refimpl_over_distribution"]["push"]
    assert abs(ratio - med["refimpl"]["push"] / med["distribution"]["push"]) < 0.01


def test_table_has_a_row_per_operation():
    s = summarise({"refimpl": {"push": [100.0, 120.0, 110.0], "pull": [500.0]},
                   "distribution": {"push": [100.0], "pull": [250.0]}})
    lines = table(s).splitlines()
    assert len(lines) == 3 and "refimpl-registry" in lines[0]
    assert lines[1].split() == ["push", "MB/s", "110.0", "100.0", "1.10"]
    assert lines[2].split()[-1] == "2.00"
