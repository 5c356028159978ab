"""Best-so-far error against time or work: per-run step functions, seed medians and quartiles, plots.

A run's best-so-far value at ``x`` is the lowest metric value recorded at or before ``x`` (NaN points never
improve it); before a run's first record it is undefined, after its last record it stays at the run's best (a
run that stopped, converged or failed keeps what it reached). Medians and quartiles over seeds are taken on
log10 of the value, i.e. interpolated geometrically, which is what a log axis shows.
"""
from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure

from .frames import COUNTERS, METRIC_NAMES, TRAJECTORY_COLUMNS, check_columns, check_metric, require_single_partition

X_AXES = {
    "time": "optimizer time [s]",
    "step": "optimizer steps",
    "evaluations": "work [residual + gradient + Jacobian evaluations]",
    "residual_evals": "residual evaluations",
    "gradient_evals": "gradient evaluations",
    "jacobian_evals": "Jacobian evaluations",
}
"""The x axes a curve can use, and their labels with units."""
X_NAMES = {"time": "optimizer time", "step": "steps", "evaluations": "work", "residual_evals": "residual evaluations",
           "gradient_evals": "gradient evaluations", "jacobian_evals": "Jacobian evaluations"}
"""Short names of the x axes, for titles."""
GRID_POINTS = 200
_NEVER = 400.0  # log10 stand-in for "no finite value yet" (+inf), far above any real error


def x_values(trajectory: pd.DataFrame, x: str) -> pd.Series:
    """The x coordinate of each trajectory point: a column, or ``evaluations`` = the sum of the counters."""
    if x not in X_AXES:
        raise ValueError(f"unknown x axis {x!r}; accepted: {', '.join(X_AXES)}")
    if x == "evaluations":
        check_columns(trajectory, COUNTERS, "trajectory")
        return trajectory[list(COUNTERS)].astype(float).sum(axis=1)
    check_columns(trajectory, (x,), "trajectory")
    return trajectory[x].astype(float)


def best_so_far(values: np.ndarray) -> np.ndarray:
    """Running minimum that skips NaN (+inf until the first finite value)."""
    clean = np.where(np.isnan(values), np.inf, values)
    return np.minimum.accumulate(clean) if len(clean) else clean


def grid_for(x: np.ndarray, n: int = GRID_POINTS, log: bool = True) -> np.ndarray:
    """A common grid from the smallest positive x (log) or 0 (linear) to the largest x."""
    x = x[np.isfinite(x)]
    positive = x[x > 0]
    if positive.size == 0:
        return np.zeros(1)
    if log:
        low, high = positive.min(), positive.max()
        return np.geomspace(low, high, n) if high > low else np.array([low])
    return np.linspace(0.0, positive.max(), n)


def run_curves(trajectory: pd.DataFrame, metric: str, x: str, grid: np.ndarray) -> dict[str, np.ndarray]:
    """Best-so-far ``metric`` of every run on ``grid``: {run_id: values}, NaN before the run's first record."""
    check_metric(metric)
    frame = trajectory.assign(_x=x_values(trajectory, x)).sort_values(["run_id", "step"])
    curves = {}
    for run_id, run in frame.groupby("run_id", sort=True):
        xs = run["_x"].to_numpy(dtype=float)
        best = best_so_far(pd.to_numeric(run[metric], errors="coerce").to_numpy(dtype=float))
        index = np.searchsorted(xs, grid, side="right") - 1
        values = np.where(index >= 0, best[np.clip(index, 0, None)], np.nan)
        curves[run_id] = values
    return curves


def _group_curves(trajectory: pd.DataFrame, metric: str, x: str,
                  n: int) -> Iterator[tuple[str, str, np.ndarray, dict[str, np.ndarray]]]:
    """(problem, optimizer, grid, {run_id: best-so-far values}) per (problem, optimizer); one grid per problem."""
    check_columns(trajectory, TRAJECTORY_COLUMNS, "trajectory")
    require_single_partition(trajectory)
    for problem, on_problem in trajectory.groupby("problem", sort=True):
        grid = grid_for(x_values(on_problem, x).to_numpy(), n, log=x != "step")
        for optimizer, group in on_problem.groupby("optimizer", sort=True):
            yield problem, optimizer, grid, run_curves(group, metric, x, grid)


