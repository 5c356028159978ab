"""Execution backends: where the runs of a suite execute.

- :class:`IsolatedBackend` (the default of ``pinnbench run``/``compare`` and :func:`pinnbench.run` when the
  protocol leaves threads to the machine, as ``paper`` does): one persistent isolated worker process, one run
  after another, with this process's thread count: a run that hangs is stopped at budget + grace
  (``timeout``), one that kills its process costs only itself (``error``). When the protocol pins the threads
  per run (``quick``: one), the default is a :class:`ProcessBackend` with ``cores // threads`` workers.
- :class:`~pinnbench.execution.backend.InProcessBackend` (``--in-process``): one run after another in this
  process; no protection against a plugin that hangs or crashes.
- :class:`ProcessBackend` (``--jobs N``, or the default as above): N isolated worker processes on this machine (see
  :mod:`pinnbench.isolation`: watchdog, timeouts, crashes), each with ``cores // N`` threads and pinned to its
  own cores.
- :class:`DaskBackend` (``--scheduler`` / ``--scheduler-file``): a Dask distributed cluster, e.g. one made by
  dask-jobqueue on SLURM; each task executes its run in an isolated child of the Dask worker, with
  ``cores // (runs on that host)`` threads. Dask is an optional extra and imported only here, lazily.

A backend takes runs from the suite's :class:`~pinnbench.execution.queue.WorkQueue` and yields ``(run, record)`` as
runs finish; the suite writes the records. Every manifest states the backend, the worker, its threads and CPUs,
and how many runs shared the machine (``execution``).
"""
from __future__ import annotations

import functools
import json
import os
import queue as queues
import re
import socket
import threading
from collections import Counter
from pathlib import Path
from typing import Any, Iterator

from .environment import code_version
from ..errors import PinnbenchError
from .backend import (Backend, InProcessBackend, OnEvaluate, SequentialBackend, available_cpus,
                                oversubscription, this_machine)
from .queue import WorkQueue
from .run import Run, error_line, failed_record
from .isolation import IsolatedWorker, plugin_sources, unshippable
from ..protocol import Protocol
from ..store import RunRecord

__all__ = ["Backend", "DaskBackend", "InProcessBackend", "IsolatedBackend", "ProcessBackend", "SequentialBackend",
           "available_cpus", "default_jobs", "make_backend", "oversubscription", "this_machine"]


class ProcessBackend(Backend):
    """``jobs`` isolated worker processes on this machine, each pinned to its share of cores and threads.

    threads: per worker (default: the protocol's, else ``cores // jobs``). pin: give each worker its own CPUs
    (when jobs x threads fit the available cores). grace, retries: see :meth:`IsolatedWorker.run`.
    """

    name = "process"

    def __init__(self, jobs: int, threads: int | None = None, grace: float | None = None, retries: int = 1,
                 pin: bool = True) -> None:
        if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
            raise PinnbenchError(f"invalid --jobs {jobs}: expected a positive integer")
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise PinnbenchError(f"invalid --retries {retries}: expected 0 or more")
        self.jobs, self._threads, self.grace, self.retries, self.pin = jobs, threads, grace, retries, pin

    def check(self, protocol: Protocol) -> None:
        super().check(protocol)
        unshippable()

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

    def _worker_name(self, index: int, host: str) -> str:
        return f"worker {index + 1}/{self.jobs} on {host}"

    def run(self, queue: WorkQueue, on_evaluate: OnEvaluate = None) -> Iterator[tuple[Run, RunRecord]]:
        live = on_evaluate if self.jobs == 1 else None
        host = socket.gethostname()
        workers: dict[int, IsolatedWorker] = {}  # one per slot, started at its first run (threads from it)
        results: queues.Queue = queues.Queue()
        stopped = threading.Event()

        def serve(index: int) -> None:
            worker: IsolatedWorker | None = None
            try:
                while not stopped.is_set() and (run := queue.take()) is not None:
                    threads = run.threads or self.threads(run.protocol)
                    if worker is None or worker.threads != threads:
                        if worker is not None:
                            worker.close()
                        cpus = self.cpu_sets(threads)[index]
                        worker = workers[index] = IsolatedWorker(threads, cpus, execution={
                            "backend": self.name, "worker": self._worker_name(index, host),
                            "concurrent_runs": self.jobs})
                    on_point = functools.partial(live, run) if live else None
                    results.put((run, worker.run(run, grace=self.grace, retries=self.retries, on_point=on_point)))
            except BaseException as exc:  # noqa: BLE001 - handed to the suite's thread, which raises it
                results.put(exc)
            finally:
                if worker is not None:
                    worker.close()
                results.put(None)

        pool = [threading.Thread(target=serve, args=(i,), name=f"pinnbench-worker-{i}", daemon=True)
                for i in range(self.jobs)]
        for thread in pool:
            thread.start()
        running = len(pool)
        try:
            while running:
                item = results.get()
                if item is None:
                    running -= 1
                elif isinstance(item, BaseException):
                    if not (isinstance(item, PinnbenchError) and stopped.is_set()):
                        raise item
                else:
                    yield item
        finally:
            stopped.set()
            for worker in list(workers.values()):
                worker.abort()
            for thread in pool:
                thread.join(timeout=30)


