"""Reports built from synthetic result sets whose answers are known by construction."""
from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

import pinnbench
from pinnbench import PinnbenchError
from pinnbench.protocol import Protocol
from pinnbench.store import load_runs
from pinnbench.report import build_report, write_report
from pinnbench.report.curves import best_so_far, run_curves, seed_bands
from pinnbench.report.frames import partitions
from pinnbench.report.published import published_table
from pinnbench.report.render import Cell, Table, render_table
from pinnbench.report.status import failures_table, status_counts
from pinnbench.report.tables import PAPER_COMPARISONS, comparison_has_data, comparison_table, full_table, summarize
from pinnbench.report.targets import (comparable, ecdf, instance_costs, performance_ratios, profile,
                                      target_table, time_to_target)
from report_synthetic import frames, run, suite

INF = math.inf
ANAGRAM_VS_AMSTRAMGRAM = PAPER_COMPARISONS[0]


def finals(run_id, problem, optimizer, seed, error, status="ok", **identity):
    """A two-point run ending at ``error`` (loss = error²)."""
    return run(run_id, problem, optimizer, seed, [0.0, 1.0], [1.0, error], status=status, **identity)


def two_seed_heat():
    return [finals("a1", "heat", "anagram", 1, 1e-6), finals("a2", "heat", "anagram", 2, 3e-6),
            finals("m1", "heat", "amstramgram", 1, 1e-14), finals("m2", "heat", "amstramgram", 2, 3e-14)]


def test_summary_is_the_median_over_ok_seeds():
    runs, _ = frames(*two_seed_heat(), finals("a3", "heat", "anagram", 3, 9e-6),
                     finals("a4", "heat", "anagram", 4, 1e-9, status="diverged"))
    summary = summarize(runs).set_index("optimizer")
    two, three = summary.loc["amstramgram"], summary.loc["anagram"]
    assert two["l2_abs_median"] == pytest.approx(2e-14, rel=1e-12)  # two seeds: the mean of the middle pair
    assert two["loss_median"] == pytest.approx(5e-28, rel=1e-12)  # (1e-28 + 9e-28) / 2
    assert np.isnan(two["l2_abs_low"]) and np.isnan(two["l2_abs_high"])  # no interval under three seeds
    assert three["l2_abs_median"] == pytest.approx(3e-6, rel=1e-12)  # the diverged 1e-9 is not in it
    assert three["l2_abs_low"] <= 3e-6 <= three["l2_abs_high"]
    assert (three["n_runs"], three["l2_abs_n"]) == (4, 3)
    assert three["l2_rel_median"] == pytest.approx(6e-6, rel=1e-12)


def test_comparison_table_bolds_the_better_entry_and_marks_missing_rows():
    runs, _ = frames(*two_seed_heat())
    table = comparison_table(summarize(runs), ANAGRAM_VS_AMSTRAMGRAM)
    assert [row[0].text for row in table.rows] == ["heat"]  # no row for the problems nobody ran
    heat = dict(zip(table.columns, table.rows[0]))
    assert heat["anagram L2 (abs. RMS)"].text == "2.00e-06"
    assert not heat["anagram L2 (abs. RMS)"].bold and not heat["anagram train loss"].bold
    assert heat["amstramgram L2 (abs. RMS)"].bold and heat["amstramgram train loss"].bold
    assert heat["amstramgram L2 (abs. RMS)"].text == "2.00e-14"
    assert "absolute RMS" in table.footnote and "protocol quick" in table.footnote.lower()


def test_an_optimizer_that_failed_on_some_seeds_cannot_win_on_its_lucky_run():
    runs, _ = frames(*two_seed_heat(), finals("s1", "heat", "ssbroyden", 1, 1e-20),
                     finals("s2", "heat", "ssbroyden", 2, np.nan, status="diverged"))
    cells = dict(zip(full_table(summarize(runs)).columns, full_table(summarize(runs)).rows[0]))
    assert cells["ssbroyden"].text == "1.00e-20 (1/2 seeds ok)"
    assert not cells["ssbroyden"].bold
    assert cells["amstramgram"].bold


