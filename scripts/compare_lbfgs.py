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

from pinnbench import MLP, Objective, Optimizer
from pinnbench.registry import get_optimizer, get_problem

THRESHOLDS = (1e-2, 1e-4, 1e-6, 1e-8, 1e-10, 1e-12, 1e-14)


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


def setup(problem_name: str) -> tuple[Objective, torch.Tensor]:
    """The objective on the paper point sets and θ0, both from seed 6865."""
    problem = get_problem(problem_name)
    point_sets = problem.point_sets("paper", torch.Generator().manual_seed(6865))
    model = MLP(problem.layers)
    return Objective(model, point_sets.groups), model.init(torch.Generator().manual_seed(6865))


def run(objective: Objective, theta: torch.Tensor, optimizer: Optimizer, steps: int
        ) -> list[tuple[int, int, float, float]]:
    """(iteration, gradient evaluations, optimizer seconds, loss) after each step from θ."""
    objective.counts.gradient_evals = 0
    optimizer.reset(objective, theta)
    history, elapsed = [], 0.0
    for k in range(1, steps + 1):
        start = time.perf_counter()
        theta = optimizer.step(objective, theta)
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
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    for problem_name in args.problems:
        objective, theta = setup(problem_name)
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
            print(f"| {problem_name} | {label} | " + " | ".join(cells)
                  + f" | {last[3]:.2e} after {last[0]} it, {last[1]} ev, {last[2]:.0f}s |", flush=True)


if __name__ == "__main__":
    main()
