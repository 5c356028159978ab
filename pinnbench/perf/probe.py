"""The performance probe: how close the Jacobian / SVD / line-search core runs to this machine's limits.

``python -m pinnbench.probe`` (or ``main(argv)``) measures, on the chosen device and thread count:

- the float64 matmul peak (GFLOP/s) and the copy bandwidth (GB/s): the machine's ceilings;
- at the ``paper`` size of every registered problem: the residual Jacobian by the fast (Taylor) path and by
  the generic torch.func path, the thin SVD (LAPACK gesdd through torch, and the QR route with Q kept implicit
  plus the coefficients Uᵀr), one residual evaluation, the 31-point grid line search, and a full step of each
  registered SVD-based optimizer (anagram, engd, amstramgram);
- a scaling series of synthetic Laplace problems (N, P up to ~8000 with ``--large``): the Jacobian and every
  exact SVD route of :data:`pinnbench.linalg.SVD_ROUTES`.

Each kernel is reported as the fraction of its time that the ceilings account for: the SVD against its
model flop count 4·m·n² + 22·n³ (m >= n, Golub & Van Loan's R-SVD count; LAPACK's divide and conquer does
fewer flops on near-square matrices, so this effective rate may exceed 100%), the Jacobian against
max(model flops / peak, bytes of J / bandwidth) with 6·K·Σ n_in·n_out flops per point (forward, reverse and
weight-gradient passes over K = d + 2 Taylor components). A step is reported as a multiple of its lower bound
SVD + fast Jacobian + 31 residual evaluations.
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from tabulate import tabulate

from ..execution.environment import environment
from ..errors import PinnbenchError
from ..execution.instance import build, resolve_device
from ..execution.run import RunObserver, RunSpec, execute
from ..core.blas_threads import set_openblas_threads
from ..core.linalg import SVD_ROUTES, implicit_svd, rank_above, relative_cutoff, thin_svd, truncated_solve
from ..core.grid_search import grid_line_search
from ..core.model import MLP
from ..core.objective import Objective
from ..core.optimizer import Converged
from ..core.problem import ResidualGroup
from ..protocol import Protocol
from ..registry import entries, get_optimizer

SVD_OPTIMIZERS = ("anagram", "engd", "amstramgram")
IN_RUN_STEPS = 30
IN_RUN_FIRST = 6
"""The in-run step: the median over steps IN_RUN_FIRST..IN_RUN_STEPS of a real run (the first steps warm up)."""
LINE_SEARCH_POINTS = 31
SEED = 6865
SCALING = [(1024, (2, 32, 1)), (2048, (2, 64, 1)), (1024, (2, 32, 32, 1)), (4096, (2, 32, 32, 1))]
"""The default scaling series: (points N, layers); P = 129, 257, 1185, 1185."""
SCALING_LARGE = [(8192, (2, 32, 32, 1)), (1024, (2, 64, 64, 1)), (1024, (2, 64, 64, 64, 1)),
                 (8192, (2, 64, 1))]
"""Added by ``--large``: P = 1185, 4417, 8577, 257 with N up to 8192."""
GENERIC_MAX_ENTRIES = 5_000_000  # the torch.func Jacobian is skipped in the scaling series above this N·P
SCIPY_GESVD_MAX_ENTRIES = 2_000_000  # scipy's gesvd takes minutes above this


# ---------------------------------------------------------------------------------------------- timing
@dataclass
class Timer:
    """Runs a function ``repeat`` times after one warm-up and returns the best time (seconds): the least
    disturbed by other load, and what asv and pytest-benchmark compare (as their minimum) too."""

    device: torch.device
    clock: Callable[[], float] = time.perf_counter

    def __call__(self, fn: Callable[[], Any], repeat: int) -> float:
        self._sync()
        fn()
        times = []
        for _ in range(max(1, repeat)):
            self._sync()
            start = self.clock()
            fn()
            self._sync()
            times.append(self.clock() - start)
        return min(times)

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)


def matmul_peak(timer: Timer, n: int, repeat: int = 3) -> float:
    """Float64 GEMM rate in GFLOP/s on an n x n product (the best of ``repeat``)."""
    gen = torch.Generator().manual_seed(0)
    a, b = (torch.randn(n, n, generator=gen, dtype=torch.float64).to(timer.device) for _ in range(2))
    best = timer(lambda: a @ b, repeat)
    return 2 * n ** 3 / best / 1e9


def copy_bandwidth(timer: Timer, n: int = 2 ** 24, repeat: int = 3) -> float:
    """Memory bandwidth in GB/s from copying n float64 values (bytes read + written)."""
    src = torch.ones(n, dtype=torch.float64, device=timer.device)
    dst = torch.empty_like(src)
    best = timer(lambda: dst.copy_(src), repeat)
    return 2 * 8 * n / best / 1e9


def activation_rates(timer: Timer, n: int = 2 ** 18, repeat: int = 5) -> dict[str, float]:
    """Nanoseconds per float64 value of the elementwise kernels a line search is made of (``n`` values, in
    cache): torch.tanh, torch.sigmoid (what the fast path computes tanh with) and a multiply-add."""
    x = torch.randn(n, dtype=torch.float64, generator=torch.Generator().manual_seed(0)).to(timer.device)
    out = torch.empty_like(x)
    kernels = {"tanh": lambda: torch.tanh(x, out=out), "sigmoid": lambda: torch.sigmoid(x, out=out),
               "addcmul": lambda: torch.addcmul(x, x, x, value=-1.0, out=out)}
    return {name: 1e9 * timer(kernel, repeat) / n for name, kernel in kernels.items()}


# ---------------------------------------------------------------------------------------------- models
def svd_flops(n: int, p: int) -> float:
    """4·m·k² + 22·k³ with m = max(n, p), k = min(n, p): the textbook thin R-SVD count (U, S, V)."""
    m, k = max(n, p), min(n, p)
    return 4.0 * m * k * k + 22.0 * k ** 3


def jacobian_flops(model: MLP, groups: Sequence[ResidualGroup]) -> float:
    """6·K·Σ n_in·n_out per point: forward, reverse and weight-gradient passes over the K Taylor components."""
    per_component = sum(i * o for i, o in zip(model.layers[:-1], model.layers[1:]))
    total = 0.0
    for g in groups:
        k = 1 if g.lap_dims is None else g.points.shape[1] + 2
        total += 6.0 * k * per_component * g.points.shape[0]
    return total


@dataclass
class Ceilings:
    """The machine's measured limits."""

    peak_gflops: float
    bandwidth_gbs: float

    def svd_fraction(self, n: int, p: int, seconds: float) -> float:
        return svd_flops(n, p) / (self.peak_gflops * 1e9) / seconds

    def jacobian_fraction(self, objective: Objective, seconds: float) -> float:
        flop_time = jacobian_flops(objective.model, objective.groups) / (self.peak_gflops * 1e9)
        byte_time = 8.0 * objective.n_residuals * objective.n_params / (self.bandwidth_gbs * 1e9)
        return max(flop_time, byte_time) / seconds


