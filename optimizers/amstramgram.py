"""AMStraMGRAM (Schwencke, Rousselot, Shilova & Furtlehner, 2025): ANaGRAM with adaptive dual spectral cutoffs.

The rules follow the first author's public implementation (repository IloneM/Beyond-PINNs,
``src/beyond_pinns/legacy/part_a_smooth.py``, function ``run_amstramgram``; cited below as [code]), read as a
reference and written here in pinnbench's own terms. The summary and the talk ([summary], [talk]) give the
vocabulary: docs/amstramgram.md lists each rule with its source and what is still pinnbench's own choice.

Notation: thin SVD ``J = U diag(s) Vᵀ`` (k = min(N, P) triplets, s descending), c = Uᵀr, and the reconstruction
error ``RCE_n = sqrt(||r - Σ_{i<=n} c_i u_i||² / N)`` (pinnbench.spectral). One iteration (one harness step):

1. Ranks from the spectrum of the last SVD and the residual at the current θ [code: the SVD of the previous
   r_min half-step is reused with the fresh residual]:
   ``r_int = #{n >= 1 : RCE_n < s_n}`` (a count, not the first crossing) and ``r_ε = #{n >= 1 : RCE_n >= ε}``
   [code]; ``r_min = max(1, min(r_int, r_ε))`` [code]; ``r_max = max(r_max, r_int)``: r_max never decreases
   [code]. Phase 0 ("intersection") while r_int <= r_ε, phase 1 ("flattening") once r_int > r_ε [code's
   ``stage`` flag; talk: "intersection phase", "flattening phase"].
2. Until "liftoff" (the first iteration with r_min >= r_max), r_max grows by one whenever r_min did not change
   since the previous iteration [code]; after liftoff r_max only follows r_int.
3. Two half-steps in sequence, each with its own SVD at its own point [code]: first with the r_max leading
   directions, then with the r_min leading ones; every rank is used with ``rank_offset`` extra directions
   (the code's mask ``arange(k) <= rank``: offset 1). Each half-step is line-searched on the grid
   η = 0.5^(60 t²), t = 0, 0.01, ..., 1 (101 step sizes from 1 down to 2^-60), argmin taken unconditionally [code].
4. At the start (``reset``), the SVD at θ0 gives r_min as above, and r_max starts at the elbow of log s beyond
   r_min: the index of the point farthest below the chord of the curve log s_{r_min..k} [code:
   ``find_elbows_point``].

The precision ε is fixed for the whole run (default 1e-12; 1e-14 in the machine-precision study) and the run
does not stop when the residual reaches it [code]; the protocol's step cap ends it.

**Never worse than ANaGRAM** (``fallback="portfolio"``, pinnbench's rule, not the author's): an ANaGRAM track
(pinnbench's ``anagram`` with the problem's cutoff) runs beside the adaptive track from the same θ0, each on
its own parameters; every step returns the track with the lower train loss. At equal steps the returned
loss is therefore never above ANaGRAM's, by construction, and the adaptive track is never held back by it
(ANaGRAM's rank among the adaptive candidates blocks the machine-precision regime, measured). The cost is one
ANaGRAM step (one SVD, one 31-point line search) per iteration on top of the two half-steps.
``fallback="none"`` is the author's rules alone.
"""
from __future__ import annotations

from typing import Literal

import torch

from pinnbench import Optimizer, get_optimizer, register_optimizer
from pinnbench.linalg import ImplicitSVD, implicit_svd, truncated_solve
from pinnbench.linesearch import grid_line_search, squared_exponent_grid
from pinnbench.spectral import SPECTRUM_KEYS, Spectrum, spectrum

PHASE_INTERSECTION = 0
PHASE_FLATTENING = 1


def _ranks(diagnostics: Spectrum, precision: float) -> tuple[int, int]:
    """(r_int, r_ε) of pinnbench.spectral, the author's counts."""
    return diagnostics.intersection_rank(), diagnostics.precision_rank(precision)


def elbow_rank(singular_values: torch.Tensor, start: int) -> int:
    """``start`` + the index of the point of log s[start:] farthest below the chord from its first to its last
    point (0 when the curve never falls below its chord, or has fewer than three points)."""
    y = torch.log(singular_values[start:].clamp_min(torch.finfo(singular_values.dtype).tiny))
    if y.numel() < 3:
        return start
    x = torch.arange(y.numel(), dtype=y.dtype, device=y.device)
    below = x * (y[-1] - y[0]) - (y - y[0]) * (x[-1] - x[0])
    return start + int(torch.argmax(below))


class RankSchedule:
    """The author's rank rules across iterations: r_min from the current (r_int, r_ε), r_max never decreasing,
    and the increment of r_max while r_min stands still, until liftoff (module docstring, points 1 and 2)."""

    def __init__(self, r_max: int) -> None:
        self.r_max = r_max
        self.previous_r_min = -1
        self.liftoff = False
        self.flattening = False

    def advance(self, r_int: int, r_eps: int, k: int) -> int:
        """Update r_max, liftoff and the phase from this iteration's ranks (k triplets); returns r_min."""
        self.flattening = self.flattening or r_int > r_eps
        r_min = max(1, min(r_int, r_eps))
        self.r_max = min(max(self.r_max, r_int), k)
        if not self.liftoff:
            if r_min >= self.r_max:
                self.liftoff = True
            elif r_min == self.previous_r_min:
                self.r_max = min(self.r_max + 1, k)
            self.previous_r_min = r_min
        return r_min


