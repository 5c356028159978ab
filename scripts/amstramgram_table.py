"""Print the AMStraMGRAM study's results (docs/amstramgram.md) as markdown tables beside the published numbers.

Usage: python scripts/amstramgram_table.py [RESULTS_DIR]   (default results/amstramgram-study, as
scripts/amstramgram_study.sh writes it)

One row per (protocol, problem, net, optimizer): the number of runs, steps and optimizer seconds (mean over seeds),
how the runs stopped, the final train loss and absolute L2 error (mean ± std over seeds, ddof=0), and the
AMStraMGRAM study's published mean for the problem with the ratio ours / published (the study's nets are not
published, so the nets may differ: the net column says which one each row used).
"""
from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
from tabulate import tabulate

from pinnbench.report.published import published_frame
from pinnbench.store import load_runs


def mean_std(values: pd.Series) -> str:
    return f"{values.mean():.2e} ± {values.std(ddof=0):.1e}"


def study_table(results: Path) -> str:
    """The markdown table of every run file under ``results``."""
    runs = load_runs(results)
    published = published_frame().groupby(["problem", "optimizer", "metric"])["mean"].first()
    rows = []
    keys = ["protocol", "problem_name", "net", "optimizer"]
    for (protocol, problem, net, optimizer), group in runs.groupby(keys, sort=True):
        cells = []
        for metric in ("loss", "l2_abs"):
            ours = group[metric].mean()
            paper = published.get((problem, group["optimizer_name"].iloc[0], metric))
            cells += [mean_std(group[metric]), "—" if paper is None else f"{paper:.2e}",
                      "—" if paper is None else f"{ours / paper:.2g}"]
        stops = ", ".join(f"{n} {s}" for s, n in group["stop_reason"].fillna(group["status"]).value_counts().items())
        rows.append([protocol, problem, net, optimizer, len(group), f"{group['steps'].mean():.0f}", stops,
                     f"{group['time'].mean():.0f}", *cells])
    headers = ["protocol", "problem", "net", "optimizer", "runs", "steps (mean)", "stopped by", "time s (mean)",
               "train loss", "paper loss", "ratio", "L2 abs", "paper L2", "ratio"]
    return tabulate(rows, headers, tablefmt="github")


def seed_table(results: Path) -> str:
    """Per seed: final train loss and L2 abs of every (protocol, problem, net, optimizer), for the every-seed
    claims (e.g. "AMStraMGRAM's L2 <= ANaGRAM's on every seed")."""
    runs = load_runs(results)
    rows = []
    for (protocol, problem, net, optimizer), group in runs.groupby(["protocol", "problem_name", "net", "optimizer"],
                                                                   sort=True):
        for seed, run in group.sort_values("seed").groupby("seed", sort=False):
            first = run.iloc[0]
            rows.append([protocol, problem, net, optimizer, seed, int(first["steps"]), f"{first['time']:.0f}",
                         f"{first['loss']:.2e}", f"{first['l2_abs']:.2e}", first["status"]])
    return tabulate(rows, ["protocol", "problem", "net", "optimizer", "seed", "steps", "time s", "train loss",
                           "L2 abs", "status"], tablefmt="github")


def main(argv: list[str]) -> None:
    results = Path(argv[1] if len(argv) > 1 else "results/amstramgram-study")
    if not results.is_dir():
        raise SystemExit(f"amstramgram_table: no results folder {results} (run scripts/amstramgram_study.sh first)")
    print(study_table(results))
    print()
    print(seed_table(results))


if __name__ == "__main__":
    main(sys.argv)
