"""One run: what it is (:class:`RunSpec`), what it resolves to once (:class:`Run`: hyperparameters bound to the
constructor, thread count, the code that runs, the run key), and its execution under the clock (:func:`execute`).

The clock runs only inside ``optimizer.reset`` and ``optimizer.step`` (CUDA synchronised before each read);
evaluation, logging and saving are never charged. The loss and the errors are computed by the harness on its own
copy of the problem instance, out of reach of the optimizer. :func:`execute` never raises for a failure of the
run: whatever goes wrong in set-up, in the optimizer, in evaluation or in the optimizer contract (θ of the wrong
shape, dtype or device; ``SystemExit`` from a plugin) is recorded as ``error``, non-finite values as ``diverged``.
Only ``KeyboardInterrupt`` (the user, or a stopped suite) goes through.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import random
import socket
import time
import traceback
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Iterable

import numpy as np
import torch

from .environment import code_version, environment, source_hash
from ..errors import PinnbenchError
from ..hyperparameters import bind, construct
from .instance import ProblemInstance, build, resolve_device
from ..core.blas_threads import set_openblas_threads
from ..core.optimizer import Converged
from ..protocol import MAX_SEED, Protocol
from ..core.problem import Problem
from ..registry import entries, get_problem, lookup
from ..store import RunRecord


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


def resolve_hparams(spec: RunSpec, protocol: Protocol | None = None, problem: Problem | None = None
                    ) -> dict[str, Any]:
    """The hyperparameters a spec asks for: the problem's published defaults for this optimizer, then the
    protocol's settings for this (optimizer, problem), overridden by the user's settings."""
    problem = problem or get_problem(spec.problem)
    pinned = protocol.hyperparameters_for(spec.optimizer, spec.problem) if protocol is not None else {}
    return {**problem.optimizer_defaults.get(spec.optimizer, {}), **pinned, **dict(spec.hparams)}


def step_cap(spec: RunSpec, protocol: Protocol, problem: Problem | None = None) -> int | None:
    """protocol.steps, else the optimizer's published step count, else the protocol's count for the problem
    (``problem_steps``), else the problem's published count."""
    if protocol.steps is not None:
        return protocol.steps
    optimizer_steps = getattr(entries("optimizer")[spec.optimizer].cls, "paper_steps", None)
    return optimizer_steps or protocol.steps_for(spec.problem) or (problem or get_problem(spec.problem)).paper_steps


def code_identity(spec: RunSpec) -> dict[str, str]:
    """The code a run executes: pinnbench (version, commit, uncommitted changes), and a hash of the file that
    defines its optimizer and of the one that defines its problem (a plugin edited since is a new run)."""
    optimizer, problem = entries("optimizer")[spec.optimizer], entries("problem")[spec.problem]
    return {"pinnbench": code_version(), "optimizer": source_hash(optimizer.cls, optimizer.location),
            "problem": source_hash(problem.cls, problem.location)}


@dataclass(frozen=True)
class Run:
    """A spec resolved once under a protocol: everything a backend needs to execute it and a store to file it.

    given: the checked hyperparameters the optimizer is constructed with; hparams: the bound constructor
    arguments (every parameter, defaults filled in), which the run key and the manifest record; threads: the
    torch threads it executes with (None: each Dask worker's own share); code: :func:`code_identity`.
    """

    spec: RunSpec
    protocol: Protocol
    given: dict[str, Any]
    hparams: dict[str, Any]
    threads: int | None
    code: dict[str, str]
    key: str
    max_steps: int | None
    layers: tuple[int, ...]

    @property
    def run_id(self) -> str:
        return self.key[:12]

    @property
    def identity(self) -> dict[str, Any]:
        """The part of a manifest known before the run starts: what runs, under which protocol, its key."""
        spec, protocol = self.spec, self.protocol
        return {"run_id": self.run_id, "run_key": self.key, "problem": spec.problem_label,
                "problem_name": spec.problem, "net": list(self.layers), "optimizer": spec.label,
                "optimizer_name": spec.optimizer, "seed": spec.seed, "hparams": self.hparams,
                "user_hparams": dict(spec.hparams), "protocol": protocol.name, "protocol_id": protocol.protocol_id,
                "protocol_settings": protocol.as_dict(), "device": protocol.device, "max_steps": self.max_steps,
                "budget": protocol.budget_for(spec.problem), "threads": self.threads, "code": self.code,
                "code_version": self.code["pinnbench"]}


