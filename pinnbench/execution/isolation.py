"""Fault isolation: runs executed in a child Python process under a watchdog.

An :class:`IsolatedWorker` owns one child Python process (running :func:`child_main`) that executes
runs one after another with the very same :func:`pinnbench.execution.run.execute` as the in-process backend, so records
are bit-identical for the same seeds, device and thread count. The child reports through a socket (its manifest,
each trajectory point, the final record) and through a small shared heartbeat file (whether it is inside
optimizer code, since when, at which optimizer time and step). The parent watches:

- a run whose optimizer time (charged clock + time inside the current step) exceeds budget + grace, or that
  spends longer than max(budget + grace, 60 s) in one stretch of harness code (setup, one evaluation), is
  killed and recorded as ``timeout``;
- a child that dies (a signal such as SIGSEGV or SIGKILL, ``os._exit``) is recorded as ``error`` with how it
  died, or retried (``retries`` times) in a fresh child;

and the next run proceeds in a fresh child. Whatever was seen of a failed run (manifest, trajectory points up to
the failure, step and optimizer time) is kept in its record.
"""
from __future__ import annotations

import ctypes
import importlib
import mmap
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from hashlib import sha256
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Callable, Sequence

from ..errors import PinnbenchError
from .run import Run, RunObserver, RunSpec, error_line, failed_record, resolve
from ..protocol import Protocol
from ..registry import entries, load_plugin
from ..store import RunRecord

POLL_SECONDS = 0.1
START_TIMEOUT_SECONDS = 300.0
HARNESS_STRETCH_SECONDS = 60.0  # at least this long for one stretch of harness code (setup, evaluation)
IDLE, UNTIMED, TIMED = 0.0, 1.0, 2.0
_HEARTBEAT = struct.Struct("<4d")  # phase, optimizer clock at the phase change, monotonic time of it, step
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")

Plugin = tuple[str, str, str]  # ("file", path, source text) or ("module", importable name, "")


def default_grace(budget: float) -> float:
    """Seconds a run may run past its budget before it is stopped: max(10 s, 10 % of the budget)."""
    return max(10.0, 0.1 * budget)


def plugin_sources() -> tuple[Plugin, ...]:
    """What a fresh process must import to know the registered plugins: plugin files (with their text, for
    workers that do not share this file system) and modules of classes registered from Python code."""
    found: dict[str, Plugin] = {}
    for kind in ("problem", "optimizer"):
        for entry in entries(kind).values():
            if entry.source == "plugin" and Path(entry.location).is_file():
                found.setdefault(entry.location, ("file", entry.location, Path(entry.location).read_text()))
            elif entry.source == "python" and entry.cls.__module__ != "__main__":
                found.setdefault(entry.cls.__module__, ("module", entry.cls.__module__, ""))
    return tuple(found.values())


def unshippable() -> None:
    """Refuse (one line) to isolate runs when a registered class lives in ``__main__``: a fresh process cannot
    import it. Put it in a file and load it with ``--plugin`` / :func:`pinnbench.registry.load_plugin`."""
    for kind in ("problem", "optimizer"):
        for name, entry in entries(kind).items():
            if entry.source == "python" and entry.cls.__module__ == "__main__":
                raise PinnbenchError(f"{kind} {name!r} is defined in __main__, which a worker process cannot "
                                     f"import: move it into a file and load it with load_plugin(PATH), or run "
                                     f"in this process (in_process=True, --in-process)")


def load_plugins(plugins: Sequence[Plugin]) -> None:
    """Import what :func:`plugin_sources` listed (a file missing here is written from its text first)."""
    for kind, name, text in plugins:
        if kind == "module":
            importlib.import_module(name)
            continue
        path = Path(name)
        if not (path.is_file() and path.read_text() == text):
            folder = Path(tempfile.gettempdir()) / "pinnbench-plugins" / sha256(text.encode()).hexdigest()[:16]
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / Path(name).name
            path.write_text(text)
        load_plugin(path)


class Heartbeat:
    """A 32-byte file shared by a worker's parent and child through mmap: where the run is and since when."""

    def __init__(self, path: str | Path, create: bool = False) -> None:
        self.path = Path(path)
        if create:
            self.path.write_bytes(bytes(_HEARTBEAT.size))
        with open(self.path, "r+b") as handle:
            self._map = mmap.mmap(handle.fileno(), _HEARTBEAT.size)

    def write(self, phase: float, clock: float, step: int) -> None:
        _HEARTBEAT.pack_into(self._map, 0, phase, clock, time.monotonic(), float(step))

    def read(self) -> tuple[float, float, float, int]:
        """(phase, clock, since, step), read until two reads agree (the writer never blocks)."""
        previous = None
        while True:
            current = _HEARTBEAT.unpack_from(self._map, 0)
            if current == previous:
                return current[0], current[1], current[2], int(current[3])
            previous = current

    def close(self) -> None:
        self._map.close()