def test_failed_nan_and_other_protocol_runs_are_kept_apart():
    runs, trajectory = frames(
        *two_seed_heat(),
        finals("a3", "heat", "anagram", 3, 0.5, status="error"),
        finals("a4", "heat", "anagram", 4, np.nan, status="diverged"),
        finals("a5", "heat", "anagram", 5, np.nan),  # marked ok, yet NaN: not counted either
        finals("p1", "heat", "anagram", 1, 1e-12, protocol="paper", protocol_id="0123456789"))
    summary = summarize(runs)
    assert sorted(summary["protocol"].unique()) == ["paper", "quick"]
    quick = summary[(summary["protocol"] == "quick") & (summary["optimizer"] == "anagram")].iloc[0]
    assert quick["l2_abs_median"] == pytest.approx(2e-6, rel=1e-12)  # the 1e-12 paper run is not in it
    assert (quick["n_runs"], quick["l2_abs_n"]) == (5, 2)
    with pytest.raises(ValueError, match="partitions"):
        comparison_table(summary, ANAGRAM_VS_AMSTRAMGRAM)
    parts = {p.protocol: p for p in partitions(runs, trajectory)}
    assert set(parts) == {"paper", "quick"}
    assert set(parts["paper"].trajectory["run_id"]) == {"p1"}
    table = comparison_table(summarize(parts["quick"].runs), ANAGRAM_VS_AMSTRAMGRAM)
    assert table.rows[0][2].text == "2.00e-06 (2/5 seeds ok)"
    assert status_counts(parts["quick"].runs).loc["anagram", ["ok", "diverged", "error", "total"]].tolist() == \
        [3, 1, 1, 5]


def test_time_to_target_counts_never_reaching_runs_as_failures():
    runs, trajectory = frames(
        run("fast", "heat", "anagram", 1, [0, 1, 2, 3], [1, 1e-2, 1e-4, 1e-7]),
        run("stuck", "heat", "anagram", 2, [0, 1, 2], [1, 0.5, 0.1]),
        run("b1", "heat", "adam", 1, [0, 1], [1, 1e-4]),
        run("b2", "heat", "adam", 2, [0, 2], [1, 1e-4]),
        run("b3", "heat", "adam", 3, [], [], status="error"))  # failed before its first record
    costs = time_to_target(runs, trajectory, targets=(1e-3, 1e-6, 1e-9))
    cost = costs.set_index(["run_id", "target"])["cost"]
    assert (cost["fast", 1e-3], cost["fast", 1e-6], cost["fast", 1e-9]) == (2.0, 3.0, INF)
    assert cost["stuck"].tolist() == [INF, INF, INF]
    assert cost["b3"].tolist() == [INF, INF, INF]
    table = target_table(costs)
    rows = {(r[0].text, r[1].text): dict(zip(table.columns, r)) for r in table.rows}
    assert rows["heat", "1e-03"]["anagram"].text == "reached by 1/2 seeds"  # median of (2, inf) is inf
    assert rows["heat", "1e-03"]["adam"].text == "2 s (reached by 2/3 seeds)"  # median of (1, 2, inf)
    assert rows["heat", "1e-03"]["adam"].bold
    assert rows["heat", "1e-09"]["adam"].text == "reached by 0/3 seeds"


def test_performance_profile_values():
    index = pd.MultiIndex.from_tuples([("p", 1e-3), ("p", 1e-6), ("q", 1e-3), ("q", 1e-6)],
                                      names=["problem", "target"])
    instance = pd.DataFrame({"A": [1.0, 2.0, INF, INF], "B": [2.0, 1.0, 3.0, INF]}, index=index)
    ratios = performance_ratios(instance)
    assert ratios["A"].tolist() == [1.0, 2.0, INF, INF]
    assert ratios["B"].tolist() == [2.0, 1.0, 1.0, INF]  # nobody solves the last instance: it stays in
    rho = profile(ratios, np.array([1.0, 1.5, 2.0, 10.0])).set_index(["optimizer", "tau"])["fraction"]
    assert rho["A"].tolist() == [0.25, 0.25, 0.5, 0.5]
    assert rho["B"].tolist() == [0.5, 0.5, 0.75, 0.75]


