"""The spectral figure of an SVD-based run: the panels of the AMStraMGRAM talk's "Outline of the algorithm".

For each chosen step, one log-scale panel against the index n: the singular values s_n, the reconstruction
error RCE_n, the precision line ε (AMStraMGRAM), √(train loss) after the step, and the cutoff rank used
(vertical line), with the intersection rank r_int and the precision rank r_ε marked on the RCE curve.
A last panel draws the train loss after each step with the phase changes (intersection → flattening) and the
stage changes (precision lowered) dashed, and the chosen steps as thin lines, each named in its legend.

Input: a run file written by the runner (its per-step ``info`` scalars and ``spectrum`` vectors), or the two
frames :func:`pinnbench.store.load_spectra` and :func:`pinnbench.store.load_info` return.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np
import pandas as pd

from .errors import PinnbenchError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

PHASE_NAMES = {0: "intersection", 1: "flattening"}
"""AMStraMGRAM's phase codes in ``info["phase"]`` (docs/amstramgram.md)."""


def _frames(source) -> tuple[pd.DataFrame, pd.DataFrame]:
    if isinstance(source, (str, Path)):
        from .store import load_info, load_spectra
        return load_spectra(source), load_info(source)
    spectra, info = source
    return spectra, info


def _check_has_singular_values(spectra: pd.DataFrame, source) -> None:
    """A one-line PinnbenchError when the run recorded no singular values (an optimizer without an SVD)."""
    names = sorted(set(spectra["name"])) if len(spectra) else []
    if "singular_values" in names:
        return
    from .registry import entries
    from .store import read_run

    run = "the run"
    if isinstance(source, (str, Path)):
        run = f"run {Path(source).name} ({read_run(source, manifest_only=True).manifest['optimizer']})"
    svd = [name for name, entry in entries("optimizer").items() if "singular_values" in entry.cls.spectrum_keys]
    what = f"no singular values (its spectra: {', '.join(names)})" if names else "no spectra"
    raise PinnbenchError(f"{run} has {what}: only SVD-based optimizers ({', '.join(svd)}) record them")


def default_steps(spectrum_steps: Sequence[int], info: pd.DataFrame, count: int = 4) -> list[int]:
    """Up to ``count`` recorded steps: the first, the first recorded ones after phase/stage changes, the last."""
    recorded = sorted(set(int(s) for s in spectrum_steps))
    if not recorded:
        return []
    wanted = [recorded[0]]
    for step in _changes(info):
        later = [s for s in recorded if s >= step]
        if later:
            wanted.append(later[0])
    wanted.append(recorded[-1])
    chosen = sorted(set(wanted))
    if len(chosen) > count:  # keep the first and last, thin the middle evenly
        middle = chosen[1:-1]
        keep = np.linspace(0, len(middle) - 1, count - 2).round().astype(int)
        chosen = [chosen[0], *[middle[i] for i in sorted(set(keep))], chosen[-1]]
    return chosen


def _changes(info: pd.DataFrame) -> list[int]:
    """Steps at which the phase code or the precision changes."""
    steps = []
    for column in ("phase", "precision"):
        if column in info and info[column].notna().any():
            values = info[column].to_numpy()
            for i in range(1, len(values)):
                if values[i] != values[i - 1] and not (math.isnan(values[i]) and math.isnan(values[i - 1])):
                    steps.append(int(info["step"].iloc[i]))
    return sorted(set(steps))


def _vector(spectra: pd.DataFrame, step: int, name: str) -> np.ndarray:
    rows = spectra[(spectra["step"] == step) & (spectra["name"] == name)].sort_values("index")
    return rows["value"].to_numpy(dtype=float)


def _scalar(info: pd.DataFrame, step: int, name: str) -> float:
    if name not in info:
        return float("nan")
    rows = info[info["step"] == step]
    return float(rows[name].iloc[0]) if len(rows) else float("nan")


def _positive(values: np.ndarray) -> np.ndarray:
    """Zeros cannot be drawn on a log axis: they become NaN (a gap)."""
    out = values.astype(float).copy()
    out[~(out > 0)] = np.nan
    return out