class IsolatedBackend(ProcessBackend):
    """The default: one persistent isolated worker process executing the runs one after another, with this
    process's thread count (the in-process results, bit for bit) and a watchdog (hangs and crashes cost one run).

    The worker starts once (importing torch, about a second) and is restarted only after a run that killed it
    or was stopped; README.md gives the measured cost per run."""

    name = "isolated"

    def __init__(self, threads: int | None = None, grace: float | None = None, retries: int = 1) -> None:
        super().__init__(1, threads=threads, grace=grace, retries=retries, pin=False)

    def threads(self, protocol: Protocol) -> int:
        import torch

        return protocol.threads or self._threads or torch.get_num_threads()

    def describe(self) -> str:
        return "one isolated worker process"

    def _worker_name(self, index: int, host: str) -> str:
        return f"isolated worker on {host}"


def host_slots(client: Any) -> dict[str, int]:
    """How many tasks each host of a Dask cluster runs at once: the threads of its workers, summed."""
    slots: Counter[str] = Counter()
    for info in client.scheduler_info(n_workers=-1)["workers"].values():
        slots[info["host"]] += info["nthreads"]
    return dict(slots)


def _host_cores(dask_worker: Any) -> tuple[str, int]:
    """(host, cores) of a Dask worker (``client.run`` passes ``dask_worker``)."""
    from distributed.comm import get_address_host

    return get_address_host(dask_worker.address), len(available_cpus())


_DASK_WORKERS: dict[int, IsolatedWorker] = {}
_DASK_WORKERS_LOCK = threading.Lock()


