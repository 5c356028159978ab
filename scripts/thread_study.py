"""Threads per run, measured: one against two threads, OpenMP's wait policy, a busy neighbour, two runs at once.

    python scripts/thread_study.py [--problems laplace2d allen_cahn] [--optimizer anagram] [--steps 40]

Each cell is pinnbench's in-run step (``pinnbench.perf.probe.in_run_step``: a real run, paper points, seed
6865, median ms over steps 6+) in a fresh process with OMP/MKL/OpenBLAS threads set as named:

- ``1 thread`` / ``2 threads``: alone on the machine;
- ``2 threads, OMP_WAIT_POLICY=PASSIVE``: OpenMP workers sleep at once instead of spinning after each region;
- ``... + busy neighbour``: while another process keeps one core busy (a 1-thread pinnbench run of heat);
- ``two 1-thread runs``: two runs of the same case at once, each pinned to its own core (the step each sees).

The machine's speed drifts, so the settings are run in rounds (A B C ... A B C ...) and each cell shows the
rounds. On a machine with more than two cores the neighbour still takes one core.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

DRIVER = textwrap.dedent('''
    import json, sys
    import torch
    from pinnbench.perf.probe import in_run_step
    problem, optimizer, steps, threads, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
    torch.set_num_threads(threads)
    json.dump(in_run_step(problem, optimizer, torch.device("cpu"), steps=steps), open(out, "w"))
''')
NEIGHBOUR = ("import torch; torch.set_num_threads(1)\n"
             "from pinnbench.perf.probe import in_run_step\n"
             "while True: in_run_step('heat', 'anagram', torch.device('cpu'), steps=20)\n")
SETTINGS = ("1 thread", "2 threads", "2 threads, OMP_WAIT_POLICY=PASSIVE", "1 thread + busy neighbour",
            "2 threads + busy neighbour", "two 1-thread runs")


def _env(threads: int, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {**os.environ, **(extra or {})}
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[name] = str(threads)
    return env


def _start(problem: str, optimizer: str, steps: int, threads: int, out: Path, work: Path,
           extra: dict[str, str] | None = None, cpus: list[int] | None = None) -> subprocess.Popen:
    driver = work / "driver.py"
    driver.write_text(DRIVER)
    pin = (lambda: os.sched_setaffinity(0, cpus)) if cpus else None
    return subprocess.Popen([sys.executable, str(driver), problem, optimizer, str(steps), str(threads), str(out)],
                            env=_env(threads, extra), stdout=subprocess.DEVNULL, preexec_fn=pin)


def _ms(path: Path) -> str:
    value = json.loads(path.read_text())
    return value if isinstance(value, str) else f"{1e3 * value:.1f}"


def measure(setting: str, problem: str, optimizer: str, steps: int, work: Path) -> str:
    """One cell's value for one round (ms, or 'a / b' for the two simultaneous runs)."""
    cpus = sorted(os.sched_getaffinity(0))
    outs = [work / "a.json", work / "b.json"]
    if setting == "two 1-thread runs":
        runs = [_start(problem, optimizer, steps, 1, out, work, cpus=[cpu]) for out, cpu in zip(outs, cpus[:2])]
        for run in runs:
            run.wait()
        return " & ".join(_ms(out) for out in outs)
    threads = 1 if setting.startswith("1 thread") else 2
    extra = {"OMP_WAIT_POLICY": "PASSIVE"} if "PASSIVE" in setting else None
    neighbour = None
    if "neighbour" in setting:
        neighbour = subprocess.Popen([sys.executable, "-c", NEIGHBOUR], env=_env(1), stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
    try:
        _start(problem, optimizer, steps, threads, outs[0], work, extra).wait()
    finally:
        if neighbour is not None:
            neighbour.kill()
            neighbour.wait()
    return _ms(outs[0])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--problems", nargs="+", default=["laplace2d", "allen_cahn"])
    parser.add_argument("--optimizer", default="anagram")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    cells: dict[tuple[str, str], list[str]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.rounds):
            for problem in args.problems:
                for setting in SETTINGS:
                    cells.setdefault((problem, setting), []).append(
                        measure(setting, problem, args.optimizer, args.steps, Path(tmp)))
    print(f"{args.optimizer}: in-run step, median ms over steps 6+ of {args.steps}; each cell: the rounds")
    print("| setting | " + " | ".join(args.problems) + " |")
    print("|---|" + "---|" * len(args.problems))
    for setting in SETTINGS:
        print(f"| {setting} | " + " | ".join(" / ".join(cells[(p, setting)]) for p in args.problems) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
