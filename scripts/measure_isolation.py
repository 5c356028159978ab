"""What the default isolated worker costs per run: N tiny runs (laplace2d, Adam, 1 step, quick points, 1 thread)
in this process and in one isolated worker; the wall time of each run from the suite's point of view (from one
run written to the next), median over the runs after the first, and the worker's start-up (the first run's
extra time).

    OMP_NUM_THREADS=1 python scripts/measure_isolation.py [--runs 20]
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from pinnbench.backends import InProcessBackend, IsolatedBackend
from pinnbench.execution.progress import Progress
from pinnbench.protocol import Protocol
from pinnbench.runner import RunSpec, run_suite


class Clock(Progress):
    """Records when each run finished."""

    def __init__(self) -> None:
        super().__init__()
        self.live = False
        self.times: list[float] = []

    def finished(self, index, total, spec, record) -> None:
        self.times.append(time.perf_counter())


def per_run(backend, runs: int, folder: Path) -> tuple[float, float]:
    """(median seconds per run after the first, seconds of the first run)."""
    protocol = Protocol(name="overhead", budget=60.0, steps=1, points="quick", threads=1)
    specs = [RunSpec("laplace2d", "adam", seed) for seed in range(1, runs + 1)]
    clock = Clock()
    start = time.perf_counter()
    with backend:
        run_suite(specs, protocol, folder, progress=clock, backend=backend)
    gaps = [b - a for a, b in zip(clock.times, clock.times[1:])]
    return statistics.median(gaps), clock.times[0] - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as folder:
        here, here_first = per_run(InProcessBackend(), args.runs, Path(folder) / "in-process")
        isolated, isolated_first = per_run(IsolatedBackend(), args.runs, Path(folder) / "isolated")
    print(f"{args.runs} runs of laplace2d/adam, 1 step, quick points, 1 thread")
    print(f"in-process: median {here * 1e3:.0f} ms per run (first run {here_first:.2f} s)")
    print(f"isolated:   median {isolated * 1e3:.0f} ms per run (first run {isolated_first:.2f} s, "
          f"the worker's start included)")
    print(f"overhead:   {(isolated - here) * 1e3:+.0f} ms per run, {isolated_first - here_first:+.2f} s once")


if __name__ == "__main__":
    main()
