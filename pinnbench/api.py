"""The Python API mirroring the CLI: run a grid and get its results as one tidy DataFrame."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from .protocol import Protocol, load_protocol, parse_duration
from .registry import entries
from .runner import Progress, grid, run_suite
from .store import load_results


def run(problems: str | Iterable[str] | None = None,
        optimizers: str | Iterable[str | tuple[str, dict[str, Any]]] | None = None,
        seeds: Iterable[int] | None = None, protocol: str | Protocol = "quick",
        budget: str | float | None = None, steps: int | None = None, device: str | None = None,
        out: str | Path = "results", resume: bool = True, progress: bool = False) -> pd.DataFrame:
    """Run every (problem, optimizer, seed) not yet in ``out``; return the grid's runs as one tidy DataFrame.

    ``problems``/``optimizers`` default to the protocol's lists, else to everything registered; an optimizer
    is a name or ``(name, hyperparameters)``. ``budget``, ``steps``, ``device`` override the protocol's.
    """
    proto = load_protocol(protocol) if isinstance(protocol, (str, Path)) else protocol
    changes: dict[str, Any] = {}
    if budget is not None:
        changes["budget"] = parse_duration(budget)
        changes["suite_budget"] = None
    if steps is not None:
        changes["steps"] = steps
    if device is not None:
        changes["device"] = device
    proto = proto.replace(**changes) if changes else proto
    problem_names = [problems] if isinstance(problems, str) else list(problems or proto.problems
                                                                      or entries("problem"))
    chosen = [optimizers] if isinstance(optimizers, str) else list(optimizers or proto.optimizers
                                                                   or entries("optimizer"))
    pairs = [(o, {}) if isinstance(o, str) else (o[0], dict(o[1])) for o in chosen]
    specs = grid(problem_names, pairs, seeds or proto.seeds)
    result = run_suite(specs, proto, out, resume=resume, progress=Progress() if progress else None)
    frame = load_results(out)
    return frame[frame.run_id.isin(result.run_ids)].reset_index(drop=True)
