#!/usr/bin/env python3
"""Benchmark two commits with asv and fail on a slowdown: run it before merging.

    python scripts/asv_regression_check.py                 # main vs the checked-out HEAD
    python scripts/asv_regression_check.py BASE HEAD --factor 1.2 --bench 'Jacobian|Step'

asv recipe A (an existing environment, nothing built or downloaded; docs/performance.md): each commit is
checked out in a temporary git worktree and benchmarked in place, with ASV_PYTHONPATH pointing at it and
``--set-commit-hash`` naming it (the benchmark files are those of the current checkout). Then
``asv compare --factor F BASE HEAD`` prints the table, and this script exits 1 if a row is marked '+' (slower
by more than the factor, and significant) or '!' (newly failing), 0 otherwise, 2 if asv itself failed.
Results stay in the project's results_dir (.asv/results), so ``asv publish`` can show the history.
"""
from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

REGRESSION_MARKS = ("+", "!")


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout.strip()


def _asv(repo: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run ``python -m asv ARGS`` in the repository (where asv.conf.json is), output passed through."""
    print(f"+ asv {' '.join(args)}", file=sys.stderr, flush=True)
    return subprocess.run([sys.executable, "-m", "asv", *args], cwd=repo, env=env, text=True,
                          stdout=subprocess.PIPE, stderr=None)


def benchmark_commit(repo: Path, sha: str, machine: str, bench: str | None, workdir: Path,
                     skip_existing: bool = False) -> int:
    """asv run for one commit, its code checked out in a temporary worktree; returns asv's exit code."""
    tree = workdir / sha[:12]
    _git(repo, "worktree", "add", "--force", "--detach", str(tree), sha)
    try:
        args = ["run", "--python=same", "--machine", machine, "--set-commit-hash", sha, "--show-stderr"]
        if bench:
            args += ["--bench", bench]
        if skip_existing:
            args.append("--skip-existing")
        result = _asv(repo, *args, env={**os.environ, "ASV_PYTHONPATH": str(tree)})
        sys.stderr.write(result.stdout)
        return result.returncode
    finally:
        _git(repo, "worktree", "remove", "--force", str(tree))


def regressions(compare_output: str) -> list[str]:
    """The rows of ``asv compare``'s table marked as slower ('+') or newly failing ('!')."""
    rows = []
    for line in compare_output.splitlines():
        if line.startswith("|"):
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            if cells and cells[0] in REGRESSION_MARKS:
                rows.append(line)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base", nargs="?", default="main", help="the reference commit (default: main)")
    parser.add_argument("head", nargs="?", default="HEAD", help="the commit under test (default: HEAD)")
    parser.add_argument("--factor", type=float, default=1.2,
                        help="slowdown factor that counts as a regression (default 1.2; keep >= 1.2 on a shared "
                             "machine)")
    parser.add_argument("--machine", default=platform.node() or "localhost",
                        help="asv machine name the results are filed under (default: the host name)")
    parser.add_argument("--bench", help="regular expression selecting benchmarks (asv run --bench)")
    parser.add_argument("--reuse-base", action="store_true",
                        help="keep the base commit's stored results when it already has them (asv --skip-existing)")
    parser.add_argument("--repo", type=Path, default=Path.cwd(),
                        help="the repository with asv.conf.json (default: the current directory's checkout)")
    args = parser.parse_args(argv)

    try:
        repo = Path(_git(args.repo, "rev-parse", "--show-toplevel"))
        shas = [_git(repo, "rev-parse", "--verify", f"{rev}^{{commit}}") for rev in (args.base, args.head)]
    except subprocess.CalledProcessError as exc:
        print(f"asv_regression_check: error: {exc.stderr.strip() or exc}", file=sys.stderr)
        return 2
    if not (repo / "asv.conf.json").is_file():
        print(f"asv_regression_check: error: no asv.conf.json in {repo}", file=sys.stderr)
        return 2
    if _asv(repo, "machine", "--yes", "--machine", args.machine).returncode != 0:
        return 2
    with tempfile.TemporaryDirectory(prefix="asv-regression-") as workdir:
        for sha, reuse in zip(shas, (args.reuse_base, False)):
            code = benchmark_commit(repo, sha, args.machine, args.bench, Path(workdir), skip_existing=reuse)
            if code not in (0, 2):  # 2: some benchmark raised; compare reports it ('!' if newly failing)
                print(f"asv_regression_check: error: asv run failed for {sha[:12]} (exit {code})", file=sys.stderr)
                return 2
    compare = _asv(repo, "compare", "--machine", args.machine, "--factor", str(args.factor), *shas)
    print(compare.stdout)
    if compare.returncode != 0:
        return 2
    slower = regressions(compare.stdout)
    if slower:
        print(f"asv_regression_check: {len(slower)} benchmark(s) slower than {args.factor}x or newly failing "
              f"({shas[0][:12]} -> {shas[1][:12]})", file=sys.stderr)
        return 1
    print(f"asv_regression_check: no regression beyond {args.factor}x ({shas[0][:12]} -> {shas[1][:12]})",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
