"""Print the AMStraMGRAM study's results (docs/amstramgram.md) as a markdown table beside the published numbers.

Usage: python scripts/amstramgram_table.py [RESULTS_DIR]   (default results/amstramgram, as scripts/amstramgram_study.sh)

One row per (problem variant, optimizer, step cap): the net, the number of runs, steps and optimizer seconds (mean
over seeds), final train loss and absolute L2 error (mean ± std over seeds, ddof=0), and the AMStraMGRAM study's
published mean ± std for the base problem (the paper's nets are not published, so the nets differ).
"""
from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
from tabulate import tabulate

from pinnbench.report.manifest import parse_manifest
from pinnbench.report.published import published_frame
from pinnbench.store import load_runs

BASE_PROBLEMS = ("laplace2d", "heat", "laplace5d")


def base_problem(name: str) -> str:
    """The built-in problem a study variant derives from (laplace2d_w64 -> laplace2d)."""
    return next(base for base in BASE_PROBLEMS if name == base or name.startswith(base + "_"))


def mean_std(values: pd.Series) -> str:
    return f"{values.mean():.2e} ± {values.std(ddof=0):.1e}"


def study_table(results: Path) -> str:
    """The markdown table of every run file under ``results``."""
    runs = load_runs(results)
    manifests = runs["manifest"].map(parse_manifest)
    runs["cap"] = manifests.map(lambda m: m["max_steps"])
    runs["net"] = manifests.map(lambda m: "x".join(map(str, m["layers"])))
    published = published_frame().set_index(["problem", "optimizer", "metric"])
    rows = []
    for (problem, net, optimizer, cap), group in runs.groupby(["problem", "net", "optimizer", "cap"]):
        base = base_problem(problem)
        paper = []
        for metric in ("loss", "l2_abs"):
            key = (base, group["optimizer_name"].iloc[0], metric)
            paper.append(f"{published.loc[key, 'mean']:.2e}" if key in published.index else "—")
        statuses = ", ".join(f"{n} {s}" for s, n in group["stop_reason"].value_counts().items())
        rows.append([base, net, optimizer, len(group), cap, f"{group['steps'].mean():.0f}",
                     statuses, f"{group['time'].mean():.0f}", mean_std(group["loss"]), mean_std(group["l2_abs"]),
                     paper[0], paper[1]])
    headers = ["problem", "net", "optimizer", "runs", "step cap", "steps (mean)", "stopped by", "time s (mean)",
               "train loss", "L2 abs", "paper loss", "paper L2"]
    return tabulate(rows, headers, tablefmt="github")


def main(argv: list[str]) -> None:
    results = Path(argv[1] if len(argv) > 1 else "results/amstramgram")
    if not results.is_dir():
        raise SystemExit(f"amstramgram_table: no results folder {results} (run scripts/amstramgram_study.sh first)")
    print(study_table(results))


if __name__ == "__main__":
    main(sys.argv)
