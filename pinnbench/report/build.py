"""Write a whole report: tables in the chosen formats, figures (PNG + SVG), CSV data, and one self-describing
``index.html`` and ``README.md`` with the manifest. Each protocol/device partition gets its own section and
folder; nothing is aggregated across partitions."""
from __future__ import annotations

import datetime as _dt
import json
import platform
from pathlib import Path

import numpy as np
import pandas as pd

from .. import __version__
from ..errors import PinnbenchError
from .curves import X_AXES, X_NAMES, line_styles, plot_bands, save_figure, seed_bands, seed_lines
from .frames import METRIC_NAMES, Partition, check_metric, optimizer_order, partitions, sentence_case
from .manifest import manifest_table, merged_manifest, setup_table
from .published import published_table
from .render import FORMATS, Block, Heading, Image, Table, Text, check_formats, render_page, render_table
from .status import failures_table, status_table
from .tables import PAPER_COMPARISONS, comparison_has_data, comparison_table, full_table, summarize
from .targets import DEFAULT_TARGETS, comparable, plot_profiles, target_table, time_to_target

CURVE_FIGURES = (  # (file stem, metric or None for the error metric, x axis)
    ("error_vs_time", None, "time"),
    ("error_vs_work", None, "evaluations"),
    ("loss_vs_time", "loss", "time"),
)


