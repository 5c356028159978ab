"""On-disk cache of computed reference solutions, keyed by the parameters that produced them.

A cache entry is one ``.npz`` file named ``<name>-<key>.npz`` where ``key`` hashes the parameters. It stores the
arrays, the parameters (as JSON) and a SHA-256 checksum over the arrays' names, dtypes, shapes and bytes.
An entry that is missing, unreadable, for other parameters, or whose checksum does not match is recomputed and
rewritten. Writes go to a temporary file in the same folder followed by an atomic rename, so a reader never sees
a half-written entry, and two processes computing the same entry at once are harmless.

The folder is ``$PINNBENCH_CACHE`` if set, else ``~/.cache/pinnbench``.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np

CACHE_ENV = "PINNBENCH_CACHE"
FORMAT_VERSION = 1
_META_PARAMS = "__params__"
_META_CHECKSUM = "__checksum__"

Arrays = dict[str, np.ndarray]


def cache_dir() -> Path:
    """The cache folder: ``$PINNBENCH_CACHE`` if set and non-empty, else ``~/.cache/pinnbench``."""
    configured = os.environ.get(CACHE_ENV, "")
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "pinnbench"


def _canonical(params: dict[str, Any]) -> str:
    return json.dumps({"format": FORMAT_VERSION, **params}, sort_keys=True, separators=(",", ":"))


def cache_path(name: str, params: dict[str, Any], folder: Path | None = None) -> Path:
    """Where the entry for ``name`` computed with ``params`` (JSON-serialisable) lives."""
    key = hashlib.sha256(_canonical(params).encode()).hexdigest()[:16]
    return (cache_dir() if folder is None else Path(folder)) / f"{name}-{key}.npz"


def checksum(arrays: Arrays) -> str:
    """SHA-256 over the arrays' names, dtypes, shapes and contents, in name order."""
    digest = hashlib.sha256()
    for key in sorted(arrays):
        a = np.ascontiguousarray(arrays[key])
        digest.update(f"{key}|{a.dtype.str}|{a.shape}|".encode())
        digest.update(a.tobytes())
    return digest.hexdigest()


def read_entry(path: Path, params: dict[str, Any]) -> Arrays | None:
    """The arrays stored at ``path`` if the file is intact and was computed with ``params``; else None."""
    try:
        with np.load(path, allow_pickle=False) as data:
            stored = {key: data[key] for key in data.files}
    except FileNotFoundError:
        return None
    except Exception:  # noqa: BLE001 - any unreadable file (truncated zip, garbage bytes) is a corrupt entry
        return None
    params_json = stored.pop(_META_PARAMS, None)
    stored_sum = stored.pop(_META_CHECKSUM, None)
    if params_json is None or stored_sum is None or str(params_json) != _canonical(params):
        return None
    if str(stored_sum) != checksum(stored):
        return None
    return stored


def write_entry(path: Path, params: dict[str, Any], arrays: Arrays) -> None:
    """Write ``arrays`` with their parameters and checksum to ``path`` atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {key: np.asarray(value) for key, value in arrays.items()}
    meta = {_META_PARAMS: np.array(_canonical(params)), _META_CHECKSUM: np.array(checksum(payload))}
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=".npz.tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; give the entry the usual permissions
        with os.fdopen(fd, "wb") as handle:
            np.savez(handle, **payload, **meta)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def cached(name: str, params: dict[str, Any], compute: Callable[[], Arrays], folder: Path | None = None
           ) -> Arrays:
    """The arrays ``compute()`` returns for ``params``, read from the cache when an intact entry exists.

    Otherwise they are computed and stored; a folder that cannot be written only costs a warning.
    """
    path = cache_path(name, params, folder)
    arrays = read_entry(path, params)
    if arrays is not None:
        return arrays
    if path.exists():
        warnings.warn(f"cache entry {path} is corrupt or stale: recomputing it", RuntimeWarning, stacklevel=2)
    arrays = {key: np.asarray(value) for key, value in compute().items()}
    try:
        write_entry(path, params, arrays)
    except OSError as exc:
        warnings.warn(f"could not write the cache entry {path} ({exc}); set {CACHE_ENV} to a writable folder",
                      RuntimeWarning, stacklevel=2)
    return arrays
