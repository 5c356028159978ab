"""Where a natural-gradient step goes inside a real run: timers around the step's parts, steps 6+.

    python scripts/step_breakdown.py PROBLEM [OPTIMIZER] [--threads N] [--steps 60]

Runs one real ``pinnbench.execution.run.execute`` (paper points, seed 6865, the problem's published
hyperparameters: what ``pinnbench.perf.probe.in_run_step`` times) with wall-clock timers wrapped around the
calls a step makes: the Jacobian, the SVD (its QR and the SVD of R, or the SVD of a near-square J), the spectral
diagnostics, the line search
(and, inside it, the evaluation of the losses along the direction). Prints the median ms of each part over steps 6+,
the step by the run's own clock, and the step against its SVD (issue #15: the SVD-bound problems' floor).
The timers cost ~1 µs per call; wrapped parts are the optimizer module's own names, so nothing else changes.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from typing import Any, Callable

import torch

FIRST_STEP = 6


class StepTimers:
    """Wall-clock timers wrapped around named calls; only calls inside an optimizer step are recorded, summed
    per step."""

    def __init__(self) -> None:
        self.steps: list[dict[str, float]] = []
        self._current: dict[str, float] | None = None

    def wrap(self, label: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                if self._current is not None:
                    self._current[label] = self._current.get(label, 0.0) + time.perf_counter() - start
        return timed

    def wrap_step(self, step: Callable[..., Any]) -> Callable[..., Any]:
        def timed_step(*args: Any) -> Any:
            self._current = {}
            try:
                return step(*args)
            finally:
                self.steps.append(self._current)
                self._current = None
        return timed_step

    def medians(self, first: int) -> dict[str, float]:
        later = self.steps[first - 1:]
        labels = dict.fromkeys(label for step in later for label in step)
        return {label: statistics.median(step.get(label, 0.0) for step in later) for label in labels}


def breakdown(problem: str, optimizer: str, steps: int) -> tuple[float, dict[str, float]]:
    """(the run's median step, {part: median seconds per step}) over steps FIRST_STEP+."""
    from pinnbench.core import linalg
    from pinnbench.core.linalg import ImplicitSVD
    from pinnbench.core.objective import Objective
    from pinnbench.perf import probe
    from pinnbench.registry import get_optimizer

    timers = StepTimers()
    cls = type(get_optimizer(optimizer))
    module = sys.modules[cls.__module__]
    targets = [(module, name, label) for name, label in (("implicit_svd", "SVD"), ("thin_svd", "SVD"),
                                                          ("spectrum", "spectrum"), ("grid_line_search", "line search"))
               if hasattr(module, name)]
    targets += [(Objective, "jacobian", "Jacobian"), (ImplicitSVD, "direction", "direction"),
                (Objective, "losses_along", "  losses along d"), (torch, "geqrf", "  QR (geqrf)"),
                (linalg, "_square_svd", "  SVD of R"), (torch.linalg, "svd", "  SVD of J (no QR)")]
    originals = [(owner, name, getattr(owner, name)) for owner, name, _ in targets] + [(cls, "step", cls.step)]
    try:
        for owner, name, label in targets:
            setattr(owner, name, timers.wrap(label, getattr(owner, name)))
        cls.step = timers.wrap_step(cls.step)
        run_step = probe.in_run_step(problem, optimizer, torch.device("cpu"), steps=steps)
    finally:  # the process is left as it was
        for owner, name, original in originals:
            setattr(owner, name, original)
    if isinstance(run_step, str):
        raise SystemExit(f"{problem} {optimizer}: {run_step}")
    return run_step, timers.medians(FIRST_STEP)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("problem")
    parser.add_argument("optimizer", nargs="?", default="anagram")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=60)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    from pinnbench.core import native
    from pinnbench.perf.probe import set_openblas_threads
    set_openblas_threads(1)  # as a run sets it (execution/run.py)
    run_step, parts = breakdown(args.problem, args.optimizer, args.steps)
    print(f"{args.problem} {args.optimizer}, {args.threads} thread(s), median ms over steps {FIRST_STEP}-{args.steps}"
          f" of a real run; compiled kernels: {native.status()}")
    order = ["Jacobian", "SVD", "  QR (geqrf)", "  SVD of R", "  SVD of J (no QR)", "spectrum", "direction",
             "line search", "  losses along d"]
    for label in order + sorted(set(parts) - set(order)):
        if label in parts:
            print(f"  {label:20s} {1e3 * parts[label]:9.3f}")
    print(f"  {'step (run clock)':20s} {1e3 * run_step:9.3f}")
    if "SVD" in parts:
        print(f"  step / SVD           {run_step / parts['SVD']:9.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
