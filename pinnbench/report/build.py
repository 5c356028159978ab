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
from .curves import X_AXES, line_styles, plot_bands, save_figure, seed_bands
from .frames import METRIC_NAMES, Partition, check_metric, optimizer_order, partitions
from .manifest import manifest_rows, merged_manifest
from .published import published_table
from .render import FORMATS, Block, Cell, Heading, Image, Table, Text, check_formats, render_page, render_table
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


def _manifest_table(part: Partition) -> Table:
    rows = manifest_rows(merged_manifest(part.runs), len(part.runs))
    return Table("manifest", "Manifest (what the runs were made on)", ("setting", "value"),
                 tuple((Cell(k), Cell(v)) for k, v in rows),
                 "Merged over the runs of this section: a setting with several values lists how many runs had each.")


def _figure(figure, stem: Path, out_dir: Path, caption: str) -> Image:
    png, svg = save_figure(figure, stem)
    return Image(png.relative_to(out_dir).as_posix(), caption, (svg.relative_to(out_dir).as_posix(),))


def _partition_section(part: Partition, out_dir: Path, formats: tuple[str, ...], error: str,
                       targets: tuple[float, ...], highlight: str | None) -> tuple[list[Block], dict]:
    folder = out_dir / part.slug
    tables_dir, figures_dir = folder / "tables", folder / "figures"
    folder.mkdir(parents=True, exist_ok=True)
    context = f"Section: {part.title}."
    blocks: list[Block] = [Heading(2, part.title.capitalize()),
                           Text(f"{len(part.runs)} runs: {part.runs['problem'].nunique()} problems × "
                                f"{part.runs['optimizer'].nunique()} optimizers, seeds "
                                f"{', '.join(map(str, sorted(part.runs['seed'].unique())))}. "
                                f"Files of this section: {part.slug}/.")]
    summary = summarize(part.runs)
    summary.to_csv(folder / "summary.csv", index=False)

    status = [status_table(part.runs, context)]
    if (part.runs["status"] != "ok").any():
        status.append(failures_table(part.runs))
    finals, skipped = [], []
    for comparison in PAPER_COMPARISONS:
        if comparison_has_data(summary, comparison):
            finals.append(comparison_table(summary, comparison, error))
        else:
            skipped.append(comparison.title)
    finals += [full_table(summary, "loss"), full_table(summary, error), published_table(summary)]
    costs = time_to_target(part.runs, part.trajectory, targets, error, "time")
    costs.to_csv(folder / "time_to_target.csv", index=False)
    to_target = target_table(costs, "time", error, context)
    for table in (*status, *finals, to_target):
        _write_table(table, tables_dir, formats)

    blocks += [Heading(3, "Run status"), *status, Heading(3, "Final values"), *finals]
    if skipped:
        blocks.append(Text(f"Not shown (no runs of their optimizers on their problems): {'; '.join(skipped)}."))

    blocks.append(Heading(3, "Error against time and work"))
    styles = line_styles(optimizer_order(part.runs))
    if part.trajectory.empty:
        blocks.append(Text("No trajectory points were recorded: no curves."))
    else:
        for stem, metric, x in CURVE_FIGURES:
            metric = metric or error
            bands = seed_bands(part.trajectory, metric, x)
            title = f"{METRIC_NAMES[metric]} vs {X_AXES[x]}: {part.title}"
            figure = plot_bands(bands, metric, x, title, styles, highlight)
            blocks.append(_figure(figure, figures_dir / stem, out_dir,
                                  f"Best-so-far {METRIC_NAMES[metric]} against {X_AXES[x]} ({part.title}); line: median "
                                  "over seeds, band: interquartile range."))

    blocks.append(Heading(3, "Time to target and performance profiles"))
    blocks.append(to_target)
    kept, left_out = comparable(costs)
    if kept.empty or kept["optimizer"].nunique() < 2:
        blocks.append(Text("Performance profiles need at least two optimizers run on the same problems."))
    else:
        figure = plot_profiles(kept, "time", f"Targets {', '.join(f'{t:.0e}' for t in targets)} on the "
                               f"{METRIC_NAMES[error]}: {part.title}", styles, highlight)
        blocks.append(_figure(figure, figures_dir / "profiles", out_dir,
                              "Dolan-Moré performance profile and ECDF over (problem, target) pairs; runs that "
                              "never reach a target count as failures."))
        if left_out:
            blocks.append(Text(f"Left out of the profiles, which need every optimizer on every problem: {left_out}."))
    blocks.append(Heading(3, "Manifest"))
    blocks.append(_manifest_table(part))
    record = {"protocol": part.protocol, "protocol_id": part.protocol_id, "device": part.device,
              "folder": part.slug, "runs": int(len(part.runs)), "manifest": merged_manifest(part.runs)}
    return blocks, record


def build_report(runs: pd.DataFrame, trajectory: pd.DataFrame, out_dir: str | Path,
                 formats: tuple[str, ...] | list[str] = ("md",), error: str = "l2_abs",
                 targets: tuple[float, ...] = DEFAULT_TARGETS, highlight: str | None = None,
                 source: str = "") -> Path:
    """Write the report of a results set given as frames (runs and trajectory, the store's schema).

    ``formats`` picks the table files (md, latex, html); ``index.html``, ``README.md`` and ``manifest.json`` are
    always written. ``error`` is the error metric of the tables and figures (``l2_abs``, the papers' absolute
    RMS, or ``l2_rel``); ``highlight`` draws one optimizer's lines thicker. Returns ``out_dir``."""
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
    records = []
    for part in parts:
        section, record = _partition_section(part, out_dir, formats, error, tuple(targets), highlight)
        blocks += section
        records.append(record)
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

    ``options`` go to :func:`build_report` (``error``, ``targets``, ``highlight``). Returns the report folder."""
    from ..store import load_results, load_runs  # the store is the only reader of run files

    results_dir = Path(results_dir)
    runs, trajectory = load_runs(results_dir), load_results(results_dir)
    return build_report(runs, trajectory, Path(out_dir) if out_dir is not None else results_dir / "report",
                        formats, source=str(results_dir), **options)
