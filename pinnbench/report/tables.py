"""Final-value tables: mean ± std over seeds of the final train loss and error, per (problem, optimizer).

Statistics use only runs with status ``ok`` and a finite value; the other runs are not silently dropped: a cell
shows ``(k/n)`` when only k of its n runs count, and the status table lists every failure. The winner of a row
(bold, as in the papers) is the lowest mean among the entries with the most successful runs, so that an
optimizer that failed on most seeds cannot win on its one lucky run.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .frames import (METRIC_DEFINITIONS, METRIC_NAMES, PARTITION, RUN_COLUMNS, base_problem, check_columns,
                     check_metric, describe_partition, finite, problem_labels, require_single_partition,
                     sentence_case)
from .render import MISSING, Cell, Table

STD_DDOF = 0
"""Population standard deviation over seeds (numpy's default, presumably what the papers' tables used)."""
SUMMARY_METRICS = ("loss", "l2_abs", "l2_rel")


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
    ``{m}_mean``, ``{m}_std`` and ``{m}_n`` (the number of ok runs with a finite value)."""
    check_columns(runs, RUN_COLUMNS, "runs")
    for metric in metrics:
        check_metric(metric)
    keys = [*PARTITION, "problem", "optimizer"]
    records = []
    for key, group in runs.groupby(keys, sort=True, dropna=False):
        record: dict[str, object] = dict(zip(keys, key))
        record["n_runs"] = len(group)
        ok = group[group["status"] == "ok"]
        for metric in metrics:
            values = finite(ok[metric])
            record[f"{metric}_n"] = len(values)
            record[f"{metric}_mean"] = float(values.mean()) if len(values) else np.nan
            record[f"{metric}_std"] = float(values.std(ddof=STD_DDOF)) if len(values) > STD_DDOF else np.nan
        records.append(record)
    columns = [*keys, "n_runs", *(f"{m}_{s}" for m in metrics for s in ("mean", "std", "n"))]
    return pd.DataFrame.from_records(records, columns=columns)


def format_value(x: float) -> str:
    return f"{x:.2e}"


def stat_text(mean: float, std: float, n: int, n_runs: int) -> str:
    """``'1.23e-09 ± 4.56e-10'``, with ``(k/n)`` when not every run counts and "—" when none does."""
    if n_runs == 0:
        return MISSING
    if n == 0:
        return f"{MISSING} (0/{n_runs})"
    text = format_value(mean) if not np.isfinite(std) else f"{format_value(mean)} ± {format_value(std)}"
    return text if n == n_runs else f"{text} ({n}/{n_runs})"


def _lookup(summary: pd.DataFrame, problem: str, optimizer: str) -> pd.Series | None:
    hit = summary[(summary["problem"] == problem) & (summary["optimizer"] == optimizer)]
    return None if hit.empty else hit.iloc[0]


def _stat_cells(entries: list[pd.Series | None], metric: str) -> list[Cell]:
    """Cells for one metric across competitors, the winner bold (lowest mean among the most successful)."""
    counts = [0 if e is None else int(e[f"{metric}_n"]) for e in entries]
    means = [np.nan if e is None else float(e[f"{metric}_mean"]) for e in entries]
    most = max(counts, default=0)
    eligible = [m for c, m in zip(counts, means) if c == most and c > 0]
    best = min(eligible) if eligible else None
    cells = []
    for entry, count, mean in zip(entries, counts, means):
        if entry is None:
            cells.append(Cell(MISSING))
            continue
        text = stat_text(mean, float(entry[f"{metric}_std"]), count, int(entry["n_runs"]))
        winner = best is not None and count == most and mean == best and len(entries) > 1
        cells.append(Cell(text, bold=winner, value=mean if count else None))
    return cells


def _protocol_note(summary: pd.DataFrame) -> str:
    if summary.empty:
        return ""
    first = summary.iloc[0]
    return sentence_case(describe_partition(first["protocol"], first["protocol_id"], first["device"])) + "."


def table_footnote(summary: pd.DataFrame, metrics: tuple[str, ...]) -> str:
    """Says what the numbers are: statistic, metrics, the bold rule, the protocol."""
    definitions = "; ".join(METRIC_DEFINITIONS[m] for m in metrics)
    return (f"Mean ± std (ddof={STD_DDOF}) over seeds of final values of runs with status ok; (k/n): only k of "
            f"n runs ok and finite (the others are counted in the status table); {MISSING}: no data. "
            f"{definitions}. Bold: lowest mean among the entries with the most successful runs. "
            + _protocol_note(summary))


def _error_header(error: str) -> str:
    return {"l2_abs": "L2 (abs. RMS)", "l2_rel": "L2 (relative)", "loss": "train loss"}[error]


def comparison_table(summary: pd.DataFrame, comparison: Comparison, error: str = "l2_abs") -> Table:
    """The papers' layout: one row per problem and net (the label names a net other than the problem's default),
    per optimizer a train-loss and an error column."""
    check_metric(error)
    require_single_partition(summary)
    columns = ["problem"]
    for optimizer in comparison.optimizers:
        columns += [f"{optimizer} train loss", f"{optimizer} {_error_header(error)}"]
    rows = []
    for problem in (label for name in comparison.problems for label in problem_labels(summary, name) or [name]):
        entries = [_lookup(summary, problem, o) for o in comparison.optimizers]
        loss_cells, error_cells = _stat_cells(entries, "loss"), _stat_cells(entries, error)
        row = [Cell(problem)]
        for loss_cell, error_cell in zip(loss_cells, error_cells):
            row += [loss_cell, error_cell]
        rows.append(tuple(row))
    return Table(comparison.name, comparison.title, tuple(columns), tuple(rows),
                 table_footnote(summary, ("loss", error)))


def comparison_has_data(summary: pd.DataFrame, comparison: Comparison) -> bool:
    """Whether any (problem, optimizer) of the comparison has at least one run."""
    hit = (summary["problem"].map(base_problem).isin(comparison.problems)
           & summary["optimizer"].isin(comparison.optimizers))
    return bool(hit.any())


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
    return Table(f"all_{metric}", f"All optimizers, final {METRIC_NAMES[metric]}", ("problem", *optimizers),
                 tuple(rows), table_footnote(summary, (metric,)))
