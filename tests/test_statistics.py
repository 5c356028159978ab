"""The one statistic of final values (median over ok seeds, bootstrap interval, failures counted), and that the
run summary and the report tables use it and name it (``pinnbench compare``'s table: tests/test_compare.py)."""
import numpy as np
import pytest

from pinnbench.report.published import OURS_HEADER, published_table
from pinnbench.report.tables import PAPER_COMPARISONS, comparison_table, full_table, summarize
from pinnbench.statistics import (MIN_SEEDS_FOR_INTERVAL, NAME, SUMMARY_TITLE, bootstrap_interval,
                                  final_values_table, seed_statistic)
from report_synthetic import frames, run


def test_median_of_an_even_count_is_the_mean_of_the_middle_pair():
    stat = seed_statistic([10.0, 1.0, 3.0, 2.0])
    assert stat.median == 2.5 and (stat.n_ok, stat.n_runs) == (4, 4)
    assert seed_statistic([1e-6, 3e-6]).median == pytest.approx(2e-6, rel=1e-12)


def test_interval_only_from_three_seeds():
    assert MIN_SEEDS_FOR_INTERVAL == 3
    two = seed_statistic([1.0, 2.0])
    assert np.isnan(two.low) and np.isnan(two.high) and two.text() == "1.50e+00"
    three = seed_statistic([1.0, 2.0, 4.0])
    assert three.low == 1.0 and three.high == 4.0  # a median of three resampled values is one of them
    assert three.text() == "2.00e+00 [1.00e+00, 4.00e+00]"


def test_bootstrap_interval_contains_the_median_and_is_deterministic():
    values = np.random.default_rng(3).lognormal(-10.0, 2.0, size=9)
    low, high = bootstrap_interval(values)
    assert low <= np.median(values) <= high and low < high
    assert bootstrap_interval(values) == (low, high)
    assert bootstrap_interval(values[::-1]) == (low, high)  # the order of the seeds does not matter
    assert values.min() <= low and high <= values.max()


def test_failed_runs_are_counted_never_in_the_median():
    stat = seed_statistic([1.0, 2.0, 3.0, 1e-20, np.nan, np.inf],
                          ok=[True, True, True, False, True, True])
    assert stat.median == 2.0 and (stat.n_ok, stat.n_runs) == (3, 6)
    assert stat.text(".3g") == "2 [1, 3] (3/6 seeds ok)"
    none = seed_statistic([1.0, 2.0], ok=[False, False])
    assert np.isnan(none.median) and none.text() == "— (0/2 seeds ok)"
    assert seed_statistic([]).text() == "—"


def seeds(problem, optimizer, errors, statuses=None):
    statuses = statuses or ["ok"] * len(errors)
    return [run(f"{problem}-{optimizer}-{i}", problem, optimizer, i, [0.0, 1.0], [1.0, e], status=s)
            for i, (e, s) in enumerate(zip(errors, statuses), start=1)]


def test_the_run_summary_uses_the_statistic():
    runs, _ = frames(*seeds("heat", "adam", [1e-3, 3e-3]),
                     *seeds("heat", "anagram", [1e-6, 2e-6, 4e-6, 1e-12], ["ok", "ok", "ok", "error"]))
    table = final_values_table(runs).set_index("optimizer")
    assert table.loc["adam", "L2 abs"] == "2.00e-03"  # median of 2, no interval
    assert table.loc["anagram", "seeds ok"] == "3/4"
    assert table.loc["anagram", "L2 abs"] == "2.00e-06 [1.00e-06, 4.00e-06]"  # the error run's 1e-12 left out
    assert table.loc["anagram", "steps"] == "1"  # the median alone for steps and time
    assert "median of the n ok seeds" in SUMMARY_TITLE and "bootstrap CI" in SUMMARY_TITLE


def test_every_final_values_table_names_the_statistic():
    runs, _ = frames(*seeds("heat", "anagram", [1e-6, 2e-6, 4e-6]), *seeds("heat", "amstramgram", [1e-14]))
    summary = summarize(runs)
    tables = [comparison_table(summary, PAPER_COMPARISONS[0]), full_table(summary, "loss"), full_table(summary)]
    assert all(NAME in table.title for table in tables)
    assert all("95% percentile-bootstrap interval" in table.footnote for table in tables)
    published = published_table(summary)
    assert OURS_HEADER == f"ours: {NAME}" and OURS_HEADER in published.columns
    assert "published mean ± std" in published.columns
