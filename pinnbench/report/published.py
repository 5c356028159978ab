"""The published numbers of PROTOCOLS.md §4 as data, and the ours / theirs / ratio table.

Values are mean ± std over the authors' seeds ([slides]). The error of the AMStraMGRAM study's tables is the
absolute RMS error (PROTOCOLS.md §1); the SSBroyden* rows come from the same table, made with the SSBroyden
paper's own setup (adaptive resampling, hard-constrained boundary conditions), so they compare setups as much
as optimizers. The KFAC-for-PINNs figures are relative L2 errors of single runs with a [2,64,1] net after a
1000 s GPU budget: indicative only.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..statistics import NAME
from .frames import METRIC_NAMES, describe_partition, problem_labels, require_single_partition, sentence_case
from .render import MISSING, Cell, Table
from .tables import entry_statistic

AMSTRAMGRAM_STUDY = "AMStraMGRAM study (slides), PROTOCOLS.md §4"
SSBROYDEN_SETUP = "the SSBroyden paper's own setup (adaptive resampling, hard-constrained boundary conditions)"
KFAC_STUDY = "KFAC-for-PINNs study: relative L2, [2,64,1] net, 1000 s GPU budget, single figure"
NOTE_MARKS = {SSBROYDEN_SETUP: "*", KFAC_STUDY: "†"}
OURS_HEADER = f"ours: {NAME}"
PUBLISHED_HEADER = "published mean ± std"


@dataclass(frozen=True)
class PublishedResult:
    """One published number: problem, optimizer name, metric column, mean ± std (std None when not given)."""

    problem: str
    optimizer: str
    metric: str
    mean: float
    std: float | None
    source: str
    note: str = ""


def _pair(problem: str, optimizer: str, loss: tuple[float, float], l2: tuple[float, float],
          note: str = "") -> tuple[PublishedResult, PublishedResult]:
    return (PublishedResult(problem, optimizer, "loss", *loss, AMSTRAMGRAM_STUDY, note),
            PublishedResult(problem, optimizer, "l2_abs", *l2, AMSTRAMGRAM_STUDY, note))


PUBLISHED: tuple[PublishedResult, ...] = (
    *_pair("heat", "amstramgram", (6.29e-29, 6.78e-30), (2.32e-14, 1.14e-14)),
    *_pair("heat", "anagram", (8.56e-11, 7.05e-11), (1.28e-06, 1.75e-06)),
    *_pair("laplace2d", "amstramgram", (1.46e-28, 1.87e-29), (2.24e-15, 2.52e-16)),
    *_pair("laplace2d", "anagram", (4.27e-13, 4.66e-13), (3.49e-09, 3.58e-09)),
    *_pair("laplace5d", "amstramgram", (2.04e-08, 1.16e-08), (2.12e-05, 8.15e-06)),
    *_pair("laplace5d", "anagram", (6.37e-08, 7.01e-08), (4.00e-05, 2.93e-05)),
    *_pair("allen_cahn", "amstramgram", (3.19e-11, 2.37e-11), (5.87e-05, 6.25e-06)),
    *_pair("allen_cahn", "anagram", (2.19e-04, 4.16e-04), (4.32e-03, 5.93e-03)),
    *_pair("burgers", "amstramgram", (2.99e-12, 9.26e-13), (1.5e-06, 9.43e-07)),
    *_pair("burgers", "ssbroyden", (2.92e-10, 1.45e-10), (1.59e-06, 1.02e-06), SSBROYDEN_SETUP),
    *_pair("nonlinear_poisson", "amstramgram", (8.51e-24, 2.24e-24), (6.81e-10, 1.41e-09)),
    *_pair("nonlinear_poisson", "ssbroyden", (3.03e-16, 3.82e-16), (9.29e-12, 5.85e-12), SSBROYDEN_SETUP),
    *_pair("allen_cahn", "ssbroyden", (6.42e-12, 5.52e-12), (3.94e-06, 1.72e-06), SSBROYDEN_SETUP),
    PublishedResult("laplace2d", "engd", "l2_rel", 6.2e-8, None, KFAC_STUDY, KFAC_STUDY),
    PublishedResult("laplace2d", "adam", "l2_rel", 9.4e-5, None, KFAC_STUDY, KFAC_STUDY),
    PublishedResult("laplace2d", "lbfgs", "l2_rel", 1.8e-4, None, KFAC_STUDY, KFAC_STUDY),
)


def published_frame() -> pd.DataFrame:
    """The published numbers as a DataFrame (problem, optimizer, metric, mean, std, source, note)."""
    return pd.DataFrame([vars(p) for p in PUBLISHED])


REPRODUCED_FACTOR = 10.0
"""Ours within this factor of the published mean counts as "≈" (about reproduced)."""


def verdict(ratio: float) -> str:
    """"✓" ours ≤ published, "≈" within ``REPRODUCED_FACTOR``, "✗" worse, "—" not comparable."""
    if not np.isfinite(ratio):
        return MISSING
    if ratio <= 1.0:
        return "✓"
    return "≈" if ratio <= REPRODUCED_FACTOR else "✗"


def _matches(summary: pd.DataFrame) -> list[tuple[PublishedResult, str, pd.Series]]:
    """Each published result with our entry for it, once per net we ran its problem on (none: not run)."""
    out = []
    for pub in PUBLISHED:
        mine = summary[summary["optimizer"] == pub.optimizer]
        out += [(pub, label, mine[mine["problem"] == label].iloc[0]) for label in problem_labels(mine, pub.problem)]
    return out


def _published_text(pub: PublishedResult) -> str:
    return f"{pub.mean:.2e}" + ("" if pub.std is None else f" ± {pub.std:.2e}")


def published_table(summary: pd.DataFrame) -> Table:
    """Ours (the statistic of :mod:`pinnbench.statistics`, default hyperparameters) beside the published mean ±
    std, and the ratio of our median to the published mean: one row per published number we ran (none: no rows).

    ``summary`` is :func:`pinnbench.report.tables.summarize` of one partition; ours is the optimizer whose label
    equals the published optimizer's name (no hyperparameter overrides).
    """
    require_single_partition(summary)
    matches = _matches(summary)
    rows = []
    for pub, label, entry in matches:
        ours = entry_statistic(entry, pub.metric)
        ratio = ours.median / pub.mean if ours.n_ok else np.nan
        known = bool(np.isfinite(ratio))
        rows.append((Cell(label), Cell(pub.optimizer + NOTE_MARKS.get(pub.note, "")),
                     Cell(METRIC_NAMES[pub.metric]), Cell(ours.text(), value=ours.median if known else None),
                     Cell(_published_text(pub), value=pub.mean),
                     Cell(f"{ratio:.3g}" if known else MISSING, value=ratio if known else None),
                     Cell(verdict(ratio))))
    protocol = str(summary["protocol"].iloc[0]) if not summary.empty else "?"
    notes = [f"Ratio = our median / published mean; ✓ ours ≤ published, ≈ within {REPRODUCED_FACTOR:g}×, ✗ worse. "
             f"Published: {AMSTRAMGRAM_STUDY} (absolute RMS error, mean ± std over the authors' seeds, as the "
             "papers give them)."]
    notes += [f"{mark} {note}." for note, mark in NOTE_MARKS.items() if any(p.note == note for p, _, _ in matches)]
    if protocol != "paper":
        notes.append(f"Our runs use protocol '{protocol}', not the papers' setup (protocol 'paper'): "
                     "fewer steps or points, so ratios are indicative only.")
    first = summary.iloc[0] if not summary.empty else None
    footnote = (f"Ours: {NAME}, final values, default hyperparameters; only the published numbers of problems "
                "and optimizers we ran are listed."
                + ("" if first is None else " " + sentence_case(
                    describe_partition(first["protocol"], first["protocol_id"], first["device"])) + "."))
    return Table("published", "pinnbench vs published results",
                 ("problem", "optimizer", "metric", OURS_HEADER, PUBLISHED_HEADER, "ratio", "verdict"),
                 tuple(rows), footnote, tuple(notes))
