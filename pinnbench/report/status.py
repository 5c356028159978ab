"""Status accounting: how many runs ended ok, diverged, errored or timed out, per optimizer, and which."""
from __future__ import annotations

import pandas as pd

from .frames import RUN_COLUMNS, STATUSES, check_columns
from .render import Cell, Table

ERROR_CHARS = 160


def first_line(message: object) -> str:
    """The first non-empty line of an error message (the last one of a traceback), at most ``ERROR_CHARS`` long;
    "" for none."""
    if message is None or (isinstance(message, float) and pd.isna(message)):
        return ""
    lines = [line for line in str(message).strip().splitlines() if line.strip()]
    if not lines:
        return ""
    first = (lines[-1] if lines[0].startswith("Traceback") else lines[0]).strip()
    return first if len(first) <= ERROR_CHARS else first[:ERROR_CHARS - 1] + "…"


def status_counts(runs: pd.DataFrame) -> pd.DataFrame:
    """Index optimizer; columns ok, diverged, error, timeout (then any other status seen), total."""
    check_columns(runs, RUN_COLUMNS, "runs")
    counts = pd.crosstab(runs["optimizer"].astype(str), runs["status"].astype(str))
    extra = sorted(c for c in counts.columns if c not in STATUSES)
    counts = counts.reindex(columns=[*STATUSES, *extra], fill_value=0)
    counts["total"] = counts.sum(axis=1)
    counts.columns.name = None
    return counts.sort_index()


def status_table(runs: pd.DataFrame, context: str = "") -> Table:
    """:func:`status_counts` as a table; non-zero failure counts are bold."""
    counts = status_counts(runs)
    rows = []
    for optimizer, row in counts.iterrows():
        cells = [Cell(str(optimizer))]
        for column in counts.columns:
            value = int(row[column])
            failure = column not in ("ok", "total")
            cells.append(Cell(str(value), bold=failure and value > 0, value=float(value)))
        rows.append(tuple(cells))
    footnote = ("Runs per optimizer by final status: ok (finished on budget, step cap or convergence), diverged "
                "(non-finite loss), error (raised), timeout (stopped after budget + grace). " + context).strip()
    return Table("status", "Run status", ("optimizer", *counts.columns), tuple(rows), footnote)


def failures_table(runs: pd.DataFrame) -> Table:
    """One row per run whose status is not ok, with the first line of its error message."""
    failed = runs[runs["status"] != "ok"].sort_values(["optimizer", "problem", "seed"])
    rows = []
    for run in failed.to_dict("records"):
        stop = run.get("stop_reason")
        rows.append((Cell(str(run["optimizer"])), Cell(str(run["problem"])), Cell(str(run["seed"])),
                     Cell(str(run["status"])), Cell("" if stop is None or pd.isna(stop) else str(stop)),
                     Cell(first_line(run.get("error")))))
    return Table("failures", "Runs that did not end ok", ("optimizer", "problem", "seed", "status", "stop reason",
                                                          "error"), tuple(rows))
