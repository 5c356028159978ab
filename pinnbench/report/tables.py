"""Final-value tables: the statistic of :mod:`pinnbench.statistics` (median [95 % bootstrap CI] over ok seeds)
of the final train loss and error, per (problem, optimizer).

Only runs with status ``ok`` and a finite value enter the median; the other runs are counted, never dropped: a
cell shows ``(k/n seeds ok)`` when only k of its n runs count, and the status table lists every failure. The
winner of a row (bold, as in the papers) is the lowest median among the entries with the most ok runs, so that an
optimizer that failed on most seeds cannot win on its one lucky run; a row with a single entry has no winner.
"""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from ..statistics import DEFINITION, NAME, SeedStatistic, runs_statistic
from .frames import (METRIC_DEFINITIONS, METRIC_NAMES, PARTITION, RUN_COLUMNS, check_columns,
                     check_metric, describe_partition, problem_labels, require_single_partition, sentence_case)
from .render import MISSING, Cell, Table

SUMMARY_METRICS = ("loss", "l2_abs", "l2_rel")
STATISTIC_COLUMNS = ("median", "low", "high", "n")
"""Per metric, the summary's columns ``{metric}_{column}``: the statistic and its count of ok seeds."""


@dataclass(frozen=True)
class Comparison:
    """A head-to-head table: optimizer labels (columns) on a fixed list of problems (rows)."""

    name: str
    title: str
    optimizers: tuple[str, ...]
    problems: tuple[str, ...]


PAPER_COMPARISONS = (
    Comparison("comparison_anagram_amstramgram", "ANaGRAM vs AMStraMGRAM", ("anagram", "amstramgram"),
               ("heat", "laplace2d", "laplace5d", "allen_cahn")),
    Comparison("comparison_amstramgram_ssbroyden", "AMStraMGRAM vs SSBroyden", ("amstramgram", "ssbroyden"),
               ("burgers", "nonlinear_poisson", "allen_cahn")),
)
"""The two comparison tables of the AMStraMGRAM study (default hyperparameters: labels equal to names)."""


def summarize(runs: pd.DataFrame, metrics: tuple[str, ...] = SUMMARY_METRICS) -> pd.DataFrame:
    """One row per (protocol, protocol_id, device, problem, optimizer) with ``n_runs`` and, per metric,
    ``{m}_median``, ``{m}_low``, ``{m}_high`` (the bootstrap interval, NaN under 3 ok seeds) and ``{m}_n`` (the
    number of ok runs with a finite value)."""
    check_columns(runs, RUN_COLUMNS, "runs")
    for metric in metrics:
        check_metric(metric)
    keys = [*PARTITION, "problem", "optimizer"]
    records = []
    for key, group in runs.groupby(keys, sort=True, dropna=False):
        record: dict[str, object] = dict(zip(keys, key))
        record["n_runs"] = len(group)
        for metric in metrics:
            stat = runs_statistic(group, metric)
            record.update({f"{metric}_median": stat.median, f"{metric}_low": stat.low,
                           f"{metric}_high": stat.high, f"{metric}_n": stat.n_ok})
        records.append(record)
    columns = [*keys, "n_runs", *(f"{m}_{s}" for m in metrics for s in STATISTIC_COLUMNS)]
    return pd.DataFrame.from_records(records, columns=columns)


def entry_statistic(entry: pd.Series, metric: str) -> SeedStatistic:
    """The statistic of ``metric`` stored in a :func:`summarize` row."""
    return SeedStatistic(float(entry[f"{metric}_median"]), float(entry[f"{metric}_low"]),
                         float(entry[f"{metric}_high"]), int(entry[f"{metric}_n"]), int(entry["n_runs"]))


def _lookup(summary: pd.DataFrame, problem: str, optimizer: str) -> pd.Series | None:
    hit = summary[(summary["problem"] == problem) & (summary["optimizer"] == optimizer)]
    return None if hit.empty else hit.iloc[0]


