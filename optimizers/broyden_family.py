"""Dense inverse-Hessian quasi-Newton methods of Urbán, Stefanou & Pons (J. Comput. Phys. 523, 2025):
SSBroyden (the SSBroyden2 rule, the paper's method), SSBFGS (Al-Baali scaling) and plain BFGS.

One class, three registrations. Each step is one quasi-Newton iteration (or one Adam step of the optional
warm-up): p = -H g, a strong-Wolfe line search from the authors' first trial step, then the update of H
(docs/baselines.md has the formulas, the guards and what differs from the authors' driver).
"""
from __future__ import annotations

import math
from typing import ClassVar

import torch

from pinnbench import Converged, Optimizer, register_optimizer
from pinnbench.wolfe import LINE_SEARCHES, DirectionalFunction, first_trial_step, strong_wolfe

LOSS_TRANSFORMS = ("none", "log", "sqrt")
UPDATE_RULES = ("ssbroyden2", "ssbfgs", "bfgs")

# The authors' Adam warm-up: lr 5e-3 · 0.98^(step/1000), betas (0.99, 0.999), eps 1e-20.
WARMUP_LR, WARMUP_DECAY, WARMUP_BETAS, WARMUP_EPS = 5e-3, 0.98, (0.99, 0.999), 1e-20


