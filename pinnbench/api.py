"""The Python API mirroring the CLI: run a grid (or compare a new optimizer) and get the results as DataFrames."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from .execution.backends import make_backend
from .compare import Comparison, compare_plugin
from .execution.progress import Progress
from .execution.suite import grid, run_suite
from .protocol import Protocol, load_protocol, parse_duration
from .registry import entries
from .store import load_results


def _protocol(protocol: str | Path | Protocol, budget: str | float | None, steps: int | None,
              device: str | None, seeds: Iterable[int] | None) -> Protocol:
    proto = load_protocol(protocol) if isinstance(protocol, (str, Path)) else protocol
    changes: dict[str, Any] = {}
    if budget is not None:
        changes.update(budget=parse_duration(budget), suite_budget=None, problem_budgets=())
    if steps is not None:
        changes["steps"] = steps
    if device is not None:
        changes["device"] = device
    if seeds is not None:
        changes["seeds"] = tuple(seeds)
    return proto.replace(**changes) if changes else proto


def _optimizer_pairs(optimizers: Iterable[str | tuple[str, dict[str, Any]]]) -> list[tuple[str, dict[str, Any]]]:
    return [(o, {}) if isinstance(o, str) else (o[0], dict(o[1])) for o in optimizers]


def run(problems: str | Iterable[str | tuple[str, tuple[int, ...] | None]] | None = None,
        optimizers: str | Iterable[str | tuple[str, dict[str, Any]]] | None = None,
        seeds: Iterable[int] | None = None, protocol: str | Protocol = "quick",
        budget: str | float | None = None, steps: int | None = None, device: str | None = None,
        out: str | Path = "results", resume: bool = True, progress: bool = False,
        jobs: int | None = None, scheduler: str | None = None, scheduler_file: str | None = None,
        grace: str | float | None = None, retries: int | None = None, in_process: bool = False) -> pd.DataFrame:
    """Run every (problem, optimizer, seed) not yet in ``out``; return the grid's runs as one tidy DataFrame.

    ``problems``/``optimizers`` default to the protocol's lists, else to everything registered; a problem is a
    name or ``(name, net)`` (e.g. ``("laplace2d", (2, 64, 64, 1))``), an optimizer a name or
    ``(name, hyperparameters)``. ``budget``, ``steps``, ``device``, ``seeds`` override the
    protocol's. ``jobs`` (isolated worker processes) or a Dask ``scheduler``/``scheduler_file``, with
    ``grace`` and ``retries``, choose where runs execute, as on the command line; the default is one isolated
    worker process, ``in_process=True`` runs in this process (needed for classes defined in ``__main__``).
    """
    proto = _protocol(protocol, budget, steps, device, seeds)
    problem_names = [problems] if isinstance(problems, str) else list(problems or proto.problems
                                                                      or entries("problem"))
    chosen = [optimizers] if isinstance(optimizers, str) else list(optimizers or proto.optimizers
                                                                   or entries("optimizer"))
    specs = grid(problem_names, _optimizer_pairs(chosen), proto.seeds, proto)
    with make_backend(jobs, scheduler, scheduler_file, _grace(grace), retries, in_process, proto) as backend:
        result = run_suite(specs, proto, out, resume=resume, progress=Progress() if progress else None,
                           backend=backend)
    frame = load_results(out)
    return frame[frame.run_id.isin(result.run_ids)].reset_index(drop=True)


def _grace(grace: str | float | None) -> float | None:
    return None if grace is None else parse_duration(grace, "grace")


def compare(plugin: str | Path, against: Iterable[str | tuple[str, dict[str, Any]]] | None = None,
            problems: Iterable[str] | None = None, seeds: Iterable[int] | None = None,
            protocol: str | Protocol = "quick", budget: str | float | None = None, steps: int | None = None,
            device: str | None = None, out: str | Path = "results", report: bool = True,
            report_dir: str | Path | None = None, jobs: int | None = None, scheduler: str | None = None,
            scheduler_file: str | None = None, grace: str | float | None = None,
            retries: int | None = None, in_process: bool = False) -> Comparison:
    """``pinnbench compare``: run the optimizers of ``plugin`` and the baselines, reusing the stored baseline
    runs in ``out`` that match the protocol and machine; print the summary and write the report."""
    proto = _protocol(protocol, budget, steps, device, seeds)
    with make_backend(jobs, scheduler, scheduler_file, _grace(grace), retries, in_process, proto) as backend:
        return compare_plugin(plugin, proto, out=out, against=None if against is None else _optimizer_pairs(against),
                              problems=None if problems is None else list(problems), backend=backend,
                              report=report, report_dir=report_dir)