def test_instance_cost_is_the_median_over_seeds_and_ecdf_splits_pairs_over_seeds():
    costs = pd.DataFrame({"problem": "p", "optimizer": "A", "seed": [1, 2, 1, 2],
                          "target": [1e-3, 1e-3, 1e-6, 1e-6], "cost": [1.0, INF, 2.0, 3.0]})
    medians = instance_costs(costs)["A"]
    assert medians["p", 1e-3] == INF and medians["p", 1e-6] == 2.5  # median of (1, inf) is a failure
    curve = ecdf(costs, np.array([0.5, 1.0, 2.0, 3.0, 10.0]))
    assert curve["fraction"].tolist() == [0.0, 0.25, 0.5, 0.75, 0.75]


def test_profiles_keep_the_largest_complete_block():
    base = {"target": 1e-3, "seed": 1, "cost": 1.0}
    cells = [("p", "A"), ("p", "B"), ("q", "A"), ("q", "B"), ("r", "A"), ("r", "B"), ("p", "C")]
    costs = pd.DataFrame([{"problem": p, "optimizer": o, **base} for p, o in cells])
    kept, note = comparable(costs)
    assert sorted(kept["optimizer"].unique()) == ["A", "B"] and kept["problem"].nunique() == 3
    assert note == "optimizers not run on every problem: C"


def test_best_so_far_curves_and_seed_bands():
    assert best_so_far(np.array([3.0, np.nan, 1.0, 2.0])).tolist() == [3.0, 3.0, 1.0, 1.0]
    assert best_so_far(np.array([np.nan, 2.0])).tolist() == [INF, 2.0]
    runs, trajectory = frames(run("r1", "heat", "anagram", 1, [0, 1, 2], [1, 1e-2, 1e-4]),
                              run("r2", "heat", "anagram", 2, [0, 1, 2], [1, 1e-4, np.nan]),
                              run("r3", "heat", "anagram", 3, [0, 1, 2], [1, 1e-6, 1e-8]),
                              run("late", "heat", "adam", 1, [0.5, 1.5], [0.1, 0.01]))
    late = run_curves(trajectory[trajectory["run_id"] == "late"], "l2_abs", "time", np.array([0.25, 1.0, 9.0]))
    assert np.isnan(late["late"][0]) and late["late"][1:].tolist() == [0.1, 0.01]
    bands = seed_bands(trajectory[trajectory["optimizer"] == "anagram"], "l2_abs", "time", n=5)
    first, last = bands.iloc[0], bands.iloc[-1]
    assert (first["x"], last["x"]) == (1.0, 2.0)
    assert first["median"] == pytest.approx(1e-4) and first["n_runs"] == 3
    assert first["q25"] == pytest.approx(1e-5) and first["q75"] == pytest.approx(1e-3)  # quartiles of log10
    assert last["median"] == pytest.approx(1e-4)  # r2's NaN keeps its best, 1e-4


def test_published_ratio_and_verdict():
    runs, _ = frames(finals("m", "laplace2d", "amstramgram", 1, 2 * 2.24e-15),
                     finals("a", "laplace2d", "anagram", 1, 100 * 3.49e-09))
    table = published_table(summarize(runs))
    rows = {(r[0].text, r[1].text, r[2].text): dict(zip(table.columns, r)) for r in table.rows}
    ours = rows["laplace2d", "amstramgram", "absolute RMS error"]
    assert ours["ratio"].value == pytest.approx(2.0) and ours["verdict"].text == "≈"
    assert ours["published mean ± std"].text == "2.24e-15 ± 2.52e-16"
    assert ours["ours: median [95% bootstrap CI] over ok seeds"].text == "4.48e-15"
    assert rows["laplace2d", "anagram", "absolute RMS error"]["verdict"].text == "✗"
    assert {problem for problem, _, _ in rows} == {"laplace2d"}  # only what we ran: nothing else to compare
    assert any("not the papers' setup" in n for n in table.notes)  # synthetic runs use protocol "quick"
    assert not any("SSBroyden paper's own setup" in n for n in table.notes)  # no ssbroyden row, no note
    elsewhere, _ = frames(finals("x", "poisson9d", "anagram", 1, 1e-3))
    assert published_table(summarize(elsewhere)).rows == ()