def run_on_dask_worker(run: Run, context: dict[str, Any]) -> RunRecord:
    """A Dask task: execute one run in an isolated child of this Dask worker (one child per worker thread,
    kept between tasks) with the run's threads, else ``cores // (runs on this host)``."""
    from distributed import get_client, get_worker
    from distributed.comm import get_address_host

    if code_version() != context["code_version"]:
        raise PinnbenchError(f"this Dask worker runs pinnbench {code_version()} but the suite was started with "
                             f"{context['code_version']}: install the same checkout everywhere")
    worker = get_worker()
    host = get_address_host(worker.address)
    slots = host_slots(get_client()).get(host) or worker.state.nthreads  # asked now: clusters grow and shrink
    threads = run.threads or max(1, len(available_cpus()) // slots)
    execution = {"backend": "dask", "worker": f"{worker.address} ({worker.name})", "concurrent_runs": slots}
    with _DASK_WORKERS_LOCK:
        isolated = _DASK_WORKERS.get(threading.get_ident())
        if isolated is None or isolated.threads != threads or isolated.execution != execution:
            if isolated is not None:
                isolated.close()
            isolated = _DASK_WORKERS[threading.get_ident()] = IsolatedWorker(threads, None, execution)
    return isolated.run(run, grace=context["grace"], retries=context["retries"], plugins=context["plugins"],
                        default_dtype=context["dtype"])


_ADDRESS = re.compile(r"^(?:(tcp|tls|ucx|inproc|ws|wss)://)?(\[[0-9A-Fa-f:]+\]|[A-Za-z0-9_.-]+):(\d{1,5})$")


def check_scheduler(address: str | None, scheduler_file: str | None) -> None:
    """Refuse at once (one line) what cannot name a Dask scheduler: an address that is not [PROTOCOL://]HOST:PORT,
    a scheduler file that is missing, unreadable or names no address."""
    if address is not None:
        match = _ADDRESS.match(address.strip())
        if not match or not 0 < int(match.group(3)) < 65536:
            raise PinnbenchError(f"invalid --scheduler {address!r}: expected tcp://HOST:PORT (or tls://, ucx://)")
    if scheduler_file is not None:
        path = Path(scheduler_file)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise PinnbenchError(f"scheduler file {scheduler_file!r} not found: start the scheduler with "
                                 f"--scheduler-file {scheduler_file} first") from None
        except (OSError, ValueError) as exc:
            raise PinnbenchError(f"scheduler file {scheduler_file!r} is unreadable: {exc}") from None
        if not isinstance(data, dict) or not isinstance(data.get("address"), str):
            raise PinnbenchError(f"scheduler file {scheduler_file!r} names no scheduler address")


class DaskBackend(Backend):
    """A Dask distributed cluster, reached at ``address`` (``tcp://HOST:PORT``) or through ``scheduler_file``.

    Every run is a task; a Dask worker executes it in an isolated child process (timeouts, crashes as in
    :class:`ProcessBackend`). A run whose Dask worker dies is rescheduled by Dask on another worker, up to the
    scheduler's ``distributed.scheduler.allowed-failures``; after that it is recorded as ``error``.
    A scheduler that does not answer within ``timeout`` seconds is a one-line error.
    """

    name = "dask"

    def __init__(self, address: str | None = None, scheduler_file: str | None = None, grace: float | None = None,
                 retries: int = 1, timeout: float = 10.0) -> None:
        if (address is None) == (scheduler_file is None):
            raise PinnbenchError("the Dask backend needs exactly one of a scheduler address or a scheduler file")
        check_scheduler(address, scheduler_file)
        try:
            from distributed import Client
        except ImportError as exc:
            raise PinnbenchError("the Dask backend needs dask.distributed: pip install 'pinnbench[dask]'") from exc
        self.where = address or f"scheduler file {scheduler_file}"
        try:
            self.client = Client(address, scheduler_file=scheduler_file, timeout=timeout, set_as_default=False)
        except Exception as exc:  # noqa: BLE001 - whatever the connection raises: one line
            detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise PinnbenchError(f"cannot reach the Dask scheduler at {self.where} within {timeout:g} s: "
                                 f"{detail}") from None
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

    def check(self, protocol: Protocol) -> None:
        unshippable()  # the device is the workers' business: each records what it ran on

    def machines(self) -> set[tuple[str, str]]:
        return set(self.client.run(this_machine).values())

    def threads(self, protocol: Protocol) -> int | None:
        """The protocol's, else ``cores // slots`` when every host of the cluster gives the same (None, each
        worker's own share, when they differ)."""
        if protocol.threads:
            return protocol.threads
        slots = host_slots(self.client)
        shares = {cores // max(1, slots.get(host, 1)) for host, cores in self.client.run(_host_cores).values()}
        return max(1, shares.pop()) if len(shares) == 1 else None

    def warning(self, protocol: Protocol) -> str | None:
        return None  # each worker picks cores // (runs on its host); its manifest records it

    def describe(self) -> str:
        workers = self.client.scheduler_info(n_workers=-1)["workers"]
        return f"Dask cluster at {self.where} ({len(workers)} workers, {sum(host_slots(self.client).values())} slots)"

    def run(self, queue: WorkQueue, on_evaluate: OnEvaluate = None) -> Iterator[tuple[Run, RunRecord]]:
        import torch
        from distributed import as_completed

        context = {"code_version": code_version(), "grace": self.grace, "retries": self.retries,
                   "plugins": plugin_sources(), "dtype": str(torch.get_default_dtype()).removeprefix("torch.")}
        futures: dict[Any, Run] = {}
        pending = as_completed(loop=self.client.loop)

        def submit(run: Run) -> None:
            future = self.client.submit(run_on_dask_worker, run, context,
                                        key=f"pinnbench-{run.run_id}-{os.urandom(4).hex()}", pure=False)
            futures[future] = run
            pending.add(future)

        try:
            while True:
                while (run := queue.take(block=False)) is not None:
                    submit(run)
                if pending.is_empty():
                    run = queue.take(block=True)
                    if run is None:
                        return
                    submit(run)
                    continue
                future = next(pending)
                run = futures.pop(future)
                yield run, self._record(future, run)
        finally:
            if futures:
                self.client.cancel(list(futures))

    def _record(self, future: Any, run: Run) -> RunRecord:
        from distributed import KilledWorker

        try:
            return future.result()
        except PinnbenchError:
            raise
        except KilledWorker:
            error = "every Dask worker that ran it died (KilledWorker: see distributed.scheduler.allowed-failures)"
        except Exception as exc:  # noqa: BLE001 - a failing task costs its run only
            error = error_line(exc)
        return failed_record(run, "error", error, execution={"backend": self.name})

    def close(self) -> None:
        self.client.close()


def make_backend(jobs: int | None = None, scheduler: str | None = None, scheduler_file: str | None = None,
                 grace: float | None = None, retries: int | None = None, in_process: bool = False,
                 protocol: Protocol | None = None) -> Backend:
    """The backend the CLI options name: a Dask scheduler (address or file), else ``jobs`` worker processes,
    else in this process (``in_process``), else the default: when the protocol pins the threads per run (quick:
    one), as many isolated workers as fit the cores (:func:`default_jobs`), else one isolated worker with this
    process's threads. grace and retries (default 1) apply to isolated runs only."""
    if in_process and (jobs is not None or scheduler is not None or scheduler_file is not None):
        raise PinnbenchError("--in-process excludes --jobs and a Dask scheduler")
    if scheduler is not None or scheduler_file is not None:
        if jobs is not None:
            raise PinnbenchError("--jobs and a Dask scheduler exclude each other: the cluster's workers run the jobs")
        if scheduler is not None and scheduler_file is not None:
            raise PinnbenchError("give --scheduler or --scheduler-file, not both")
        return DaskBackend(scheduler, scheduler_file, grace=grace, retries=1 if retries is None else retries)
    if in_process:
        if grace is not None or retries is not None:
            raise PinnbenchError("--grace and --retries apply to isolated runs: drop --in-process")
        return InProcessBackend()
    retries = 1 if retries is None else retries
    if jobs is None and protocol is not None and (default := default_jobs(protocol)) > 1:
        jobs = default
    if jobs is not None:
        return ProcessBackend(jobs, grace=grace, retries=retries)
    return IsolatedBackend(grace=grace, retries=retries)


def default_jobs(protocol: Protocol) -> int:
    """Concurrent runs by default: cores // threads when the protocol pins its threads per run (two runs of one
    thread on two cores: measured faster than one run of two threads, and steadier under load; README.md), else
    1 (one worker with this process's threads)."""
    if not protocol.threads:
        return 1
    return max(1, len(available_cpus()) // protocol.threads)
