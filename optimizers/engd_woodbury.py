"""ENGD in sample space with SPRING momentum (Guzmán-Cordero, Dangel, Goldshlager & Zeinhofer, "Improving
Energy Natural Gradient Descent through Woodbury, Momentum, and Randomization", arXiv 2505.12149, NeurIPS 2025;
SPRING: Goldshlager, Abrahamsen & Lin, J. Comput. Phys. 2024, arXiv 2401.10190).

With A = W^½ J and b = W^½ r (W = diag(objective.row_weights), loss L = ‖b‖²), damped ENGD's direction
(AᵀA + λI)⁻¹Aᵀb is computed as Aᵀ(AAᵀ + λI)⁻¹b (the push-through / Woodbury identity): one N x N solve instead
of a P x P one. SPRING adds momentum by asking the new direction to stay close to μ times the previous one,
φ_k = argmin_φ ‖Aφ - b‖² + λ‖φ - μφ_{k-1}‖² = Aᵀ(AAᵀ + λI)⁻¹(b - μAφ_{k-1}) + μφ_{k-1}, then θ ← θ - η φ_k.
"""
from __future__ import annotations

import torch

from pinnbench import Optimizer, register_optimizer
from pinnbench.linalg import kernel_solve, shifted_cholesky_solve, shifted_pinv_solve, weighted_system
from pinnbench.linesearch import grid_line_search

SPACES = ("sample", "parameter", "auto")


@register_optimizer("engd_woodbury")
class ENGDWoodbury(Optimizer):
    """Damped ENGD solved in sample space (Woodbury), with SPRING momentum, then the 2^-k grid line search.

    The name: the paper's two methods are this update with momentum = 0 ("ENGD-W", the Woodbury form of damped
    ENGD) and with momentum > 0 (SPRING); one class covers both, as the paper's code does.

    damping: λ, added to the kernel AAᵀ's diagonal (equivalently to the Gram AᵀA = JᵀWJ's). Default 1e-3.
    momentum: μ in [0, 1), the weight of the previous direction φ_{k-1} (0: plain damped ENGD). Default 0.99.
        Both defaults are those of the authors' public SPRING code, which takes them from Section 4 of the
        SPRING paper; the ENGD paper itself tunes λ, μ per problem by random search (no single published
        default), see docs/modern-baselines.md.
    lr: None (default, the paper's choice): the step size η from the grid line search on the loss along φ_k,
        η = 2^-k, k = 0..line_search_steps-1, argmin taken unconditionally, exactly ENGD's (the authors' code
        uses the same 31-point grid 2^-30..2^0). A number: a fixed step η = min(lr, sqrt(norm_constraint)/‖φ_k‖)
        (SPRING's norm constraint, the code's fixed-learning-rate mode).
    norm_constraint: C of that fixed-step mode (code default 1e-3); unused with the line search.
    line_search_steps: size of the 2^-k grid.
    space: where the damped system is solved. 'sample' (default, the paper's): the N x N kernel AAᵀ + λI.
        'parameter': the same φ from the P x P system (AᵀA + λI)φ = Aᵀb + λμφ_{k-1} (the normal equations of the
        same regularised least-squares problem); 'auto': 'sample' when N < P, else 'parameter'. Woodbury pays
        off only when N < P; the benchmark's paper point sets have N > P (laplace2d: 900 x 129), where
        'parameter' gives the same step (to rounding) 5-10x cheaper.

    Scale: φ solves the damped Gauss-Newton system of L/2 = ½‖b‖², so η = 1 is the full Gauss-Newton step
    (ENGD's direction is twice it: its η = 1/2). φ is carried to the next step unscaled by η, as in SPRING.
    The Cholesky of AAᵀ + λI falls back to an eigh pseudo-inverse when the kernel is numerically singular
    (λ = 0 with N > P). No randomisation (the paper's Nyström sketch of the kernel for large batches): at the
    sizes benchmarked here the exact kernel costs a few milliseconds.
    ``info``: eta, damping, momentum and the loss after the step.
    """

    info_keys = {"eta": "the step size", "damping": "λ", "momentum": "μ", "loss": "the train loss after the step"}

    def __init__(self, damping: float = 1e-3, momentum: float = 0.99, lr: float | None = None,
                 norm_constraint: float = 1e-3, line_search_steps: int = 31, space: str = "sample") -> None:
        if damping < 0:
            raise ValueError(f"damping must be >= 0, got {damping}")
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must lie in [0, 1), got {momentum}")
        if lr is not None and (lr <= 0 or norm_constraint <= 0):
            raise ValueError(f"need lr > 0 and norm_constraint > 0, got {lr}, {norm_constraint}")
        if space not in SPACES:
            raise ValueError(f"space must be one of {', '.join(SPACES)}, got {space!r}")
        self.damping, self.momentum, self.lr, self.space = damping, momentum, lr, space
        self.norm_constraint, self.line_search_steps = norm_constraint, int(line_search_steps)

    def reset(self, objective, theta: torch.Tensor) -> None:
        self.phi = torch.zeros_like(theta)

    def direction(self, jac: torch.Tensor, r: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """φ_k from the Jacobian and residual at θ_k and the previous φ_{k-1}; updates the stored φ."""
        a, b = weighted_system(jac, r, weights)
        previous = self.momentum * self.phi
        n_residuals, n_params = a.shape
        if self.space == "sample" or (self.space == "auto" and n_residuals < n_params):
            self.phi = kernel_solve(a, b - a @ previous, self.damping) + previous
            return self.phi
        gram, rhs = a.mT @ a, a.mT @ b + self.damping * previous
        phi = shifted_cholesky_solve(gram, rhs, self.damping)
        self.phi = shifted_pinv_solve(gram, rhs, self.damping) if phi is None else phi
        return self.phi

    def step(self, objective, theta: torch.Tensor) -> torch.Tensor:
        jac, r = objective.jacobian(theta)
        phi = self.direction(jac, r, objective.row_weights)
        if self.lr is None:
            eta, theta_next, loss = grid_line_search(objective, theta, phi, self.line_search_steps)
            loss = float(loss)
        else:
            eta = min(self.lr, (self.norm_constraint ** 0.5) / max(float(phi.norm()), torch.finfo(phi.dtype).tiny))
            theta_next = theta - eta * phi
            loss = float(objective.loss(theta_next))
        self.info = {"eta": eta, "damping": self.damping, "momentum": self.momentum, "loss": loss}
        return theta_next
