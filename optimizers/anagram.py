"""ANaGRAM (Schwencke & Furtlehner, ICLR 2025): truncated-SVD pseudo-inverse of the stacked residual
Jacobian applied to the residual, then the 2^-k grid line search (PROTOCOLS.md §2)."""
from __future__ import annotations

import torch

from pinnbench import Optimizer, register_optimizer
from pinnbench.linalg import implicit_svd, rank_above, relative_cutoff
from pinnbench.linesearch import grid_line_search
from pinnbench.spectral import SPECTRUM_KEYS, spectrum


@register_optimizer("anagram")
class ANaGRAM(Optimizer):
    """θ ← θ - η* V_k S_k⁻¹ U_kᵀ r with singular values s_i ≥ cutoff kept.

    cutoff: an absolute threshold, or None for the relative default sqrt(eps·P)·s_max.
    line_search_steps: the grid η = 2^-k, k = 0..line_search_steps-1.

    Diagnostics per step (docs/amstramgram.md): ``spectrum`` holds the singular values, the coefficients
    c = Uᵀr and the RCE curve; ``info`` the step size, the rank and cutoff used, the intersection rank r_int
    and the loss after the step (ANaGRAM has no precision: r_eps, precision and phase are NaN).
    """

    info_keys = {"eta": "the step size the line search chose", "rank": "the singular directions used",
                 "cutoff": "the singular-value threshold used", "r_int": "the intersection rank #{RCE_n < s_n}",
                 "r_eps": "NaN (amstramgram's precision rank)", "precision": "NaN (amstramgram's precision)",
                 "phase": "NaN (amstramgram's phase)", "loss": "the train loss after the step"}
    spectrum_keys = SPECTRUM_KEYS

    def __init__(self, cutoff: float | None = None, line_search_steps: int = 31) -> None:
        if cutoff is not None and not cutoff >= 0:
            raise ValueError(f"cutoff must be >= 0 or None, got {cutoff}")
        if line_search_steps < 1:
            raise ValueError(f"line_search_steps must be >= 1, got {line_search_steps}")
        self.cutoff = cutoff
        self.line_search_steps = line_search_steps

    def step(self, objective, theta: torch.Tensor) -> torch.Tensor:
        jac, r = objective.jacobian(theta)
        svd = implicit_svd(jac)  # the long singular factor is never formed: only Uᵀr and V_k are needed
        cutoff = relative_cutoff(svd, objective.n_params) if self.cutoff is None else self.cutoff
        rank = rank_above(svd, cutoff)
        diagnostics = spectrum(svd, r)  # its coefficients Uᵀr also give the direction
        direction = svd.direction(diagnostics.coefficients, rank)
        eta, theta_next, loss = grid_line_search(objective, theta, direction, self.line_search_steps)
        nan = float("nan")
        self.info = {"eta": eta, "rank": rank, "cutoff": cutoff, "r_int": diagnostics.intersection_rank(),
                     "r_eps": nan, "precision": nan, "phase": nan, "loss": float(loss)}
        self.spectrum = diagnostics.as_dict()
        return theta_next
