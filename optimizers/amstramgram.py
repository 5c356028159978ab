"""AMStraMGRAM (Schwencke, Rousselot, Shilova & Furtlehner, 2025): ANaGRAM with an adaptive, staged cutoff.

No reference code is public: this is pinnbench's reconstruction from the paper's summary and the authors' talk;
docs/amstramgram.md says which parts the sources state, which are reconstruction, and what was measured.

Per step, one thin SVD ``J = U S Vᵀ`` of the stacked residual Jacobian gives the coefficients ``c = Uᵀr`` and
the reconstruction-error curve RCE (pinnbench.spectral), hence the intersection rank r_int (RCE meets the
singular values) and the precision rank r_ε (RCE meets the precision line ε). Then:

- principal cutoff ``r_min = min(r_int, r_ε)``: the intersection while it lies above the precision (phase 0,
  "intersection"), the precision rank once the intersection has dropped below it (phase 1, "flattening";
  r_min is locked to the precision rank: the stage separation);
- a stage ends when r_ε = 0 (RCE_0, the RMS of the stacked residual, stands at the precision); ε is then
  multiplied by ``precision_factor``, down to ``precision_final``; r_ε = 0 at the final precision raises
  ``Converged``;
- dual cutoffs: a second candidate rank ``r_max`` from the same SVD. It never decreases (ascent: it follows the
  largest r_int and r_min seen) and grows by ``rmax_increment`` after every step whose loss ratio (new/old)
  exceeds ``ignition_ratio`` (the fix against ignition failure). Both directions are line-searched on the
  2^-k grid and the step with the lower loss is kept;
- optional cap (``cutoff``): r_min and the ascent of r_max never exceed ANaGRAM's rank #{s_i >= α}.
"""
from __future__ import annotations

import torch

from pinnbench import Converged, Optimizer, PinnbenchError, register_optimizer
from pinnbench.linalg import rank_above, relative_cutoff, thin_svd, truncated_solve
from pinnbench.linesearch import grid_line_search
from pinnbench.spectral import spectrum

PHASE_INTERSECTION = 0
PHASE_FLATTENING = 1


@register_optimizer("amstramgram")
class AMStraMGRAM(Optimizer):
    """Adaptive multi-cutoff ANaGRAM (docs/amstramgram.md).

    precision_start: the first stage's precision ε, an RMS level of the stacked residual.
    precision_factor: ε is multiplied by this at each stage change (0 < factor < 1).
    precision_final: the last stage's precision; r_ε = 0 there ends the run (``Converged``).
    dual_cutoffs: also line-search the candidate rank r_max and keep the better step.
    rmax_increment: added to r_max after a step whose loss ratio exceeds ``ignition_ratio``.
    ignition_ratio: the loss ratio (after/before a step) above which the step counts as not ignited.
    line_search_steps: the grid η = 2^-k, k = 0..line_search_steps-1.
    cutoff: None (no cap), "relative" (ANaGRAM's sqrt(eps·P)·s_max) or a number α: r_min and the ascent of r_max
        are capped at #{s_i >= α}, ANaGRAM's rank (laplace5d's default is "relative").
    """

    def __init__(self, precision_start: float = 1e-12, precision_factor: float = 1e-2,
                 precision_final: float = 1e-12, dual_cutoffs: bool = True, rmax_increment: int = 1,
                 ignition_ratio: float = 0.9, line_search_steps: int = 31,
                 cutoff: float | str | None = None) -> None:
        if not 0.0 < precision_factor < 1.0:
            raise PinnbenchError(f"amstramgram: precision_factor must lie in (0, 1), got {precision_factor}")
        if not 0.0 < precision_final <= precision_start:
            raise PinnbenchError("amstramgram: need 0 < precision_final <= precision_start, got "
                                 f"precision_final={precision_final}, precision_start={precision_start}")
        if rmax_increment < 0:
            raise PinnbenchError(f"amstramgram: rmax_increment must be >= 0, got {rmax_increment}")
        if not 0.0 < ignition_ratio <= 1.0:
            raise PinnbenchError(f"amstramgram: ignition_ratio must lie in (0, 1], got {ignition_ratio}")
        numeric = isinstance(cutoff, (int, float)) and not isinstance(cutoff, bool)
        if not (cutoff is None or cutoff == "relative" or (numeric and cutoff > 0)):
            raise PinnbenchError(f"amstramgram: cutoff must be None, 'relative' or a positive float, got {cutoff!r}")
        self.cutoff = cutoff
        self.precision_start = precision_start
        self.precision_factor = precision_factor
        self.precision_final = precision_final
        self.dual_cutoffs = dual_cutoffs
        self.rmax_increment = rmax_increment
        self.ignition_ratio = ignition_ratio
        self.line_search_steps = line_search_steps

    def reset(self, objective, theta: torch.Tensor) -> None:
        self.precision = self.precision_start
        self.stage = 0
        self.r_max = 0
        self.previous_loss = float(objective.loss(theta))

    def _next_stage(self) -> bool:
        """Lower the precision; False when the final precision is already in force."""
        if self.precision <= self.precision_final:
            return False
        self.precision = max(self.precision * self.precision_factor, self.precision_final)
        self.stage += 1
        return True

    def step(self, objective, theta: torch.Tensor) -> torch.Tensor:
        jac, r = objective.jacobian(theta)
        svd = thin_svd(jac)
        diagnostics = spectrum(svd, r)
        self.spectrum = diagnostics.as_dict()
        r_int = diagnostics.intersection_rank()
        r_eps = diagnostics.precision_rank(self.precision)
        while r_eps == 0:
            if not self._next_stage():
                raise Converged(f"RCE_0 = {float(diagnostics.rce[0]):.3e} <= final precision {self.precision:.1e}")
            r_eps = diagnostics.precision_rank(self.precision)
        cap = diagnostics.size
        if self.cutoff is not None:
            alpha = relative_cutoff(svd, objective.n_params) if self.cutoff == "relative" else self.cutoff
            cap = rank_above(svd, alpha)
        phase = PHASE_INTERSECTION if r_int < r_eps else PHASE_FLATTENING
        r_min = max(1, min(r_int, r_eps, cap))
        self.r_max = min(max(self.r_max, r_min, min(r_int, cap)), diagnostics.size)
        candidates = [r_min, self.r_max] if self.dual_cutoffs and self.r_max != r_min else [r_min]
        best = None
        for rank in candidates:
            direction = truncated_solve(svd, r, rank)
            eta, theta_next, loss = grid_line_search(objective, theta, direction, self.line_search_steps)
            if best is None or float(loss) < best[2]:
                best = (eta, theta_next, float(loss), rank)
        eta, theta_next, loss, rank = best
        self.info = {"eta": eta, "rank": rank, "cutoff": float(svd.S[rank - 1]), "r_int": r_int, "r_eps": r_eps,
                     "r_min": r_min, "r_max": self.r_max, "precision": self.precision, "stage": self.stage,
                     "phase": phase, "loss": loss}
        if loss > self.ignition_ratio * self.previous_loss:  # not ignited: widen the second candidate
            self.r_max = min(self.r_max + self.rmax_increment, diagnostics.size)
        self.previous_loss = loss
        return theta_next
