"""The MLP as a pure function of a flat parameter vector.

Layout of θ: for each layer in order, the weight matrix W (out x in, row-major) then the bias b (out).
Hidden layers use tanh, the output layer is linear with a scalar output.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class MLP:
    """A tanh MLP ``layers = (d_in, h_1, ..., h_k, 1)`` evaluated on a flat θ."""

    layers: tuple[int, ...]

    def __post_init__(self) -> None:
        if len(self.layers) < 2 or self.layers[-1] != 1 or min(self.layers) < 1:
            raise ValueError(f"layers must look like (d_in, hidden..., 1), got {self.layers}")

    @property
    def n_params(self) -> int:
        """Number of parameters P."""
        return sum(o * i + o for i, o in zip(self.layers[:-1], self.layers[1:]))

    @property
    def slices(self) -> list[tuple[slice, slice, int, int]]:
        """Per layer: (slice of W in θ, slice of b in θ, out, in)."""
        out, pos = [], 0
        for n_in, n_out in zip(self.layers[:-1], self.layers[1:]):
            w = slice(pos, pos + n_out * n_in)
            b = slice(w.stop, w.stop + n_out)
            out.append((w, b, n_out, n_in))
            pos = b.stop
        return out

    def unflatten(self, theta: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Views (W, b) per layer; θ may carry leading batch dimensions (..., P)."""
        lead = theta.shape[:-1]
        return [
            (theta[..., w].reshape(*lead, o, i), theta[..., b])
            for w, b, o, i in self.slices
        ]

    def init(self, generator: torch.Generator, dtype: torch.dtype = torch.float64,
             device: torch.device | str = "cpu", std: float = 0.1) -> torch.Tensor:
        """θ0 with every weight and bias i.i.d. N(0, std²), drawn on the CPU from ``generator``."""
        theta = torch.randn(self.n_params, generator=generator, dtype=torch.float64) * std
        return theta.to(device=device, dtype=dtype)

    def forward(self, theta: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """u_θ(x) for x of shape (M, d); returns (M,) (or (B, M) for a batch of θ of shape (B, P))."""
        h = x
        params = self.unflatten(theta)
        for k, (w, b) in enumerate(params):
            h = h @ w.mT + b.unsqueeze(-2)
            if k < len(params) - 1:
                h = torch.tanh(h)
        return h.squeeze(-1)
