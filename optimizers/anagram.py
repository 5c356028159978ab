"""ANaGRAM (Schwencke & Furtlehner, ICLR 2025): truncated-SVD pseudo-inverse of the stacked residual
Jacobian applied to the residual, then the 2^-k grid line search (PROTOCOLS.md §2)."""
from __future__ import annotations

import torch

from pinnbench import Optimizer, register_optimizer
from pinnbench.linalg import rank_above, relative_cutoff, thin_svd, truncated_solve
from pinnbench.linesearch import grid_line_search


@register_optimizer("anagram")
class ANaGRAM(Optimizer):
    """θ ← θ - η* V_k S_k⁻¹ U_kᵀ r with singular values s_i ≥ cutoff kept.

    cutoff: an absolute threshold, or None for the relative default sqrt(eps·P)·s_max.
    line_search_steps: the grid η = 2^-k, k = 0..line_search_steps-1.
    """

    def __init__(self, cutoff: float | None = None, line_search_steps: int = 31) -> None:
        self.cutoff = cutoff
        self.line_search_steps = line_search_steps

    def step(self, objective, theta: torch.Tensor) -> torch.Tensor:
        jac, r = objective.jacobian(theta)
        svd = thin_svd(jac)
        cutoff = relative_cutoff(svd, objective.n_params) if self.cutoff is None else self.cutoff
        rank = rank_above(svd, cutoff)
        direction = truncated_solve(svd, r, rank)
        eta, theta_next, loss = grid_line_search(objective, theta, direction, self.line_search_steps)
        self.info = {"eta": eta, "rank": rank, "cutoff": cutoff, "loss": float(loss)}
        self.spectrum = {"singular_values": svd.S, "coefficients": svd.U.mT @ r}
        return theta_next
