"""Execution backends: where the runs of a suite execute.

- :class:`SequentialBackend` (the default): one run after another in this process; nothing else shares the
  machine, so timings are as clean as they get; no protection against a plugin that hangs or crashes.
- :class:`ProcessBackend` (``--jobs N``): N isolated worker processes on this machine (see
  :mod:`pinnbench.isolation`: watchdog, timeouts, crashes), each with ``cores // N`` threads and pinned to its
  own cores.
- :class:`DaskBackend` (``--scheduler`` / ``--scheduler-file``): a Dask distributed cluster, e.g. one made by
  dask-jobqueue on SLURM; each task executes its run in an isolated child of the Dask worker, with
  ``cores // (runs on that host)`` threads. Dask is an optional extra and imported only here, lazily.

A backend takes runs from the suite's :class:`~pinnbench.runner.WorkQueue` and yields ``(spec, record)`` as
runs finish; the suite writes the records. Every manifest states the backend, the worker, its threads and CPUs,
and how many runs shared the machine (``execution``).
"""
from __future__ import annotations

import os
import queue as queues
import socket
import threading
from collections import Counter
from typing import Any, Callable, Iterator

from .environment import code_version, environment
from .errors import PinnbenchError
from .isolation import IsolatedWorker, plugin_sources
from .protocol import Protocol
from .runner import RunSpec, WorkQueue, execute, failed_record, identity_manifest, resolved_hparams
from .store import RunRecord

OnEvaluate = Callable[[dict[str, float]], None] | None


def available_cpus() -> list[int]:
    """The CPUs this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


def oversubscription(jobs: int, threads: int, cores: int) -> str | None:
    """A warning when ``jobs`` concurrent runs of ``threads`` threads each need more than ``cores`` cores."""
    if jobs * threads <= cores:
        return None
    return (f"{jobs} concurrent runs x {threads} threads = {jobs * threads} threads on {cores} cores: "
            f"the runs slow each other down and their timings are not comparable to unshared ones")


def this_machine() -> tuple[str, str]:
    """(hostname, cpu model) of this process's machine, as manifests record it."""
    import torch

    env = environment(torch.device("cpu"))
    return str(env["hostname"]), str(env["cpu"])


class Backend:
    """Where runs execute; a context manager (``close`` frees workers and connections)."""

    name = "backend"

    def run(self, queue: WorkQueue, protocol: Protocol,
            on_evaluate: OnEvaluate = None) -> Iterator[tuple[RunSpec, RunRecord]]:
        """Take runs from ``queue`` until it is empty; yield each with its record as it finishes.

        on_evaluate: called with each trajectory point of the run in progress (a live progress line); a backend
        that executes several runs at once ignores it."""
        raise NotImplementedError

    def machines(self) -> set[tuple[str, str]]:
        """(hostname, cpu model) of every machine runs may execute on."""
        return {this_machine()}

    def threads(self, protocol: Protocol) -> int | None:
        """Threads per run (None: the torch default of this process)."""
        return protocol.threads

    def concurrency(self) -> int:
        """How many runs execute at once on one machine."""
        return 1

    def warning(self, protocol: Protocol) -> str | None:
        """Why timings would be unfair with this backend on this machine, if they would."""
        threads = self.threads(protocol)
        return oversubscription(self.concurrency(), threads, len(available_cpus())) if threads else None

    def describe(self) -> str:
        return self.name

    def close(self) -> None:
        """Free what the backend holds."""

    def __enter__(self) -> "Backend":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SequentialBackend(Backend):
    """One run after another in this process (the default)."""

    name = "sequential"

    def run(self, queue: WorkQueue, protocol: Protocol,
            on_evaluate: OnEvaluate = None) -> Iterator[tuple[RunSpec, RunRecord]]:
        while (spec := queue.take()) is not None:
            yield spec, execute(spec, protocol, on_evaluate=on_evaluate, execution={"backend": self.name})

    def describe(self) -> str:
        return "sequential, in this process"


