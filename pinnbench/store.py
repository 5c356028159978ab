"""The results store: one ``.npz`` file per run, written atomically, and loaders into tidy DataFrames.

A run file holds the manifest (JSON), the trajectory (one entry per evaluation point), the per-step scalars the
optimizer reported (``info``) and its per-step vectors every k steps (``spectrum``), all as numpy arrays.
A file is written to a temporary name and renamed into place, so a results folder never holds a half-written run.
"""
from __future__ import annotations

import json
import os
import re
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

TRAJECTORY_COLUMNS = ("step", "time", "loss", "l2_abs", "l2_rel", "residual_evals", "gradient_evals",
                      "jacobian_evals")
IDENTITY_COLUMNS = ("run_id", "problem", "problem_name", "net", "optimizer", "optimizer_name", "seed", "protocol", "protocol_id",
                    "device", "status", "stop_reason")
STATUSES = ("ok", "diverged", "error", "timeout")


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


def run_filename(manifest: dict[str, Any]) -> str:
    """``problem__optimizer-label__s<seed>__<key>.npz`` with unsafe characters replaced."""
    label = re.sub(r"[^A-Za-z0-9_.=,+-]", "_", manifest["optimizer"])
    problem = re.sub(r"[^A-Za-z0-9_.=,+-]", "_", manifest["problem"])
    return f"{problem}__{label}__s{manifest['seed']}__{manifest['run_key'][:12]}.npz"


def write_run(record: RunRecord, folder: str | Path) -> Path:
    """Write ``record`` atomically into ``folder``; returns the file's path."""
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
    tmp = folder / f".{path.name}.{os.getpid()}.tmp"
    with open(tmp, "wb") as handle:
        np.savez_compressed(handle, **arrays)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    return path


def read_run(path: str | Path) -> RunRecord:
    """Read one run file back into a :class:`RunRecord`."""
    with np.load(path, allow_pickle=False) as data:
        manifest = json.loads(str(data["manifest"]))
        record = RunRecord(manifest)
        for key in data.files:
            kind, _, name = key.partition(".")
            if kind == "trajectory":
                record.trajectory[name] = data[key].tolist()
            elif kind == "info" and name != "step":
                record.info[name] = data[key].tolist()
        record.info_steps = data["info.step"].tolist()
        record.spectrum_steps = data["spectrum.step"].tolist()
        for key in data.files:
            if key.startswith("spectrum.") and key.endswith(".values"):
                name = key[len("spectrum."):-len(".values")]
                values, offsets = data[key], data[f"spectrum.{name}.offsets"]
                record.spectra[name] = [values[a:b] for a, b in zip(offsets[:-1], offsets[1:])]
    return record


def run_files(folder: str | Path) -> list[Path]:
    """The run files of a results folder (recursively), sorted."""
    folder = Path(folder)
    return sorted(p for p in folder.rglob("*.npz") if not p.name.startswith("."))


def _readable(folder: str | Path) -> list[tuple[Path, RunRecord]]:
    out = []
    for path in run_files(folder):
        try:
            out.append((path, read_run(path)))
        except (OSError, ValueError, KeyError, zipfile.BadZipFile, json.JSONDecodeError) as exc:
            warnings.warn(f"skipping unreadable run file {path}: {exc}", stacklevel=2)
    return out


def _identity(manifest: dict[str, Any]) -> dict[str, Any]:
    identity = {c: manifest.get(c) for c in IDENTITY_COLUMNS}
    identity["problem_name"] = identity["problem_name"] or identity["problem"]
    layers = manifest.get("net") or manifest.get("layers")
    identity["net"] = "-".join(str(n) for n in layers) if layers else None
    return identity


def load_results(folder: str | Path) -> pd.DataFrame:
    """One tidy DataFrame of every recorded trajectory point of every run in ``folder``."""
    frames = []
    for path, record in _readable(folder):
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


def load_runs(folder: str | Path) -> pd.DataFrame:
    """One row per run: identity, final step/time/loss/errors, error message, hyperparameters, manifest."""
    rows = []
    for path, record in _readable(folder):
        m = record.manifest
        final = {c: (record.trajectory[c][-1] if record.trajectory[c] else float("nan")) for c in TRAJECTORY_COLUMNS}
        best = min((v for v in record.trajectory["l2_abs"] if v == v), default=float("nan"))
        final.update(step=m.get("steps", final["step"]), time=m.get("time", final["time"]))
        rows.append({**_identity(m), "steps": final.pop("step"), **final, "best_l2_abs": best,
                     "error": m.get("error"), "hparams": json.dumps(m.get("hparams", {}), sort_keys=True),
                     "manifest": json.dumps(m, sort_keys=True, default=str), "file": str(path)})
    return pd.DataFrame(rows, columns=[*IDENTITY_COLUMNS, "steps", *TRAJECTORY_COLUMNS[1:], "best_l2_abs",
                                       "error", "hparams", "manifest", "file"])


def load_info(path: str | Path) -> pd.DataFrame:
    """The per-step scalars an optimizer reported (eta, rank, ...): one row per step."""
    record = read_run(path)
    return pd.DataFrame({"step": record.info_steps, **record.info})


def load_spectra(path: str | Path) -> pd.DataFrame:
    """The per-step vectors of a run (singular values, coefficients, RCE, ...): columns step, name, index, value."""
    record = read_run(path)
    frames = [pd.DataFrame({"step": step, "name": name, "index": np.arange(len(vec)), "value": vec})
              for name, vectors in record.spectra.items() for step, vec in zip(record.spectrum_steps, vectors)]
    if not frames:
        return pd.DataFrame(columns=["step", "name", "index", "value"])
    return pd.concat(frames, ignore_index=True)
