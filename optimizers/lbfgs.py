"""L-BFGS in float64 that keeps making progress at losses of 1e-10 and below (PROTOCOLS.md §5).

Two-loop recursion over the last ``history_size`` curvature pairs with the initial scaling γ = sᵀy / yᵀy and a
strong-Wolfe line search (c1 = 1e-4, c2 = 0.9). Unlike torch.optim.LBFGS (which drops every pair with
yᵀs <= 1e-10, an absolute threshold that every pair falls under once the loss is small, and stops on
absolute tolerances), a pair is kept whenever yᵀs > eps·yᵀy, a test invariant under scaling of the loss,
and there is no stopping tolerance. docs/baselines.md has the measurement that chose this implementation.
"""
from __future__ import annotations

from collections import deque

import torch

from pinnbench import Converged, Optimizer, register_optimizer
from pinnbench.wolfe import LINE_SEARCHES, DirectionalFunction, strong_wolfe


def two_loop_direction(grad: torch.Tensor, pairs: deque[tuple[torch.Tensor, torch.Tensor, float]]
                       ) -> torch.Tensor:
    """-H g for the L-BFGS inverse-Hessian approximation H built from ``pairs`` (s, y, 1/yᵀs), oldest first."""
    q = grad.clone()
    alphas = []
    for s, y, rho in reversed(pairs):
        a = rho * float(s @ q)
        q.sub_(y, alpha=a)
        alphas.append(a)
    if pairs:
        s, y, rho = pairs[-1]
        q.mul_(1.0 / (rho * float(y @ y)))  # γ = sᵀy / yᵀy
    for (s, y, rho), a in zip(pairs, reversed(alphas)):
        b = rho * float(y @ q)
        q.add_(s, alpha=a - b)
    return -q


@register_optimizer("lbfgs")
class LBFGS(Optimizer):
    """Limited-memory BFGS; one step = one iteration (direction, strong-Wolfe line search, memory update).

    history_size: number of curvature pairs kept (PROTOCOLS.md §5: 10).
    line_search: 'more-thuente' (with zoom fallback) or 'zoom'. c1, c2: strong-Wolfe constants.
    max_evals: evaluations allowed per line search.
    The first trial step is 1, except min(1, 1/||g||) on the first iteration (no curvature known yet).
    """

    info_keys = {"loss": "the train loss after the step", "alpha": "the strong-Wolfe step length",
                 "line_search_evals": "the line search's evaluations", "pair_stored": "1 when (s, y) was kept",
                 "memory_cleared": "1 when the memory was dropped and -g tried", "memory": "the pairs kept"}

    def __init__(self, history_size: int = 10, line_search: str = "more-thuente", c1: float = 1e-4,
                 c2: float = 0.9, max_evals: int = 100) -> None:
        if history_size < 1 or max_evals < 1:
            raise ValueError(f"history_size and max_evals must be >= 1, got {history_size}, {max_evals}")
        if line_search not in LINE_SEARCHES:
            raise ValueError(f"line_search must be one of {', '.join(LINE_SEARCHES)}, got {line_search!r}")
        if not 0.0 < c1 < c2 < 1.0:
            raise ValueError(f"need 0 < c1 < c2 < 1, got c1={c1}, c2={c2}")
        self.history_size, self.line_search = int(history_size), line_search
        self.c1, self.c2, self.max_evals = c1, c2, int(max_evals)

    def reset(self, objective, theta: torch.Tensor) -> None:
        self.pairs: deque[tuple[torch.Tensor, torch.Tensor, float]] = deque(maxlen=self.history_size)
        self.loss: torch.Tensor | None = None
        self.grad: torch.Tensor | None = None

    def _search(self, objective, theta: torch.Tensor, direction: torch.Tensor):
        phi = DirectionalFunction(objective, theta, direction)
        slope = float(self.grad @ direction)
        alpha0 = 1.0 if self.pairs else min(1.0, 1.0 / float(torch.linalg.vector_norm(self.grad)))
        return phi, strong_wolfe(phi, float(self.loss), slope, alpha0, self.c1, self.c2, self.line_search,
                                 self.max_evals)

    def step(self, objective, theta: torch.Tensor) -> torch.Tensor:
        if self.grad is None:
            self.loss, self.grad = objective.loss_and_grad(theta)
        if not bool(self.grad.any()):
            raise Converged("gradient is exactly zero")
        direction = two_loop_direction(self.grad, self.pairs)
        phi, result = self._search(objective, theta, direction)
        cleared = 0.0
        if result.alpha is None and self.pairs:
            # The memory gives no usable direction: forget it and retry along -g once.
            self.pairs.clear()
            direction = -self.grad
            phi, retry = self._search(objective, theta, direction)
            retry.evaluations += result.evaluations
            result, cleared = retry, 1.0
        if result.alpha is None:
            raise Converged(f"no strong-Wolfe step along the L-BFGS direction nor -g ({result.message})")

        new = phi.at(result.alpha)
        s = result.alpha * direction
        y = new.grad - self.grad
        ys, yy = float(y @ s), float(y @ y)
        stored = ys > torch.finfo(y.dtype).eps * yy
        if stored:
            self.pairs.append((s, y, 1.0 / ys))
        self.loss, self.grad = new.loss, new.grad
        self.info = {"loss": float(new.loss), "alpha": result.alpha, "line_search_evals": float(result.evaluations),
                     "pair_stored": float(stored), "memory_cleared": cleared, "memory": float(len(self.pairs))}
        return new.theta