# ---------------------------------------------------------------------------------------------- probes
def _anagram_direction(objective: Objective, theta: torch.Tensor) -> torch.Tensor:
    jac, r = objective.jacobian(theta)
    svd = thin_svd(jac)
    return truncated_solve(svd, r, rank_above(svd, relative_cutoff(svd, objective.n_params)))


def _step_times(name: str, problem: Any, objective: Objective, theta0: torch.Tensor, timer: Timer,
                repeat: int) -> float | str:
    """Best time of consecutive steps from θ0 (after one warm-up step), or a note on why there is none."""
    hparams = problem.optimizer_defaults.get(name, {})
    try:
        optimizer = get_optimizer(name, **hparams)
        optimizer.reset(objective, theta0)
        state = {"theta": theta0}

        def one_step() -> None:
            state["theta"] = optimizer.step(objective, state["theta"])
        return timer(one_step, repeat)
    except Converged:
        return "converged"
    except Exception as exc:  # noqa: BLE001 - a plugin's failure is reported in its cell, the probe goes on
        return f"error: {type(exc).__name__}"


class _StepClock(RunObserver):
    """The optimizer clock each time a run leaves optimizer code: successive differences are step times."""

    def __init__(self) -> None:
        self.clocks: list[tuple[int, float]] = []

    def untimed(self, clock: float, step: int) -> None:
        self.clocks.append((step, clock))


