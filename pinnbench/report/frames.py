"""The results schema the report reads, and the split of a results set into partitions that are never mixed.

A *partition* is the set of runs sharing one ``protocol_id`` (the hash of the effective settings) and one
``device``: means, medians, profiles and curves are only ever computed inside one partition, so runs made under
different settings or on different hardware are never averaged together.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable

import pandas as pd

from ..errors import PinnbenchError

PARTITION = ("protocol", "protocol_id", "device")
"""Columns whose values must agree for runs to be compared or aggregated."""
STATUSES = ("ok", "diverged", "error", "timeout")
COUNTERS = ("residual_evals", "gradient_evals", "jacobian_evals")
RUN_COLUMNS = ("run_id", "problem", "optimizer", "seed", *PARTITION, "status", "loss", "l2_abs", "l2_rel")
TRAJECTORY_COLUMNS = ("run_id", "problem", "optimizer", "seed", *PARTITION, "step", "time", "loss", "l2_abs",
                      "l2_rel")

METRIC_NAMES = {"loss": "train loss", "l2_abs": "absolute RMS error", "l2_rel": "relative L2 error"}
METRIC_DEFINITIONS = {
    "loss": "train loss = Σ over residual groups of mean(r²) on the training points",
    "l2_abs": "L2 = absolute RMS error sqrt(mean((u − u*)²)) on the evaluation points",
    "l2_rel": "L2 = relative error sqrt(mean((u − u*)²)) / sqrt(mean(u*²)) on the evaluation points",
}
"""What each metric column is, in the words used by table footnotes."""


def check_columns(frame: pd.DataFrame, required: Iterable[str], what: str) -> None:
    """Raise a one-line :class:`PinnbenchError` if ``frame`` lacks any of ``required``."""
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise PinnbenchError(f"the {what} frame lacks column(s) {', '.join(missing)}; "
                             f"expected the pinnbench results schema ({', '.join(required)})")


def check_metric(metric: str) -> None:
    if metric not in METRIC_NAMES:
        raise PinnbenchError(f"unknown metric {metric!r}; accepted: {', '.join(METRIC_NAMES)}")


def require_single_partition(frame: pd.DataFrame) -> None:
    """Raise ValueError if ``frame`` mixes protocols or devices (split it with :func:`partitions` first)."""
    keys = frame[list(PARTITION)].drop_duplicates()
    if len(keys) > 1:
        listed = "; ".join(", ".join(map(str, k)) for k in keys.itertuples(index=False))
        raise ValueError(f"results mix {len(keys)} protocol/device partitions ({listed}); "
                         "aggregate each partition separately")


ID_CHARS = 12
"""How much of a protocol id names it (pinnbench's ids are 10 hex digits)."""


def describe_partition(protocol: object, protocol_id: object, device: object) -> str:
    """``'protocol quick (id 1a2b3c4d5e), device cpu'``: how every table and figure names its partition."""
    return f"protocol {protocol} (id {str(protocol_id)[:ID_CHARS]}), device {device}"


def sentence_case(text: str) -> str:
    """First letter upper-cased, the rest untouched (unlike ``str.capitalize``)."""
    return text[:1].upper() + text[1:]


@dataclass(frozen=True)
class Partition:
    """The runs (one row each) and trajectory points (one row per record) of one protocol on one device."""

    protocol: str
    protocol_id: str
    device: str
    runs: pd.DataFrame
    trajectory: pd.DataFrame

    @property
    def slug(self) -> str:
        """A file-system safe name, e.g. ``quick-1a2b3c4d5e-cpu``."""
        raw = f"{self.protocol}-{str(self.protocol_id)[:ID_CHARS]}-{self.device}"
        return re.sub(r"[^A-Za-z0-9_.-]+", "_", raw)

    @property
    def title(self) -> str:
        return describe_partition(self.protocol, self.protocol_id, self.device)

    @property
    def figure_title(self) -> str:
        """``'protocol quick, device cpu'``: figures name the protocol, not its hash (the section heading has it)."""
        return f"protocol {self.protocol}, device {self.device}"


def partitions(runs: pd.DataFrame, trajectory: pd.DataFrame) -> list[Partition]:
    """Split a results set into its partitions, ordered by protocol name, id and device."""
    check_columns(runs, RUN_COLUMNS, "runs")
    check_columns(trajectory, TRAJECTORY_COLUMNS, "trajectory")
    result = []
    for key, group in runs.groupby(list(PARTITION), sort=True, dropna=False):
        ids = set(group["run_id"])
        points = trajectory[trajectory["run_id"].isin(ids)]
        result.append(Partition(*(str(k) for k in key), runs=group.reset_index(drop=True),
                                trajectory=points.reset_index(drop=True)))
    return result


def base_problem(label: object) -> str:
    """The registered problem of a problem label: ``laplace2d[net=2-64-64-1]`` -> ``laplace2d``."""
    return str(label).split("[", 1)[0]


def problem_labels(frame: pd.DataFrame, problem: str) -> list[str]:
    """The labels (one per net) under which ``problem`` appears in ``frame``, default net first."""
    labels = {str(p) for p in frame["problem"].dropna().unique() if base_problem(p) == problem}
    return sorted(labels, key=lambda label: (label != problem, label))


def optimizer_order(frame: pd.DataFrame) -> list[str]:
    """Optimizer labels in a stable order (alphabetical), so colours and columns agree across outputs."""
    return sorted(frame["optimizer"].dropna().astype(str).unique())
