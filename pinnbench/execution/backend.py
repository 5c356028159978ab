"""Where the runs of a suite execute: the interface every backend implements, and the in-process backend.

A backend takes runs from the suite's :class:`~pinnbench.execution.queue.WorkQueue` and yields
``(run, record)`` as runs finish; the suite writes the records. The isolated, multi-process and Dask backends
are in :mod:`pinnbench.backends`.
"""
from __future__ import annotations

import functools
import os
from typing import Callable, Iterator

from .environment import environment
from .instance import resolve_device
from ..protocol import Protocol
from ..store import RunRecord
from .queue import WorkQueue
from .run import Run, execute

OnEvaluate = Callable[[Run, dict[str, float]], None] | None
"""Called with the run in progress and each trajectory point it records (a live progress line)."""


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

    def run(self, queue: WorkQueue, on_evaluate: OnEvaluate = None) -> Iterator[tuple[Run, RunRecord]]:
        """Take runs from ``queue`` until it is empty; yield each with its record as it finishes.

        on_evaluate: called with the run in progress and each of its trajectory points (a live progress line); a
        backend that executes several runs at once ignores it."""
        raise NotImplementedError

    def check(self, protocol: Protocol) -> None:
        """Refuse, with a one-line PinnbenchError and before anything is written, what this backend cannot run
        (a device this machine lacks)."""
        resolve_device(protocol.device)

    def machines(self) -> set[tuple[str, str]]:
        """(hostname, cpu model) of every machine runs may execute on."""
        return {this_machine()}

    def threads(self, protocol: Protocol) -> int | None:
        """Torch threads per run, as run keys record them (None: each worker decides, see the Dask backend)."""
        import torch

        return protocol.threads or torch.get_num_threads()

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


class InProcessBackend(Backend):
    """One run after another in this process: the cleanest timings, no protection against a plugin that hangs
    or kills its process (``--in-process``; the default is one isolated worker, :class:`~pinnbench.backends.
    IsolatedBackend`)."""

    name = "in-process"

    def run(self, queue: WorkQueue, on_evaluate: OnEvaluate = None) -> Iterator[tuple[Run, RunRecord]]:
        while (run := queue.take()) is not None:
            on_point = functools.partial(on_evaluate, run) if on_evaluate else None
            yield run, execute(run, on_evaluate=on_point, execution={"backend": self.name})

    def describe(self) -> str:
        return "in this process"


SequentialBackend = InProcessBackend  # the name before the isolated worker became the default
