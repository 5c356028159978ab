"""Time the three ways pinnbench.linalg.DampedLeastSquares solves (AᵀA + λI) d = Aᵀb (docs/modern-baselines.md).

'svd' (one thin SVD, then every λ almost free), 'cholesky' (P x P Gram once, a Cholesky per λ) and 'woodbury'
(N x N kernel once, a Cholesky per λ), at laplace2d's and heat's paper sizes (N > P) and on laplace2d's points
with wide one-layer nets (N < P). Best of a few repeats, one torch thread, wall clock. Usage:
    OMP_NUM_THREADS=1 PYTHONPATH=. python scripts/time_damped_solvers.py
"""
from __future__ import annotations

import time

import torch

import pinnbench
from pinnbench import MLP, Objective
from pinnbench.linalg import DampedLeastSquares, weighted_system


def best_ms(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * min(times)


def report(label: str, objective: Objective, theta: torch.Tensor, repeat: int) -> None:
    jac, r = objective.jacobian(theta)
    a, b = weighted_system(jac, r, objective.row_weights)
    print(f"{label} N x P = {a.shape[0]} x {a.shape[1]}")
    for solver in ("svd", "cholesky", "woodbury"):
        prepare = best_ms(lambda: DampedLeastSquares(a, b, solver), repeat)
        system = DampedLeastSquares(a, b, solver)
        solve = best_ms(lambda: system.solve(1e-6), repeat)
        print(f"  {solver:9s} prepare {prepare:8.2f} ms   solve per λ {solve:8.3f} ms")


def main() -> None:
    torch.set_num_threads(1)
    for name in ("laplace2d", "heat"):
        inst = pinnbench.build(name, 6865, "paper")
        report(name, inst.objective, inst.theta0, 7)
    groups = pinnbench.build("laplace2d", 6865, "paper").objective.groups
    for width in (256, 1024):
        model = MLP((2, width, 1))
        report(f"laplace2d points, net [2,{width},1]", Objective(model, groups),
               model.init(torch.Generator().manual_seed(0)), 3)


if __name__ == "__main__":
    main()
