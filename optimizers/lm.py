"""Levenberg-Marquardt on the weighted PINN residual (Levenberg 1944, Marquardt 1963; the damping update of
Nielsen 1999 as given by Madsen, Nielsen & Tingleff, "Methods for non-linear least squares problems", 2004).

With A = W^½ J and b = W^½ r (W = diag(objective.row_weights), so the loss is L = ‖b‖²), a step solves
(AᵀA + λI) d = Aᵀb and tries θ - d. The linear model predicts the loss ‖b - A d‖², i.e. a decrease
L - ‖b - Ad‖² = dᵀAᵀb + λ‖d‖² (> 0); the gain ratio ρ = (actual decrease) / (predicted decrease) decides.
"""
from __future__ import annotations

import torch

from pinnbench import Converged, Optimizer, register_optimizer
from pinnbench.linalg import DAMPED_SOLVERS, DampedLeastSquares, weighted_system

RULES = ("nielsen", "marquardt")


@register_optimizer("lm")
class LevenbergMarquardt(Optimizer):
    """Levenberg-Marquardt: damped Gauss-Newton with the damping λ adapted by the gain ratio ρ.

    tau: the initial damping λ0 = tau · max_j (AᵀA)_jj (Madsen-Nielsen-Tingleff; they suggest 1e-6 for a good
        start, 1e-3 or 1 otherwise; 1e-3, their general default, here).
    rule: how λ adapts. 'nielsen' (default; Nielsen 1999): a step is accepted when ρ > 0 (the loss fell), then
        λ ← λ·max(1/3, 1 - (2ρ - 1)³) and ν ← 2; a rejected step does λ ← λ·ν, ν ← 2ν (ν starts at 2).
        'marquardt' (classic): accept when ρ > 0, then λ ← λ/factor; reject: λ ← λ·factor.
    factor: the ×/÷ factor of the 'marquardt' rule (Marquardt's 10); unused by 'nielsen'.
    solver: how (AᵀA + λI) d = Aᵀb is solved ('auto', 'cholesky', 'woodbury', 'svd'; pinnbench.linalg.
        DampedLeastSquares). 'auto' takes 'cholesky' (P x P Gram, a Cholesky per trial λ) when N >= P and
        'woodbury' (N x N kernel AAᵀ) when N < P: the fastest in the measurements of docs/modern-baselines.md
        (one thin SVD, which makes every further λ almost free, costs 5-8x the Gram and its Cholesky at the
        paper sizes and reached no better errors). A Cholesky that fails (AᵀA + λI not numerically positive
        definite) counts as a rejected trial.
    max_trials: damping values tried in one step (one Jacobian) before giving up; each trial costs one
        residual evaluation. When all are rejected, or the trial step no longer changes θ in floating point
        (‖d‖ <= eps·‖θ‖), the run ends (``Converged``): there is nothing left that λ can do.

    One step = one Jacobian and as many trial λ as needed until a step lowers the loss: a step that raises
    the loss (or leaves it equal, or is not finite) is never taken. ``info``: eta (1, the full LM step), the
    damping λ of the accepted step, the gain ratio ρ, the trials of the step, the loss after the step.
    """

    info_keys = {"eta": "1, the full LM step", "damping": "the accepted step's λ", "rho": "the gain ratio ρ",
                 "trials": "the λ tried in the step", "loss": "the train loss after the step"}

    def __init__(self, tau: float = 1e-3, rule: str = "nielsen", factor: float = 10.0, solver: str = "auto",
                 max_trials: int = 30) -> None:
        if rule not in RULES:
            raise ValueError(f"rule must be one of {', '.join(RULES)}, got {rule!r}")
        if solver not in DAMPED_SOLVERS:
            raise ValueError(f"solver must be one of {', '.join(DAMPED_SOLVERS)}, got {solver!r}")
        if tau <= 0 or factor <= 1 or max_trials < 1:
            raise ValueError(f"need tau > 0, factor > 1, max_trials >= 1; got {tau}, {factor}, {max_trials}")
        self.tau, self.rule, self.factor, self.solver, self.max_trials = tau, rule, factor, solver, int(max_trials)

    def reset(self, objective, theta: torch.Tensor) -> None:
        self.damping: float | None = None  # λ0 needs the first Jacobian
        self.nu = 2.0

    def _accepted(self, rho: float) -> None:
        if self.rule == "nielsen":
            self.damping *= max(1.0 / 3.0, 1.0 - (2.0 * rho - 1.0) ** 3)
            self.nu = 2.0
        else:
            self.damping /= self.factor

    def _rejected(self) -> None:
        if self.rule == "nielsen":
            self.damping *= self.nu
            self.nu *= 2.0
        else:
            self.damping *= self.factor

    def step(self, objective, theta: torch.Tensor) -> torch.Tensor:
        jac, r = objective.jacobian(theta)
        a, b = weighted_system(jac, r, objective.row_weights)
        loss = float(b @ b)
        if self.damping is None:
            self.damping = self.tau * float((a * a).sum(0).max())
        system = DampedLeastSquares(a, b, self.solver)
        rhs = a.mT @ b
        eps = torch.finfo(theta.dtype).eps
        for trial in range(1, self.max_trials + 1):
            damping = self.damping
            d = system.solve(damping)
            if d is None or not bool(torch.isfinite(d).all()):
                self._rejected()
                continue
            if float(d.norm()) <= eps * float(theta.norm()):
                raise Converged(f"the LM step no longer changes θ (λ = {damping:.3g})")
            predicted = float(d @ rhs) + damping * float(d @ d)
            trial_theta = theta - d
            trial_loss = float(objective.loss(trial_theta))
            rho = (loss - trial_loss) / predicted if predicted > 0 else float("nan")
            if trial_loss < loss and rho > 0:  # NaN or a rise: rejected
                self._accepted(rho)
                self.info = {"eta": 1.0, "damping": damping, "rho": rho, "trials": float(trial),
                             "loss": trial_loss}
                return trial_theta
            self._rejected()
        raise Converged(f"{self.max_trials} damping values tried, none lowered the loss (λ = {self.damping:.3g})")
