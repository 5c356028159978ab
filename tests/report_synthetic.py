"""Synthetic results sets in the store's schema, with known answers, for the report tests."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd

IDENTITY = {"protocol": "quick", "protocol_id": "feedc0de12", "device": "cpu"}


def manifest(problem: str, seed: int, ident: dict) -> str:
    """A manifest shaped like the runner's (per-run keys beside the machine-level ones)."""
    return json.dumps({"run_id": f"{problem}-{seed}", "seed": seed, "started": f"2026-01-0{seed % 9 + 1}",
                       "layers": [2, 32, 1], "n_params": 129, "points": {"interior": 784, "boundary": 116},
                       "n_evaluation": 39204, "max_steps": 2001, "budget": 10.0,
                       "environment": {"cpu": "synthetic", "cpu_count": 2, "torch": "2.13",
                                       "git_commit": "abc1234"},
                       "code_version": "0.1.0+abc1234", **ident,
                       "protocol_settings": {"name": ident["protocol"], "budget": 10.0}})


def run(run_id: str, problem: str, optimizer: str, seed: int, times, errors, status: str = "ok",
        error: str | None = None, **identity) -> tuple[dict, list[dict]]:
    """One run: its runs-frame row and its trajectory rows (loss = error², counters grow per step)."""
    ident = {**IDENTITY, **identity}
    points = []
    for step, (t, e) in enumerate(zip(times, errors)):
        points.append({"run_id": run_id, "problem": problem, "optimizer": optimizer,
                       "optimizer_name": optimizer.split("[")[0], "seed": seed, **ident, "status": status,
                       "stop_reason": None if status != "ok" else "budget", "step": step, "time": float(t),
                       "loss": float(e) ** 2, "l2_abs": float(e), "l2_rel": 2.0 * float(e),
                       "residual_evals": 3 * step, "gradient_evals": step, "jacobian_evals": step})
    last = points[-1] if points else {}
    row = {"run_id": run_id, "problem": problem, "optimizer": optimizer, "optimizer_name": optimizer.split("[")[0],
           "seed": seed, **ident, "status": status, "stop_reason": last.get("stop_reason"),
           "steps": last.get("step", 0), "time": last.get("time", 0.0), "loss": last.get("loss", np.nan),
           "l2_abs": last.get("l2_abs", np.nan), "l2_rel": last.get("l2_rel", np.nan), "error": error,
           "hparams": "{}", "manifest": manifest(problem, seed, ident)}
    return row, points


def frames(*runs: tuple[dict, list[dict]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(runs frame, trajectory frame) from :func:`run` results."""
    rows = [r for r, _ in runs]
    points = [p for _, pts in runs for p in pts]
    columns = list(run("x", "p", "o", 0, [0.0], [1.0])[1][0])
    return pd.DataFrame(rows), pd.DataFrame(points, columns=columns)


def decay(rate: float, floor: float, t_end: float = 10.0, n: int = 41, start: float = 1.0):
    """Times 0..t_end and errors start·10^(-rate·t), floored: a run reaching 10^-k at t = k/rate."""
    times = np.linspace(0.0, t_end, n)
    return times, np.maximum(start * 10.0 ** (-rate * times), floor)


def suite(seeds=(1, 2, 3), problems=("heat", "laplace2d", "burgers"),
          other_protocol: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Three optimizers on ``problems`` (ssbroyden skips laplace2d), adam on heat with one ok, one failed
    (error) and one NaN (diverged) run, and (``other_protocol``) a heat run of anagram under another protocol."""
    runs = []
    for p_index, problem in enumerate(problems):
        for seed in seeds:
            jitter = 1.0 + 0.1 * seed + 0.05 * p_index
            runs.append(run(f"{problem}-ana-{seed}", problem, "anagram", seed,
                            *decay(0.8 * jitter, 1e-9 * jitter)))
            runs.append(run(f"{problem}-ams-{seed}", problem, "amstramgram", seed,
                            *decay(1.6 * jitter, 1e-14 * jitter)))
            if problem != "laplace2d":
                runs.append(run(f"{problem}-ssb-{seed}", problem, "ssbroyden", seed,
                                *decay(0.5 * jitter, 1e-11 * jitter)))
    runs.append(run("heat-adam-1", "heat", "adam", 1, *decay(0.3, 1e-4)))
    runs.append(run("heat-adam-err", "heat", "adam", 2, [0.0, 0.5], [1.0, 0.5], status="error",
                    error="Traceback (most recent call last):\n  ...\nRuntimeError: boom"))
    times, errors = decay(0.3, 1e-4)
    errors = errors.copy()
    errors[20:] = np.nan
    runs.append(run("heat-adam-nan", "heat", "adam", 3, times, errors, status="diverged"))
    if other_protocol:
        runs.append(run("heat-ana-paper", "heat", "anagram", 1, *decay(2.0, 1e-12), protocol="paper",
                        protocol_id="0123456789"))
    return frames(*runs)


EIGHT = ("adam", "amstramgram", "amstramgram[fallback=none]", "anagram", "engd", "lbfgs", "ssbfgs", "ssbroyden")
"""Eight optimizer labels, two of them variants of one optimizer: the legends' worst case."""


def zoo(labels=EIGHT, problems=("heat",), seeds=(1, 2, 3)) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every optimizer label on every problem and seed, each label decaying at its own rate."""
    return frames(*(run(f"{problem}-{label}-{seed}", problem, label, seed,
                        *decay(0.2 + 0.15 * i + 0.02 * seed, 1e-12))
                    for problem in problems for i, label in enumerate(labels) for seed in seeds))