def test_rendering_keeps_bold_escapes_and_missing_cells():
    table = Table("t", "Final L2", ("problem", "a_b", "c"),
                  ((Cell("allen_cahn"), Cell("1.00e-06 ± 2.00e-07", bold=True), Cell("a|b*")),), "u* is exact")
    md, latex, html = (render_table(table, f) for f in ("md", "latex", "html"))
    assert "**1.00e-06 ± 2.00e-07**" in md and r"a\|b\*" in md and r"*u\* is exact*" in md
    assert r"\textbf{1.00e-06 $\pm$ 2.00e-07}" in latex and r"allen\_cahn" in latex and r"$u^*$ is exact" in latex
    assert r"\caption{Final L2}" in latex
    assert "<b>1.00e-06 ± 2.00e-07</b>" in html and "<td>a|b*" in html.replace(" ", "")
    missing = render_table(Table("m", "m", ("x",), ((Cell("—"),),)), "latex")
    assert "---" in missing


def test_failures_table_names_the_error():
    runs, _ = frames(finals("e", "heat", "adam", 2, 0.5, status="error"), finals("o", "heat", "adam", 1, 0.1))
    runs.loc[runs["run_id"] == "e", "error"] = "Traceback (most recent call last):\n  x\nRuntimeError: boom"
    table = failures_table(runs)
    assert len(table.rows) == 1 and table.rows[0][-1].text == "RuntimeError: boom"


def test_bad_input_is_named():
    runs, trajectory = frames(*two_seed_heat())
    with pytest.raises(PinnbenchError, match="format"):
        build_report(runs, trajectory, "unused", formats=("pdf",))
    with pytest.raises(PinnbenchError, match="lacks column"):
        summarize(runs.drop(columns=["status"]))


def test_build_report_writes_every_part(tmp_path):
    runs, trajectory = suite(seeds=(1, 2), problems=("heat",), other_protocol=False)  # figures are the slow part
    out = build_report(runs, trajectory, tmp_path / "report", formats=("md", "latex", "html"), source="synthetic")
    assert out == tmp_path / "report"
    section = out / "quick-feedc0de12-cpu"
    for name in ("error_vs_time", "error_vs_work", "loss_vs_time", "profiles"):
        assert (section / "figures" / f"{name}.png").stat().st_size > 10_000
        assert (section / "figures" / f"{name}.svg").read_text().lstrip().startswith("<?xml")
    for ext in ("md", "tex", "html"):
        assert (section / "tables" / f"comparison_anagram_amstramgram.{ext}").exists()
        assert (section / "tables" / f"failures.{ext}").exists()
    readme, index = (out / "README.md").read_text(), (out / "index.html").read_text()
    for page in (readme, index):
        assert "quick-feedc0de12-cpu/figures/error_vs_time.png" in page
        assert "abc1234" in page and "RuntimeError: boom" in page  # the manifest's commit; the failure
        assert "2026-01-0" not in page  # per-run manifest keys stay out of the machine listing
    summary = pd.read_csv(section / "summary.csv")
    adam = summary[(summary["problem"] == "heat") & (summary["optimizer"] == "adam")].iloc[0]
    assert (adam["n_runs"], adam["l2_abs_n"]) == (3, 1)  # one ok, one error, one NaN
    assert adam["l2_abs_median"] == pytest.approx(1e-3)  # the ok run's 10^(-0.3·10), alone
    costs = pd.read_csv(section / "time_to_target.csv")
    assert np.isinf(costs[costs["run_id"] == "heat-adam-err"]["cost"]).all()