def spectrum_figure(source, steps: Sequence[int] | None = None) -> Figure:
    """The figure of :func:`plot_spectrum`, not saved."""
    from matplotlib.figure import Figure

    spectra, info = _frames(source)
    _check_has_singular_values(spectra, source)
    recorded = sorted(set(int(s) for s in spectra["step"].unique()))
    if steps is None:
        chosen = default_steps(recorded, info)
    else:
        chosen = sorted(set(min(recorded, key=lambda s: (abs(s - int(q)), s)) for q in steps))

    n_panels = len(chosen) + 1
    columns = min(n_panels, 3)
    rows = math.ceil(n_panels / columns)
    fig = Figure(figsize=(5.2 * columns, 4.0 * rows + 0.6), layout="constrained")
    flat = fig.subplots(rows, columns, squeeze=False).ravel()
    for ax, step in zip(flat, chosen):
        _spectrum_panel(ax, spectra, info, step)
    _loss_panel(flat[len(chosen)], info, chosen)
    for ax in flat[n_panels:]:
        ax.set_visible(False)
    handles, labels = flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=min(len(labels), 5), frameon=False)
    return fig


def plot_spectrum(source, steps: Sequence[int] | None = None, out: str | Path = "spectrum",
                  formats: Sequence[str] = ("png", "svg")) -> list[Path]:
    """Draw the spectral panels of ``steps`` (default: a few around the phase changes) and the loss curve.

    ``source``: a run file path, or ``(spectra, info)`` frames as returned by ``load_spectra`` / ``load_info``.
    A requested step without recorded vectors is replaced by the nearest recorded one. Writes
    ``<out>.<fmt>`` for each format (the image grows to hold the legend) and returns the paths; a run without
    singular values (an optimizer that takes no SVD) raises a one-line PinnbenchError and writes nothing.
    """
    fig = spectrum_figure(source, steps)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in formats:
        path = out.with_name(f"{out.name}.{fmt}")
        fig.savefig(path, dpi=120, bbox_inches="tight")
        paths.append(path)
    return paths


def _spectrum_panel(ax, spectra: pd.DataFrame, info: pd.DataFrame, step: int) -> None:
    s = _vector(spectra, step, "singular_values")
    rce = _vector(spectra, step, "rce")
    ax.semilogy(np.arange(1, len(s) + 1), _positive(s), color="tab:blue", lw=1.2, label="singular values $s_n$")
    if len(rce):
        ax.semilogy(np.arange(len(rce)), _positive(rce), color="tab:orange", lw=1.6, label="RCE$_n$")
    precision = _scalar(info, step, "precision")
    if precision > 0:
        ax.axhline(precision, color="tab:green", ls="--", lw=1.0, label="precision $\\varepsilon$")
    loss = _scalar(info, step, "loss")
    if loss > 0:
        ax.axhline(math.sqrt(loss), color="tab:red", ls=":", lw=1.2, label="$\\sqrt{\\mathrm{train\\ loss}}$ after step")
    rank = _scalar(info, step, "rank")
    if rank == rank:
        ax.axvline(rank, color="black", lw=1.0, label="cutoff rank")
    for name, marker in (("r_int", "o"), ("r_eps", "s")):
        index = _scalar(info, step, name)
        if index == index and len(rce) and 0 <= int(index) < len(rce) and rce[int(index)] > 0:
            ax.plot([int(index)], [rce[int(index)]], marker, color="tab:purple", ms=6, mfc="none",
                    label="$r_{int}$" if name == "r_int" else "$r_\\varepsilon$")
    phase = _scalar(info, step, "phase")
    title = f"step {step}"
    if phase == phase:
        title += f" ({PHASE_NAMES.get(int(phase), int(phase))})"
    ax.set_title(title)
    ax.set_xlabel("index n")


LOSS_TITLE = "train loss after each step"


def _loss_panel(ax, info: pd.DataFrame, chosen: Sequence[int]) -> None:
    """The train loss the optimizer reported after each step (``info["loss"]``); its legend names the vertical
    lines that are drawn: phase / precision changes (dashed) and the steps of the spectrum panels (thin)."""
    if "loss" in info and len(info):
        ax.semilogy(info["step"], _positive(info["loss"].to_numpy()), color="tab:red", lw=1.2, label="train loss",
                    gid="train loss")
    for i, step in enumerate(_changes(info)):
        ax.axvline(step, color="grey", ls="--", lw=0.8, label="_" if i else "phase / precision change")
    for i, step in enumerate(chosen):
        ax.axvline(step, color="black", lw=0.6, alpha=0.5, label="_" if i else "steps of the spectrum panels")
    ax.set_title(LOSS_TITLE)
    ax.set_xlabel("step")
    ax.set_ylabel("train loss")
    ax.legend(loc="upper right", fontsize="small")
