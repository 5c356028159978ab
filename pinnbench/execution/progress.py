"""Progress on the terminal: a line per finished run and, on a terminal, a live line while a run goes."""
from __future__ import annotations

import sys
from typing import Callable

from ..store import RunRecord
from .run import Run, RunSpec


class Progress:
    """Progress on stderr: a line per finished run and, on a terminal, a live line while a run goes."""

    def __init__(self, stream=None) -> None:
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty()

    def ticker(self) -> Callable[[Run, dict[str, float]], None] | None:
        """On a terminal, what redraws the live line of the run in progress from each of its trajectory points."""
        if not self.live:
            return None

        def show(run: Run, point: dict[str, float]) -> None:
            spec, budget = run.spec, run.protocol.budget_for(run.spec.problem)
            filled = int(20 * min(point["time"] / budget, 1.0))
            self.stream.write(f"\r\033[K  {spec.problem_label} {spec.label} seed {spec.seed} "
                              f"[{'#' * filled}{'.' * (20 - filled)}] step {point['step']}, "
                              f"{point['time']:.1f}/{budget:g} s, loss {point['loss']:.2e}, "
                              f"L2 abs {point['l2_abs']:.2e}")
            self.stream.flush()
        return show

    def finished(self, index: int, total: int, spec: RunSpec, record: RunRecord | None) -> None:
        head = f"[{index + 1}/{total}] {spec.problem_label} {spec.label} seed {spec.seed}"
        if record is None:
            line = f"{head}: already done, skipped"
        else:
            m = record.manifest
            l2 = record.trajectory["l2_abs"][-1] if record.trajectory["l2_abs"] else float("nan")
            line = (f"{head}: {m['status']} ({m['stop_reason'] or m.get('error') or ''}) after {m['steps']} "
                    f"steps, {m['time']:.1f} s, L2 abs {l2:.2e}{overrun_note(m)}")
        self.stream.write(("\r\033[K" if self.live else "") + line + "\n")
        self.stream.flush()


def overrun_note(manifest: dict) -> str:
    """A warning for a run whose last step overran its budget by more than half the budget, or that made fewer
    than 10 steps: its time is not the protocol's budget, or it barely moved."""
    budget, overrun = manifest.get("budget") or 0.0, manifest.get("overrun") or 0.0
    notes = []
    if budget and overrun > 0.5 * budget:
        notes.append(f"over budget by {overrun:.1f} s (longest step {manifest.get('longest_step', 0.0):.1f} s)")
    if manifest.get("status") == "ok" and manifest.get("stop_reason") == "budget" and manifest.get("steps", 0) < 10:
        notes.append(f"only {manifest['steps']} steps in the budget")
    return "".join(f"; warning: {n}" for n in notes)