def seed_bands(trajectory: pd.DataFrame, metric: str = "l2_abs", x: str = "time",
               n: int = GRID_POINTS) -> pd.DataFrame:
    """Median and quartiles over seeds of best-so-far ``metric``, per (problem, optimizer), on a common grid
    per problem. Columns: problem, optimizer, x, median, q25, q75, n_runs (runs defined at x)."""
    pieces = []
    for problem, optimizer, grid, curves in _group_curves(trajectory, metric, x, n):
        logs = np.log10(np.clip(np.array(list(curves.values())), 1e-300, None))
        logs[np.isposinf(logs)] = _NEVER
        defined = ~np.isnan(logs)
        with warnings.catch_warnings():  # all-NaN columns (no run started yet) are expected
            warnings.simplefilter("ignore", RuntimeWarning)
            q25, q50, q75 = np.nanquantile(logs, [0.25, 0.5, 0.75], axis=0)
        pieces.append(pd.DataFrame({"problem": problem, "optimizer": optimizer, "x": grid,
                                    "median": _from_log(q50), "q25": _from_log(q25), "q75": _from_log(q75),
                                    "n_runs": defined.sum(axis=0)}))
    columns = ["problem", "optimizer", "x", "median", "q25", "q75", "n_runs"]
    return pd.concat(pieces, ignore_index=True) if pieces else pd.DataFrame(columns=columns)


def seed_lines(trajectory: pd.DataFrame, metric: str = "l2_abs", x: str = "time",
               n: int = GRID_POINTS) -> pd.DataFrame:
    """Best-so-far ``metric`` of every run on the grid of :func:`seed_bands`; NaN where the run has no finite
    value yet. Columns: problem, optimizer, run_id, seed, x, value."""
    seeds = trajectory.groupby("run_id")["seed"].first()
    pieces = [pd.DataFrame({"problem": problem, "optimizer": optimizer, "run_id": run_id, "seed": seeds[run_id],
                            "x": grid, "value": np.where(np.isinf(values), np.nan, values)})
              for problem, optimizer, grid, curves in _group_curves(trajectory, metric, x, n)
              for run_id, values in curves.items()]
    columns = ["problem", "optimizer", "run_id", "seed", "x", "value"]
    return pd.concat(pieces, ignore_index=True) if pieces else pd.DataFrame(columns=columns)


def _from_log(q: np.ndarray) -> np.ndarray:
    return np.where(q < _NEVER - 1, 10.0 ** np.minimum(q, _NEVER), np.nan)


Style = dict[str, object]
LINESTYLES = ("-", "--", "-.", ":")
PALETTE = {"amstramgram": "#0072b2", "anagram": "#e69f00", "engd": "#009e73", "ssbroyden": "#cc79a7",
           "adam": "#56b4e9", "lbfgs": "#d55e00", "bfgs": "#8c564b", "ssbfgs": "#bcbd22", "lm": "#9467bd",
           "nncg": "#7f7f7f", "engd_woodbury": "#000000"}
"""A fixed colour per built-in optimizer, so that an optimizer has the same colour in every report."""
SPARE_COLOURS = ("#17becf", "#1a237e", "#880e4f", "#33691e", "#ff6f00")
"""Colours for other optimizers (plugins), in turn, before a generated palette takes over."""
SHADES = (0.0, -0.35, 0.4, -0.6, 0.65)
"""How far a variant's colour moves from its base optimizer's: toward black (< 0) or white (> 0)."""


def base_optimizer(label: str) -> str:
    """The optimizer of a label: ``amstramgram[fallback=none]`` -> ``amstramgram``."""
    return label.split("[", 1)[0]


def _shade(colour: str | tuple[float, float, float], amount: float) -> tuple[float, float, float]:
    rgb = np.array(to_rgb(colour))
    target = np.zeros(3) if amount < 0 else np.ones(3)
    return tuple(float(c) for c in rgb + abs(amount) * (target - rgb))


def line_styles(optimizers: list[str]) -> dict[str, Style]:
    """Colour and dash pattern per optimizer label, stable across every figure of a report: each base optimizer
    has its own colour (a fixed one for the built-ins); its variants (labels with hyperparameters) get shades of
    it and dash patterns, the plain label (default hyperparameters) the colour itself and a solid line."""
    labels = set(optimizers)
    bases = sorted({base_optimizer(label) for label in labels})
    others = [b for b in bases if b not in PALETTE]
    generated = sns.color_palette("husl", max(0, len(others) - len(SPARE_COLOURS)))
    colours = {**PALETTE, **dict(zip(others, [*SPARE_COLOURS, *generated]))}
    styles: dict[str, Style] = {}
    for base in bases:
        variants = [base, *sorted(label for label in labels if base_optimizer(label) == base and label != base)]
        for i, label in enumerate(variants):
            if label in labels:
                styles[label] = {"color": _shade(colours[base], SHADES[i % len(SHADES)]),
                                 "linestyle": LINESTYLES[i % len(LINESTYLES)]}
    return styles


