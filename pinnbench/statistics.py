"""The one statistic of final values over seeds, used by the run summary, ``pinnbench compare`` and the report.

Point value: the median over the seeds whose run ended ``ok`` with a finite value (the median of an even count
is the mean of its two middle values). With at least :data:`MIN_SEEDS_FOR_INTERVAL` such seeds it comes with a
95 % percentile-bootstrap interval of that median, drawn by a generator of fixed seed from the sorted values, so
the same values always give the same interval. Failed runs (any other status, or a non-finite value) are counted
beside it, ``(k/n seeds ok)``, never mixed into the median.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

CONFIDENCE = 0.95
RESAMPLES = 2000
MIN_SEEDS_FOR_INTERVAL = 3
BOOTSTRAP_SEED = 14
MISSING = "—"
"""What a value without data shows, everywhere."""
NAME = "median [95% bootstrap CI] over ok seeds"
"""How every table and summary names the statistic."""
DEFINITION = (f"median over the seeds whose run ended ok with a finite value; [low, high]: "
              f"{CONFIDENCE:.0%} percentile-bootstrap interval of that median ({RESAMPLES} resamples), "
              f"given with at least {MIN_SEEDS_FOR_INTERVAL} ok seeds; (k/n seeds ok): only k of the n runs "
              f"count, failed runs are never mixed into the median")
"""The statistic in one sentence, for footnotes."""


@dataclass(frozen=True)
class SeedStatistic:
    """The median over ok seeds, its bootstrap interval (NaN when there are too few seeds) and the counts."""

    median: float
    low: float
    high: float
    n_ok: int
    n_runs: int

    def text(self, fmt: str = ".2e", counts: bool = True, interval: bool = True) -> str:
        """``'1.23e-06 [4.00e-07, 2.00e-06]'`` (the interval where there is one and ``interval``), then
        (``counts``) ``(k/n seeds ok)`` when some runs failed; "—" without data."""
        if self.n_runs == 0:
            return MISSING
        head = MISSING if self.n_ok == 0 else format(self.median, fmt)
        if interval and np.isfinite(self.low):
            head += f" [{self.low:{fmt}}, {self.high:{fmt}}]"
        return head if self.n_ok == self.n_runs or not counts else f"{head} ({self.n_ok}/{self.n_runs} seeds ok)"


def bootstrap_interval(values: np.ndarray) -> tuple[float, float]:
    """The percentile-bootstrap :data:`CONFIDENCE` interval of the median of ``values`` (finite, at least one)."""
    ordered = np.sort(np.asarray(values, dtype=float))
    draws = np.random.default_rng(BOOTSTRAP_SEED).integers(0, len(ordered), size=(RESAMPLES, len(ordered)))
    tail = (1.0 - CONFIDENCE) / 2.0
    low, high = np.quantile(np.median(ordered[draws], axis=1), [tail, 1.0 - tail])
    return float(low), float(high)


def seed_statistic(values: Sequence[float] | np.ndarray | pd.Series,
                   ok: Sequence[bool] | np.ndarray | pd.Series | None = None) -> SeedStatistic:
    """The statistic of one (problem, optimizer): ``values`` one final value per run, ``ok`` whether each run's
    status is ok (default: all). Non-finite values count as failed runs."""
    array = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=float)
    counted = np.isfinite(array) if ok is None else np.isfinite(array) & np.asarray(ok, dtype=bool)
    kept = array[counted]
    if len(kept) == 0:
        return SeedStatistic(np.nan, np.nan, np.nan, 0, len(array))
    low, high = bootstrap_interval(kept) if len(kept) >= MIN_SEEDS_FOR_INTERVAL else (np.nan, np.nan)
    return SeedStatistic(float(np.median(kept)), low, high, len(kept), len(array))


def runs_statistic(runs: pd.DataFrame, column: str) -> SeedStatistic:
    """:func:`seed_statistic` of ``column`` over the runs of a frame with a ``status`` column."""
    return seed_statistic(runs[column], runs["status"] == "ok")


SUMMARY_COLUMNS = {"steps": ("steps", ".3g", False), "time [s]": ("time", ".3g", False),
                   "train loss": ("loss", ".2e", True), "L2 abs": ("l2_abs", ".2e", True),
                   "L2 rel": ("l2_rel", ".2e", True)}
"""The run summary's value columns: header, runs-frame column, number format, whether the interval is shown."""
SUMMARY_TITLE = (f"final values per problem and optimizer: median of the n ok seeds (n = 'seeds ok'), "
                 f"loss and errors with [{CONFIDENCE:.0%} bootstrap CI] where n >= {MIN_SEEDS_FOR_INTERVAL}; failed "
                 "runs are counted, never in the median")


def final_values_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per (problem, optimizer): how many seeds ended ok, and the statistic of steps, time, loss and errors."""
    records = []
    for (problem, optimizer), group in runs.groupby(["problem", "optimizer"], sort=True):
        ok = int((group["status"] == "ok").sum())
        record = {"problem": problem, "optimizer": optimizer, "seeds ok": f"{ok}/{len(group)}"}
        for header, (column, fmt, interval) in SUMMARY_COLUMNS.items():
            record[header] = runs_statistic(group, column).text(fmt, counts=False, interval=interval)
        records.append(record)
    return pd.DataFrame.from_records(records, columns=["problem", "optimizer", "seeds ok", *SUMMARY_COLUMNS])
