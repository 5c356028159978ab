"""What the runs were made on, from the runs' manifests: the machine and code (environment, versions, commit,
device, protocol settings) merged over the runs, and the per-problem setup (net, points, step cap, budget)."""
from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pandas as pd

from .render import Cell, Table

MACHINE_KEYS = ("environment", "code_version", "device", "protocol", "protocol_id", "protocol_settings")
"""Top-level manifest keys describing the machine, the code and the protocol (the rest is per run)."""
SETUP_FIELDS = {"net": "layers", "P": "n_params", "training points": "points",
                "evaluation points": "n_evaluation", "step cap": "max_steps", "budget [s]": "budget"}
"""Per-problem setup columns and the manifest key each one shows."""


def flatten(tree: Any, prefix: str = "") -> dict[str, str]:
    """Nested dicts to dotted keys; leaves become strings (lists and numbers as JSON)."""
    if isinstance(tree, dict):
        out: dict[str, str] = {}
        for key, value in tree.items():
            out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: tree if isinstance(tree, str) else json.dumps(tree)}


def parse_manifest(manifest: Any) -> dict[str, Any]:
    """A run's manifest (JSON text or dict) as a dict; {} when absent."""
    if isinstance(manifest, dict):
        return manifest
    if manifest is None or (isinstance(manifest, float) and pd.isna(manifest)):
        return {}
    try:
        parsed = json.loads(manifest)
    except (TypeError, ValueError):
        return {"unparsed": str(manifest)}
    return parsed if isinstance(parsed, dict) else {"value": parsed}


def merged_manifest(runs: pd.DataFrame) -> dict[str, list[tuple[str, int]]]:
    """{dotted key: [(value, number of runs), ...]} over the machine-level part of every run's manifest, most
    common value first. Keys a run lacks count under the value "(absent)"."""
    if "manifest" not in runs.columns:
        return {}
    flat = [flatten({k: v for k, v in parse_manifest(m).items() if k in MACHINE_KEYS}) for m in runs["manifest"]]
    keys = sorted({k for f in flat for k in f})
    return {k: Counter(f.get(k, "(absent)") for f in flat).most_common() for k in keys}


def _joined(values: list[tuple[str, int]], n_runs: int) -> str:
    if len(values) == 1 and values[0][1] == n_runs:
        return values[0][0]
    return "; ".join(f"{v} ({k} runs)" for v, k in values)


def manifest_table(runs: pd.DataFrame) -> Table:
    """The merged machine-level manifest as a (setting, value) table."""
    rows = tuple((Cell(key), Cell(_joined(values, len(runs)))) for key, values in merged_manifest(runs).items())
    return Table("manifest", "Manifest: machine, code and protocol", ("setting", "value"), rows,
                 "Merged over the runs of this section: a setting with several values lists how many runs had each.")


def _setup_text(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k} {v}" for k, v in value.items())
    if isinstance(value, list):
        return "[" + ",".join(map(str, value)) + "]"
    return "—" if value is None else str(value)


def setup_table(runs: pd.DataFrame) -> Table:
    """Per problem: the net, its parameter count, the training and evaluation points, step cap and budget."""
    rows = []
    manifests = runs.assign(_m=[parse_manifest(m) for m in runs.get("manifest", [None] * len(runs))])
    for problem, group in manifests.groupby("problem", sort=True):
        cells = [Cell(str(problem))]
        for key in SETUP_FIELDS.values():
            counts = Counter(_setup_text(m.get(key)) for m in group["_m"])
            cells.append(Cell(" / ".join(v for v, _ in counts.most_common())))
        rows.append(tuple(cells))
    return Table("setup", "Problem setup", ("problem", *SETUP_FIELDS), tuple(rows),
                 "From the run manifests; several values (e.g. step caps that differ per optimizer) are separated "
                 "by ' / '.")
