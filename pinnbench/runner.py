"""The runner: executes (problem, optimizer, seed) runs under a protocol, owns the clock, records trajectories.

The clock runs only inside ``optimizer.reset`` and ``optimizer.step`` (CUDA synchronised before each read);
evaluation, logging and saving are never charged. A run that raises or produces non-finite values is recorded
with its status and the suite goes on. A suite skips the runs already in its results folder (resume).
"""
from __future__ import annotations

import hashlib
import json
import math
import sys
import time
import traceback
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable

import torch

from .environment import code_version, environment
from .errors import PinnbenchError
from .instance import ProblemInstance, build, resolve_device
from .optimizer import Converged
from .protocol import Protocol
from .registry import entries, get_optimizer, get_problem
from .store import RunRecord, completed_keys, write_run


@dataclass(frozen=True)
class RunSpec:
    """One run of the grid: a problem, an optimizer with the user's hyperparameters, and a seed."""

    problem: str
    optimizer: str
    seed: int
    hparams: tuple[tuple[str, Any], ...] = ()

    @property
    def label(self) -> str:
        """The optimizer's name, with the user's overrides: ``anagram[cutoff=1e-07]``."""
        if not self.hparams:
            return self.optimizer
        return f"{self.optimizer}[{','.join(f'{k}={v}' for k, v in self.hparams)}]"


def evaluation_schedule(per_decade: int = 20) -> Callable[[int], bool]:
    """Steps 0..10, then ~``per_decade`` log-spaced steps per decade."""
    marks = {int(round(10 ** (i / per_decade))) for i in range(per_decade * 9)}
    return lambda step: step <= 10 or step in marks


