"""Grid line searches: the 2^-k grid of ANaGRAM, E-NGD and gradient descent, and AMStraMGRAM's 0.5^(e·t²) grid."""
from __future__ import annotations

import torch


def step_grid(n: int = 31, dtype: torch.dtype = torch.float64, device: torch.device | str = "cpu") -> torch.Tensor:
    """η = 2^-k for k = 0..n-1."""
    return torch.pow(2.0, -torch.arange(n, dtype=dtype, device=device))


def squared_exponent_grid(points: int = 101, exponent: float = 60.0, dtype: torch.dtype = torch.float64,
                          device: torch.device | str = "cpu") -> torch.Tensor:
    """η = 0.5^(exponent·t²) for t = 0, 1/(points-1), ..., 1: from 1 down to 2^-exponent, dense near η = 1.

    The grid of the AMStraMGRAM author's code (IloneM/Beyond-PINNs, ``run_amstramgram``: 101 points, exponent 60).
    """
    t = torch.linspace(0.0, 1.0, points, dtype=dtype, device=device)
    return torch.pow(0.5, exponent * t * t)


def grid_line_search(objective, theta: torch.Tensor, direction: torch.Tensor, n: int = 31,
                     etas: torch.Tensor | None = None) -> tuple[float, torch.Tensor, torch.Tensor]:
    """Evaluate the loss at θ - η d for every η of the grid and take the argmin unconditionally.

    The grid is η = 2^-k, k = 0..n-1, unless ``etas`` gives another one. All step sizes are evaluated in
    batched forward passes (``objective.losses_along``). Non-finite losses never win. Returns (η*, θ - η* d,
    loss at θ - η* d).
    """
    if etas is None:
        etas = step_grid(n, theta.dtype, theta.device)
    losses = objective.losses_along(theta, direction, etas)
    losses = torch.where(torch.isfinite(losses), losses, torch.full_like(losses, float("inf")))
    best = int(torch.argmin(losses))
    return float(etas[best]), theta - etas[best] * direction, losses[best]
