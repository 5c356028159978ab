"""Spectral diagnostics of a truncated-SVD step: coefficients, the reconstruction-error curve and its ranks.

For the thin SVD ``J = U diag(s) Vᵀ`` (k = min(N, P) triplets, s descending) and the stacked residual r (N,):

- coefficients ``c = Uᵀ r`` (k,): how much of r each singular direction carries;
- reconstruction error ``RCE_n = sqrt((||r||² - Σ_{i<=n} c_i²) / N)`` for n = 0..k (k+1 values): the RMS of the
  part of r left outside the n leading directions. ``RCE_0² = ||r||²/N`` (the mean squared stacked residual);
  the curve is non-increasing. It is computed without cancellation as
  ``RCE_n² = (||r - U c||² + Σ_{i>n} c_i²) / N`` (tail sums of non-negative terms, monotone by construction);
- the **intersection rank** ``r_int = #{n >= 1 : RCE_n < s_n}`` (1-based s_n): how many singular values lie
  strictly above the RCE curve at their own index. It is a count, as in the AMStraMGRAM author's code
  (IloneM/Beyond-PINNs, ``run_amstramgram``), not the first crossing: s rising above the RCE again later counts;
  a tie does not;
- the **precision rank** ``r_eps = #{n >= 1 : RCE_n >= eps}``: how many leading directions still leave an RCE at
  or above the precision (the author's code; a tie counts). Since the RCE is non-increasing, ``r_eps + 1``
  directions bring it below eps when that is possible at all; ``r_eps = 0``: one direction suffices;
  ``r_eps = k``: the RCE never falls below eps (a residual part outside the range of J at least eps), and
  ``reachable`` is False.

All these come from the one SVD a step already computes (AMStraMGRAM, Schwencke et al. 2025; the talk's slides
"Reconstruction Error (RCE)").
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .linalg import ImplicitSVD, ThinSVD, project

SPECTRUM_KEYS = {"singular_values": "the singular values s of J, descending (k,)",
                 "coefficients": "c = Uᵀr, the residual's coefficient on each singular direction (k,)",
                 "rce": "the reconstruction error RCE_n for n = 0..k (k+1,)"}
"""What :meth:`Spectrum.as_dict` publishes: the ``spectrum_keys`` of the SVD-based optimizers."""


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
        """r_int = #{n >= 1 : RCE_n < s_n}."""
        return intersection_rank(self.singular_values, self.rce)

    def precision_rank(self, eps: float) -> int:
        """r_eps = #{n >= 1 : RCE_n >= eps}."""
        return precision_rank(self.rce, eps)

    def as_dict(self) -> dict[str, torch.Tensor]:
        """The per-step vectors an optimizer publishes as ``spectrum`` (:data:`SPECTRUM_KEYS`)."""
        return {"singular_values": self.singular_values, "coefficients": self.coefficients, "rce": self.rce}


def rce_curve(coefficients: torch.Tensor, outside_sq: torch.Tensor, n: int) -> torch.Tensor:
    """RCE_n = sqrt((||r - U c||² + Σ_{i>n} c_i²)/N) for n = 0..k (k+1,), from c (k,), the squared norm of r
    outside span(U) and N: a sum of non-negative terms accumulated from the tail, so the curve is non-increasing
    and never negative."""
    sq = coefficients * coefficients
    tail = torch.flip(torch.cumsum(torch.flip(sq, [0]), 0), [0])  # tail[i] = Σ_{j>=i} c_j² (0-based)
    return torch.sqrt((torch.cat([tail, tail.new_zeros(1)]) + outside_sq) / n)


def reconstruction_error(svd: ThinSVD | ImplicitSVD, r: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(c, RCE): c = Uᵀr (k,) and RCE_n = sqrt((||r||² - Σ_{i<=n} c_i²)/N) for n = 0..k, shape (k+1,).

    The residual part outside span(U) is computed directly (:func:`pinnbench.linalg.project`).
    """
    c, outside_sq = project(svd, r)
    return c, rce_curve(c, outside_sq, r.numel())


def spectrum(svd: ThinSVD | ImplicitSVD, r: torch.Tensor) -> Spectrum:
    """The diagnostics of one step from its SVD and residual."""
    c, rce = reconstruction_error(svd, r)
    return Spectrum(svd.S, c, rce)


def intersection_rank(singular_values: torch.Tensor, rce: torch.Tensor) -> int:
    """r_int = #{n >= 1 : RCE_n < s_n} (1-based s_n, RCE_n = rce[n])."""
    return int((rce[1:] < singular_values).sum())


def precision_rank(rce: torch.Tensor, eps: float) -> int:
    """r_eps = #{n >= 1 : RCE_n >= eps}."""
    return int((rce[1:] >= eps).sum())


def is_reachable(rce: torch.Tensor, eps: float) -> bool:
    """Whether the RCE falls below eps at some rank (False: r_eps = k)."""
    return bool(rce[-1] < eps)
