"""Best-so-far error against time or work: per-run step functions, seed medians with interquartile bands, plots.

A run's best-so-far value at ``x`` is the lowest metric value recorded at or before ``x`` (NaN points never
improve it); before a run's first record it is undefined, after its last record it stays at the run's best (a
run that stopped, converged or failed keeps what it reached). Medians and quartiles over seeds are taken on
log10 of the value, i.e. interpolated geometrically, which is what a log axis shows.
"""
from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import seaborn as sns
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


def seed_bands(trajectory: pd.DataFrame, metric: str = "l2_abs", x: str = "time",
               n: int = GRID_POINTS) -> pd.DataFrame:
    """Median and quartiles over seeds of best-so-far ``metric``, per (problem, optimizer), on a common grid
    per problem. Columns: problem, optimizer, x, median, q25, q75, n_runs (runs defined at x)."""
    check_columns(trajectory, TRAJECTORY_COLUMNS, "trajectory")
    require_single_partition(trajectory)
    pieces = []
    for problem, on_problem in trajectory.groupby("problem", sort=True):
        grid = grid_for(x_values(on_problem, x).to_numpy(), n, log=x != "step")
        for optimizer, group in on_problem.groupby("optimizer", sort=True):
            curves = np.array(list(run_curves(group, metric, x, grid).values()))
            logs = np.log10(np.clip(curves, 1e-300, None))
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


def _from_log(q: np.ndarray) -> np.ndarray:
    return np.where(q < _NEVER - 1, 10.0 ** np.minimum(q, _NEVER), np.nan)


Style = dict[str, object]
LINESTYLES = ("-", "--", "-.", ":")


def line_styles(optimizers: list[str]) -> dict[str, Style]:
    """Colour and dash pattern per optimizer label, stable across every figure of a report; the dashes keep
    overlapping lines apart and survive black-and-white printing."""
    colours = sns.color_palette("colorblind" if len(optimizers) <= 10 else "husl", len(optimizers))
    return {o: {"color": c, "linestyle": LINESTYLES[i % len(LINESTYLES)]}
            for i, (o, c) in enumerate(zip(optimizers, colours))}


def plot_bands(bands: pd.DataFrame, metric: str, x: str, title: str,
               styles: dict[str, Style] | None = None, highlight: str | None = None) -> Figure:
    """One panel per problem, one line (median) and band (interquartile) per optimizer, log-log axes."""
    problems = sorted(bands["problem"].unique())
    optimizers = sorted(bands["optimizer"].unique())
    styles = styles or line_styles(optimizers)
    ncols = min(3, max(1, len(problems)))
    nrows = max(1, math.ceil(len(problems) / ncols))
    with sns.axes_style("whitegrid"), sns.plotting_context("notebook", font_scale=0.85):
        figure = Figure(figsize=(4.6 * ncols, 3.6 * nrows + 0.9), layout="constrained")
        axes = figure.subplots(nrows, ncols, squeeze=False)
        for ax, problem in zip(axes.flat, problems):
            on_problem = bands[bands["problem"] == problem]
            for optimizer in optimizers:
                line = on_problem[on_problem["optimizer"] == optimizer]
                if line["median"].notna().sum() == 0:
                    continue
                width = 2.6 if optimizer == highlight else 1.6
                ax.plot(line["x"], line["median"], **styles[optimizer], lw=width, label=optimizer,
                        drawstyle="steps-post")
                ax.fill_between(line["x"], line["q25"], line["q75"], color=styles[optimizer]["color"], alpha=0.2,
                                step="post", lw=0)
            if x != "step":
                ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_title(problem)
            ax.set_xlabel(X_AXES[x])
            ax.set_ylabel(f"{METRIC_NAMES[metric]} (best so far)")
        for ax in list(axes.flat)[len(problems):]:
            ax.set_visible(False)
        found = {}
        for ax in axes.flat:
            found.update(zip(*reversed(ax.get_legend_handles_labels())))
        unique = {o: found[o] for o in optimizers if o in found}
        if unique:
            figure.legend(list(unique.values()), list(unique.keys()), loc="outside lower center",
                          ncol=min(len(unique), 6), title="optimizer (line: median over seeds, band: quartiles)")
        figure.suptitle(title)
    return figure


def save_figure(figure: Figure, stem: Path) -> list[Path]:
    """Write ``stem.png`` (150 dpi) and ``stem.svg``; returns the paths."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_suffix(".png"), stem.with_suffix(".svg")]
    figure.savefig(paths[0], dpi=150)
    figure.savefig(paths[1])
    return paths
