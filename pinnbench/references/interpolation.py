"""Evaluate a solution stored at time levels x Chebyshev points anywhere in its domain.

In x the stored values at the Chebyshev points define a polynomial (spectral interpolation, evaluated from its
Chebyshev coefficients); in t a local Lagrange polynomial through the ``t_degree + 1`` nearest stored levels
(levels may be unevenly spaced, e.g. graded towards t = 0). Evaluation is written in torch and differentiable
in the points, so autograd gives u_t, u_x and u_xx of the interpolant.
"""
from __future__ import annotations

import numpy as np
import torch

from ..errors import PinnbenchError
from .chebyshev import coefficients, vandermonde

DOMAIN_TOLERANCE = 1e-9


class SpaceTimeInterpolant:
    """u(t, x) for points (t, x) with t in [t_levels[0], t_levels[-1]] and x in [-1, 1].

    ``values`` has shape (len(t_levels), n+1): row k holds u(t_levels[k], x_j) at the Chebyshev points
    x_j = cos(jπ/n).
    """

    def __init__(self, t_levels: np.ndarray, values: np.ndarray, t_degree: int = 9,
                 chunk_points: int = 4096) -> None:
        if values.shape[0] != t_levels.shape[0] or t_levels.shape[0] <= t_degree:
            raise ValueError(f"need more than t_degree={t_degree} levels matching the values' rows; got "
                             f"{t_levels.shape[0]} levels for values of shape {values.shape}")
        if np.any(np.diff(t_levels) <= 0):
            raise ValueError("t_levels must be strictly increasing")
        self.t_levels = torch.as_tensor(t_levels, dtype=torch.float64)
        self.coefficients = torch.as_tensor(coefficients(values), dtype=torch.float64)
        self.degree = values.shape[1] - 1
        self.t_degree = t_degree
        self.chunk_points = chunk_points
        self._on_device: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}

    def _tables(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        if device not in self._on_device:
            self._on_device[device] = (self.t_levels.to(device), self.coefficients.to(device))
        return self._on_device[device]

    def _check_domain(self, t: torch.Tensor, x: torch.Tensor) -> None:
        t0, t1 = float(self.t_levels[0]), float(self.t_levels[-1])
        if t.numel() == 0:
            return
        if (float(t.min()) < t0 - DOMAIN_TOLERANCE or float(t.max()) > t1 + DOMAIN_TOLERANCE
                or float(x.abs().max()) > 1 + DOMAIN_TOLERANCE):
            raise PinnbenchError(f"reference solution asked outside its domain: points must have "
                                 f"t in [{t0:g}, {t1:g}] and x in [-1, 1]")

    def __call__(self, points: torch.Tensor) -> torch.Tensor:
        """u at points (M, 2) ordered (t, x), as (M,) in float64 on the points' device."""
        points = points.to(torch.float64)
        t, x = points[:, 0], points[:, 1]
        self._check_domain(t.detach(), x.detach())
        parts = [self._evaluate(t[i:i + self.chunk_points], x[i:i + self.chunk_points])
                 for i in range(0, points.shape[0], self.chunk_points)]
        return torch.cat(parts) if parts else points.new_zeros(0)

    def _evaluate(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        levels, coef = self._tables(t.device)
        p = self.t_degree
        # First level of each point's stencil: the p+1 levels around t, shifted inside at the ends.
        after = torch.searchsorted(levels, t.detach().contiguous())
        start = (after - (p + 1) // 2).clamp(0, levels.shape[0] - 1 - p)
        stencil = levels[start.unsqueeze(1) + torch.arange(p + 1, device=t.device)]  # (M, p+1)
        weights = _lagrange_weights(t, stencil)
        basis = vandermonde(x, self.degree)  # (M, n+1)
        order = torch.argsort(start)
        starts, counts = torch.unique_consecutive(start[order], return_counts=True)
        pieces = []
        for first, rows in zip(starts.tolist(), torch.split(order, counts.tolist())):
            at_levels = basis[rows] @ coef[first:first + p + 1].T  # (m, p+1): u at the stencil's levels
            pieces.append((at_levels * weights[rows]).sum(dim=1))
        inverse = torch.empty_like(order)
        inverse[order] = torch.arange(order.shape[0], device=order.device)
        return torch.cat(pieces)[inverse]


def _lagrange_weights(t: torch.Tensor, nodes: torch.Tensor) -> torch.Tensor:
    """(M, p+1) Lagrange basis polynomials of each row's nodes at t (M,); exactly 1/0 at the nodes."""
    k = nodes.shape[1]
    off_diagonal = ~torch.eye(k, dtype=torch.bool, device=t.device)
    numerator = torch.where(off_diagonal, (t.unsqueeze(1) - nodes).unsqueeze(1), torch.ones((), dtype=t.dtype,
                                                                                           device=t.device))
    denominator = torch.where(off_diagonal, nodes.unsqueeze(2) - nodes.unsqueeze(1),
                              torch.ones((), dtype=t.dtype, device=t.device))
    return (numerator / denominator).prod(dim=2)
