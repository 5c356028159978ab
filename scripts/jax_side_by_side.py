"""The authors' JAX ANaGRAM / E-NGD against pinnbench's, side by side, A B A B, on this machine.

    python scripts/jax_side_by_side.py --authors DIR --jax-python PYTHON [--steps 300] [--threads 1 2] [--rounds 2]

DIR is a checkout of the ANaGRAM authors' public code with its submodule, fetched by you (never vendored here):

    git clone https://github.com/IloneM/ANaGRAM DIR && cd DIR
    git config submodule.Natural-Gradient-PINNs-ICML23.url https://github.com/IloneM/Natural-Gradient-PINNs-ICML23
    git submodule update --init
    python3 -m venv JAXENV && JAXENV/bin/pip install jax optax matplotlib      # jax 0.10.2 was measured

Each case runs the authors' experiment script (``experiments/anagram_<problem>.py``; E-NGD:
``experiments/engd_laplace_2d_expes.py``) for ``--steps`` steps in a fresh PYTHON process, with their logging
off and ``tensorflow`` (imported only for TensorBoard logging) replaced by a stub; each step is timed between
the loop's ``before_update`` and ``after_update`` hooks with the parameters ready (``jax.block_until_ready``).
pinnbench's step is timed inside a real run (``pinnbench.perf.probe.in_run_step``: the run loop's own clock,
paper points, seed 6865). Both sides run pinned to the same CPUs at each thread count (XLA with its default
flags, torch with that many threads); the authors' JAX was measured slower with two threads than with one on
2 cores, so each side is timed at every count and the ratio takes each side's best. The statistic is the median
ms per step over steps 6+ (the first steps compile or warm up); rounds alternate A B A B.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

CASES = {  # name: (authors' experiment script, pinnbench problem, pinnbench optimizer)
    "ANaGRAM laplace2d": ("experiments/anagram_laplace_2d.py", "laplace2d", "anagram"),
    "ANaGRAM heat": ("experiments/anagram_heat.py", "heat", "anagram"),
    "ANaGRAM allen_cahn": ("experiments/anagram_allen-cahn.py", "allen_cahn", "anagram"),
    "E-NGD laplace2d": ("experiments/engd_laplace_2d_expes.py", "laplace2d", "engd"),
}
FIRST_STEP = 6  # steps before this one are compilation / warm-up on both sides

AUTHORS_DRIVER = textwrap.dedent('''
    import json, runpy, sys, time, types
    authors, script, out, steps = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
    stub = types.ModuleType("tensorflow")  # imported for TensorBoard logging only, which is off
    stub.summary = types.SimpleNamespace(create_file_writer=lambda *a, **k: None, SummaryWriter=object)
    sys.modules["tensorflow"] = stub
    sys.path[:0] = [authors + "/Natural-Gradient-PINNs-ICML23", authors, authors + "/experiments"]
    import jax
    import jax.lib
    if not hasattr(jax.lib, "xla_bridge"):  # removed from newer jax; the scripts only print the platform
        bridge = types.ModuleType("jax.lib.xla_bridge")
        bridge.get_backend = lambda: types.SimpleNamespace(platform=jax.default_backend())
        jax.lib.xla_bridge = sys.modules["jax.lib.xla_bridge"] = bridge
    import anagram_assistant
    starts, ends = [], []
    optimize = anagram_assistant.Assistant.optimize

    def timed_optimize(self, hooks=None):
        base = {k: getattr(self, k) for k in ("before_loop", "before_update", "after_update", "after_loop")}

        def before_update(optimizer, params, *rest):
            result = base["before_update"](optimizer, params, *rest)
            jax.block_until_ready(params)
            starts.append(time.perf_counter())
            return result

        def after_update(optimizer, params, *rest):
            jax.block_until_ready(params)
            ends.append(time.perf_counter())
            base["after_update"](optimizer, params, *rest)
        return optimize(self, {**base, "before_update": before_update, "after_update": after_update})

    anagram_assistant.Assistant.optimize = timed_optimize
    sys.argv = [script, "--nsteps", steps, "-vb", "0", "-tb", "0", "-lw", "0", "-lsv", "0"]
    runpy.run_path(script, run_name="__main__")
    json.dump([e - s for s, e in zip(starts, ends)], open(out, "w"))
''')

PINNBENCH_DRIVER = textwrap.dedent('''
    import json, sys
    import torch
    from pinnbench.perf.probe import in_run_step, IN_RUN_FIRST
    problem, optimizer, steps, threads, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
    torch.set_num_threads(threads)
    json.dump(in_run_step(problem, optimizer, torch.device("cpu"), steps=steps), open(out, "w"))
''')


def _pinned_env(threads: int) -> dict[str, str]:
    """OpenMP/MKL/OpenBLAS threads for torch; XLA keeps its defaults (its thread pool follows the CPU affinity)."""
    env = dict(os.environ)
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[name] = str(threads)
    return env


def _run(command: list[str], threads: int, cwd: str) -> None:
    cpus = sorted(os.sched_getaffinity(0))[:threads]
    subprocess.run(command, check=True, cwd=cwd, env=_pinned_env(threads), stdout=subprocess.DEVNULL,
                   preexec_fn=lambda: os.sched_setaffinity(0, cpus))


def authors_ms(authors: Path, python: str, script: str, steps: int, threads: int, work: str) -> float:
    """Median ms per step (steps 6+) of the authors' code."""
    out = Path(work) / "authors.json"
    driver = Path(work) / "authors_driver.py"
    driver.write_text(AUTHORS_DRIVER)
    for data in (authors / "experiments").iterdir():  # the data files the scripts open from their folder
        if data.suffix != ".py" and not (Path(work) / data.name).exists():
            (Path(work) / data.name).symlink_to(data.resolve())
    _run([python, str(driver), str(authors), str(authors / script), str(out), str(steps)], threads, work)
    times = json.loads(out.read_text())[FIRST_STEP - 1:]
    return 1e3 * statistics.median(times)