def seeds_label(optimizer: str, counts: list[int]) -> str:
    """``'anagram (n=3)'``, or ``'anagram (n=2–3)'`` when the number of seeds differs between panels."""
    low, high = min(counts), max(counts)
    return f"{optimizer} (n={low})" if low == high else f"{optimizer} (n={low}–{high})"


LEGEND_CHAR_INCHES = 0.075
LEGEND_HANDLE_INCHES = 0.7
LEGEND_ROW_INCHES = 0.25
"""Rough legend metrics (for the column count and the room the legend takes below the panels)."""


def add_legend(figure: Figure, entries: dict[str, object], title: str) -> None:
    """A figure legend below the panels, in as many columns as the figure's width holds; the figure is saved
    with a tight bounding box (:func:`save_figure`), so a legend wider than the panels widens the image rather
    than being cut."""
    if not entries:
        return
    widest = LEGEND_HANDLE_INCHES + LEGEND_CHAR_INCHES * max(len(label) for label in entries)
    ncol = max(1, min(len(entries), int(figure.get_figwidth() // widest)))
    figure.set_figheight(figure.get_figheight() + LEGEND_ROW_INCHES * math.ceil(len(entries) / ncol))
    figure.legend(list(entries.values()), list(entries), loc="outside lower center", ncol=ncol, title=title)


SEED_LINE = {"lw": 0.7, "alpha": 0.35, "zorder": 1.9}
"""The thin line of one seed, drawn under the medians (zorder 2.1)."""
MEDIAN_WIDTH, HIGHLIGHT_WIDTH = 2.2, 3.2


def plot_bands(bands: pd.DataFrame, metric: str, x: str, title: str,
               styles: dict[str, Style] | None = None, highlight: str | None = None,
               lines: pd.DataFrame | None = None) -> Figure:
    """One panel per problem, log-log axes; per optimizer a bold line (the median of ``bands``) over one thin
    line per seed (``lines``, from :func:`seed_lines`, optional). The legend gives each optimizer's seeds."""
    problems = sorted(bands["problem"].unique())
    optimizers = sorted(bands["optimizer"].unique())
    styles = styles or line_styles(optimizers)
    seeds = bands.groupby(["optimizer", "problem"])["n_runs"].max()
    ncols = min(3, max(1, len(problems)))
    nrows = max(1, math.ceil(len(problems) / ncols))
    with sns.axes_style("whitegrid"), sns.plotting_context("notebook", font_scale=0.85):
        figure = Figure(figsize=(4.6 * ncols, 3.6 * nrows + 0.6), layout="constrained")
        axes = figure.subplots(nrows, ncols, squeeze=False)
        entries: dict[str, object] = {}
        for ax, problem in zip(axes.flat, problems):
            on_problem = bands[bands["problem"] == problem]
            for optimizer in optimizers:
                line = on_problem[on_problem["optimizer"] == optimizer]
                if line["median"].notna().sum() == 0:
                    continue
                colour = styles[optimizer]["color"]
                if lines is not None:
                    mine = lines[(lines["problem"] == problem) & (lines["optimizer"] == optimizer)]
                    for run_id, run in mine.groupby("run_id", sort=True):
                        ax.plot(run["x"], run["value"], color=colour, **SEED_LINE, drawstyle="steps-post",
                                gid=f"seed {optimizer} {run_id}")
                width = HIGHLIGHT_WIDTH if optimizer == highlight else MEDIAN_WIDTH
                (handle,) = ax.plot(line["x"], line["median"], **styles[optimizer], lw=width, zorder=2.1,
                                    drawstyle="steps-post", gid=f"median {optimizer}")
                entries.setdefault(optimizer, handle)
            if x != "step":
                ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_title(problem)
            ax.set_xlabel(X_AXES[x])
            ax.set_ylabel(f"{METRIC_NAMES[metric]} (best so far)")
        for ax in list(axes.flat)[len(problems):]:
            ax.set_visible(False)
        labelled = {seeds_label(o, seeds[o].tolist()): entries[o] for o in optimizers if o in entries}
        add_legend(figure, labelled, "optimizer (n seeds); bold: median over seeds, thin: each seed")
        figure.suptitle(title)
    return figure


SAVE_OPTIONS = {"bbox_inches": "tight", "pad_inches": 0.1}
"""How figures are saved: the image grows to hold every artist (legends included), so nothing is clipped."""


def save_figure(figure: Figure, stem: Path) -> list[Path]:
    """Write ``stem.png`` (150 dpi) and ``stem.svg``; returns the paths."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_suffix(".png"), stem.with_suffix(".svg")]
    figure.savefig(paths[0], dpi=150, **SAVE_OPTIONS)
    figure.savefig(paths[1], **SAVE_OPTIONS)
    return paths
