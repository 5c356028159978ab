"""What the runs were made on: the runs' manifests (machine, device, threads, versions, commit, protocol) merged
into one listing, each setting with its distinct values and how many runs had each."""
from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pandas as pd


def flatten(tree: Any, prefix: str = "") -> dict[str, str]:
    """Nested dicts to dotted keys; leaves become strings (lists as JSON)."""
    if isinstance(tree, dict):
        out: dict[str, str] = {}
        for key, value in tree.items():
            out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: tree if isinstance(tree, str) else json.dumps(tree)}


def _parse(manifest: Any) -> dict[str, Any]:
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
    """{dotted key: [(value, number of runs), ...]} over every run's manifest, most common value first.

    Keys a run lacks are counted under the value "(absent)"."""
    if "manifest" not in runs.columns:
        return {}
    flat = [flatten(_parse(m)) for m in runs["manifest"]]
    keys = sorted({k for f in flat for k in f})
    return {k: Counter(f.get(k, "(absent)") for f in flat).most_common() for k in keys}


def manifest_rows(merged: dict[str, list[tuple[str, int]]], n_runs: int) -> list[tuple[str, str]]:
    """(key, text) pairs: one value shared by all runs as is, several as 'value (k runs); ...'."""
    rows = []
    for key, values in merged.items():
        if len(values) == 1 and values[0][1] == n_runs:
            rows.append((key, values[0][0]))
        else:
            rows.append((key, "; ".join(f"{v} ({k} runs)" for v, k in values)))
    return rows