def pinnbench_ms(problem: str, optimizer: str, steps: int, threads: int, work: str) -> float:
    """Median ms per step (steps 6+) of pinnbench inside a real run."""
    out = Path(work) / "pinnbench.json"
    driver = Path(work) / "pinnbench_driver.py"
    driver.write_text(PINNBENCH_DRIVER)
    _run([sys.executable, str(driver), problem, optimizer, str(steps), str(threads), str(out)], threads, work)
    value = json.loads(out.read_text())
    if isinstance(value, str):
        raise RuntimeError(f"pinnbench {problem} {optimizer}: {value}")
    return 1e3 * value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--authors", type=Path, required=True, help="checkout of IloneM/ANaGRAM with its submodule")
    parser.add_argument("--jax-python", required=True, help="a Python with jax, optax and matplotlib")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2],
                        help="thread counts, each side timed at each (default 1 2); the ratio is best vs best")
    parser.add_argument("--rounds", type=int, default=2, help="A B rounds per thread count (default 2: A B A B)")
    parser.add_argument("--cases", nargs="+", choices=list(CASES), default=list(CASES))
    args = parser.parse_args(argv)
    if not (args.authors / "anagram_assistant.py").is_file() or \
            not (args.authors / "Natural-Gradient-PINNs-ICML23" / "ngrad").is_dir():
        print(f"jax_side_by_side: {args.authors} is not a checkout of IloneM/ANaGRAM with its submodule "
              "(see --help)", file=sys.stderr)
        return 2
    print(f"ms per step, median over steps {FIRST_STEP}+ of {args.steps}; each cell: the {args.rounds} rounds "
          f"(A B alternated); ratio: pinnbench's best thread count against the authors' best")
    header = [f"authors' JAX, {t} thread{'s' if t > 1 else ''}" for t in args.threads] + \
             [f"pinnbench, {t} thread{'s' if t > 1 else ''}" for t in args.threads]
    print("| case | " + " | ".join(header) + " | ratio |")
    print("|---|" + "---|" * (len(header) + 1))
    for case in args.cases:
        script, problem, optimizer = CASES[case]
        jax_times: dict[int, list[float]] = {t: [] for t in args.threads}
        ours: dict[int, list[float]] = {t: [] for t in args.threads}
        for threads in args.threads:
            for _ in range(args.rounds):
                with tempfile.TemporaryDirectory() as work:
                    jax_times[threads].append(authors_ms(args.authors, args.jax_python, script, args.steps, threads,
                                                         work))
                    ours[threads].append(pinnbench_ms(problem, optimizer, args.steps, threads, work))
        best_jax = min(statistics.median(v) for v in jax_times.values())
        best_ours = min(statistics.median(v) for v in ours.values())
        cells = [" / ".join(f"{t:.1f}" for t in times[k]) for times in (jax_times, ours) for k in args.threads]
        print(f"| {case} | " + " | ".join(cells) + f" | {best_ours / best_jax:.2f}x |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
