"""Run claims: lock files that keep two suites writing to one results folder from doing the same run twice.

A suite claims a run before executing it by creating ``<results>/.locks/<run key>.lock`` with ``O_CREAT | O_EXCL``
(atomic, also on NFS v3+); the file names the holder (host, pid) and a background thread refreshes its mtime.
A lock is stale when its holder is a dead process on this host, or when its mtime is older than ``stale_after``
(a holder on another host, or a frozen one, stops refreshing it). Stale locks are broken under a short-lived
folder mutex, so two suites that find the same stale lock never remove each other's fresh one.
"""
from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from pathlib import Path

from ..store import pid_alive

HEARTBEAT_SECONDS = 20.0
STALE_AFTER_SECONDS = 120.0

_LIVE_HERE: set[str] = set()  # the nonces of this process's live Claims (two suites may share a process)
_LIVE_HERE_LOCK = threading.Lock()


class Claims:
    """The lock files a suite holds in one results folder; use as a context manager (releases everything)."""

    def __init__(self, folder: str | Path, stale_after: float = STALE_AFTER_SECONDS,
                 heartbeat: float = HEARTBEAT_SECONDS) -> None:
        self.folder = Path(folder) / ".locks"
        self.stale_after = stale_after
        self.host = socket.gethostname()
        self._held: dict[str, Path] = {}
        self._mutex = threading.Lock()
        self._stop = threading.Event()
        self._heartbeat = heartbeat
        self._thread: threading.Thread | None = None
        self.nonce = uuid.uuid4().hex  # written into every lock it takes: this process tells its own live ones
        with _LIVE_HERE_LOCK:
            _LIVE_HERE.add(self.nonce)

    def __enter__(self) -> "Claims":
        self._thread = threading.Thread(target=self._refresh, name="pinnbench-claims", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        for key in list(self._held):
            self.release(key)
        with _LIVE_HERE_LOCK:
            _LIVE_HERE.discard(self.nonce)

    def _path(self, key: str) -> Path:
        return self.folder / f"{key}.lock"

    def claim(self, key: str) -> bool:
        """Take the lock of run ``key``; False when another live suite holds it."""
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self._path(key)
        for _ in range(2):
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                if not self._break_if_stale(path):
                    return False
                continue
            with os.fdopen(fd, "w") as handle:
                json.dump({"host": self.host, "pid": os.getpid(), "nonce": self.nonce, "since": time.time()},
                          handle)
            with self._mutex:
                self._held[key] = path
            return True
        return False

    def release(self, key: str) -> None:
        """Remove the lock of run ``key`` if this suite holds it."""
        with self._mutex:
            path = self._held.pop(key, None)
        if path is not None:
            path.unlink(missing_ok=True)

    def is_stale(self, path: Path) -> bool:
        """A lock whose holder died on this host, or that nobody refreshed for ``stale_after`` seconds."""
        try:
            if time.time() - path.stat().st_mtime > self.stale_after:
                return True
            holder = json.loads(path.read_text())
        except FileNotFoundError:
            return True
        except (OSError, ValueError):  # young and being written right now
            return False
        if holder.get("host") != self.host or not isinstance(holder.get("pid"), int):
            return False
        if holder["pid"] == os.getpid():  # held by a suite of this very process, or left behind by one
            with _LIVE_HERE_LOCK:
                return holder.get("nonce") not in _LIVE_HERE
        return not pid_alive(holder["pid"])

    def _break_if_stale(self, path: Path) -> bool:
        """Remove ``path`` if it is stale, under the folder's breaker mutex; True if it is gone now."""
        breaker = self.folder / ".breaker"
        try:
            fd = os.open(breaker, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                if time.time() - breaker.stat().st_mtime > 30:  # a breaker that died inside this tiny section
                    breaker.unlink(missing_ok=True)
            except FileNotFoundError:
                pass
            return False
        os.close(fd)
        try:
            if not self.is_stale(path):
                return False
            path.unlink(missing_ok=True)
            return True
        finally:
            breaker.unlink(missing_ok=True)

    def _refresh(self) -> None:
        while not self._stop.wait(self._heartbeat):
            with self._mutex:
                paths = list(self._held.values())
            for path in paths:
                try:
                    os.utime(path)
                except FileNotFoundError:
                    pass
