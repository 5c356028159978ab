"""Measure torch.optim.LBFGS (configured not to stop) against pinnbench's own L-BFGS (docs/baselines.md).

For each problem, both run from the same θ (seed 6865, paper point sets) for a number of iterations, and
the script prints, for each loss threshold, the first iteration, gradient-evaluation count and optimizer time
at which the loss fell below it. The start is θ0, or with ``--warm-start NAME:STEPS`` the point another
optimizer reaches from θ0 in STEPS steps (to test the regime of losses below 1e-10). Usage:
    PYTHONPATH=. python scripts/compare_lbfgs.py --problems laplace2d heat --steps 8000
    PYTHONPATH=. python scripts/compare_lbfgs.py --problems laplace2d heat --steps 3000 --warm-start ssbroyden:1500
"""
from __future__ import annotations

import argparse
import math
import time

import torch

from pinnbench import MLP, Converged, Objective, Optimizer
from pinnbench.registry import get_optimizer, get_problem

THRESHOLDS = (1e-2, 1e-4, 1e-6, 1e-8, 1e-10, 1e-12, 1e-14, 1e-17, 1e-20, 1e-25)


class Counts:
    def __init__(self) -> None:
        self.gradient_evals = 0


class SmoothProblem:
    """A small smooth objective implementing loss_and_grad (gradient by autograd) and counts."""

    def __init__(self, function, n_params: int) -> None:
        self.function, self.n_params, self.counts = function, n_params, Counts()

    def loss_and_grad(self, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.counts.gradient_evals += 1
        x = theta.detach().requires_grad_(True)
        value = self.function(x)
        (grad,) = torch.autograd.grad(value, x)
        return value.detach(), grad


def quadratic(n: int = 50, cond: float = 1e4) -> tuple[SmoothProblem, torch.Tensor]:
    """½ (x - x*)ᵀ A (x - x*), A with eigenvalues log-spaced in [1, cond] and random eigenvectors; x0 = 0."""
    gen = torch.Generator().manual_seed(0)
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=gen, dtype=torch.float64))
    a = (q * torch.logspace(0, math.log10(cond), n, dtype=torch.float64)) @ q.T
    x_star = torch.randn(n, generator=gen, dtype=torch.float64)
    return SmoothProblem(lambda x: 0.5 * (x - x_star) @ a @ (x - x_star), n), torch.zeros(n, dtype=torch.float64)


def rosenbrock(n: int = 10) -> tuple[SmoothProblem, torch.Tensor]:
    """Σ 100 (x_{i+1} - x_i²)² + (1 - x_i)², from x0 = (-1, 1, -1, 1, ...)."""
    x0 = torch.tensor([(-1.0) ** (i + 1) for i in range(n)], dtype=torch.float64)
    return SmoothProblem(lambda x: (100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2).sum(), n), x0


class TorchLBFGS(Optimizer):
    """torch.optim.LBFGS with tolerances at zero and the strong-Wolfe line search, one iteration per step.

    The closure caches the last evaluation, so the re-evaluation torch makes at the start of each ``step``
    call (at the point its line search just evaluated) is not counted twice.
    """

    def __init__(self, history_size: int = 10) -> None:
        self.history_size = history_size

    def reset(self, objective, theta: torch.Tensor) -> None:
        self.param = torch.nn.Parameter(theta.clone())
        self.torch_optimizer = torch.optim.LBFGS(
            [self.param], lr=1.0, max_iter=1, max_eval=100, tolerance_grad=0.0, tolerance_change=0.0,
            history_size=self.history_size, line_search_fn="strong_wolfe")
        self.cache: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None

    def step(self, objective, theta: torch.Tensor) -> torch.Tensor:
        def closure() -> torch.Tensor:
            point = self.param.detach()
            if self.cache is None or not torch.equal(self.cache[0], point):
                loss, grad = objective.loss_and_grad(point)
                self.cache = (point.clone(), loss, grad)
            self.param.grad = self.cache[2].clone()
            return self.cache[1]

        self.torch_optimizer.step(closure)
        theta_next = self.param.detach().clone()
        closure()
        self.info = {"loss": float(self.cache[1])}
        return theta_next


def setup(problem_name: str, seed: int = 6865) -> tuple[Objective | SmoothProblem, torch.Tensor]:
    """The objective (paper point sets) and θ0 from ``seed``, or one of the small smooth problems."""
    if problem_name == "quadratic":
        return quadratic()
    if problem_name == "rosenbrock":
        return rosenbrock()
    problem = get_problem(problem_name)
    point_sets = problem.point_sets("paper", torch.Generator().manual_seed(seed))
    model = MLP(problem.layers)
    return Objective(model, point_sets.groups), model.init(torch.Generator().manual_seed(seed))


def run(objective: Objective | SmoothProblem, theta: torch.Tensor, optimizer: Optimizer, steps: int
        ) -> list[tuple[int, int, float, float]]:
    """(iteration, gradient evaluations, optimizer seconds, loss) after each step from θ."""
    objective.counts.gradient_evals = 0
    optimizer.reset(objective, theta)
    history, elapsed = [], 0.0
    for k in range(1, steps + 1):
        start = time.perf_counter()
        try:
            theta = optimizer.step(objective, theta)
        except Converged:
            break
        elapsed += time.perf_counter() - start
        loss = optimizer.info["loss"]
        history.append((k, objective.counts.gradient_evals, elapsed, loss))
        if not math.isfinite(loss) or loss == 0.0:
            break
    return history


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", nargs="+", default=["laplace2d", "heat"])
    parser.add_argument("--steps", type=int, default=6000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--warm-start", default=None, help="NAME:STEPS, e.g. ssbroyden:1500")
    parser.add_argument("--seeds", nargs="+", type=int, default=[6865])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    for problem_name, seed in ((p, s) for p in args.problems for s in args.seeds):
        objective, theta = setup(problem_name, seed)
        if args.warm_start:
            name, steps = args.warm_start.split(":")
            warm = get_optimizer(name)
            warm.reset(objective, theta)
            for _ in range(int(steps)):
                theta = warm.step(objective, theta)
            print(f"warm start on {problem_name}: {args.warm_start} reached loss {float(objective.loss(theta)):.2e}")
        for label, optimizer in (("pinnbench lbfgs", get_optimizer("lbfgs")), ("torch.optim.LBFGS", TorchLBFGS())):
            history = run(objective, theta, optimizer, args.steps)
            cells = []
            for threshold in THRESHOLDS:
                hit = next((h for h in history if h[3] < threshold), None)
                cells.append("-" if hit is None else f"{hit[0]} ({hit[1]} ev, {hit[2]:.0f}s)")
            last = history[-1]
            print(f"| {problem_name} | {seed} | {label} | " + " | ".join(cells)
                  + f" | {last[3]:.2e} after {last[0]} it, {last[1]} ev, {last[2]:.0f}s |", flush=True)


if __name__ == "__main__":
    main()
