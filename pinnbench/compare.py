"""``pinnbench compare PLUGIN.py``: where a new optimizer stands against the baselines, reusing stored runs.

The plugin's optimizers and the baselines run on the same problems and seeds under the same protocol, with the
per-run budget the baselines get in a suite of their own (so that the runs ``pinnbench run`` stored for them
match). A stored baseline run is reused when it has the same run key (problem, optimizer, hyperparameters,
seed, protocol settings, device, code version) and was made on a machine this backend runs on (hostname and
CPU model); the missing ones are run. The summary table (final L2 error per problem by the statistic of
:mod:`pinnbench.statistics`, the new optimizer marked) is printed, and the report (:mod:`pinnbench.report`) is
written with the new optimizer highlighted.
"""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from tabulate import tabulate

from .errors import PinnbenchError
from .execution.backend import Backend, InProcessBackend
from .execution.progress import Progress
from .execution.suite import SuiteResult, effective_protocol, grid, run_suite
from .protocol import Protocol
from .registry import entries, load_plugin
from .statistics import NAME as STATISTIC
from .statistics import runs_statistic
from .store import load_runs, machine

NEW_MARK = " (new)"


@dataclass
class Comparison:
    """What a comparison did and found."""

    new: list[str]
    """The plugin's optimizers."""
    suite: SuiteResult
    reused: int
    """Stored runs reused (baselines, and the new optimizer's from an earlier comparison)."""
    ran: int
    """Runs executed now (new optimizer and missing baselines)."""
    table: pd.DataFrame
    """Final absolute L2 error per problem (rows) and optimizer (columns): median [CI] over ok seeds, as text."""
    report: Path | None
    """The report folder (None when no report was asked for)."""


def plugin_optimizers(plugin_file: str | Path) -> list[str]:
    """Load a plugin file and return the names of the optimizers it registers."""
    path = Path(plugin_file).resolve()
    load_plugin(path)
    return [name for name, entry in entries("optimizer").items()
            if entry.source == "plugin" and Path(entry.location).resolve() == path]


def median_errors(runs: pd.DataFrame, new: list[str]) -> pd.DataFrame:
    """Final ``l2_abs`` per problem and optimizer by the one statistic (:data:`pinnbench.statistics.NAME`);
    the new optimizers first, marked; failed runs counted beside the median, never in it."""
    rows: dict[str, dict[str, str]] = {}
    labels = sorted(runs.optimizer.unique(), key=lambda label: (label.split("[")[0] not in new, label))
    for (problem, label), group in runs.groupby(["problem", "optimizer"]):
        rows.setdefault(problem, {})[label] = runs_statistic(group, "l2_abs").text()
    columns = [label + NEW_MARK if label.split("[")[0] in new else label for label in labels]
    table = pd.DataFrame([[rows[p].get(label, "-") for label in labels] for p in sorted(rows)],
                         index=sorted(rows), columns=columns)
    table.index.name = "problem"
    return table


def _suite_runs(out: Path, run_ids: set[str], machines: set[tuple[str, str]]) -> pd.DataFrame:
    runs = load_runs(out)
    manifests = [json.loads(m) for m in runs.manifest]
    keep = [m["run_key"][:12] in run_ids and machine(m) in machines for m in manifests]
    return runs[keep]


def _write_report(out: Path, report_dir: Path, new: list[str]) -> Path:
    """The report (:mod:`pinnbench.report`) of the results folder, with the (first) new optimizer highlighted."""
    from .report import write_report  # matplotlib/seaborn load only when a report is written

    return write_report(out, report_dir, formats=("md", "html"), highlight=new[0])


def compare_plugin(plugin_file: str | Path, protocol: Protocol, out: str | Path = "results",
                   against: list[tuple[str, dict[str, Any]]] | None = None, problems: list[str] | None = None,
                   backend: Backend | None = None, report: bool = True, report_dir: str | Path | None = None,
                   progress: Progress | None = None) -> Comparison:
    """Run the optimizers of ``plugin_file`` and the baselines ``against`` (default: every other registered
    optimizer, or the protocol's list) on ``problems`` (default: the protocol's, else all) and seeds of
    ``protocol``; reuse the matching stored baseline runs in ``out``; print the summary and (``report``) write
    the report into ``report_dir`` (default ``<out>/compare-<new optimizer>``). ``progress``: default a
    :class:`~pinnbench.runner.Progress` on stderr."""
    out = Path(out)
    new = plugin_optimizers(plugin_file)
    if not new:
        raise PinnbenchError(f"plugin {str(plugin_file)!r} registers no optimizer: decorate an Optimizer subclass "
                             f"with @register_optimizer(name)")
    baselines = against if against is not None else [
        (name, {}) for name in (protocol.optimizers or entries("optimizer")) if name not in new]
    problems = list(problems or protocol.problems or entries("problem"))
    baseline_specs = grid(problems, baselines, protocol.seeds, protocol)
    fair = effective_protocol(protocol, len(baseline_specs)).replace(suite_budget=None)
    specs = grid(problems, [(name, {}) for name in new], protocol.seeds, protocol) + baseline_specs
    backend = backend or InProcessBackend()
    machines = backend.machines()
    names = ", ".join(dict.fromkeys(spec.label for spec in baseline_specs)) or "nothing"

    def announce(effective: Protocol, runs: list) -> None:
        print(f"pinnbench compare: {', '.join(new)} against {names} on {len(problems)} problems x "
              f"{len(protocol.seeds)} seeds, protocol {fair.name} [{fair.protocol_id}], {fair.budget:g} s per run, "
              f"{backend.describe()}", file=sys.stderr)

    suite = run_suite(specs, fair, out, progress=progress or Progress(), backend=backend,
                      reuse=lambda m: machine(m) in machines, announce=announce)
    reused_baselines = sum(spec.optimizer not in new for spec in suite.skipped)
    ran_new = sum(record.manifest["optimizer_name"] in new for record in suite.records)
    print(f"pinnbench compare: reused {len(suite.skipped)} stored runs ({reused_baselines} baselines), ran "
          f"{len(suite.records)} ({ran_new} of the new optimizer, {len(suite.records) - ran_new} missing "
          f"baselines)", file=sys.stderr)
    runs = _suite_runs(out, suite.run_ids, machines)
    table = median_errors(runs, new)
    print(f"final L2 error (absolute RMS), {STATISTIC} per problem:")
    print(tabulate(table, headers="keys", disable_numparse=True))
    written = None
    if report:
        written = _write_report(out, Path(report_dir) if report_dir else out / f"compare-{new[0]}", new)
        print(f"pinnbench compare: report written to {written / 'index.html'}", file=sys.stderr)
    return Comparison(new, suite, len(suite.skipped), len(suite.records), table, written)
