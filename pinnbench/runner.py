"""The runner: executes (problem, optimizer, seed) runs under a protocol, owns the clock, records trajectories.

The clock runs only inside ``optimizer.reset`` and ``optimizer.step`` (CUDA synchronised before each read);
evaluation, logging and saving are never charged. A run that raises or produces non-finite values is recorded
with its status and the suite goes on. A suite skips the runs already in its results folder (resume), claims
each run it executes with a lock file (two suites sharing a folder never do the same run twice), and hands its
runs to an execution backend (``pinnbench.backends``: in this process, worker processes, or a Dask cluster).
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import random
import re
import socket
import sys
import threading
import time
import traceback
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable

import numpy as np
import torch

from .claims import Claims
from .environment import code_version, environment
from .errors import PinnbenchError
from .instance import ProblemInstance, build, resolve_device
from .optimizer import Converged
from .protocol import Protocol
from .registry import entries, get_optimizer, get_problem
from .store import STATUSES, RunRecord, run_filename, run_files, write_run

if TYPE_CHECKING:
    from .backends import Backend


@dataclass(frozen=True)
class RunSpec:
    """One run of the grid: a problem (with its net when it is not the problem's default), an optimizer with
    the user's hyperparameters, and a seed."""

    problem: str
    optimizer: str
    seed: int
    hparams: tuple[tuple[str, Any], ...] = ()
    net: tuple[int, ...] | None = None

    @property
    def layers(self) -> tuple[int, ...]:
        """The net the run trains: ``net``, else the problem's default."""
        return self.net or tuple(get_problem(self.problem).layers)

    @property
    def problem_label(self) -> str:
        """The problem's name, with its net when it is not the default: ``laplace2d[net=2-64-64-1]``."""
        return self.problem if self.net is None else f"{self.problem}[net={net_text(self.net)}]"

    @property
    def label(self) -> str:
        """The optimizer's name, with the user's overrides: ``anagram[cutoff=1e-07]``."""
        if not self.hparams:
            return self.optimizer
        return f"{self.optimizer}[{','.join(f'{k}={v}' for k, v in self.hparams)}]"


def net_text(layers: Iterable[int]) -> str:
    """``2-64-64-1``: how labels and tables write a net."""
    return "-".join(str(int(n)) for n in layers)


def evaluation_schedule(per_decade: int = 20) -> Callable[[int], bool]:
    """Steps 0..10, then ~``per_decade`` log-spaced steps per decade."""
    marks = {int(round(10 ** (i / per_decade))) for i in range(per_decade * 9)}
    return lambda step: step <= 10 or step in marks


def run_key(spec: RunSpec, hparams: dict[str, Any], protocol: Protocol) -> str:
    """Identity of a run: problem, net, optimizer, resolved hyperparameters, seed, protocol settings, code."""
    blob = json.dumps({"problem": spec.problem, "net": list(spec.layers), "optimizer": spec.optimizer,
                       "hparams": hparams, "seed": spec.seed, "protocol_id": protocol.protocol_id, "code": code_version()},
                      sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def resolve_hparams(spec: RunSpec, protocol: Protocol | None = None) -> dict[str, Any]:
    """The problem's published defaults for this optimizer, then the protocol's settings for this (optimizer,
    problem), overridden by the user's settings."""
    problem = get_problem(spec.problem)
    pinned = protocol.hyperparameters_for(spec.optimizer, spec.problem) if protocol is not None else {}
    return {**problem.optimizer_defaults.get(spec.optimizer, {}), **pinned, **dict(spec.hparams)}


def step_cap(spec: RunSpec, protocol: Protocol) -> int | None:
    """protocol.steps, else the optimizer's published step count, else the protocol's count for the problem
    (``problem_steps``), else the problem's published count."""
    if protocol.steps is not None:
        return protocol.steps
    optimizer_steps = getattr(entries("optimizer")[spec.optimizer].cls, "paper_steps", None)
    return optimizer_steps or protocol.steps_for(spec.problem) or get_problem(spec.problem).paper_steps


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _finite(*values: float) -> bool:
    return all(math.isfinite(v) for v in values)


class RunObserver:
    """Hooks through which a supervisor follows a run from outside (the isolation watchdog); no-ops here.

    ``timed``/``untimed`` mark entering and leaving optimizer code (``reset``/``step``) at optimizer time
    ``clock`` after ``step`` steps; they are called outside the clocked region.
    """

    def started(self, manifest: dict[str, Any]) -> None:
        """The run's manifest is ready (its instance is built)."""

    def timed(self, clock: float, step: int) -> None:
        """About to enter optimizer code."""

    def untimed(self, clock: float, step: int) -> None:
        """Back in harness code (evaluation, logging)."""

    def evaluated(self, point: dict[str, float]) -> None:
        """A trajectory point was recorded."""


def seed_global_rngs(seed: int) -> None:
    """Seed torch's, numpy's and Python's global generators, so that a run never depends on what ran before it
    in the same process (backends run the same specs in different processes and orders)."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


def execution_facts(**given: Any) -> dict[str, Any]:
    """Where a run executes: backend, worker, concurrent runs on the machine (given), threads and CPUs (read)."""
    facts = {"backend": "sequential", "worker": f"pid {os.getpid()} on {socket.gethostname()}",
             "concurrent_runs": 1, **given}
    facts["threads"] = torch.get_num_threads()
    facts["cpus"] = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return facts


def identity_manifest(spec: RunSpec, protocol: Protocol, hparams: dict[str, Any]) -> dict[str, Any]:
    """The part of a manifest known before the run starts: what runs, under which protocol, its key."""
    key = run_key(spec, hparams, protocol)
    return {"run_id": key[:12], "run_key": key, "problem": spec.problem_label, "problem_name": spec.problem,
            "net": list(spec.layers), "optimizer": spec.label,
            "optimizer_name": spec.optimizer, "seed": spec.seed, "hparams": hparams,
            "user_hparams": dict(spec.hparams), "protocol": protocol.name, "protocol_id": protocol.protocol_id,
            "protocol_settings": protocol.as_dict(), "device": protocol.device, "max_steps": step_cap(spec, protocol),
            "budget": protocol.budget_for(spec.problem), "code_version": code_version()}


def resolved_hparams(spec: RunSpec, protocol: Protocol | None = None) -> dict[str, Any]:
    """The hyperparameters an instance of the spec's optimizer ends up with (defaults filled in)."""
    return get_optimizer(spec.optimizer, **resolve_hparams(spec, protocol)).get_hyperparameters()


def spec_key(spec: RunSpec, protocol: Protocol) -> str:
    """The run key of ``spec`` under ``protocol``."""
    return run_key(spec, resolved_hparams(spec, protocol), protocol)


def failed_record(spec: RunSpec, protocol: Protocol, status: str, error: str,
                  manifest: dict[str, Any] | None = None, points: Iterable[dict[str, float]] = (),
                  steps: int = 0, clock: float = 0.0, execution: dict[str, Any] | None = None) -> RunRecord:
    """The record of a run that never returned its own (its process hung or died): what was seen of it."""
    base = manifest or {**identity_manifest(spec, protocol, resolved_hparams(spec, protocol)),
                        "started": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    record = RunRecord(manifest=dict(base))
    for point in points:
        record.add_point(**point)
    if execution is not None:
        record.manifest["execution"] = execution
    record.manifest.update(status=status, stop_reason=None, error=error, steps=steps, time=clock,
                           finished=datetime.now(timezone.utc).isoformat(timespec="seconds"))
    return record


def execute(spec: RunSpec, protocol: Protocol, evaluate_every: float | None = None,
            on_evaluate: Callable[[dict[str, float]], None] | None = None, observer: RunObserver | None = None,
            execution: dict[str, Any] | None = None) -> RunRecord:
    """Run one (problem, optimizer, seed) under ``protocol`` and return its record (never raises for run failures).

    evaluate_every: optimizer seconds between evaluations on top of the step schedule (default budget/100).
    on_evaluate: called with each recorded point (for progress display; never charged to the clock).
    observer: hooks for a supervisor (see :class:`RunObserver`). execution: facts about where the run executes
    (backend, worker, concurrent runs) for the manifest; default: in this process, alone.
    """
    observer = observer or RunObserver()
    device = resolve_device(protocol.device)
    if protocol.threads:
        torch.set_num_threads(protocol.threads)
    seed_global_rngs(spec.seed)
    hparams = resolve_hparams(spec, protocol)
    optimizer = get_optimizer(spec.optimizer, **hparams)
    resolved = optimizer.get_hyperparameters()
    instance: ProblemInstance = build(spec.problem, spec.seed, protocol, device=str(device), layers=spec.layers)
    objective = instance.objective
    max_steps = step_cap(spec, protocol)
    record = RunRecord(manifest={
        **identity_manifest(spec, protocol, resolved), "device": str(device),
        "n_params": instance.model.n_params, "layers": list(instance.model.layers),
        "points": {g.name: int(g.points.shape[0]) for g in objective.groups},
        "point_notes": instance.point_sets.notes, "n_evaluation": int(instance.evaluation_points.shape[0]),
        "environment": environment(device), "execution": execution_facts(**(execution or {})),
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    })
    observer.started(record.manifest)
    should_evaluate = evaluation_schedule()
    budget = protocol.budget_for(spec.problem)
    interval = evaluate_every if evaluate_every is not None else budget / 100
    theta = instance.theta0.clone()
    clock, step, last_eval = 0.0, 0, 0.0
    status, stop_reason, error = "ok", None, None

    def evaluate() -> bool:
        with objective.uncounted():
            loss = float(objective.loss(theta))
        errors = instance.evaluate(theta)
        point = {"step": step, "time": clock, "loss": loss, **errors, **objective.counts.as_dict()}
        record.add_point(**point)
        observer.evaluated(point)
        if on_evaluate:
            on_evaluate(point)
        return _finite(loss, errors["l2_abs"])

    try:
        evaluate()
        observer.timed(clock, step)
        _sync(device)
        start = time.perf_counter()
        optimizer.reset(objective, theta)
        _sync(device)
        clock += time.perf_counter() - start
        observer.untimed(clock, step)
        while (max_steps is None or step < max_steps) and clock < budget:
            observer.timed(clock, step)
            _sync(device)
            start = time.perf_counter()
            try:
                theta_next = optimizer.step(objective, theta)
            except Converged:
                _sync(device)
                clock += time.perf_counter() - start
                observer.untimed(clock, step)
                stop_reason = "converged"
                break
            _sync(device)
            clock += time.perf_counter() - start
            step += 1
            observer.untimed(clock, step)
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
            stop_reason = "budget" if clock >= budget else "steps"
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as exc:  # noqa: BLE001 - a failing run is recorded, the suite goes on
        observer.untimed(clock, step)
        status = "error"
        error = f"{type(exc).__name__}: {exc}".splitlines()[0]
        record.manifest["traceback"] = traceback.format_exc(limit=20)
    if status != "diverged" and (not record.trajectory["step"] or record.trajectory["step"][-1] != step):
        if not evaluate() and status == "ok":
            status = "diverged"
    record.manifest.update(status=status, stop_reason=stop_reason, error=error, steps=step, time=clock,
                           finished=datetime.now(timezone.utc).isoformat(timespec="seconds"))
    return record


def grid(problems: Iterable[str | tuple[str, tuple[int, ...] | None]],
         optimizers: Iterable[tuple[str, dict[str, Any]]], seeds: Iterable[int],
         protocol: Protocol | None = None) -> list[RunSpec]:
    """Every (problem, optimizer, seed), problems outermost; validates names and hyperparameters first.

    A problem is a name or (name, net); a problem without a net takes the protocol's net for it, if any, and
    a net equal to the problem's default is dropped (one run key per net actually trained).
    """
    optimizers = list(optimizers)
    resolved: list[tuple[str, tuple[int, ...] | None]] = []
    for item in problems:
        name, net = (item, None) if isinstance(item, str) else item
        default = tuple(get_problem(name).layers)
        net = net or (protocol.net_for(name) if protocol is not None else None)
        if net is not None:
            check_net(name, net, default)
        resolved.append((name, None if net is None or tuple(net) == default else tuple(net)))
    for name, hparams in optimizers:
        get_optimizer(name, **hparams)  # unknown names and rejected values fail here, before any run
    return [RunSpec(p, name, s, tuple(sorted(hp.items())), net) for p, net in resolved
            for name, hp in optimizers for s in seeds]


def check_net(problem: str, net: tuple[int, ...], default: tuple[int, ...]) -> None:
    """A net must start with the problem's input dimension and end with one output, with positive widths."""
    if (len(net) < 2 or any(not isinstance(n, int) or isinstance(n, bool) or n < 1 for n in net)
            or net[0] != default[0] or net[-1] != default[-1]):
        raise PinnbenchError(f"invalid net {list(net)} for problem {problem!r}: expected positive integers "
                             f"from {default[0]} inputs to {default[-1]} output, e.g. {net_text(default)}")


def effective_protocol(protocol: Protocol, n_runs: int) -> Protocol:
    """Apply the protocol's suite budget: each of n runs gets at most suite_budget / n seconds."""
    if protocol.suite_budget and n_runs:
        share = protocol.suite_budget / n_runs
        if share < max([protocol.budget, *(b for _, b in protocol.problem_budgets)]):
            return protocol.replace(budget=min(protocol.budget, share),
                                    problem_budgets=tuple((p, min(b, share)) for p, b in protocol.problem_budgets))
    return protocol


@dataclass
class SuiteResult:
    """What a suite did: files written now (with their records), specs skipped as already done, and the run ids
    of the whole grid."""

    written: list[Path] = field(default_factory=list)
    skipped: list[RunSpec] = field(default_factory=list)
    records: list[RunRecord] = field(default_factory=list)
    run_ids: set[str] = field(default_factory=set)

    def status_counts(self) -> dict[str, int]:
        """How many of the runs executed now ended ok, diverged, error or timeout."""
        counts = {status: 0 for status in STATUSES}
        for record in self.records:
            counts[record.manifest["status"]] = counts.get(record.manifest["status"], 0) + 1
        return counts


Manifest = dict[str, Any]


def machine(manifest: Manifest) -> tuple[str, str]:
    """(hostname, cpu model) of the machine a run was made on."""
    env = manifest.get("environment") or {}
    return str(env.get("hostname")), str(env.get("cpu"))


def _read_manifest(path: Path) -> Manifest | None:
    try:
        with np.load(path, allow_pickle=False) as data:
            return json.loads(str(data["manifest"]))
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, json.JSONDecodeError):
        return None


def stored_manifests(folder: str | Path) -> list[Manifest]:
    """The manifests of every readable run file in ``folder`` (recursively)."""
    return [m for m in map(_read_manifest, run_files(folder)) if m is not None]


def _destination(out: Path, record: RunRecord) -> Path:
    """``out``, or ``out/hosts/<host>`` when ``out`` holds this very run made on another machine: never lose it."""
    existing = _read_manifest(out / run_filename(record.manifest))
    if existing is None or machine(existing) == machine(record.manifest):
        return out
    return out / "hosts" / re.sub(r"[^A-Za-z0-9_.-]", "_", machine(record.manifest)[0])


class WorkQueue:
    """The runs a suite still has to execute, handed out one at a time (thread-safe) to the backend's workers.

    A run is handed out only once this suite holds its claim (lock file); a run claimed by another live suite
    is put back and waited for at the end. A run found finished once claimed (another suite wrote it
    meanwhile) is skipped.
    """

    def __init__(self, pending: list[tuple[RunSpec, str]], claims: Claims, out: Path,
                 reuse: Callable[[Manifest], bool] | None, poll: float = 1.0) -> None:
        self._pending = list(pending)
        self._claims = claims
        self._out = out
        self._reuse = reuse
        self._poll = poll
        self._keys: dict[RunSpec, str] = {}
        self._skipped: list[RunSpec] = []
        self._lock = threading.Lock()  # guards the pending runs (held while waiting for other suites)
        self._skipped_lock = threading.Lock()
        self._waiting_said = False

    def _finished_elsewhere(self, spec: RunSpec, key: str) -> bool:
        if self._reuse is None:
            return False
        name = run_filename({"problem": spec.problem_label, "optimizer": spec.label, "seed": spec.seed, "run_key": key})
        manifests = [_read_manifest(folder / name) for folder in (self._out, *self._out.glob("hosts/*"))]
        return any(m is not None and m.get("run_key") == key and self._reuse(m) for m in manifests)

    def take(self, block: bool = True) -> RunSpec | None:
        """The next run to execute (claimed), or None when none is left; with ``block``, waits for the runs
        other suites hold until they finish there (skipped) or their claims go stale (handed out)."""
        with self._lock:
            while self._pending:
                for index, (spec, key) in enumerate(self._pending):
                    if not self._claims.claim(key):
                        continue
                    del self._pending[index]
                    if self._finished_elsewhere(spec, key):
                        self._claims.release(key)
                        with self._skipped_lock:
                            self._skipped.append(spec)
                        break
                    self._keys[spec] = key
                    return spec
                else:
                    if not block:
                        return None
                    if not self._waiting_said:
                        print(f"pinnbench: waiting for {len(self._pending)} runs that another suite holds in "
                              f"{self._out}", file=sys.stderr, flush=True)
                        self._waiting_said = True
                    time.sleep(self._poll)
            return None

    def done(self, spec: RunSpec) -> None:
        """Release the claim of a run whose record has been written (or given up)."""
        self._claims.release(self._keys.pop(spec))

    def drain_skipped(self) -> list[RunSpec]:
        """The runs found finished by another suite since the last call."""
        with self._skipped_lock:
            skipped, self._skipped = self._skipped, []
        return skipped


def run_suite(specs: list[RunSpec], protocol: Protocol, out: str | Path, resume: bool = True,
              progress: "Progress | None" = None, backend: "Backend | None" = None,
              reuse: Callable[[Manifest], bool] | None = None) -> SuiteResult:
    """Execute ``specs`` on ``backend`` (default: sequentially in this process), writing each finished run
    atomically into ``out``; skip the runs already there (resume) unless ``resume`` is False.

    reuse: which stored runs count as done (default: every run with the same key); a stored run it rejects is
    run again, and written beside it when it was made on another machine.
    """
    from .backends import SequentialBackend

    if not specs:
        raise PinnbenchError("nothing to run: no problem x optimizer x seed in the selection")
    out = Path(out)
    protocol = effective_protocol(protocol, len(specs))
    reuse = (reuse or (lambda manifest: True)) if resume else None
    done = {m["run_key"] for m in stored_manifests(out) if reuse(m)} if reuse else set()
    backend = backend or SequentialBackend()
    result = SuiteResult()
    pending: dict[str, RunSpec] = {}
    for spec in specs:
        key = spec_key(spec, protocol)
        result.run_ids.add(key[:12])
        if key in done or key in pending:  # done, or listed twice
            result.skipped.append(spec)
            if progress:
                progress.finished(len(result.skipped) - 1, len(specs), spec, None)
        else:
            pending[key] = spec
    if not pending:
        return result
    with Claims(out) as claims:
        queue = WorkQueue([(spec, key) for key, spec in pending.items()], claims, out, reuse)

        def finished(spec: RunSpec, record: RunRecord | None) -> None:
            if progress:
                progress.finished(len(result.skipped) + len(result.written) - 1, len(specs), spec, record)

        def report_skipped() -> None:
            for skipped in queue.drain_skipped():
                result.skipped.append(skipped)
                finished(skipped, None)

        ticker = progress.ticker(protocol.budget) if progress else None
        for spec, record in backend.run(queue, protocol, ticker):
            report_skipped()
            result.written.append(write_run(record, _destination(out, record)))
            result.records.append(record)
            queue.done(spec)
            finished(spec, record)
        report_skipped()
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
        head = f"[{index + 1}/{total}] {spec.problem_label} {spec.label} seed {spec.seed}"
        if record is None:
            line = f"{head}: already done, skipped"
        else:
            m = record.manifest
            l2 = record.trajectory["l2_abs"][-1] if record.trajectory["l2_abs"] else float("nan")
            line = (f"{head}: {m['status']} ({m['stop_reason'] or m.get('error') or ''}) after {m['steps']} "
                    f"steps, {m['time']:.1f} s, L2 abs {l2:.2e}")
        self.stream.write(("\r\033[K" if self.live else "") + line + "\n")
        self.stream.flush()