def in_run_step(problem: str, optimizer: str, device: torch.device, steps: int = IN_RUN_STEPS) -> float | str:
    """Median seconds of steps IN_RUN_FIRST.. of a real run (:func:`pinnbench.execution.run.execute`, paper
    points, seed 6865, this process's threads, the problem's published hyperparameters): the step as a user's
    run executes it, with the run loop's evaluations, recording and allocations between steps. A note (str) when
    the run ends before IN_RUN_FIRST + 2 steps."""
    protocol = Protocol(name="probe", seeds=(SEED,), budget=1e6, steps=steps, points="paper", device=str(device),
                        threads=torch.get_num_threads())
    clock = _StepClock()
    record = execute(RunSpec(problem, optimizer, SEED), protocol, observer=clock)
    if record.manifest["status"] != "ok":
        return f"{record.manifest['status']}: {record.manifest.get('error') or ''}".strip(": ")
    # clocks[0] is after reset (step 0); clocks[k] after step k
    times = [after - before for (_, before), (step, after) in zip(clock.clocks, clock.clocks[1:])
             if step >= IN_RUN_FIRST]
    if len(times) < 2:
        return record.manifest.get("stop_reason") or "too few steps"
    return float(torch.tensor(times).median())


def probe_problem(name: str, device: torch.device, timer: Timer, ceilings: Ceilings, repeat: int,
                  optimizers: Sequence[str], in_run_steps: bool = True) -> dict[str, Any]:
    """Every kernel of one problem at its ``paper`` size, and each optimizer's step warm and inside a real run
    (``in_run_steps``); times in milliseconds."""
    inst = build(name, SEED, "paper", device=str(device))
    obj, theta = inst.objective, inst.theta0
    generic = Objective(inst.model, inst.point_sets.groups, device=device, dtype=obj.dtype, derivatives="generic")
    n, p = obj.n_residuals, obj.n_params
    jac, r = obj.jacobian(theta)
    direction = _anagram_direction(obj, theta)
    jac_fast = timer(lambda: obj.jacobian(theta), repeat)
    jac_generic = timer(lambda: generic.jacobian(theta), max(1, repeat // 2))
    svd = timer(lambda: thin_svd(jac), repeat)
    svd_implicit = timer(lambda: implicit_svd(jac).coefficients(r), repeat)
    residual = timer(lambda: obj.residuals(theta), repeat)
    line_search = timer(lambda: grid_line_search(obj, theta, direction, LINE_SEARCH_POINTS), repeat)
    bound = svd_implicit + jac_fast + LINE_SEARCH_POINTS * residual  # the SVD route anagram and amstramgram use
    row: dict[str, Any] = {
        "problem": name, "N": n, "P": p, "layers": "x".join(map(str, inst.model.layers)),
        "jac_fast_ms": 1e3 * jac_fast, "jac_generic_ms": 1e3 * jac_generic, "jac_speedup": jac_generic / jac_fast,
        "jac_of_limit": ceilings.jacobian_fraction(obj, jac_fast),
        "svd_ms": 1e3 * svd, "svd_of_peak": ceilings.svd_fraction(n, p, svd),
        "svd_implicit_ms": 1e3 * svd_implicit,
        "residual_ms": 1e3 * residual, "line_search_ms": 1e3 * line_search,
        "line_search_per_31_residuals": line_search / (LINE_SEARCH_POINTS * residual),
        "bound_ms": 1e3 * bound,
    }
    for opt in optimizers:
        result = _step_times(opt, inst.problem, obj, theta, timer, repeat)
        if isinstance(result, str):
            row[f"{opt}_step_ms"], row[f"{opt}_step_of_bound"] = result, None
        else:
            row[f"{opt}_step_ms"], row[f"{opt}_step_of_bound"] = 1e3 * result, result / bound
        in_run = in_run_step(name, opt, device) if in_run_steps else "not measured"
        row[f"{opt}_in_run_ms"] = in_run if isinstance(in_run, str) else 1e3 * in_run
        row[f"{opt}_in_run_of_warm"] = (in_run / result if not isinstance(in_run, str) and not isinstance(result, str)
                                        else None)
    return row


def _laplace_objective(n: int, layers: tuple[int, ...], device: torch.device) -> tuple[Objective, torch.Tensor]:
    """A synthetic Δu = f problem on N uniform points of the unit square with the given net."""
    gen = torch.Generator().manual_seed(SEED)
    x = torch.rand(n, layers[0], generator=gen, dtype=torch.float64)

    def residual(x: torch.Tensor, f) -> torch.Tensor:
        return f.lap - 1.0

    model = MLP(layers)
    group = ResidualGroup("interior", x, residual, lap_dims=tuple(range(layers[0])))
    objective = Objective(model, [group], device=device)
    return objective, model.init(gen, device=device)


def probe_scaling(sizes: Sequence[tuple[int, tuple[int, ...]]], device: torch.device, timer: Timer,
                  ceilings: Ceilings, repeat: int) -> list[dict[str, Any]]:
    """The Jacobian and every SVD route on synthetic problems of growing size; times in milliseconds."""
    rows = []
    for n, layers in sizes:
        obj, theta = _laplace_objective(n, layers, device)
        p = obj.n_params
        big = svd_flops(n, p) > 2e11  # minutes per SVD: time it once
        reps = 1 if big else repeat
        jac_fast = timer(lambda: obj.jacobian(theta), reps)
        row: dict[str, Any] = {"N": n, "P": p, "layers": "x".join(map(str, layers)),
                               "jac_fast_ms": 1e3 * jac_fast, "jac_of_limit": ceilings.jacobian_fraction(obj, jac_fast)}
        if n * p <= GENERIC_MAX_ENTRIES:
            generic = Objective(obj.model, obj.groups, device=device, derivatives="generic")
            jac_generic = timer(lambda: generic.jacobian(theta), 1)
            row["jac_generic_ms"], row["jac_speedup"] = 1e3 * jac_generic, jac_generic / jac_fast
        jac, _ = obj.jacobian(theta)
        best_route, best_time = None, float("inf")
        for route in SVD_ROUTES:
            if route.startswith("scipy") and device.type != "cpu":
                continue
            if route == "scipy-gesvd" and n * p > SCIPY_GESVD_MAX_ENTRIES:
                continue
            seconds = timer(lambda: thin_svd(jac, route), 1 if big or route.startswith("scipy") else reps)
            row[f"svd_{route}_ms"] = 1e3 * seconds
            if seconds < best_time:
                best_route, best_time = route, seconds
        seconds = timer(lambda: implicit_svd(jac), reps)
        row["svd_q-implicit_ms"] = 1e3 * seconds
        row["svd_best_route"] = best_route
        row["svd_best_of_peak"] = ceilings.svd_fraction(n, p, best_time)
        rows.append(row)
    return rows


# ---------------------------------------------------------------------------------------------- output
PROBLEM_COLUMNS = [
    ("problem", "problem"), ("N", "N"), ("P", "P"),
    ("jac_fast_ms", "J fast ms"), ("jac_generic_ms", "J generic ms"), ("jac_speedup", "J speedup"),
    ("jac_of_limit", "J of limit"), ("svd_ms", "SVD ms"), ("svd_of_peak", "SVD of peak"),
    ("svd_implicit_ms", "SVD Q-implicit ms"),
    ("residual_ms", "r ms"), ("line_search_ms", "LS(31) ms"), ("line_search_per_31_residuals", "LS / 31 r"),
    ("bound_ms", "bound ms"),
]


def _fmt(value: Any, column: str) -> Any:
    if value is None:
        return ""
    if isinstance(value, float):
        if column.endswith(("of_limit", "of_peak")):
            return f"{100 * value:.0f}%"
        if column.endswith(("speedup", "of_bound", "residuals", "of_warm")):
            return f"{value:.2f}x"
        return f"{value:.3g}"
    return value


def problem_table(rows: list[dict[str, Any]], optimizers: Sequence[str]) -> str:
    columns = list(PROBLEM_COLUMNS)
    for opt in optimizers:
        columns += [(f"{opt}_step_ms", f"{opt} step ms"), (f"{opt}_step_of_bound", f"{opt} / bound"),
                    (f"{opt}_in_run_ms", f"{opt} in-run ms"), (f"{opt}_in_run_of_warm", f"{opt} in-run / warm")]
    body = [[_fmt(row.get(key), key) for key, _ in columns] for row in rows]
    return tabulate(body, headers=[title for _, title in columns], disable_numparse=True)


def scaling_table(rows: list[dict[str, Any]]) -> str:
    keys: list[str] = []
    for row in rows:
        keys += [k for k in row if k not in keys]
    body = [[_fmt(row.get(key), key) for key in keys] for row in rows]
    return tabulate(body, headers=keys, disable_numparse=True)


def write_csv(path: Path, report: dict[str, Any]) -> None:
    """Long format: one line per (table, case, metric, value)."""
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["table", "case", "N", "P", "metric", "value"])
        for table in ("problems", "scaling"):
            for row in report[table]:
                case = row.get("problem") or row["layers"]
                for key, value in row.items():
                    if key not in ("problem", "N", "P"):
                        writer.writerow([table, case, row["N"], row["P"], key, value])


# ---------------------------------------------------------------------------------------------- command
def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The probe's options (for ``pinnbench bench`` or ``python -m pinnbench.probe``)."""
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N or auto")
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's current setting)")
    parser.add_argument("-p", "--problems", nargs="+", metavar="NAME",
                        help="problems to probe at their paper size (default: every registered one)")
    parser.add_argument("--optimizers", nargs="*", metavar="NAME",
                        help=f"optimizers whose full step is timed (default: those registered among "
                             f"{', '.join(SVD_OPTIMIZERS)})")
    parser.add_argument("--repeat", type=int, default=7, help="timed repetitions per kernel, best kept (default 7)")
    parser.add_argument("--no-scaling", action="store_true", help="skip the scaling series")
    parser.add_argument("--no-in-run", action="store_true",
                        help=f"skip the in-run step (a real {IN_RUN_STEPS}-step run per optimizer and problem)")
    parser.add_argument("--large", action="store_true", help="extend the scaling series to N, P ~ 8000 (minutes)")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="wall (default) or cpu: process CPU time, robust to other load on the machine but "
                             "summed over threads (use with --threads 1)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the full report as JSON")
    parser.add_argument("--csv", type=Path, metavar="PATH", help="also write the report as long-format CSV")


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the probe described by parsed ``args``; prints the tables and returns the report."""
    device = resolve_device(args.device)
    if args.threads is not None:
        if args.threads < 1:
            raise PinnbenchError(f"invalid --threads {args.threads}: expected a positive integer")
        torch.set_num_threads(args.threads)
    if args.clock == "cpu" and device.type != "cpu":
        raise PinnbenchError("--clock cpu measures CPU time: use it with --device cpu")
    known_problems = entries("problem")
    problems = args.problems or list(known_problems)
    unknown = [p for p in problems if p not in known_problems]
    if unknown:
        raise PinnbenchError(f"unknown problem {unknown[0]!r}; accepted: {', '.join(known_problems)}")
    registered = entries("optimizer")
    optimizers = ([o for o in SVD_OPTIMIZERS if o in registered] if args.optimizers is None else args.optimizers)
    unknown = [o for o in optimizers if o not in registered]
    if unknown:
        raise PinnbenchError(f"unknown optimizer {unknown[0]!r}; accepted: {', '.join(registered)}")
    set_openblas_threads(1)  # as runs set it (execution/run.py)
    timer = Timer(device, time.process_time if args.clock == "cpu" else time.perf_counter)
    ceilings = Ceilings(matmul_peak(timer, 2000 if device.type == "cpu" else 8192), copy_bandwidth(timer))
    env = environment(device)
    print(f"pinnbench probe: {env.get('gpu', env['cpu'])}, {device}, {torch.get_num_threads()} threads, "
          f"{args.clock} clock, best of {args.repeat}; compiled kernels: {env['native_kernels']}", file=sys.stderr)
    rates = activation_rates(timer)
    print(f"float64 matmul peak {ceilings.peak_gflops:.1f} GFLOP/s, copy bandwidth {ceilings.bandwidth_gbs:.1f} GB/s; "
          + ", ".join(f"{name} {ns:.2f} ns/value" for name, ns in rates.items()))
    rows = []
    for name in problems:
        print(f"  probing {name} ...", file=sys.stderr)
        rows.append(probe_problem(name, device, timer, ceilings, args.repeat, optimizers,
                                  in_run_steps=not args.no_in_run))
    print(problem_table(rows, optimizers))
    sizes = [] if args.no_scaling else SCALING + (SCALING_LARGE if args.large else [])
    scaling = []
    if sizes:
        print(f"  scaling series ({len(sizes)} sizes) ...", file=sys.stderr)
        scaling = probe_scaling(sizes, device, timer, ceilings, min(args.repeat, 3))
        print()
        print(scaling_table(scaling))
    report = {"environment": env, "device": str(device), "threads": torch.get_num_threads(), "clock": args.clock,
              "peak_gflops": ceilings.peak_gflops, "bandwidth_gbs": ceilings.bandwidth_gbs,
              "ns_per_value": rates,
              "problems": rows, "scaling": scaling}
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=str))
    if args.csv:
        write_csv(args.csv, report)
    return report


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m pinnbench.probe [options]``; bad input prints one line and returns 2."""
    parser = argparse.ArgumentParser(prog="pinnbench bench", description=__doc__.splitlines()[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        run(args)
    except PinnbenchError as exc:
        print(f"pinnbench: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