def test_report_of_two_protocols_has_two_sections(tmp_path):
    runs, trajectory = suite(seeds=(1, 2), problems=("heat",))
    out = build_report(runs, trajectory, tmp_path, figures=False)
    manifest = json.loads((out / "manifest.json").read_text())
    assert [(s["protocol"], s["runs"]) for s in manifest["sections"]] == [("paper", 1), ("quick", len(runs) - 1)]
    readme = (out / "README.md").read_text()
    assert "## Protocol paper (id 0123456789), device cpu" in readme
    assert "## Protocol quick (id feedc0de12), device cpu" in readme
    paper = pd.read_csv(out / "paper-0123456789-cpu" / "summary.csv")
    quick = pd.read_csv(out / "quick-feedc0de12-cpu" / "summary.csv").set_index("optimizer")
    assert paper["l2_abs_median"].tolist() == [1e-12]
    assert quick.loc["anagram", "n_runs"] == 2 and quick.loc["anagram", "l2_abs_median"] > 1e-10


def test_write_report_reads_a_results_folder(tmp_path):
    """Real runs through the runner and the store, then the report of the folder."""
    pinnbench.run("laplace2d", ["adam", "anagram"], seeds=[6865],
                  protocol=Protocol(name="test", seeds=(6865,), budget=60.0, steps=4, points="quick"),
                  out=tmp_path / "results")
    out = write_report(tmp_path / "results", formats=("md", "latex"), figures=False)  # figures: tested above
    assert out == tmp_path / "results" / "report"
    (section,) = [p for p in out.iterdir() if p.is_dir()]
    assert section.name.startswith("test-") and section.name.endswith("-cpu")
    assert not (section / "figures").exists()
    summary = pd.read_csv(section / "summary.csv").set_index("optimizer")
    runs = load_runs(tmp_path / "results").set_index("optimizer")
    for optimizer in ("adam", "anagram"):
        assert summary.loc[optimizer, "l2_abs_median"] == runs.loc[optimizer, "l2_abs"]
    assert (summary["n_runs"] == 1).all()
    readme = (out / "README.md").read_text()
    assert "laplace2d" in readme and "environment.git_commit" in readme and "[2,32,1]" in readme
    assert (section / "tables" / "all_l2_abs.tex").read_text().startswith(r"\begin{table}")


def test_no_comparison_table_without_a_head_to_head(tmp_path):
    """The issue's case: amstramgram not run, so no ANaGRAM vs AMStraMGRAM table (with anagram bold on its own)."""
    runs, trajectory = frames(finals("a1", "heat", "anagram", 1, 1e-6), finals("d1", "heat", "adam", 1, 1e-3),
                              finals("s1", "burgers", "ssbroyden", 1, 1e-6),
                              finals("m1", "burgers", "amstramgram", 1, 1e-12))
    summary = summarize(runs)
    assert not comparison_has_data(summary, ANAGRAM_VS_AMSTRAMGRAM)
    assert comparison_has_data(summary, PAPER_COMPARISONS[1])
    alone = comparison_table(summary, ANAGRAM_VS_AMSTRAMGRAM)
    assert not any(cell.bold for row in alone.rows for cell in row)  # one entry per row: no winner
    out = build_report(runs, trajectory, tmp_path, figures=False)
    readme = (out / "README.md").read_text()
    tables = out / "quick-feedc0de12-cpu" / "tables"
    assert not (tables / "comparison_anagram_amstramgram.md").exists()
    assert (tables / "comparison_amstramgram_ssbroyden.md").exists()
    assert "**ANaGRAM vs AMStraMGRAM" not in readme and "Not shown, for want of runs" in readme
    assert "pinnbench vs published results" in readme  # anagram on heat has a published number


def test_no_published_table_without_a_published_number(tmp_path):
    runs, trajectory = frames(finals("a1", "poisson9d", "anagram", 1, 1e-6), finals("d1", "heat", "my-gd", 1, 1e-3))
    readme = (build_report(runs, trajectory, tmp_path, figures=False) / "README.md").read_text()
    assert "pinnbench vs published results" not in readme
    assert "No published numbers for the problems and optimizers of this section." in readme
    assert not (tmp_path / "quick-feedc0de12-cpu" / "tables" / "published.md").exists()
