"""Energy natural gradient descent (Müller & Zeinhofer, ICML 2023), PROTOCOLS.md §5.

θ ← θ - η* G⁺ ∇L with the Gauss-Newton / energy Gram matrix G = Jᵀ W J, W = diag(objective.row_weights)
(1/N_s per row of group s, so that L = Σ w r² and ∇L = 2 Jᵀ W r: the Gram is consistent with the loss),
G⁺ the least-squares pseudo-inverse (no damping by default) and η* from the 2^-k grid line search.
Because ∇L = 2 Jᵀ W r, G⁺ ∇L is twice the Gauss-Newton step: η* = 1/2 is the full Gauss-Newton step.
"""
from __future__ import annotations

import torch

from pinnbench import Optimizer, register_optimizer
from pinnbench.linalg import thin_svd, weighted_system
from pinnbench.linesearch import grid_line_search

SOLVERS = ("auto", "gram", "svd")


def natural_gradient(jac: torch.Tensor, r: torch.Tensor, weights: torch.Tensor, solver: str = "auto",
                     rcond: float | None = None, damping: float = 0.0
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
    """(G⁺ ∇L, ∇L, spectrum of G, rank) for G = Jᵀ W J + damping·I and ∇L = 2 Jᵀ W r.

    The pseudo-inverse keeps the eigenvalues of G with |λ| > rcond·max|λ| (default rcond = eps·P, the
    lstsq/pinv convention of numpy and JAX), i.e. it is the minimum-norm least-squares solution of G d = ∇L.
    solver 'gram' forms the P x P matrix G and diagonalises it (eigh), as the authors' code does (O(N P² + P³));
    'svd' takes the thin SVD of W^½ J instead (λ = s² + damping; O(min(N, P)² max(N, P)), and it avoids squaring
    the condition number); 'auto' takes 'gram' when N >= P and 'svd' when N < P (then G would be P x P of rank
    <= N). With N < P the SVD misses G's null space, where G + damping·I has eigenvalue damping, but ∇L lies in
    the row space of J, so the solution has no component there either.
    """
    n_residuals, n_params = jac.shape
    if solver == "auto":
        solver = "gram" if n_residuals >= n_params else "svd"
    a, b = weighted_system(jac, r, weights)
    grad = 2.0 * (a.mT @ b)
    if rcond is None:
        rcond = torch.finfo(jac.dtype).eps * n_params
    if solver == "gram":
        gram = a.mT @ a
        if damping:
            gram.diagonal().add_(damping)
        lam, vecs = torch.linalg.eigh(gram)
    elif solver == "svd":
        svd = thin_svd(a)
        lam, vecs = svd.S.square() + damping, svd.V
    else:
        raise ValueError(f"unknown solver {solver!r}; accepted: {', '.join(SOLVERS)}")
    keep = lam.abs() > rcond * lam.abs().max()
    coeffs = vecs[:, keep].mT @ grad
    direction = vecs[:, keep] @ (coeffs / lam[keep])
    return direction, grad, lam.flip(0) if solver == "gram" else lam, int(keep.sum())


@register_optimizer("engd")
class ENGD(Optimizer):
    """E-NGD: pseudo-inverse of the Gram matrix Jᵀ W J applied to ∇L, then the 2^-k grid line search.

    damping: added to the Gram's diagonal (0: none, the published setting).
    rcond: relative cutoff of the pseudo-inverse on G's eigenvalues; None for eps·P.
    solver: 'auto' ('gram' when N >= P, else 'svd'), 'gram' (eigh of the P x P Gram, as published) or 'svd'
        (thin SVD of W^½ J). All give the same pseudo-inverse up to rounding.
    line_search_steps: the grid η = 2^-k, k = 0..line_search_steps-1.
    """

    info_keys = {"eta": "the step size the line search chose", "rank": "the eigenvalues of G kept",
                 "loss": "the train loss after the step"}
    spectrum_keys = {"gram_eigenvalues": "the eigenvalues of G = JᵀWJ + damping·I, descending (P,)"}

    def __init__(self, damping: float = 0.0, rcond: float | None = None, solver: str = "auto",
                 line_search_steps: int = 31) -> None:
        if solver not in SOLVERS:
            raise ValueError(f"solver must be one of {', '.join(SOLVERS)}, got {solver!r}")
        if damping < 0:
            raise ValueError(f"damping must be >= 0, got {damping}")
        if rcond is not None and not rcond >= 0:
            raise ValueError(f"rcond must be >= 0 or None, got {rcond}")
        if line_search_steps < 1:
            raise ValueError(f"line_search_steps must be >= 1, got {line_search_steps}")
        self.damping, self.rcond, self.solver, self.line_search_steps = damping, rcond, solver, line_search_steps

    def step(self, objective, theta: torch.Tensor) -> torch.Tensor:
        jac, r = objective.jacobian(theta)
        direction, _, spectrum, rank = natural_gradient(jac, r, objective.row_weights, self.solver, self.rcond,
                                                        self.damping)
        eta, theta_next, loss = grid_line_search(objective, theta, direction, self.line_search_steps)
        self.info = {"eta": eta, "rank": rank, "loss": float(loss)}
        self.spectrum = {"gram_eigenvalues": spectrum}
        return theta_next