def _write_table(table: Table, folder: Path, formats: tuple[str, ...]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for fmt in formats:
        (folder / f"{table.name}{FORMATS[fmt]}").write_text(render_table(table, fmt), encoding="utf-8")


def _figure(figure, stem: Path, out_dir: Path, caption: str) -> Image:
    png, svg = save_figure(figure, stem)
    return Image(png.relative_to(out_dir).as_posix(), caption, (svg.relative_to(out_dir).as_posix(),))


def _curve_blocks(part: Partition, out_dir: Path, error: str, styles: dict, highlight: str | None) -> list[Block]:
    if part.trajectory.empty:
        return [Text("No trajectory points were recorded: no curves.")]
    blocks: list[Block] = []
    for stem, metric, x in CURVE_FIGURES:
        metric = metric or error
        title = f"{sentence_case(METRIC_NAMES[metric])} vs {X_NAMES[x]}\n{part.figure_title}"
        figure = plot_bands(seed_bands(part.trajectory, metric, x), metric, x, title, styles, highlight,
                            seed_lines(part.trajectory, metric, x))
        blocks.append(_figure(figure, out_dir / part.slug / "figures" / stem, out_dir,
                              f"Best-so-far {METRIC_NAMES[metric]} against {X_AXES[x]} ({part.title}); "
                              "bold line: median over seeds, thin lines: each seed, n: seeds."))
    return blocks


def _profile_blocks(part: Partition, costs: pd.DataFrame, out_dir: Path, error: str, targets: tuple[float, ...],
                    styles: dict, highlight: str | None) -> list[Block]:
    kept, left_out = comparable(costs)
    if kept.empty or kept["optimizer"].nunique() < 2:
        return [Text("Performance profiles need at least two optimizers run on the same problems.")]
    if not np.isfinite(kept["cost"]).any():
        return [Text("No run reached any target: no performance profiles.")]
    title = f"Targets {', '.join(f'{t:.0e}' for t in targets)} on the {METRIC_NAMES[error]}\n{part.figure_title}"
    figure = plot_profiles(kept, "time", title, styles, highlight, x_end=float(part.trajectory["time"].max()))
    blocks: list[Block] = [_figure(figure, out_dir / part.slug / "figures" / "profiles", out_dir,
                                   "Dolan-Moré performance profile and ECDF over (problem, target) pairs; runs "
                                   "that never reach a target count as failures.")]
    if left_out:
        blocks.append(Text(f"Left out of the profiles, which need every optimizer on every problem: {left_out}."))
    return blocks


def _partition_section(part: Partition, out_dir: Path, formats: tuple[str, ...], error: str,
                       targets: tuple[float, ...], highlight: str | None, figures: bool) -> list[Block]:
    """Write one partition's tables, data and figures under ``out_dir/<slug>/``; return its page blocks."""
    folder = out_dir / part.slug
    folder.mkdir(parents=True, exist_ok=True)
    context = f"Section: {part.title}."
    summary = summarize(part.runs)
    summary.to_csv(folder / "summary.csv", index=False)
    costs = time_to_target(part.runs, part.trajectory, targets, error, "time")
    costs.to_csv(folder / "time_to_target.csv", index=False)

    status = [status_table(part.runs, context)]
    if (part.runs["status"] != "ok").any():
        status.append(failures_table(part.runs))
    shown = [c for c in PAPER_COMPARISONS if comparison_has_data(summary, c)]
    skipped = [c for c in PAPER_COMPARISONS if c not in shown]
    published = published_table(summary)
    finals = [*(comparison_table(summary, c, error) for c in shown), full_table(summary, "loss"),
              full_table(summary, error), *([published] if published.rows else [])]
    to_target = target_table(costs, "time", error, context)
    setup, machine = setup_table(part.runs), manifest_table(part.runs)
    for table in (*status, *finals, to_target, setup, machine):
        _write_table(table, folder / "tables", formats)

    seeds = ", ".join(map(str, sorted(part.runs["seed"].unique())))
    blocks: list[Block] = [
        Heading(2, sentence_case(part.title)),
        Text(f"{len(part.runs)} runs: {part.runs['problem'].nunique()} problems × "
             f"{part.runs['optimizer'].nunique()} optimizers, seeds {seeds}. Files of this section: {part.slug}/."),
        Heading(3, "Run status"), *status, Heading(3, "Final values"), *finals]
    if skipped:
        blocks.append(Text("Not shown, for want of runs of two of their optimizers on one of their problems: "
                           + "; ".join(f"{c.title} ({', '.join(c.optimizers)} on {', '.join(c.problems)})"
                                       for c in skipped) + "."))
    if not published.rows:
        blocks.append(Text("No published numbers for the problems and optimizers of this section."))
    styles = line_styles(optimizer_order(part.runs))
    blocks.append(Heading(3, "Error against time and work"))
    blocks += (_curve_blocks(part, out_dir, error, styles, highlight) if figures
               else [Text("Figures were not drawn for this report (figures=False).")])
    blocks += [Heading(3, "Time to target and performance profiles"), to_target]
    if figures:
        blocks += _profile_blocks(part, costs, out_dir, error, targets, styles, highlight)
    return [*blocks, Heading(3, "Manifest"), setup, machine]


def build_report(runs: pd.DataFrame, trajectory: pd.DataFrame, out_dir: str | Path,
                 formats: tuple[str, ...] | list[str] = ("md",), error: str = "l2_abs",
                 targets: tuple[float, ...] = DEFAULT_TARGETS, highlight: str | None = None,
                 figures: bool = True, source: str = "") -> Path:
    """Write the report of a results set given as frames (runs and trajectory, the store's schema).

    ``formats`` picks the table files (md, latex, html); ``index.html``, ``README.md`` and ``manifest.json`` are
    always written. ``error`` is the error metric of the tables and figures (``l2_abs``, the papers' absolute
    RMS, or ``l2_rel``); ``highlight`` draws one optimizer's lines thicker; ``figures=False`` skips the figures
    (the slow part: about a second per figure). Returns ``out_dir``."""
    formats = check_formats(formats)
    check_metric(error)
    if runs.empty:
        raise PinnbenchError(f"no runs to report on{' in ' + source if source else ''}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    parts = partitions(runs, trajectory)
    generated = _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()
    blocks: list[Block] = [
        Heading(1, "pinnbench report"),
        Text(f"Generated {generated} by pinnbench {__version__} (Python {platform.python_version()}) from "
             f"{source or 'a results set'}: {len(runs)} runs in {len(parts)} protocol/device section(s)."
             + (" Runs of different sections are never averaged together." if len(parts) > 1 else "")),
        Text(f"Error metric: {METRIC_NAMES[error]}. Timings are optimizer time only (evaluation and saving "
             "excluded); they compare optimizers only within one section (same protocol, device and machine)."),
    ]
    for part in parts:
        blocks += _partition_section(part, out_dir, formats, error, tuple(targets), highlight, figures)
    records = [{"protocol": p.protocol, "protocol_id": p.protocol_id, "device": p.device, "folder": p.slug,
                "runs": len(p.runs), "manifest": merged_manifest(p.runs)} for p in parts]
    (out_dir / "README.md").write_text(render_page("pinnbench report", blocks, "md"), encoding="utf-8")
    (out_dir / "index.html").write_text(render_page("pinnbench report", blocks, "html"), encoding="utf-8")
    manifest = {"generated": generated, "pinnbench": __version__, "source": source, "error_metric": error,
                "targets": list(targets), "formats": list(formats), "sections": records}
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2, default=_json_default) + "\n",
                                           encoding="utf-8")
    return out_dir


def _json_default(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


def write_report(results_dir: str | Path, out_dir: str | Path | None = None,
                 formats: tuple[str, ...] | list[str] = ("md",), **options) -> Path:
    """Load a results folder with :mod:`pinnbench.store` and write its report (default ``RESULTS/report``).

    ``options`` go to :func:`build_report` (``error``, ``targets``, ``highlight``, ``figures``).
    Returns the report folder."""
    from ..store import load_results, load_runs  # the store is the only reader of run files

    results_dir = Path(results_dir)
    runs, trajectory = load_runs(results_dir), load_results(results_dir)
    return build_report(runs, trajectory, Path(out_dir) if out_dir is not None else results_dir / "report",
                        formats, source=str(results_dir), **options)