def run_key(spec: RunSpec, hparams: dict[str, Any], protocol: Protocol) -> str:
    """Identity of a run: problem, optimizer, resolved hyperparameters, seed, protocol settings, code version."""
    blob = json.dumps({"problem": spec.problem, "optimizer": spec.optimizer, "hparams": hparams,
                       "seed": spec.seed, "protocol_id": protocol.protocol_id, "code": code_version()},
                      sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def resolve_hparams(spec: RunSpec) -> dict[str, Any]:
    """The problem's published defaults for this optimizer, overridden by the user's settings."""
    problem = get_problem(spec.problem)
    return {**problem.optimizer_defaults.get(spec.optimizer, {}), **dict(spec.hparams)}


def step_cap(spec: RunSpec, protocol: Protocol) -> int | None:
    """protocol.steps, else the optimizer's published step count, else the problem's."""
    if protocol.steps is not None:
        return protocol.steps
    optimizer_steps = getattr(entries("optimizer")[spec.optimizer].cls, "paper_steps", None)
    return optimizer_steps or get_problem(spec.problem).paper_steps


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _finite(*values: float) -> bool:
    return all(math.isfinite(v) for v in values)


def execute(spec: RunSpec, protocol: Protocol, evaluate_every: float | None = None,
            on_evaluate: Callable[[dict[str, float]], None] | None = None) -> RunRecord:
    """Run one (problem, optimizer, seed) under ``protocol`` and return its record (never raises for run failures).

    evaluate_every: optimizer seconds between evaluations on top of the step schedule (default budget/100).
    on_evaluate: called with each recorded point (for progress display; never charged to the clock).
    """
    device = resolve_device(protocol.device)
    if protocol.threads:
        torch.set_num_threads(protocol.threads)
    hparams = resolve_hparams(spec)
    optimizer = get_optimizer(spec.optimizer, **hparams)
    resolved = optimizer.get_hyperparameters()
    instance: ProblemInstance = build(spec.problem, spec.seed, protocol, device=str(device))
    objective = instance.objective
    max_steps = step_cap(spec, protocol)
    record = RunRecord(manifest={
        "run_id": "", "run_key": run_key(spec, resolved, protocol), "problem": spec.problem,
        "optimizer": spec.label, "optimizer_name": spec.optimizer, "seed": spec.seed, "hparams": resolved,
        "user_hparams": dict(spec.hparams), "protocol": protocol.name, "protocol_id": protocol.protocol_id,
        "protocol_settings": protocol.as_dict(), "device": str(device), "max_steps": max_steps,
        "budget": protocol.budget, "n_params": instance.model.n_params, "layers": list(instance.model.layers),
        "points": {g.name: int(g.points.shape[0]) for g in objective.groups},
        "point_notes": instance.point_sets.notes, "n_evaluation": int(instance.evaluation_points.shape[0]),
        "code_version": code_version(), "environment": environment(device),
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    })
    record.manifest["run_id"] = record.manifest["run_key"][:12]
    should_evaluate = evaluation_schedule()
    interval = evaluate_every if evaluate_every is not None else protocol.budget / 100
    theta = instance.theta0.clone()
    clock, step, last_eval = 0.0, 0, 0.0
    status, stop_reason, error = "ok", None, None

    def evaluate() -> bool:
        with objective.uncounted():
            loss = float(objective.loss(theta))
        errors = instance.evaluate(theta)
        point = {"step": step, "time": clock, "loss": loss, **errors, **objective.counts.as_dict()}
        record.add_point(**point)
        if on_evaluate:
            on_evaluate(point)
        return _finite(loss, errors["l2_abs"])

    try:
        evaluate()
        _sync(device)
        start = time.perf_counter()
        optimizer.reset(objective, theta)
        _sync(device)
        clock += time.perf_counter() - start
        while (max_steps is None or step < max_steps) and clock < protocol.budget:
            _sync(device)
            start = time.perf_counter()
            try:
                theta_next = optimizer.step(objective, theta)
            except Converged:
                _sync(device)
                clock += time.perf_counter() - start
                stop_reason = "converged"
                break
            _sync(device)
            clock += time.perf_counter() - start
            step += 1
            theta = theta_next.detach()
            record.add_info(step, getattr(optimizer, "info", {}) or {})
            spectrum = getattr(optimizer, "spectrum", {}) or {}
            if spectrum and (step == 1 or step % protocol.diagnostics_every == 0):
                record.add_spectrum(step, spectrum)
            if should_evaluate(step) or clock - last_eval >= interval or not bool(torch.isfinite(theta).all()):
                last_eval = clock
                if not evaluate():
                    status = "diverged"
                    break
        else:
            stop_reason = "budget" if clock >= protocol.budget else "steps"
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as exc:  # noqa: BLE001 - a failing run is recorded, the suite goes on
        status = "error"
        error = f"{type(exc).__name__}: {exc}".splitlines()[0]
        record.manifest["traceback"] = traceback.format_exc(limit=20)
    if status != "diverged" and (not record.trajectory["step"] or record.trajectory["step"][-1] != step):
        if not evaluate() and status == "ok":
            status = "diverged"
    record.manifest.update(status=status, stop_reason=stop_reason, error=error, steps=step, time=clock,
                           finished=datetime.now(timezone.utc).isoformat(timespec="seconds"))
    return record


@dataclass
class SuiteResult:
    """What a suite did: files written now, specs skipped as already present, and the run ids of the whole grid."""

    written: list[Path] = field(default_factory=list)
    skipped: list[RunSpec] = field(default_factory=list)
    records: list[RunRecord] = field(default_factory=list)
    run_ids: set[str] = field(default_factory=set)


def grid(problems: Iterable[str], optimizers: Iterable[tuple[str, dict[str, Any]]],
         seeds: Iterable[int]) -> list[RunSpec]:
    """Every (problem, optimizer, seed), problems outermost; validates names and hyperparameters first."""
    optimizers = list(optimizers)
    problems = list(problems)
    for name in problems:
        get_problem(name)
    for name, hparams in optimizers:
        get_optimizer(name, **hparams)  # unknown names and rejected values fail here, before any run
    return [RunSpec(p, name, s, tuple(sorted(hp.items()))) for p in problems for name, hp in optimizers
            for s in seeds]


def effective_protocol(protocol: Protocol, n_runs: int) -> Protocol:
    """Apply the protocol's suite budget: each of n runs gets at most suite_budget / n seconds."""
    if protocol.suite_budget and n_runs:
        share = protocol.suite_budget / n_runs
        if share < protocol.budget:
            return protocol.replace(budget=share)
    return protocol


def run_suite(specs: list[RunSpec], protocol: Protocol, out: str | Path, resume: bool = True,
              progress: "Progress | None" = None) -> SuiteResult:
    """Execute ``specs`` in order, writing each finished run atomically into ``out``; skip finished ones."""
    if not specs:
        raise PinnbenchError("nothing to run: no problem x optimizer x seed in the selection")
    protocol = effective_protocol(protocol, len(specs))
    done = completed_keys(out) if resume else set()
    result = SuiteResult()
    for index, spec in enumerate(specs):
        optimizer = get_optimizer(spec.optimizer, **resolve_hparams(spec))
        key = run_key(spec, optimizer.get_hyperparameters(), protocol)
        result.run_ids.add(key[:12])
        if key in done:
            result.skipped.append(spec)
            if progress:
                progress.finished(index, len(specs), spec, None)
            continue
        record = execute(spec, protocol, on_evaluate=progress.ticker(protocol.budget) if progress else None)
        result.written.append(write_run(record, out))
        result.records.append(record)
        done.add(key)
        if progress:
            progress.finished(index, len(specs), spec, record)
    return result


class Progress:
    """Progress on stderr: a line per finished run and, on a terminal, a live line while a run goes."""

    def __init__(self, stream=sys.stderr) -> None:
        self.stream = stream
        self.live = stream.isatty()

    def ticker(self, budget: float) -> Callable[[dict[str, float]], None] | None:
        if not self.live:
            return None

        def show(point: dict[str, float]) -> None:
            filled = int(20 * min(point["time"] / budget, 1.0))
            self.stream.write(f"\r  [{'#' * filled}{'.' * (20 - filled)}] step {point['step']}, "
                              f"{point['time']:.1f}/{budget:g} s, loss {point['loss']:.2e}, "
                              f"L2 abs {point['l2_abs']:.2e}   ")
            self.stream.flush()
        return show

    def finished(self, index: int, total: int, spec: RunSpec, record: RunRecord | None) -> None:
        head = f"[{index + 1}/{total}] {spec.problem} {spec.label} seed {spec.seed}"
        if record is None:
            line = f"{head}: already done, skipped"
        else:
            m = record.manifest
            l2 = record.trajectory["l2_abs"][-1] if record.trajectory["l2_abs"] else float("nan")
            line = (f"{head}: {m['status']} ({m['stop_reason'] or m.get('error') or ''}) after {m['steps']} "
                    f"steps, {m['time']:.1f} s, L2 abs {l2:.2e}")
        self.stream.write(("\r\033[K" if self.live else "") + line + "\n")
        self.stream.flush()
