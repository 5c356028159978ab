"""The work queue of a suite: the runs it still has to execute, handed out one at a time to a backend's workers."""
from __future__ import annotations

import sys
import threading
import time
from pathlib import Path
from typing import Callable

from .. import store
from .claims import Claims
from .run import Run


class WorkQueue:
    """Runs handed out one at a time (thread-safe), each only once this suite holds its claim (lock file).

    A run claimed by another live suite is put back and waited for at the end; a run found finished once claimed
    (another suite wrote it meanwhile) is skipped. accept: which stored runs count as finished; before: with a
    suite that does not resume, the results folder as it started (only runs written since count).
    """

    def __init__(self, pending: list[Run], claims: Claims, out: Path, accept: Callable[[store.Manifest], bool],
                 before: store.Snapshot | None = None, poll: float = 1.0) -> None:
        self._pending = list(pending)
        self._claims = claims
        self._out = out
        self._accept = accept
        self._before = before
        self._poll = poll
        self._skipped: list[Run] = []
        self._lock = threading.Lock()  # guards the pending runs (held while waiting for other suites)
        self._skipped_lock = threading.Lock()
        self._waiting_said = False

    def _finished_elsewhere(self, run: Run) -> bool:
        return store.holds(self._out, run.identity, self._accept, self._before)

    def take(self, block: bool = True) -> Run | None:
        """The next run to execute (claimed), or None when none is left; with ``block``, waits for the runs
        other suites hold until they finish there (skipped) or their claims go stale (handed out)."""
        with self._lock:
            while self._pending:
                for index, run in enumerate(self._pending):
                    if not self._claims.claim(run.key):
                        continue
                    del self._pending[index]
                    if self._finished_elsewhere(run):
                        self._claims.release(run.key)
                        with self._skipped_lock:
                            self._skipped.append(run)
                        break
                    return run
                else:
                    if not block:
                        return None
                    if not self._waiting_said:
                        print(f"pinnbench: waiting for {len(self._pending)} runs that another suite holds in "
                              f"{self._out}", file=sys.stderr, flush=True)
                        self._waiting_said = True
                    time.sleep(self._poll)
            return None

    def done(self, run: Run) -> None:
        """Release the claim of a run whose record has been written (or given up)."""
        self._claims.release(run.key)

    def drain_skipped(self) -> list[Run]:
        """The runs found finished by another suite since the last call."""
        with self._skipped_lock:
            skipped, self._skipped = self._skipped, []
        return skipped