def run_key(spec: RunSpec, layers: tuple[int, ...], hparams: dict[str, Any], protocol: Protocol,
            threads: int | None, code: dict[str, str]) -> str:
    """Identity of a run: problem, net, optimizer, bound hyperparameters, seed, protocol settings, threads, code."""
    blob = json.dumps({"problem": spec.problem, "net": list(layers), "optimizer": spec.optimizer,
                       "hparams": hparams, "seed": spec.seed, "protocol_id": protocol.protocol_id,
                       "threads": threads, "code": code}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def recorded_net(problem: str, net: Iterable[int] | None, protocol: Protocol | None,
                 default: Iterable[int]) -> tuple[int, ...] | None:
    """The net a spec records: ``net``, else the protocol's for ``problem``, checked (:func:`check_net`); None
    when that is the problem's ``default`` (one run key per net actually trained)."""
    net = net or (protocol.net_for(problem) if protocol is not None else None)
    if net is None:
        return None
    check_net(problem, tuple(net), tuple(default))
    return None if tuple(net) == tuple(default) else tuple(net)


def check_net(problem: str, net: tuple[int, ...], default: tuple[int, ...]) -> None:
    """A net must start with the problem's input dimension and end with one output, with positive widths."""
    if (len(net) < 2 or any(not isinstance(n, int) or isinstance(n, bool) or n < 1 for n in net)
            or net[0] != default[0] or net[-1] != default[-1]):
        raise PinnbenchError(f"invalid net {list(net)} for problem {problem!r}: expected positive integers "
                             f"from {default[0]} inputs to {default[-1]} output, e.g. {net_text(default)}")


def resolve(spec: RunSpec, protocol: Protocol, threads: int | None = None, per_worker: bool = False) -> Run:
    """Resolve ``spec`` under ``protocol`` once: names, hyperparameters (checked against the constructor's
    signature and annotations, then by the constructor itself), seed, thread count, code, run key.

    threads: the run's torch threads; default the protocol's, else this process's (``per_worker``: left to each
    Dask worker, None in the key). Raises a one-line PinnbenchError (a HyperparameterError for hyperparameters)
    before anything runs."""
    cls = lookup("optimizer", spec.optimizer).cls
    problem = get_problem(spec.problem)  # the one Problem of the resolution
    if spec.net is None and (pinned := recorded_net(spec.problem, None, protocol, problem.layers)) is not None:
        spec = dataclasses.replace(spec, net=pinned)  # the protocol's net, as grid() gives it
    if not isinstance(spec.seed, int) or isinstance(spec.seed, bool) or not 0 <= spec.seed <= MAX_SEED:
        raise PinnbenchError(f"invalid seed {spec.seed!r}: expected an integer from 0 to 2^63 - 1")
    given, bound = bind(spec.optimizer, cls, resolve_hparams(spec, protocol, problem))
    construct(spec.optimizer, cls, given)  # the constructor's own checks, before anything runs
    if threads is None and not per_worker:
        threads = protocol.threads or torch.get_num_threads()
    layers = tuple(spec.net or problem.layers)
    code = code_identity(spec)
    key = run_key(spec, layers, bound, protocol, threads, code)
    return Run(spec, protocol, given, bound, threads, code, key, step_cap(spec, protocol, problem), layers)


def bound_hparams(spec: RunSpec, protocol: Protocol | None = None) -> dict[str, Any]:
    """The bound constructor arguments of the spec's optimizer (every parameter, defaults filled in)."""
    cls = entries("optimizer")[spec.optimizer].cls
    return bind(spec.optimizer, cls, resolve_hparams(spec, protocol))[1]


def spec_key(spec: RunSpec, protocol: Protocol) -> str:
    """The run key of ``spec`` under ``protocol`` (threads: the protocol's, else this process's)."""
    return resolve(spec, protocol).key


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _finite(*values: float) -> bool:
    return all(math.isfinite(v) for v in values)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def error_line(exc: BaseException) -> str:
    """``'TypeName: first line of the message'``: how a run's, or a check's, failure is recorded in one line."""
    return f"{type(exc).__name__}: {exc}".splitlines()[0]


class ContractError(Exception):
    """The optimizer broke its contract with the harness (a θ of the wrong type, shape, dtype or device)."""


def check_theta(new: Any, theta: torch.Tensor) -> torch.Tensor:
    """``new`` (detached) if it is a θ like ``theta``: a dense tensor of the same shape, dtype and device."""
    def describe(t: torch.Tensor) -> str:
        return f"shape {tuple(t.shape)}, {str(t.dtype).removeprefix('torch.')} on {t.device}"

    if not isinstance(new, torch.Tensor):
        raise ContractError(f"step returned a {type(new).__name__}, expected a tensor of {describe(theta)}")
    if (new.shape != theta.shape or new.dtype != theta.dtype or new.device != theta.device
            or new.layout != torch.strided):
        raise ContractError(f"step returned a tensor of {describe(new)}, expected {describe(theta)}")
    return new.detach()


class RunObserver:
    """Hooks through which a supervisor follows a run from outside (the isolation watchdog); no-ops here.

    ``timed``/``untimed`` mark entering and leaving optimizer code (``reset``/``step``) at optimizer time
    ``clock`` after ``step`` steps; they are called outside the clocked region.
    """

    def started(self, manifest: dict[str, Any]) -> None:
        """The run's manifest is ready (its instance is built, or its set-up failed)."""

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
    facts = {"backend": "in-process", "worker": f"pid {os.getpid()} on {socket.gethostname()}",
             "concurrent_runs": 1, **given}
    facts["threads"] = torch.get_num_threads()
    facts["cpus"] = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return facts


def failed_record(run: Run, status: str, error: str, manifest: dict[str, Any] | None = None,
                  points: Iterable[dict[str, float]] = (), steps: int = 0, clock: float = 0.0,
                  execution: dict[str, Any] | None = None) -> RunRecord:
    """The record of a run that never returned its own (its process hung or died): what was seen of it."""
    record = RunRecord(manifest=dict(manifest or {**run.identity, "started": _now()}))
    for point in points:
        record.add_point(**point)
    if execution is not None:
        record.manifest["execution"] = execution
    record.manifest.update(status=status, stop_reason=None, error=error, steps=steps, time=clock, finished=_now())
    return record


class _Execution:
    """The state of one run in progress (see :func:`execute`)."""

    def __init__(self, run: Run, observer: RunObserver, on_evaluate: Callable[[dict[str, float]], None] | None,
                 execution: dict[str, Any] | None) -> None:
        self.run, self.observer, self.on_evaluate = run, observer, on_evaluate
        self.record = RunRecord(manifest={**run.identity, "execution": execution_facts(**(execution or {})),
                                          "started": _now()})
        self.clock, self.step, self.theta = 0.0, 0, None
        self.longest_step = 0.0
        self.judge: ProblemInstance | None = None
        self.objective: Any = None

    def set_up(self) -> tuple[Any, torch.device]:
        run = self.run
        device = resolve_device(run.protocol.device)
        if run.threads:
            torch.set_num_threads(run.threads)
        set_openblas_threads(1)  # scipy's LAPACK (the SVD of R): a second thread measured slower
        seed_global_rngs(run.spec.seed)
        optimizer = construct(run.spec.optimizer, entries("optimizer")[run.spec.optimizer].cls, run.given)
        instance = build(run.spec.problem, run.spec.seed, run.protocol, device=str(device), layers=run.layers)
        self.judge = instance.independent_copy()  # before the optimizer sees the objective
        self.objective, self.theta = instance.objective, instance.theta0.clone()
        self.record.manifest.update({
            "device": str(device), "n_params": instance.model.n_params, "layers": list(instance.model.layers),
            "points": {g.name: int(g.points.shape[0]) for g in self.judge.objective.groups},
            "point_notes": instance.point_sets.notes, "n_evaluation": int(instance.evaluation_points.shape[0]),
            "environment": environment(device),
        })
        self.record.manifest["execution"]["threads"] = torch.get_num_threads()
        return optimizer, device

    def evaluate(self) -> bool:
        """Record a trajectory point (loss and errors from the harness's own copy); False if non-finite."""
        assert self.judge is not None
        loss = float(self.judge.objective.loss(self.theta))
        errors = self.judge.evaluate(self.theta)
        point = {"step": self.step, "time": self.clock, "loss": loss, **errors, **self.objective.counts.as_dict()}
        self.record.add_point(**point)
        self.observer.evaluated(point)
        if self.on_evaluate:
            self.on_evaluate(point)
        return _finite(loss, errors["l2_abs"])

    def timed(self, device: torch.device, call: Callable[[], Any]) -> Any:
        """``call()`` under the clock; the clock is charged even when it raises."""
        self.observer.timed(self.clock, self.step)
        _sync(device)
        start = time.perf_counter()
        try:
            return call()
        finally:
            _sync(device)
            self.clock += time.perf_counter() - start
            self.observer.untimed(self.clock, self.step)

    def optimize(self, optimizer: Any, device: torch.device, evaluate_every: float | None) -> tuple[str, str | None]:
        """The clocked loop; returns (status, stop reason)."""
        run, objective = self.run, self.objective
        budget = run.protocol.budget_for(run.spec.problem)
        interval = evaluate_every if evaluate_every is not None else budget / 100
        should_evaluate = evaluation_schedule()
        last_eval = 0.0
        self.evaluate()
        try:
            self.timed(device, lambda: optimizer.reset(objective, self.theta))
        except Converged:
            return "ok", "converged"
        while (run.max_steps is None or self.step < run.max_steps) and self.clock < budget:
            before = self.clock
            try:
                theta_next = self.timed(device, lambda: optimizer.step(objective, self.theta))
            except Converged:
                return "ok", "converged"
            finally:
                self.longest_step = max(self.longest_step, self.clock - before)
            self.theta = check_theta(theta_next, self.theta)
            self.step += 1
            self.record.add_info(self.step, getattr(optimizer, "info", {}) or {})
            spectrum = getattr(optimizer, "spectrum", {}) or {}
            if spectrum and (self.step == 1 or self.step % run.protocol.diagnostics_every == 0):
                self.record.add_spectrum(self.step, spectrum)
            if should_evaluate(self.step) or self.clock - last_eval >= interval \
                    or not bool(torch.isfinite(self.theta).all()):
                last_eval = self.clock
                if not self.evaluate():
                    return "diverged", None
        return "ok", "budget" if self.clock >= budget else "steps"


def execute(run: Run | RunSpec, protocol: Protocol | None = None, evaluate_every: float | None = None,
            on_evaluate: Callable[[dict[str, float]], None] | None = None, observer: RunObserver | None = None,
            execution: dict[str, Any] | None = None) -> RunRecord:
    """Execute one run and return its record; never raises for a failure of the run (see the module's doc).

    run: a resolved :class:`Run`, or a :class:`RunSpec` with its ``protocol`` (resolved here).
    evaluate_every: optimizer seconds between evaluations on top of the step schedule (default budget/100).
    on_evaluate: called with each recorded point (for progress display; never charged to the clock).
    observer: hooks for a supervisor (see :class:`RunObserver`). execution: facts about where the run executes
    (backend, worker, concurrent runs) for the manifest; default: in this process, alone.
    """
    if not isinstance(run, Run):
        if protocol is None:
            raise TypeError("execute(spec) needs the protocol")
        run = resolve(run, protocol)
    state = _Execution(run, observer or RunObserver(), on_evaluate, execution)
    status, stop_reason, error = "ok", None, None
    try:
        optimizer, device = state.set_up()
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # noqa: BLE001 - a run that cannot even start is recorded, the suite goes on
        optimizer = device = None
        status, error = "error", error_line(exc)
        state.record.manifest["traceback"] = traceback.format_exc(limit=20)
    state.observer.started(state.record.manifest)
    if optimizer is not None:
        try:
            status, stop_reason = state.optimize(optimizer, device, evaluate_every)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # noqa: BLE001 - SystemExit from a plugin included: the run's failure
            status, error = "error", error_line(exc)
            state.record.manifest["traceback"] = traceback.format_exc(limit=20)
        steps = state.record.trajectory["step"]
        if status != "diverged" and (not steps or steps[-1] != state.step):
            try:
                if not state.evaluate() and status == "ok":
                    status = "diverged"
            except KeyboardInterrupt:
                raise
            except BaseException as exc:  # noqa: BLE001
                if status == "ok":
                    status, error = "error", f"final evaluation failed: {error_line(exc)}"
                    state.record.manifest["traceback"] = traceback.format_exc(limit=20)
    budget = run.protocol.budget_for(run.spec.problem)
    state.record.manifest.update(status=status, stop_reason=stop_reason, error=error, steps=state.step,
                                 time=state.clock, longest_step=state.longest_step,
                                 overrun=max(0.0, state.clock - budget), finished=_now())
    return state.record
