"""Time to target, Dolan-Moré performance profiles and the ECDF of solved (problem, target) pairs.

The cost of a run for a target is the optimizer time (or work) at the first recorded point whose error is at or
below the target (the resolution is the runner's recording cadence); a run that never gets there, or that has no
trajectory at all, costs ``inf``: failures are counted, never dropped.

The profiles compare optimizers on *instances* = (problem, target) pairs. An optimizer's cost on an instance is
the median over its seeds (``inf`` when at most half of them reach the target). The performance profile of
optimizer s is ρ_s(τ) = share of instances with t_{p,s} ≤ τ · min_s' t_{p,s'} (Dolan & Moré 2002); instances no
optimizer solves stay in the denominator. The ECDF gives, per optimizer, the share of instances solved by time t,
each instance weighted equally and split evenly over its seeds (so 3 of 10 seeds solving counts 0.3). Both need
every compared optimizer on every problem: :func:`comparable` picks that block.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from .curves import HIGHLIGHT_WIDTH, MEDIAN_WIDTH, X_AXES, Style, add_legend, seeds_label, x_values
from .frames import METRIC_NAMES, RUN_COLUMNS, check_columns, check_metric, require_single_partition
from .render import MISSING, Cell, Table

DEFAULT_TARGETS = (1e-3, 1e-6, 1e-9, 1e-12)


def time_to_target(runs: pd.DataFrame, trajectory: pd.DataFrame, targets: tuple[float, ...] = DEFAULT_TARGETS,
                   metric: str = "l2_abs", x: str = "time") -> pd.DataFrame:
    """One row per (run, target): problem, optimizer, seed, run_id, status, target, cost (``inf`` = never)."""
    check_metric(metric)
    check_columns(runs, RUN_COLUMNS, "runs")
    require_single_partition(runs)
    frame = trajectory.assign(_x=x_values(trajectory, x)).sort_values(["run_id", "step"])
    by_run = {run_id: group for run_id, group in frame.groupby("run_id", sort=False)}
    records = []
    for run in runs.itertuples(index=False):
        points = by_run.get(run.run_id)
        values = (np.array([]) if points is None
                  else pd.to_numeric(points[metric], errors="coerce").to_numpy(dtype=float))
        xs = np.array([]) if points is None else points["_x"].to_numpy(dtype=float)
        for target in targets:
            reached = np.flatnonzero(values <= target)
            cost = float(xs[reached[0]]) if reached.size else np.inf
            records.append({"problem": run.problem, "optimizer": run.optimizer, "seed": run.seed,
                            "run_id": run.run_id, "status": run.status, "target": float(target), "cost": cost})
    return pd.DataFrame.from_records(
        records, columns=["problem", "optimizer", "seed", "run_id", "status", "target", "cost"])


def target_summary(costs: pd.DataFrame) -> pd.DataFrame:
    """Per (problem, optimizer, target): n_runs, n_reached, median cost over seeds (``inf`` if ≤ half reach)."""
    grouped = costs.groupby(["problem", "optimizer", "target"], sort=True)["cost"]
    return grouped.agg(n_runs="size", n_reached=lambda c: int(np.isfinite(c).sum()),
                       median="median").reset_index()


def _cost_text(median: float, n_reached: int, n_runs: int, x: str) -> str:
    """``'2 s (reached by 2/3 seeds)'``; the cost is left out when the median seed never got there."""
    reached = f"reached by {n_reached}/{n_runs} seeds"
    if not np.isfinite(median):
        return reached
    return f"{median:.3g}{' s' if x == 'time' else ''} ({reached})"


def target_table(costs: pd.DataFrame, x: str = "time", metric: str = "l2_abs", context: str = "") -> Table:
    """Rows (problem, target), columns optimizers: median cost over seeds and how many runs reached it.

    The fastest median in each row is bold."""
    summary = target_summary(costs)
    optimizers = sorted(costs["optimizer"].astype(str).unique())
    rows = []
    for (problem, target), group in summary.groupby(["problem", "target"], sort=True):
        medians = {r.optimizer: r for r in group.itertuples(index=False)}
        finite = [r.median for r in medians.values() if np.isfinite(r.median)]
        best = min(finite) if finite else None
        row = [Cell(problem), Cell(f"{target:.0e}")]
        for optimizer in optimizers:
            entry = medians.get(optimizer)
            if entry is None:
                row.append(Cell(MISSING))
                continue
            row.append(Cell(_cost_text(entry.median, entry.n_reached, entry.n_runs, x),
                            bold=best is not None and entry.median == best, value=entry.median))
        rows.append(tuple(row))
    footnote = (f"Median over seeds of the {X_AXES[x]} at which the {METRIC_NAMES[metric]} first reaches the "
                f"target, a seed that never reaches it (or failed) counting as infinitely slow, so a cost is given "
                f"only when more than half of the seeds reached it; 'reached by k/n seeds': k of the n seeds got "
                f"there. Resolution: the recording cadence. Bold: fastest. {context}")
    return Table(f"time_to_target_{x}", f"Time to target ({METRIC_NAMES[metric]})", ("problem", "target",
                 *optimizers), tuple(rows), footnote.strip())


def comparable(costs: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """The largest complete (problem x optimizer) block of ``costs`` for the profiles, and what was left out.

    Either the problems that every optimizer ran, or the optimizers that ran every problem, whichever keeps more
    (problem, optimizer) cells (ties: keep every optimizer). The text names what was dropped ("" if nothing)."""
    ran = costs.groupby("problem")["optimizer"].agg(set)
    optimizers = set(costs["optimizer"])
    all_problems = sorted(ran.index)
    problems = [p for p in all_problems if ran[p] == optimizers]
    everywhere = sorted(o for o in optimizers if all(o in ran[p] for p in all_problems))
    if len(problems) * len(optimizers) >= len(all_problems) * len(everywhere):
        dropped = [p for p in all_problems if p not in problems]
        note = f"problems not run by every optimizer: {', '.join(dropped)}" if dropped else ""
        return costs[costs["problem"].isin(problems)], note
    dropped = sorted(optimizers - set(everywhere))
    return costs[costs["optimizer"].isin(everywhere)], f"optimizers not run on every problem: {', '.join(dropped)}"


def instance_costs(costs: pd.DataFrame) -> pd.DataFrame:
    """Median cost over seeds, index (problem, target), one column per optimizer (``inf`` = failure)."""
    return costs.pivot_table(index=["problem", "target"], columns="optimizer", values="cost",
                             aggfunc="median").sort_index()


def performance_ratios(instance: pd.DataFrame) -> pd.DataFrame:
    """r_{p,s} = t_{p,s} / min_s t_{p,s}; ``inf`` for failures and for instances nobody solves."""
    values = instance.to_numpy(dtype=float)
    best = np.min(values, axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = np.where(values == best, 1.0, values / best)
    ratios[~np.isfinite(values)] = np.inf
    return pd.DataFrame(ratios, index=instance.index, columns=instance.columns)


def profile(ratios: pd.DataFrame, taus: np.ndarray) -> pd.DataFrame:
    """ρ_s(τ) for each optimizer and τ: long frame with columns optimizer, tau, fraction."""
    pieces = [pd.DataFrame({"optimizer": s, "tau": taus,
                            "fraction": (ratios[s].to_numpy()[None, :] <= taus[:, None]).mean(axis=1)})
              for s in ratios.columns]
    return pd.concat(pieces, ignore_index=True)


def ecdf(costs: pd.DataFrame, grid: np.ndarray) -> pd.DataFrame:
    """Share of (problem, target) instances solved by each x of ``grid``, seeds splitting their instance's
    weight evenly: long frame with columns optimizer, x, fraction."""
    n_instances = costs[["problem", "target"]].drop_duplicates().shape[0]
    pieces = []
    for optimizer, group in costs.groupby("optimizer", sort=True):
        weight = 1.0 / (n_instances * group.groupby(["problem", "target"])["cost"].transform("size"))
        solved = group["cost"].to_numpy()[None, :] <= grid[:, None]
        pieces.append(pd.DataFrame({"optimizer": optimizer, "x": grid,
                                    "fraction": (solved * weight.to_numpy()[None, :]).sum(axis=1)}))
    return pd.concat(pieces, ignore_index=True)


def plot_profiles(costs: pd.DataFrame, x: str, title: str, styles: dict[str, Style],
                  highlight: str | None = None, x_end: float | None = None) -> Figure:
    """Performance profile (left) and ECDF (right) of the comparable problems in ``costs``; the ECDF's x axis
    runs to ``x_end`` (e.g. the longest run), else a little past the largest finite cost."""
    ratios = performance_ratios(instance_costs(costs))
    finite_ratios = ratios.to_numpy()[np.isfinite(ratios.to_numpy())]
    tau_max = max(2.0, float(finite_ratios.max()) * 2.0) if finite_ratios.size else 2.0
    taus = np.geomspace(1.0, tau_max, 400)
    finite_costs = costs["cost"][np.isfinite(costs["cost"]) & (costs["cost"] > 0)]
    low, high = (finite_costs.min(), finite_costs.max()) if len(finite_costs) else (1e-3, 1.0)
    grid = np.geomspace(low / 1.5, max(high * 1.5, x_end or 0.0), 400)
    profile_frame, ecdf_frame = profile(ratios, taus), ecdf(costs, grid)
    n_instances = len(ratios)
    with sns.axes_style("whitegrid"), sns.plotting_context("notebook", font_scale=0.85):
        figure = Figure(figsize=(11, 5.0), layout="constrained")
        left, right = figure.subplots(1, 2)
        for optimizer in sorted(costs["optimizer"].unique()):
            width = HIGHLIGHT_WIDTH if optimizer == highlight else MEDIAN_WIDTH
            p = profile_frame[profile_frame["optimizer"] == optimizer]
            left.plot(p["tau"], p["fraction"], drawstyle="steps-post", **styles[optimizer], lw=width,
                      label=optimizer)
            e = ecdf_frame[ecdf_frame["optimizer"] == optimizer]
            right.plot(e["x"], e["fraction"], drawstyle="steps-post", **styles[optimizer], lw=width,
                       label=optimizer)
        left.set_xscale("log", base=2)
        left.set_xlabel("τ (cost within a factor τ of the best optimizer)")
        left.set_ylabel(f"share of the {n_instances} (problem, target) pairs")
        left.set_title("performance profile (median over seeds)")
        right.set_xscale("log")
        right.set_xlabel(X_AXES[x])
        right.set_ylabel("share of (problem, target) pairs solved")
        right.set_title("ECDF (each seed counts 1/n of its pair)")
        for ax in (left, right):
            ax.set_ylim(-0.02, 1.02)
        seeds = costs.groupby(["optimizer", "problem"])["seed"].nunique()
        handles = dict(zip(*reversed(left.get_legend_handles_labels())))
        add_legend(figure, {seeds_label(o, seeds[o].tolist()): h for o, h in handles.items()}, "optimizer (n seeds)")
        figure.suptitle(title)
    return figure