class _ChildObserver(RunObserver):
    def __init__(self, conn: Connection, heartbeat: Heartbeat) -> None:
        self.conn, self.heartbeat = conn, heartbeat

    def started(self, manifest: dict[str, Any]) -> None:
        self.conn.send(("manifest", manifest))

    def timed(self, clock: float, step: int) -> None:
        self.heartbeat.write(TIMED, clock, step)

    def untimed(self, clock: float, step: int) -> None:
        self.heartbeat.write(UNTIMED, clock, step)

    def evaluated(self, point: dict[str, float]) -> None:
        self.conn.send(("point", point))


def _death(returncode: int) -> str:
    if returncode < 0:
        name = signal.Signals(-returncode).name
        hint = " (killed from outside, or out of memory)" if name == "SIGKILL" else ""
        return f"killed by signal {name}{hint}"
    return f"exited with code {returncode}"


class IsolatedWorker:
    """One child process executing runs one at a time under a watchdog; restarted after a kill or a crash.

    threads: torch/OpenMP/MKL threads of the child (None: the library default). cpus: CPU affinity of the
    child (None: not pinned). execution: facts for the manifests (backend, worker name, concurrent runs).
    """

    def __init__(self, threads: int | None = None, cpus: Sequence[int] | None = None,
                 execution: dict[str, Any] | None = None) -> None:
        self.threads = threads
        self.cpus = tuple(cpus) if cpus else None
        self.execution = dict(execution or {})
        self.aborted = False
        self._proc: subprocess.Popen | None = None
        self._conn: Connection | None = None
        self._heartbeat: Heartbeat | None = None

    def __enter__(self) -> "IsolatedWorker":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def pid(self) -> int | None:
        """The child's process id (None before the first run or after a crash)."""
        return self._proc.pid if self._proc is not None else None

    def _start(self) -> None:
        import pinnbench

        parent_sock, child_sock = socket.socketpair()
        handle, path = tempfile.mkstemp(prefix="pinnbench-heartbeat-")
        os.close(handle)
        self._heartbeat = Heartbeat(path, create=True)
        env = dict(os.environ)
        if self.threads:
            env.update({name: str(self.threads) for name in THREAD_VARIABLES})
        root = str(Path(pinnbench.__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
        command = [sys.executable, "-c", "import sys; from pinnbench.execution.isolation import child_main; "
                   "child_main(sys.argv[1:])", str(child_sock.fileno()), path,
                   str(self.threads or 0), ",".join(map(str, self.cpus or ())) or "-", str(os.getpid())]
        self._proc = subprocess.Popen(command, pass_fds=(child_sock.fileno(),), env=env,
                                      stdin=subprocess.DEVNULL, stdout=2, start_new_session=True)
        child_sock.close()
        self._conn = Connection(parent_sock.detach())
        try:
            if not self._conn.poll(START_TIMEOUT_SECONDS):
                self.close()
                raise PinnbenchError(f"a worker process did not start within {START_TIMEOUT_SECONDS:g} s")
            self._conn.recv()
        except (EOFError, OSError) as exc:
            code = self._proc.wait()
            self._discard()
            raise PinnbenchError(f"a worker process failed to start: it {_death(code)}") from exc
        finally:
            os.unlink(path)  # both sides have it mapped (or gave up): nothing is left behind

    def _discard(self) -> None:
        """Forget a dead or killed child."""
        if self._conn is not None:
            self._conn.close()
        if self._heartbeat is not None:
            self._heartbeat.close()
        self._proc = self._conn = self._heartbeat = None

    def _kill(self) -> int:
        assert self._proc is not None
        self._proc.kill()
        return self._proc.wait()

    def close(self) -> None:
        """Stop the child (asks it to exit, kills it if it does not)."""
        proc, conn = self._proc, self._conn
        if proc is None or conn is None:
            return
        try:
            conn.send(("exit",))
            proc.wait(timeout=5)
        except (OSError, ValueError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait()
        self._discard()

    def abort(self) -> None:
        """Kill the child now (from any thread); the run in progress, if any, ends with an error."""
        self.aborted = True
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.kill()

    def run(self, run: Run | RunSpec, protocol: Protocol | None = None, grace: float | None = None,
            retries: int = 1, *, plugins: Sequence[Plugin] | None = None, default_dtype: str | None = None,
            on_point: Callable[[dict[str, float]], None] | None = None) -> RunRecord:
        """Execute ``run`` in the child and return its record; never raises for a failure of the run.

        run: a resolved Run, or a RunSpec with its ``protocol`` (resolved here with this worker's threads).
        grace: seconds allowed past the budget (default :func:`default_grace`). retries: how many times a run
        whose process died is tried again in a fresh process (a timeout or a Python error is not retried).
        plugins, default_dtype: as in this process unless given (a Dask worker gets them from the suite's
        process). on_point: called with each trajectory point as the child reports it (a live progress line).
        """
        import torch

        if not isinstance(run, Run):
            if protocol is None:
                raise TypeError("IsolatedWorker.run(spec) needs the protocol")
            run = resolve(run, protocol, self.threads)
        grace = default_grace(run.protocol.budget_for(run.spec.problem)) if grace is None else grace
        request = {"plugins": plugin_sources() if plugins is None else tuple(plugins),
                   "dtype": default_dtype or str(torch.get_default_dtype()).removeprefix("torch."),
                   "on_point": on_point}
        attempt = 0
        while True:
            attempt += 1
            record, died = self._attempt(run, grace, request)
            if self.aborted:
                raise PinnbenchError("the suite was stopped")
            if not died or attempt > retries:
                break
        record.manifest.setdefault("execution", dict(self.execution))["attempts"] = attempt
        return record

    def _attempt(self, run: Run, grace: float, request: dict[str, Any]) -> tuple[RunRecord, bool]:
        if self._proc is None or self._proc.poll() is not None:
            if self._proc is not None:
                self._discard()
            self._start()
        assert self._conn is not None and self._heartbeat is not None and self._proc is not None
        if self.aborted:
            self._proc.kill()
        self._heartbeat.write(IDLE, 0.0, 0)
        try:
            self._conn.send(("run", run, request["plugins"], self.execution, request["dtype"]))
        except OSError:  # it died already: seen below
            pass
        budget = run.protocol.budget_for(run.spec.problem)
        limit = budget + grace
        harness_limit = max(limit, HARNESS_STRETCH_SECONDS)
        manifest: dict[str, Any] | None = None
        points: list[dict[str, float]] = []

        def failed(status: str, error: str, charged: float | None = None) -> RunRecord:
            _, clock, _, step = self._heartbeat.read() if self._heartbeat else (0.0, 0.0, 0.0, 0)
            return failed_record(run, status, error, manifest, points, steps=step,
                                 clock=clock if charged is None else charged,
                                 execution=self.execution if manifest is None else None)

        while True:
            try:
                if self._conn.poll(POLL_SECONDS):
                    kind, *payload = self._conn.recv()
                    if kind == "manifest":
                        manifest = payload[0]
                    elif kind == "point":
                        points.append(payload[0])
                        if request["on_point"]:
                            request["on_point"](payload[0])
                    elif kind == "done":
                        return payload[0], False
                    elif kind == "failed":
                        return failed("error", payload[0]), False
            except (EOFError, OSError):  # the child closed its end: it is dying
                try:
                    self._proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self._kill()
            if self._proc.poll() is not None:
                record = failed("error", f"worker process died during the run: {_death(self._proc.returncode)}")
                self._discard()
                return record, True
            phase, clock, since, _ = self._heartbeat.read()
            inside = time.monotonic() - since
            if phase == TIMED and clock + inside > limit:
                error = (f"stopped after {clock + inside:.1f} s of optimizer time: budget {budget:g} s "
                         f"+ grace {grace:g} s exceeded")
                charged = clock + inside
            elif phase == UNTIMED and inside > harness_limit:
                error = f"stopped after {inside:.1f} s in one stretch of setup or evaluation (limit {harness_limit:g} s)"
                charged = clock
            else:
                continue
            self._kill()
            record = failed("timeout", error, charged)
            self._discard()
            return record, False


def _die_with_parent(parent: int) -> None:
    """Make sure the child never outlives its parent (a hung plugin would otherwise run forever)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG (Linux)
    except (OSError, AttributeError):
        pass

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    if os.getppid() != parent:
        os._exit(1)
    threading.Thread(target=watch, name="pinnbench-parent-watch", daemon=True).start()


def child_main(argv: Sequence[str]) -> None:
    """The child's loop: receive runs, execute them, report; exit on request or when the parent goes away."""
    fd, heartbeat_path, threads, cpus, parent = argv
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when its children stop
    _die_with_parent(int(parent))
    if cpus != "-" and hasattr(os, "sched_setaffinity"):  # before any OpenMP/MKL thread exists
        os.sched_setaffinity(0, [int(c) for c in cpus.split(",")])
    import torch

    from .run import execute

    if int(threads):
        torch.set_num_threads(int(threads))
    conn = Connection(int(fd))
    heartbeat = Heartbeat(heartbeat_path)
    conn.send(("ready", os.getpid()))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message[0] == "exit":
            return
        _, run, plugins, execution, dtype = message
        heartbeat.write(UNTIMED, 0.0, 0)
        torch.set_default_dtype(getattr(torch, dtype))
        try:
            load_plugins(plugins)
            record = execute(run, observer=_ChildObserver(conn, heartbeat), execution=execution)
            reply: tuple[Any, ...] = ("done", record)
        except BaseException as exc:  # noqa: BLE001 - e.g. a plugin that fails to import here: the run's failure
            reply = ("failed", error_line(exc))
        heartbeat.write(IDLE, 0.0, 0)
        conn.send(reply)