def transform_loss(kind: str, loss: torch.Tensor, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(F, ∇F) for F = L, log L or sqrt L."""
    if kind == "log":
        return torch.log(loss), grad / loss
    if kind == "sqrt":
        root = torch.sqrt(loss)
        return root, grad / (2 * root)
    return loss, grad


def scaling_and_family(rule: str, b: float, h: float, n_params: int) -> tuple[float, float] | None:
    """(τ, φ) of the self-scaled Broyden update for ``rule``, or None when the update must be skipped.

    b = -α ρ sᵀg (old gradient), h = ρ yᵀHy. SSBFGS: τ = min(1, 1/b), φ = 1. BFGS: τ = φ = 1.
    SSBroyden2: ρ⁻ = min(1, h(1 - sqrt(a/(1+a)))), ϑ⁻ = (ρ⁻ - 1)/a, ϑ⁺ = 1/ρ⁻, ϑ = max(ϑ⁻, min(ϑ⁺, (1-b)/b)),
    σ = 1 + aϑ, σ̃ = σ^(1/(1-P)), ρ̂ = min(1, 1/b), τ = min(ρ̂σ̃, σ) if ϑ <= 0 else ρ̂ min(σ̃, 1/ϑ), φ = (1-ϑ)/σ
    with a = bh - 1. Guards: b <= 0 or σ <= 0 skip; a -> 0 (collinear s and Hy, where v = 0 and φ is moot)
    takes the limit of ϑ⁻: 0 if ρ⁻ = 1, -∞ otherwise.
    """
    if rule == "bfgs":
        return 1.0, 1.0
    if not (b > 0.0 and math.isfinite(b)):
        return None
    rho_hat = min(1.0, 1.0 / b)
    if rule == "ssbfgs":
        return rho_hat, 1.0
    a = max(b * h - 1.0, 0.0)  # >= 0 by Cauchy-Schwarz; negative values are rounding
    rho_minus = min(1.0, h * (1.0 - math.sqrt(a / (1.0 + a))))
    if a > 8 * torch.finfo(torch.float64).eps * (1.0 + a):
        theta_minus = (rho_minus - 1.0) / a
    else:
        theta_minus = 0.0 if rho_minus >= 1.0 else -math.inf
    theta_plus = 1.0 / rho_minus if rho_minus > 0.0 else math.inf
    theta = max(theta_minus, min(theta_plus, (1.0 - b) / b))
    sigma = 1.0 + a * theta
    if not (sigma > 0.0 and math.isfinite(theta)):
        return None
    sigma_tilde = sigma ** (1.0 / (1.0 - n_params))
    tau = min(rho_hat * sigma_tilde, sigma) if theta <= 0.0 else rho_hat * min(sigma_tilde, 1.0 / theta)
    return tau, (1.0 - theta) / sigma


def update_inverse_hessian(H: torch.Tensor, s: torch.Tensor, y: torch.Tensor, tau: float, phi: float,
                           ) -> torch.Tensor:
    """H⁺ = (1/τ)[H - (Hy)(Hy)ᵀ/(yᵀHy) + φ (yᵀHy) v vᵀ] + ρ s sᵀ with v = ρ s - Hy/(yᵀHy), ρ = 1/(yᵀs).

    For φ = 1 (BFGS on H/τ) the equivalent form H/τ - ρ(H'y sᵀ + s yᵀH') + ρ(1 + ρ yᵀH'y) s sᵀ (H' = H/τ)
    is used. Every form satisfies the secant equation H⁺y = s. The caller checks yᵀs > 0 and yᵀHy > 0.
    """
    rho = 1.0 / float(y @ s)
    hy = H @ y
    if phi == 1.0:
        hy = hy / tau
        h = rho * float(y @ hy)
        return H / tau - rho * (torch.outer(hy, s) + torch.outer(s, hy)) + (rho * (1.0 + h)) * torch.outer(s, s)
    yhy = float(y @ hy)
    v = rho * s - hy / yhy
    inner = H - torch.outer(hy, hy) / yhy + (phi * yhy) * torch.outer(v, v)
    return inner / tau + rho * torch.outer(s, s)


class DenseQuasiNewton(Optimizer):
    """Dense inverse-Hessian quasi-Newton with a strong-Wolfe line search (shared by ssbroyden/ssbfgs/bfgs).

    warmup: number of Adam steps before the quasi-Newton phase, with the authors' settings
        (lr 5e-3·0.98^(step/1000), betas (0.99, 0.999), eps 1e-20); each counts as one step.
    restart_every: every this many quasi-Newton iterations, end a block as the authors' driver does:
        symmetrise H, keep it if Cholesky succeeds (else reset to I) and restart the first-trial-step rule.
        0 disables.
    loss_transform: 'none', 'log' or 'sqrt': the quasi-Newton phase minimises L, log L or sqrt L.
    line_search: 'more-thuente' (MINPACK dcsrch as in scipy and the authors' code, zoom fallback) or 'zoom'.
    c1, c2: the strong-Wolfe constants. max_evals: evaluations allowed per line search.
    """

    rule: ClassVar[str] = "ssbroyden2"
    paper_steps = 20000  # the authors' quasi-Newton iteration count in most of their examples (warm-up included here)
    info_keys = {"loss": "the train loss after a quasi-Newton step (warm-up: at the θ it started from)",
                 "lr": "warm-up only: Adam's learning rate", "warmup": "warm-up only: 1",
                 "alpha": "the strong-Wolfe step length", "line_search_evals": "the line search's evaluations",
                 "skipped_update": "1 when a guard left H unchanged", "reset_to_identity": "1 when H was reset to I",
                 "tau": "the update's scaling τ (NaN when skipped)", "phi": "the Broyden family's φ (NaN when skipped)"}

    def __init__(self, warmup: int = 0, restart_every: int = 500, loss_transform: str = "none",
                 line_search: str = "more-thuente", c1: float = 1e-4, c2: float = 0.9, max_evals: int = 100
                 ) -> None:
        if loss_transform not in LOSS_TRANSFORMS:
            raise ValueError(f"loss_transform must be one of {', '.join(LOSS_TRANSFORMS)}, got {loss_transform!r}")
        if line_search not in LINE_SEARCHES:
            raise ValueError(f"line_search must be one of {', '.join(LINE_SEARCHES)}, got {line_search!r}")
        if not 0.0 < c1 < c2 < 1.0:
            raise ValueError(f"need 0 < c1 < c2 < 1, got c1={c1}, c2={c2}")
        if warmup < 0 or restart_every < 0 or max_evals < 1:
            raise ValueError("warmup and restart_every must be >= 0 and max_evals >= 1")
        self.warmup, self.restart_every, self.loss_transform = int(warmup), int(restart_every), loss_transform
        self.line_search, self.c1, self.c2, self.max_evals = line_search, c1, c2, int(max_evals)

    def reset(self, objective, theta: torch.Tensor) -> None:
        self.steps = 0  # all steps, warm-up included
        self.iterations = 0  # quasi-Newton iterations
        self.H: torch.Tensor | None = None
        self.loss = self.value = self.grad = None  # L, F (transformed loss) and ∇F at the current θ
        self.previous_value: float | None = None  # F one iteration back, for the first trial step
        self.m = torch.zeros_like(theta)
        self.v = torch.zeros_like(theta)

    # ---------------------------------------------------------------- warm-up
    def _adam_step(self, objective, theta: torch.Tensor) -> torch.Tensor:
        loss, grad = objective.loss_and_grad(theta)
        b1, b2 = WARMUP_BETAS
        lr = WARMUP_LR * WARMUP_DECAY ** (self.steps / 1000)
        t = self.steps + 1
        self.m.mul_(b1).add_(grad, alpha=1 - b1)
        self.v.mul_(b2).addcmul_(grad, grad, value=1 - b2)
        m_hat, v_hat = self.m / (1 - b1 ** t), self.v / (1 - b2 ** t)
        self.info = {"loss": float(loss), "lr": lr, "warmup": 1.0}
        return theta - lr * m_hat / (v_hat.sqrt() + WARMUP_EPS)

    # ---------------------------------------------------------------- quasi-Newton
    def _transform(self, loss: torch.Tensor, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return transform_loss(self.loss_transform, loss, grad)

    def _start_block(self) -> None:
        """scipy's convention for the first trial step of a run: f_{k-1} = f_k + ||g_k||/2."""
        self.previous_value = float(self.value) + float(torch.linalg.vector_norm(self.grad)) / 2

    def _end_block(self) -> None:
        """The authors' driver between blocks: symmetrise H, reset it to I if Cholesky fails, restart α0's rule."""
        H = (self.H + self.H.mT) / 2
        _, info = torch.linalg.cholesky_ex(H)
        self.H = H if int(info) == 0 else torch.eye(H.shape[0], dtype=H.dtype, device=H.device)
        self._start_block()

    def _search(self, objective, theta: torch.Tensor, direction: torch.Tensor):
        phi = DirectionalFunction(objective, theta, direction, self._transform)
        slope = float(self.grad @ direction)
        alpha0 = first_trial_step(float(self.value), self.previous_value, slope)
        result = strong_wolfe(phi, float(self.value), slope, alpha0, self.c1, self.c2, self.line_search,
                              self.max_evals)
        return phi, result

    def step(self, objective, theta: torch.Tensor) -> torch.Tensor:
        if self.steps < self.warmup:
            theta_next = self._adam_step(objective, theta)
            self.steps += 1
            return theta_next
        if self.H is None:
            loss, grad = objective.loss_and_grad(theta)
            self.loss = loss
            self.value, self.grad = self._transform(loss, grad)
            self.H = torch.eye(theta.numel(), dtype=theta.dtype, device=theta.device)
            self._start_block()
        elif self.restart_every and self.iterations % self.restart_every == 0:
            self._end_block()

        direction = -(self.H @ self.grad)
        phi, result = self._search(objective, theta, direction)
        restarted = 0.0
        if result.alpha is None:
            # H no longer gives a usable direction: fall back to steepest descent once before giving up.
            self.H = torch.eye(theta.numel(), dtype=theta.dtype, device=theta.device)
            self._start_block()
            direction = -self.grad
            phi, retry = self._search(objective, theta, direction)
            retry.evaluations += result.evaluations
            result, restarted = retry, 1.0
            if result.alpha is None:
                raise Converged(f"no strong-Wolfe step along -H g nor -g ({result.message})")

        alpha = result.alpha
        new = phi.at(alpha)
        s = alpha * direction
        y = new.grad - self.grad
        updated = self._update(s, y, alpha)
        self.previous_value, self.value, self.grad, self.loss = float(self.value), new.value, new.grad, new.loss
        self.iterations += 1
        self.steps += 1
        self.info = {"loss": float(new.loss), "alpha": alpha, "line_search_evals": float(result.evaluations),
                     "skipped_update": 0.0 if updated else 1.0, "reset_to_identity": restarted,
                     "tau": self._last_tau, "phi": self._last_phi}
        return new.theta

    def _update(self, s: torch.Tensor, y: torch.Tensor, alpha: float) -> bool:
        """Update H in place from (s, y); False (H unchanged) when a guard forbids the update."""
        self._last_tau = self._last_phi = math.nan
        ys = float(y @ s)
        hy = self.H @ y
        yhy = float(y @ hy)
        if not (ys > 0.0 and yhy > 0.0 and math.isfinite(ys) and math.isfinite(yhy)):
            return False
        rho = 1.0 / ys
        old_grad = self.grad
        b = -alpha * rho * float(s @ old_grad)
        coefficients = scaling_and_family(self.rule, b, rho * yhy, s.numel())
        if coefficients is None:
            return False
        tau, phi = coefficients
        H = update_inverse_hessian(self.H, s, y, tau, phi)
        if not bool(torch.isfinite(H).all()):
            return False
        self.H = H
        self._last_tau, self._last_phi = tau, phi
        return True


@register_optimizer("ssbroyden")
class SSBroyden(DenseQuasiNewton):
    """Self-scaled Broyden with the SSBroyden2 rule for (τ, φ) (Urbán, Stefanou & Pons 2025)."""

    rule = "ssbroyden2"


@register_optimizer("ssbfgs")
class SSBFGS(DenseQuasiNewton):
    """Self-scaled BFGS with Al-Baali's scaling τ = min(1, 1/b)."""

    rule = "ssbfgs"


@register_optimizer("bfgs")
class BFGS(DenseQuasiNewton):
    """Plain BFGS (no scaling) on the same driver: with ``restart_every=0`` it is scipy's BFGS."""

    rule = "bfgs"