def _stat_cells(entries: list[pd.Series | None], metric: str) -> list[Cell]:
    """Cells for one metric across competitors; the winner bold (lowest median among the entries with the most
    ok runs) when at least two entries have a value."""
    stats = [None if e is None else entry_statistic(e, metric) for e in entries]
    counts = [0 if s is None else s.n_ok for s in stats]
    most = max(counts, default=0)
    eligible = [s.median for s in stats if s is not None and s.n_ok == most and most > 0]
    best = min(eligible) if eligible and sum(c > 0 for c in counts) >= 2 else None
    return [Cell(MISSING) if s is None else
            Cell(s.text(), bold=best is not None and s.n_ok == most and s.median == best,
                 value=s.median if s.n_ok else None)
            for s in stats]


def _protocol_note(summary: pd.DataFrame) -> str:
    if summary.empty:
        return ""
    first = summary.iloc[0]
    return sentence_case(describe_partition(first["protocol"], first["protocol_id"], first["device"])) + "."


def table_footnote(summary: pd.DataFrame, metrics: tuple[str, ...]) -> str:
    """Says what the numbers are: statistic, metrics, the bold rule, the protocol."""
    definitions = "; ".join(METRIC_DEFINITIONS[m] for m in metrics)
    return (f"Final values: {DEFINITION} (the status table lists them); {MISSING}: no data. {definitions}. "
            "Bold: lowest median among the entries with the most ok seeds. " + _protocol_note(summary))


def _error_header(error: str) -> str:
    return {"l2_abs": "L2 (abs. RMS)", "l2_rel": "L2 (relative)", "loss": "train loss"}[error]


def _comparison_rows(summary: pd.DataFrame, comparison: Comparison) -> list[tuple[str, list[pd.Series | None]]]:
    """(problem label, entry per optimizer) for each problem and net of the comparison that one of its
    optimizers ran."""
    rows = []
    for problem in (label for name in comparison.problems for label in problem_labels(summary, name)):
        entries = [_lookup(summary, problem, o) for o in comparison.optimizers]
        if any(e is not None for e in entries):
            rows.append((problem, entries))
    return rows


def comparison_table(summary: pd.DataFrame, comparison: Comparison, error: str = "l2_abs") -> Table:
    """The papers' layout: one row per problem and net (the label names a net other than the problem's default)
    that one of the optimizers ran, per optimizer a train-loss and an error column."""
    check_metric(error)
    require_single_partition(summary)
    columns = ["problem"]
    for optimizer in comparison.optimizers:
        columns += [f"{optimizer} train loss", f"{optimizer} {_error_header(error)}"]
    rows = []
    for problem, entries in _comparison_rows(summary, comparison):
        loss_cells, error_cells = _stat_cells(entries, "loss"), _stat_cells(entries, error)
        row = [Cell(problem)]
        for loss_cell, error_cell in zip(loss_cells, error_cells):
            row += [loss_cell, error_cell]
        rows.append(tuple(row))
    return Table(comparison.name, f"{comparison.title}: final values, {NAME}", tuple(columns), tuple(rows),
                 table_footnote(summary, ("loss", error)))


def comparison_has_data(summary: pd.DataFrame, comparison: Comparison) -> bool:
    """Whether the comparison is a head-to-head: at least two of its optimizers ran one of its problems."""
    return any(sum(e is not None for e in entries) >= 2 for _, entries in _comparison_rows(summary, comparison))


def full_table(summary: pd.DataFrame, metric: str = "l2_abs") -> Table:
    """Every optimizer (columns) on every problem (rows) for one metric, the row winner bold."""
    check_metric(metric)
    require_single_partition(summary)
    optimizers = sorted(summary["optimizer"].astype(str).unique())
    problems = sorted(summary["problem"].astype(str).unique())
    rows = []
    for problem in problems:
        entries = [_lookup(summary, problem, o) for o in optimizers]
        rows.append((Cell(problem), *_stat_cells(entries, metric)))
    return Table(f"all_{metric}", f"All optimizers: final {METRIC_NAMES[metric]}, {NAME}", ("problem", *optimizers),
                 tuple(rows), table_footnote(summary, (metric,)))