class ProcessBackend(Backend):
    """``jobs`` isolated worker processes on this machine, each pinned to its share of cores and threads.

    threads: per worker (default: the protocol's, else ``cores // jobs``). pin: give each worker its own CPUs
    (when jobs x threads fit the available cores). grace, retries: see :meth:`IsolatedWorker.run`.
    """

    name = "process"

    def __init__(self, jobs: int, threads: int | None = None, grace: float | None = None, retries: int = 1,
                 pin: bool = True) -> None:
        if jobs < 1:
            raise PinnbenchError(f"invalid --jobs {jobs}: expected a positive integer")
        if retries < 0:
            raise PinnbenchError(f"invalid --retries {retries}: expected 0 or more")
        self.jobs, self._threads, self.grace, self.retries, self.pin = jobs, threads, grace, retries, pin

    def threads(self, protocol: Protocol) -> int:
        return protocol.threads or self._threads or max(1, len(available_cpus()) // self.jobs)

    def concurrency(self) -> int:
        return self.jobs

    def describe(self) -> str:
        return f"{self.jobs} worker process{'es' if self.jobs > 1 else ''}"

    def cpu_sets(self, threads: int) -> list[list[int] | None]:
        """Each worker's CPUs (None for all when pinning is off or the workers do not fit the cores)."""
        cpus = available_cpus()
        if not self.pin or self.jobs * threads > len(cpus):
            return [None] * self.jobs
        return [cpus[i * threads:(i + 1) * threads] for i in range(self.jobs)]

    def run(self, queue: WorkQueue, protocol: Protocol,
            on_evaluate: OnEvaluate = None) -> Iterator[tuple[RunSpec, RunRecord]]:
        threads = self.threads(protocol)
        on_point = on_evaluate if self.jobs == 1 else None
        host = socket.gethostname()
        workers = [IsolatedWorker(threads, cpus, execution={
            "backend": self.name, "worker": f"worker {i + 1}/{self.jobs} on {host}", "concurrent_runs": self.jobs})
            for i, cpus in enumerate(self.cpu_sets(threads))]
        results: queues.Queue = queues.Queue()

        def serve(worker: IsolatedWorker) -> None:
            try:
                while not worker.aborted and (spec := queue.take()) is not None:
                    results.put((spec, worker.run(spec, protocol, self.grace, self.retries, on_point=on_point)))
            except BaseException as exc:  # noqa: BLE001 - handed to the suite's thread, which raises it
                results.put(exc)
            finally:
                worker.close()
                results.put(None)

        pool = [threading.Thread(target=serve, args=(w,), name=f"pinnbench-worker-{i}", daemon=True)
                for i, w in enumerate(workers)]
        for thread in pool:
            thread.start()
        running = len(pool)
        try:
            while running:
                item = results.get()
                if item is None:
                    running -= 1
                elif isinstance(item, BaseException):
                    if not (isinstance(item, PinnbenchError) and any(w.aborted for w in workers)):
                        raise item
                else:
                    yield item
        finally:
            for worker in workers:
                worker.abort()
            for thread in pool:
                thread.join(timeout=30)


def host_slots(client: Any) -> dict[str, int]:
    """How many tasks each host of a Dask cluster runs at once: the threads of its workers, summed."""
    slots: Counter[str] = Counter()
    for info in client.scheduler_info(n_workers=-1)["workers"].values():
        slots[info["host"]] += info["nthreads"]
    return dict(slots)


_DASK_WORKERS: dict[int, IsolatedWorker] = {}
_DASK_WORKERS_LOCK = threading.Lock()


def run_on_dask_worker(spec: RunSpec, protocol: Protocol, context: dict[str, Any]) -> RunRecord:
    """A Dask task: execute one run in an isolated child of this Dask worker (one child per worker thread,
    kept between tasks) with ``cores // (runs on this host)`` threads."""
    from distributed import get_client, get_worker
    from distributed.comm import get_address_host

    if code_version() != context["code_version"]:
        raise PinnbenchError(f"this Dask worker runs pinnbench {code_version()} but the suite was started with "
                             f"{context['code_version']}: install the same checkout everywhere")
    worker = get_worker()
    host = get_address_host(worker.address)
    slots = host_slots(get_client()).get(host) or worker.state.nthreads  # asked now: clusters grow and shrink
    threads = protocol.threads or max(1, len(available_cpus()) // slots)
    execution = {"backend": "dask", "worker": f"{worker.address} ({worker.name})", "concurrent_runs": slots}
    with _DASK_WORKERS_LOCK:
        isolated = _DASK_WORKERS.get(threading.get_ident())
        if isolated is None or isolated.threads != threads or isolated.execution != execution:
            if isolated is not None:
                isolated.close()
            isolated = _DASK_WORKERS[threading.get_ident()] = IsolatedWorker(threads, None, execution)
    return isolated.run(spec, protocol, context["grace"], context["retries"], plugins=context["plugins"],
                        default_dtype=context["dtype"], identity=context["identity"])


class DaskBackend(Backend):
    """A Dask distributed cluster, reached at ``address`` (``tcp://HOST:PORT``) or through ``scheduler_file``.

    Every run is a task; a Dask worker executes it in an isolated child process (timeouts, crashes as in
    :class:`ProcessBackend`). A run whose Dask worker dies is rescheduled by Dask on another worker, up to the
    scheduler's ``distributed.scheduler.allowed-failures``; after that it is recorded as ``error``.
    """

    name = "dask"

    def __init__(self, address: str | None = None, scheduler_file: str | None = None, grace: float | None = None,
                 retries: int = 1, timeout: float = 30.0) -> None:
        try:
            from distributed import Client
        except ImportError as exc:
            raise PinnbenchError("the Dask backend needs dask.distributed: pip install 'pinnbench[dask]'") from exc
        if (address is None) == (scheduler_file is None):
            raise PinnbenchError("the Dask backend needs exactly one of a scheduler address or a scheduler file")
        self.where = address or f"scheduler file {scheduler_file}"
        try:
            self.client = Client(address, scheduler_file=scheduler_file, timeout=timeout, set_as_default=False)
        except (OSError, TimeoutError, ValueError) as exc:
            raise PinnbenchError(f"cannot reach the Dask scheduler at {self.where}: {exc}") from exc
        self.grace, self.retries = grace, retries
        versions = self.client.run(code_version)
        wrong = {worker: version for worker, version in versions.items() if version != code_version()}
        if wrong:
            worker, version = next(iter(wrong.items()))
            self.close()
            raise PinnbenchError(f"Dask worker {worker} runs pinnbench {version}, this client {code_version()}: "
                                 f"install the same checkout on every worker")

    @property
    def address(self) -> str:
        """The scheduler's address."""
        return self.client.scheduler.address

    def machines(self) -> set[tuple[str, str]]:
        return set(self.client.run(this_machine).values())

    def threads(self, protocol: Protocol) -> int | None:
        return protocol.threads

    def warning(self, protocol: Protocol) -> str | None:
        return None  # each worker picks cores // (runs on its host); its manifest records it

    def describe(self) -> str:
        workers = self.client.scheduler_info(n_workers=-1)["workers"]
        return f"Dask cluster at {self.where} ({len(workers)} workers, {sum(host_slots(self.client).values())} slots)"

    def run(self, queue: WorkQueue, protocol: Protocol,
            on_evaluate: OnEvaluate = None) -> Iterator[tuple[RunSpec, RunRecord]]:
        import torch
        from distributed import as_completed

        base = {"code_version": code_version(), "grace": self.grace,
                "retries": self.retries, "plugins": plugin_sources(),
                "dtype": str(torch.get_default_dtype()).removeprefix("torch.")}
        futures: dict[Any, RunSpec] = {}
        pending = as_completed(loop=self.client.loop)

        def submit(spec: RunSpec) -> None:
            identity = identity_manifest(spec, protocol, resolved_hparams(spec, protocol))
            future = self.client.submit(run_on_dask_worker, spec, protocol, {**base, "identity": identity},
                                        key=f"pinnbench-{identity['run_id']}-{os.urandom(4).hex()}", pure=False)
            futures[future] = spec
            pending.add(future)

        try:
            while True:
                while (spec := queue.take(block=False)) is not None:
                    submit(spec)
                if pending.is_empty():
                    spec = queue.take(block=True)
                    if spec is None:
                        return
                    submit(spec)
                    continue
                future = next(pending)
                spec = futures.pop(future)
                yield spec, self._record(future, spec, protocol)
        finally:
            if futures:
                self.client.cancel(list(futures))

    def _record(self, future: Any, spec: RunSpec, protocol: Protocol) -> RunRecord:
        from distributed import KilledWorker

        try:
            return future.result()
        except PinnbenchError:
            raise
        except KilledWorker:
            error = "every Dask worker that ran it died (KilledWorker: see distributed.scheduler.allowed-failures)"
        except Exception as exc:  # noqa: BLE001 - a failing task costs its run only
            error = f"{type(exc).__name__}: {exc}".splitlines()[0]
        return failed_record(spec, protocol, "error", error, execution={"backend": self.name})

    def close(self) -> None:
        self.client.close()


def make_backend(jobs: int | None = None, scheduler: str | None = None, scheduler_file: str | None = None,
                 grace: float | None = None, retries: int | None = None) -> Backend:
    """The backend the CLI options name: a Dask scheduler (address or file), else ``jobs`` worker processes,
    else sequential in this process. grace and retries (default 1) apply to isolated runs only."""
    if scheduler is not None or scheduler_file is not None:
        if jobs is not None:
            raise PinnbenchError("--jobs and a Dask scheduler exclude each other: the cluster's workers run the jobs")
        if scheduler is not None and scheduler_file is not None:
            raise PinnbenchError("give --scheduler or --scheduler-file, not both")
        return DaskBackend(scheduler, scheduler_file, grace=grace, retries=1 if retries is None else retries)
    if jobs is not None:
        return ProcessBackend(jobs, grace=grace, retries=1 if retries is None else retries)
    if grace is not None or retries is not None:
        raise PinnbenchError("--grace and --retries apply to isolated runs: add --jobs N (--jobs 1 runs one at a "
                             "time) or a Dask scheduler")
    return SequentialBackend()
