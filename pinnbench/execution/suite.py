"""The suite: a grid of runs resolved once, checked before anything is written, executed on the backend it is
given, each finished run written atomically into the results folder.

A suite skips the runs already in its results folder (resume), claims each run it executes with a lock file
(two suites sharing a folder never do the same run twice, with or without resume), and stops with a one-line
PinnbenchError, losing no finished run, when the folder cannot take a run file (a full disk).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from .. import store
from .claims import Claims
from ..errors import PinnbenchError
from ..protocol import Protocol
from ..registry import check_hyperparameters, get_problem
from ..store import RunRecord
from .backend import Backend, InProcessBackend
from .progress import Progress
from .queue import WorkQueue
from .run import Run, RunSpec, check_net, recorded_net, resolve


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
        resolved.append((name, recorded_net(name, net, protocol, get_problem(name).layers)))
    for name, hparams in optimizers:
        check_hyperparameters(name, hparams)  # unknown names and rejected values fail here, before any run
    return [RunSpec(p, name, s, tuple(sorted(hp.items())), net) for p, net in resolved
            for name, hp in optimizers for s in seeds]


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
        counts = {status: 0 for status in store.STATUSES}
        for record in self.records:
            counts[record.manifest["status"]] = counts.get(record.manifest["status"], 0) + 1
        return counts

    def errors(self) -> list[tuple[Path, RunRecord]]:
        """(file, record) of every run executed now that ended in ``error``."""
        return [(path, record) for path, record in zip(self.written, self.records)
                if record.manifest["status"] == "error"]


def plan(specs: list[RunSpec], protocol: Protocol, backend: Backend) -> tuple[Protocol, list[Run]]:
    """The effective protocol (suite budget applied) and every spec resolved once under it, for ``backend``;
    one-line PinnbenchErrors for anything bad, before anything is written."""
    if not specs:
        raise PinnbenchError("nothing to run: no problem x optimizer x seed in the selection")
    protocol = effective_protocol(protocol, len(specs))
    backend.check(protocol)
    threads = backend.threads(protocol)
    return protocol, [resolve(spec, protocol, threads, per_worker=threads is None) for spec in specs]


def _write(out: Path, record: RunRecord) -> Path:
    destination = store.destination(out, record)
    try:
        return store.write_run(record, destination)
    except OSError as exc:
        saved = store.save_elsewhere(record)
        where = f"it is saved in {saved}" if saved else "it could not be saved elsewhere either"
        raise PinnbenchError(f"cannot write the run file of {record.manifest['problem']} {record.manifest['optimizer']} "
                             f"seed {record.manifest['seed']} into {destination}: {exc.strerror or exc}; {where}; "
                             f"the runs finished before are in place, run again to resume") from None


def run_suite(specs: list[RunSpec], protocol: Protocol, out: str | Path, resume: bool = True,
              progress: Progress | None = None, backend: Backend | None = None,
              reuse: Callable[[store.Manifest], bool] | None = None,
              announce: Callable[[Protocol, list[Run]], None] | None = None) -> SuiteResult:
    """Execute ``specs`` on ``backend`` (default: in this process), writing each finished run atomically into
    ``out``; skip the runs already there (resume) unless ``resume`` is False.

    reuse: which stored runs count as done (default: every run with the same key); a stored run it rejects is
    run again, and written beside it when it was made on another machine. announce: called once everything is
    checked, before the first run (the CLI's header line).
    """
    backend = backend or InProcessBackend()
    protocol, runs = plan(specs, protocol, backend)
    out = store.prepare_folder(out)
    if announce:
        announce(protocol, runs)
    accept = reuse or (lambda manifest: True)
    before = None if resume else store.snapshot(out)
    done = {m["run_key"] for m in store.stored_manifests(out) if accept(m)} if resume else set()
    store.remove_stale_temporaries(out)
    result = SuiteResult()
    pending: dict[str, Run] = {}
    for run in runs:
        result.run_ids.add(run.run_id)
        if run.key in done or run.key in pending:  # done, or listed twice
            result.skipped.append(run.spec)
            if progress:
                progress.finished(len(result.skipped) - 1, len(specs), run.spec, None)
        else:
            pending[run.key] = run
    if not pending:
        return result
    try:
        with Claims(out) as claims:
            queue = WorkQueue(list(pending.values()), claims, out, accept, before)

            def finished(spec: RunSpec, record: RunRecord | None) -> None:
                if progress:
                    progress.finished(len(result.skipped) + len(result.written) - 1, len(specs), spec, record)

            def report_skipped() -> None:
                for skipped in queue.drain_skipped():
                    result.skipped.append(skipped.spec)
                    finished(skipped.spec, None)

            ticker = progress.ticker() if progress else None
            for run, record in backend.run(queue, ticker):
                report_skipped()
                result.written.append(_write(out, record))
                result.records.append(record)
                queue.done(run)
                finished(run.spec, record)
            report_skipped()
    except OSError as exc:  # the folder failed under the suite (lock files): one line, finished runs kept
        raise PinnbenchError(f"results folder {str(out)!r} failed during the suite: {exc.strerror or exc}; the "
                             f"runs finished before are in place, run again to resume") from None
    return result
