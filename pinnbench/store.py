"""The results store: one ``.npz`` file per run, written atomically, read back defensively, and every rule of a
results folder (file names, where a run goes, what counts as done, temporary files, the loaders into DataFrames).

A run file holds the manifest (JSON), the trajectory (one entry per evaluation point), the per-step scalars the
optimizer reported (``info``) and its per-step vectors every k steps (``spectrum``), all as numpy arrays.
A file is written to a temporary name and renamed into place, so a results folder never holds a half-written run;
the temporary file of a killed write is removed by the next suite. A file that cannot be read (empty, not a
zip, a corrupt member, a manifest that is not an object or has no run key, a ragged trajectory) is skipped by
every reader with one warning naming it (once per file and process).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

import numpy as np

from .errors import PinnbenchError

if TYPE_CHECKING:
    import pandas as pd

TRAJECTORY_COLUMNS = ("step", "time", "loss", "l2_abs", "l2_rel", "residual_evals", "gradient_evals",
                      "jacobian_evals")
IDENTITY_COLUMNS = ("run_id", "problem", "problem_name", "net", "optimizer", "optimizer_name", "seed", "protocol", "protocol_id",
                    "device", "status", "stop_reason")
STATUSES = ("ok", "diverged", "error", "timeout")
"""How a run ended: ok (budget, step cap or convergence), diverged (non-finite loss or error), error (it raised,
broke the optimizer contract, or its process died), timeout (stopped at budget + grace)."""
STALE_TEMPORARY_SECONDS = 3600.0

Manifest = dict[str, Any]


class UnreadableRun(PinnbenchError):
    """A run file that cannot be read back (corrupt, truncated, not a run file)."""


class UnreadableRunWarning(UserWarning):
    """A reader skipped a run file it cannot read."""


@dataclass
class RunRecord:
    """Everything recorded about one (problem, optimizer, seed) run."""

    manifest: dict[str, Any]
    trajectory: dict[str, list[float]] = field(default_factory=lambda: {c: [] for c in TRAJECTORY_COLUMNS})
    info: dict[str, list[float]] = field(default_factory=dict)
    info_steps: list[int] = field(default_factory=list)
    spectra: dict[str, list[np.ndarray]] = field(default_factory=dict)
    spectrum_steps: list[int] = field(default_factory=list)

    def add_point(self, **values: float) -> None:
        for column in TRAJECTORY_COLUMNS:
            self.trajectory[column].append(values[column])

    def add_info(self, step: int, info: dict[str, float]) -> None:
        n = len(self.info_steps)
        for key in info.keys() - self.info.keys():
            self.info[key] = [float("nan")] * n
        for key, column in self.info.items():
            value = info.get(key, float("nan"))
            column.append(float(value) if isinstance(value, (int, float, np.floating, np.integer)) else float("nan"))
        self.info_steps.append(step)

    def add_spectrum(self, step: int, spectrum: dict[str, Any]) -> None:
        for key, vector in spectrum.items():
            self.spectra.setdefault(key, [np.zeros(0)] * len(self.spectrum_steps))
        for key, column in self.spectra.items():
            vector = spectrum.get(key)
            column.append(np.zeros(0) if vector is None else np.asarray(_to_numpy(vector), dtype=np.float64).ravel())
        self.spectrum_steps.append(step)


def _to_numpy(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):
        return value.detach().cpu().numpy()
    return np.asarray(value)


# ---------------------------------------------------------------- names


def _safe(text: Any, limit: int) -> str:
    """File-name-safe text: unsafe characters replaced, no leading dot, at most ``limit`` characters."""
    safe = re.sub(r"[^A-Za-z0-9_.=,+-]", "_", str(text)).lstrip(".")
    if len(safe) > limit:
        safe = safe[:limit - 9] + "~" + hashlib.sha256(safe.encode()).hexdigest()[:8]
    return safe or "_"


def run_filename(manifest: Manifest) -> str:
    """``problem__optimizer-label__s<seed>__<key>.npz``: unsafe characters replaced, no leading dot, long labels
    shortened (the key keeps names unique), at most 230 characters."""
    return (f"{_safe(manifest['problem'], 80)}__{_safe(manifest['optimizer'], 100)}__s{int(manifest['seed'])}__"
            f"{_safe(manifest['run_key'][:12], 12)}.npz")


_HOST = _safe(socket.gethostname().replace(".", "_"), 40)


def _temporary_name(manifest: Manifest) -> str:
    return f".{_safe(manifest['run_key'][:12], 12)}.{_HOST}.{os.getpid()}.tmp"


def machine(manifest: Manifest) -> tuple[str, str]:
    """(hostname, cpu model) of the machine a run was made on."""
    env = manifest.get("environment") or {}
    if not isinstance(env, dict):
        env = {}
    return str(env.get("hostname")), str(env.get("cpu"))


# ---------------------------------------------------------------- writing


def write_run(record: RunRecord, folder: str | Path) -> Path:
    """Write ``record`` atomically into ``folder``; returns the file's path. On failure (a full disk) nothing is
    left behind, not even the temporary file, and the OSError is raised."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / run_filename(record.manifest)
    arrays: dict[str, np.ndarray] = {"manifest": np.array(json.dumps(record.manifest, default=str))}
    for key, values in record.trajectory.items():
        arrays[f"trajectory.{key}"] = np.asarray(values, dtype=np.float64)
    arrays["info.step"] = np.asarray(record.info_steps, dtype=np.int64)
    for key, values in record.info.items():
        arrays[f"info.{key}"] = np.asarray(values, dtype=np.float64)
    arrays["spectrum.step"] = np.asarray(record.spectrum_steps, dtype=np.int64)
    for key, vectors in record.spectra.items():
        arrays[f"spectrum.{key}.values"] = np.concatenate(vectors) if vectors else np.zeros(0)
        arrays[f"spectrum.{key}.offsets"] = np.cumsum([0] + [len(v) for v in vectors]).astype(np.int64)
    tmp = folder / _temporary_name(record.manifest)
    try:
        with open(tmp, "wb") as handle:
            np.savez_compressed(handle, **arrays)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def remove_stale_temporaries(folder: str | Path) -> list[Path]:
    """Remove the temporary files of writes that were killed: written by a process of this host that is gone,
    or older than an hour. Returns what was removed."""
    removed = []
    folder = Path(folder)
    for tmp in [*folder.glob(".*.tmp"), *folder.glob("hosts/*/.*.tmp")]:
        parts = tmp.name[1:-len(".tmp")].split(".")
        new_format = len(parts) == 3 and re.fullmatch(r"[0-9a-f]{12}", parts[0]) is not None
        host = parts[1] if new_format else _HOST  # older files: .<name>.npz.<pid>.tmp, written on this host
        try:
            pid = int(parts[-1])
            old = time.time() - tmp.stat().st_mtime > STALE_TEMPORARY_SECONDS
        except (ValueError, OSError):
            continue
        if old or (host == _HOST and pid != os.getpid() and not pid_alive(pid)):
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` of this host is alive."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


def prepare_folder(folder: str | Path) -> Path:
    """Create the results folder, or a one-line PinnbenchError if it cannot hold runs (a file, under a file,
    read-only, a name too long): nothing is created then."""
    folder = Path(folder)

    def refuse(why: str) -> PinnbenchError:
        return PinnbenchError(f"results folder {str(folder)!r} cannot be used: {why}")

    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        raise refuse(f"{str(existing)!r} is a file, not a folder")
    try:
        limit = os.pathconf(existing, "PC_NAME_MAX")
    except (OSError, ValueError):
        limit = 255
    for part in folder.parts:
        if len(os.fsencode(part)) > limit:
            raise refuse(f"the name {part[:20]!r}... is {len(part)} characters long, over the limit of {limit}")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle, probe = tempfile.mkstemp(prefix=".pinnbench-write-test.", dir=folder)  # unique per caller
        os.close(handle)
        os.unlink(probe)
    except OSError as exc:
        raise refuse(exc.strerror or str(exc)) from None
    return folder


def save_elsewhere(record: RunRecord) -> Path | None:
    """Write a run that its results folder could not take (a full disk) into the temporary folder; None if that
    fails too."""
    try:
        return write_run(record, Path(tempfile.gettempdir()) / "pinnbench-unsaved")
    except OSError:
        return None


# ---------------------------------------------------------------- reading


def _check(condition: bool, why: str) -> None:
    if not condition:
        raise UnreadableRun(why)


def _read(path: Path, manifest_only: bool) -> RunRecord:
    with np.load(path, allow_pickle=False) as data:
        manifest = json.loads(str(data["manifest"]))
        _check(isinstance(manifest, dict), "the manifest is not a JSON object")
        for key, kind in (("run_key", str), ("problem", str), ("optimizer", str), ("seed", int)):
            _check(isinstance(manifest.get(key), kind), f"the manifest has no {key} ({kind.__name__})")
        record = RunRecord(manifest)
        if manifest_only:
            return record
        for key in data.files:
            kind, _, name = key.partition(".")
            if kind == "trajectory":
                record.trajectory[name] = data[key].tolist()
            elif kind == "info" and name != "step":
                record.info[name] = data[key].tolist()
        lengths = {len(record.trajectory.get(c, ())) for c in TRAJECTORY_COLUMNS}
        _check(len(lengths) == 1 and record.trajectory.keys() >= set(TRAJECTORY_COLUMNS),
               "its trajectory columns have different lengths")
        record.info_steps = data["info.step"].tolist()
        _check(all(len(v) == len(record.info_steps) for v in record.info.values()),
               "its per-step info columns have different lengths")
        record.spectrum_steps = data["spectrum.step"].tolist()
        for key in data.files:
            if key.startswith("spectrum.") and key.endswith(".values"):
                name = key[len("spectrum."):-len(".values")]
                values, offsets = data[key], data[f"spectrum.{name}.offsets"]
                _check(len(offsets) == len(record.spectrum_steps) + 1 and offsets[0] == 0
                       and offsets[-1] == len(values) and bool(np.all(np.diff(offsets) >= 0)),
                       f"its spectrum {name!r} has inconsistent offsets")
                record.spectra[name] = [values[a:b] for a, b in zip(offsets[:-1], offsets[1:])]
    return record


def read_run(path: str | Path, manifest_only: bool = False) -> RunRecord:
    """Read one run file back into a :class:`RunRecord` (only the manifest checked and read with
    ``manifest_only``); an :class:`UnreadableRun` naming the file if it cannot."""
    try:
        return _read(Path(path), manifest_only)
    except UnreadableRun as exc:
        raise UnreadableRun(f"run file {str(path)!r} is unreadable: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - untrusted bytes: whatever numpy, zlib or json raise
        detail = str(exc).splitlines()[0] if str(exc) else ""
        raise UnreadableRun(f"run file {str(path)!r} is unreadable: {type(exc).__name__}: {detail}") from None


_WARNED: set[tuple[str, int, int]] = set()


def _warn_unreadable(path: Path, exc: UnreadableRun) -> None:
    """One warning per unreadable file (and version of it) per process, whichever reader meets it first."""
    try:
        stat = path.stat()
        key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    except OSError:
        key = (str(path), 0, 0)
    if key not in _WARNED:
        _WARNED.add(key)
        warnings.warn(f"skipping {str(exc).removeprefix('run file ')}", UnreadableRunWarning, stacklevel=3)


def run_files(folder: str | Path) -> list[Path]:
    """The run files of a results folder (recursively), sorted."""
    folder = Path(folder)
    return sorted(p for p in folder.rglob("*.npz") if not p.name.startswith("."))


def records(folder: str | Path, manifest_only: bool = False) -> Iterator[tuple[Path, RunRecord]]:
    """(path, record) of every readable run file in ``folder``; the others are skipped with a warning."""
    for path in run_files(folder):
        try:
            yield path, read_run(path, manifest_only)
        except UnreadableRun as exc:
            _warn_unreadable(path, exc)


def stored_manifests(folder: str | Path) -> list[Manifest]:
    """The manifests of every readable run file in ``folder`` (recursively)."""
    return [record.manifest for _, record in records(folder)]


def _quiet_manifest(path: Path) -> Manifest | None:
    try:
        return read_run(path).manifest if path.is_file() else None
    except UnreadableRun:
        return None


def destination(out: str | Path, record: RunRecord) -> Path:
    """``out``, or ``out/hosts/<host>`` when ``out`` holds this very run made on another machine: never lose it."""
    out = Path(out)
    existing = _quiet_manifest(out / run_filename(record.manifest))
    if existing is None or machine(existing) == machine(record.manifest):
        return out
    return out / "hosts" / _safe(machine(record.manifest)[0], 64)


Snapshot = dict[Path, tuple[int, int]]


def snapshot(folder: str | Path) -> Snapshot:
    """(mtime, size) of every run file now in ``folder``: what a suite found when it started."""
    found: Snapshot = {}
    for path in run_files(folder):
        try:
            stat = path.stat()
        except OSError:
            continue
        found[path] = (stat.st_mtime_ns, stat.st_size)
    return found


def holds(out: str | Path, manifest: Manifest, accept: Callable[[Manifest], bool],
          before: Snapshot | None = None) -> bool:
    """Whether ``out`` (or one of its ``hosts/`` folders) holds the finished run of ``manifest`` (same name and
    key) that ``accept`` takes; with ``before``, only a file written since that snapshot counts (a suite that
    does not resume still never repeats a run another suite just finished)."""
    out = Path(out)
    name = run_filename(manifest)
    for path in (out / name, *(folder / name for folder in out.glob("hosts/*"))):
        if before is not None and path in before:
            try:
                stat = path.stat()
            except OSError:
                continue
            if before[path] == (stat.st_mtime_ns, stat.st_size):
                continue
        found = _quiet_manifest(path)
        if found is not None and found.get("run_key") == manifest["run_key"] and accept(found):
            return True
    return False


def _identity(manifest: Manifest) -> dict[str, Any]:
    identity = {c: manifest.get(c) for c in IDENTITY_COLUMNS}
    identity["problem_name"] = identity["problem_name"] or identity["problem"]
    layers = manifest.get("net") or manifest.get("layers")
    identity["net"] = "-".join(str(n) for n in layers) if isinstance(layers, list) else None
    return identity


def load_results(folder: str | Path) -> "pd.DataFrame":
    """One tidy DataFrame of every recorded trajectory point of every run in ``folder``."""
    import pandas as pd

    frames = []
    for path, record in records(folder):
        frame = pd.DataFrame(record.trajectory)
        for key, value in _identity(record.manifest).items():
            frame[key] = value
        frame["file"] = str(path)
        frames.append(frame)
    columns = [*IDENTITY_COLUMNS, *TRAJECTORY_COLUMNS, "file"]
    if not frames:
        return pd.DataFrame(columns=columns)
    out = pd.concat(frames, ignore_index=True)[columns]
    return out.astype({"step": "int64", "seed": "int64"})


def load_runs(folder: str | Path) -> "pd.DataFrame":
    """One row per run: identity, final step/time/loss/errors, error message, hyperparameters, manifest."""
    import pandas as pd

    rows = []
    for path, record in records(folder):
        m = record.manifest
        final = {c: (record.trajectory[c][-1] if record.trajectory[c] else float("nan")) for c in TRAJECTORY_COLUMNS}
        best = min((v for v in record.trajectory["l2_abs"] if v == v), default=float("nan"))
        final.update(step=m.get("steps", final["step"]), time=m.get("time", final["time"]))
        rows.append({**_identity(m), "steps": final.pop("step"), **final, "best_l2_abs": best,
                     "error": m.get("error"), "hparams": json.dumps(m.get("hparams", {}), sort_keys=True),
                     "manifest": json.dumps(m, sort_keys=True, default=str), "file": str(path)})
    return pd.DataFrame(rows, columns=[*IDENTITY_COLUMNS, "steps", *TRAJECTORY_COLUMNS[1:], "best_l2_abs",
                                       "error", "hparams", "manifest", "file"])


def load_info(path: str | Path) -> "pd.DataFrame":
    """The per-step scalars an optimizer reported (eta, rank, ...): one row per step."""
    import pandas as pd

    record = read_run(path)
    return pd.DataFrame({"step": record.info_steps, **record.info})


def load_spectra(path: str | Path) -> "pd.DataFrame":
    """The per-step vectors of a run (singular values, coefficients, RCE, ...): columns step, name, index, value."""
    import pandas as pd

    record = read_run(path)
    frames = [pd.DataFrame({"step": step, "name": name, "index": np.arange(len(vec)), "value": vec})
              for name, vectors in record.spectra.items() for step, vec in zip(record.spectrum_steps, vectors)]
    if not frames:
        return pd.DataFrame(columns=["step", "name", "index", "value"])
    return pd.concat(frames, ignore_index=True)
