"""Spectral diagnostics of a truncated-SVD step: coefficients, the reconstruction-error curve and its ranks.

For the thin SVD ``J = U diag(s) Vᵀ`` (k = min(N, P) triplets, s descending) and the stacked residual r (N,):

- coefficients ``c = Uᵀ r`` (k,): how much of r each singular direction carries;
- reconstruction error ``RCE_n = sqrt((||r||² - Σ_{i<=n} c_i²) / N)`` for n = 0..k (k+1 values): the RMS of the
  part of r left outside the n leading directions. ``RCE_0² = ||r||²/N`` (the mean squared stacked residual);
  the curve is non-increasing. It is computed without cancellation as
  ``RCE_n² = (||r - U c||² + Σ_{i>n} c_i²) / N`` (tail sums of non-negative terms, monotone by construction);
- the **intersection rank** ``r_int``: the number of leading directions whose singular value lies strictly
  above the RCE curve, ``r_int = max{n : s_i > RCE_i for every i <= n}`` (1-based s_i). The first crossing
  decides: a later return of s above RCE does not count. A tie ``s_i == RCE_i`` counts as crossed. With no
  crossing, ``r_int = k``;
- the **precision rank** ``r_eps``: the fewest leading directions that bring the RCE down to the precision,
  ``r_eps = min{n : RCE_n <= eps}``; a tie counts as reached; ``r_eps = 0`` means the residual already stands at
  the precision; when the RCE never reaches eps (a residual part outside the range of J larger than eps),
  ``r_eps = k``, and ``reachable`` is False.

All these come from the one SVD a step already computes (AMStraMGRAM, Schwencke et al. 2025; the talk's slides
"Reconstruction Error (RCE)").
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .linalg import ThinSVD


@dataclass(frozen=True)
class Spectrum:
    """Singular values s (k,), coefficients c = Uᵀr (k,) and the RCE curve (k+1,) of one step."""

    singular_values: torch.Tensor
    coefficients: torch.Tensor
    rce: torch.Tensor

    @property
    def size(self) -> int:
        """k, the number of singular triplets."""
        return int(self.singular_values.numel())

    def intersection_rank(self) -> int:
        """r_int: leading directions with s_i > RCE_i, up to the first crossing (k if they never cross)."""
        return intersection_rank(self.singular_values, self.rce)

    def precision_rank(self, eps: float) -> int:
        """r_eps: the smallest n with RCE_n <= eps (k if none)."""
        return precision_rank(self.rce, eps)

    def as_dict(self) -> dict[str, torch.Tensor]:
        """The per-step vectors an optimizer publishes as ``spectrum``."""
        return {"singular_values": self.singular_values, "coefficients": self.coefficients, "rce": self.rce}


def reconstruction_error(svd: ThinSVD, r: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(c, RCE): c = Uᵀr (k,) and RCE_n = sqrt((||r||² - Σ_{i<=n} c_i²)/N) for n = 0..k, shape (k+1,).

    The residual part outside span(U) is computed directly (``r - U c``), and the squared RCE is a sum of
    non-negative terms accumulated from the tail, so the curve is non-increasing and never negative.
    """
    n = r.numel()
    c = svd.U.mT @ r
    outside = r - svd.U @ c
    sq = c * c
    tail = torch.flip(torch.cumsum(torch.flip(sq, [0]), 0), [0])  # tail[i] = Σ_{j>=i} c_j² (0-based)
    rce_sq = torch.cat([tail, tail.new_zeros(1)]) + outside @ outside
    return c, torch.sqrt(rce_sq / n)


def spectrum(svd: ThinSVD, r: torch.Tensor) -> Spectrum:
    """The diagnostics of one step from its SVD and residual."""
    c, rce = reconstruction_error(svd, r)
    return Spectrum(svd.S, c, rce)


def intersection_rank(singular_values: torch.Tensor, rce: torch.Tensor) -> int:
    """r_int = max{n : s_i > RCE_i for all i <= n} (1-based s_i, RCE_i = rce[i]); k if no crossing."""
    above = singular_values > rce[1:]
    if bool(above.all()):
        return int(singular_values.numel())
    return int(torch.argmin(above.to(torch.int8)))  # index of the first False = number of leading Trues


def precision_rank(rce: torch.Tensor, eps: float) -> int:
    """r_eps = min{n : RCE_n <= eps}; len(rce) - 1 (= k) when the RCE never reaches eps."""
    reached = rce <= eps
    if not bool(reached.any()):
        return int(rce.numel()) - 1
    return int(torch.argmax(reached.to(torch.int8)))


def is_reachable(rce: torch.Tensor, eps: float) -> bool:
    """Whether the RCE reaches eps at some rank (False: r_eps = k only by convention)."""
    return bool(rce[-1] <= eps)
