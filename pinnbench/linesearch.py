"""The 2^-k grid line search shared by ANaGRAM, AMStraMGRAM, E-NGD and gradient descent baselines."""
from __future__ import annotations

import torch


def step_grid(n: int = 31, dtype: torch.dtype = torch.float64, device: torch.device | str = "cpu") -> torch.Tensor:
    """η = 2^-k for k = 0..n-1."""
    return torch.pow(2.0, -torch.arange(n, dtype=dtype, device=device))


def grid_line_search(objective, theta: torch.Tensor, direction: torch.Tensor, n: int = 31
                     ) -> tuple[float, torch.Tensor, torch.Tensor]:
    """Evaluate the loss at θ - η d for every η = 2^-k and take the argmin unconditionally.

    All step sizes are evaluated in one batched forward pass. Non-finite losses never win.
    Returns (η*, θ - η* d, loss at θ - η* d).
    """
    etas = step_grid(n, theta.dtype, theta.device)
    candidates = theta.unsqueeze(0) - etas.unsqueeze(1) * direction.unsqueeze(0)
    losses = objective.losses(candidates)
    losses = torch.where(torch.isfinite(losses), losses, torch.full_like(losses, float("inf")))
    best = int(torch.argmin(losses))
    return float(etas[best]), candidates[best], losses[best]