@register_optimizer("amstramgram")
class AMStraMGRAM(Optimizer):
    """Adaptive dual-cutoff ANaGRAM after the first author's code (module docstring, docs/amstramgram.md).

    precision: the fixed precision ε of the RCE (an RMS level of the stacked residual).
    rank_offset: extra leading directions used on top of each rank (the author's code: 1).
    line_search_points, line_search_exponent: the grid η = 0.5^(exponent·t²), t in [0, 1] (101 points, 60).
    fallback: "portfolio" (also run an ANaGRAM track, return the better of the two each step) or "none".
    anagram_cutoff: the ANaGRAM track's absolute cutoff; None for its relative default sqrt(eps·P)·s_max
        (problems set ANaGRAM's published value).
    """

    info_keys = {  # docs/amstramgram.md, "Diagnostics"
        "eta": "the r_min half-step's step size", "eta_max": "the r_max half-step's step size",
        "rank": "the directions used (r_min + rank_offset)", "cutoff": "the singular value at that rank",
        "r_int": "the intersection rank #{RCE_n < s_n}", "r_eps": "the precision rank #{RCE_n >= ε}",
        "r_min": "max(1, min(r_int, r_eps))", "r_max": "the upper rank", "liftoff": "1 once liftoff happened",
        "precision": "the precision ε", "phase": "0 intersection, 1 flattening",
        "adaptive_loss": "the adaptive track's train loss after the step",
        "anagram_loss": "the ANaGRAM track's train loss after the step (fallback 'portfolio')",
        "loss": "the train loss of the returned θ", "track": "the track returned: 0 adaptive, 1 ANaGRAM"}
    spectrum_keys = SPECTRUM_KEYS

    def __init__(self, precision: float = 1e-12, rank_offset: int = 1, line_search_points: int = 101,
                 line_search_exponent: float = 60.0, fallback: Literal["portfolio", "none"] = "portfolio",
                 anagram_cutoff: float | None = None) -> None:
        # types are checked against these annotations by pinnbench.hyperparameters; ranges here
        if not precision > 0:
            raise ValueError(f"precision must be > 0, got {precision!r}")
        if rank_offset < 0:
            raise ValueError(f"rank_offset must be >= 0, got {rank_offset!r}")
        if line_search_points < 2:
            raise ValueError(f"line_search_points must be >= 2, got {line_search_points!r}")
        self.precision = float(precision)
        self.rank_offset = rank_offset
        self.line_search_points = line_search_points
        self.line_search_exponent = float(line_search_exponent)
        self.fallback = fallback
        self.anagram_cutoff = anagram_cutoff

    def reset(self, objective, theta: torch.Tensor) -> None:
        self._etas = squared_exponent_grid(self.line_search_points, self.line_search_exponent, theta.dtype,
                                           theta.device)
        jac, r = objective.jacobian(theta)
        self._svd = implicit_svd(jac)
        r_int, r_eps = _ranks(spectrum(self._svd, r), self.precision)
        self.ranks = RankSchedule(elbow_rank(self._svd.S, max(1, min(r_int, r_eps))))
        self._theta = theta.clone()
        self._anagram = None
        if self.fallback == "portfolio":
            self._anagram = get_optimizer("anagram", cutoff=self.anagram_cutoff)
            self._anagram.reset(objective, theta)
            self._anagram_theta = theta.clone()

    def _half_step(self, objective, theta: torch.Tensor, rank: int) -> tuple[float, torch.Tensor, float, ImplicitSVD]:
        """One truncated step with ``rank`` + offset leading directions of a fresh SVD at θ, line-searched."""
        jac, r = objective.jacobian(theta)
        svd = implicit_svd(jac)
        used = min(rank + self.rank_offset, svd.S.numel())
        direction = truncated_solve(svd, r, used)
        eta, theta_next, loss = grid_line_search(objective, theta, direction, etas=self._etas)
        return eta, theta_next, float(loss), svd

    def step(self, objective, theta: torch.Tensor) -> torch.Tensor:
        diagnostics = spectrum(self._svd, objective.residuals(self._theta))
        self.spectrum = diagnostics.as_dict()
        k = diagnostics.size
        r_int, r_eps = _ranks(diagnostics, self.precision)
        r_min = self.ranks.advance(r_int, r_eps, k)
        r_max = self.ranks.r_max
        eta_max, theta_mid, _, _ = self._half_step(objective, self._theta, r_max)
        eta, self._theta, loss, self._svd = self._half_step(objective, theta_mid, r_min)
        used = min(r_min + self.rank_offset, k)
        self.info = {"eta": eta, "eta_max": eta_max, "rank": used,
                     "cutoff": float(diagnostics.singular_values[used - 1]), "r_int": r_int, "r_eps": r_eps,
                     "r_min": r_min, "r_max": r_max,
                     "liftoff": float(self.ranks.liftoff), "precision": self.precision,
                     "phase": PHASE_FLATTENING if self.ranks.flattening else PHASE_INTERSECTION,
                     "adaptive_loss": loss, "loss": loss, "track": 0}
        if self._anagram is None:
            return self._theta
        self._anagram_theta = self._anagram.step(objective, self._anagram_theta)
        anagram_loss = self._anagram.info["loss"]
        self.info["anagram_loss"] = anagram_loss
        if anagram_loss < loss:
            self.info.update(loss=anagram_loss, track=1)
            return self._anagram_theta
        return self._theta
