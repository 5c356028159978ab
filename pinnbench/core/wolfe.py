"""Strong-Wolfe line searches for the quasi-Newton optimizers (L-BFGS, BFGS, SSBFGS, SSBroyden).

A search works on a scalar function ``phi(alpha) -> (value, slope)`` along a direction p: value = F(θ + α p),
slope = ∇F(θ + α p)·p. :class:`DirectionalFunction` builds it from ``objective.loss_and_grad``, so every
trial step is an ordinary (counted) objective evaluation, and it keeps each evaluation so that the caller
gets the accepted point's θ, loss and gradient without evaluating them again.

Two searches, both enforcing ``f(α) <= f(0) + c1 α f'(0)`` and ``|f'(α)| <= c2 |f'(0)|``:

- :func:`more_thuente`: the Moré-Thuente search (the algorithm of MINPACK-2's ``dcsrch``, which
  scipy.optimize's ``line_search_wolfe1`` and hence scipy's BFGS, and the SSBroyden authors' code, use);
- :func:`bracket_zoom`: bracketing then zoom with safeguarded cubic interpolation (Nocedal & Wright,
  Algorithms 3.5 and 3.6), the fallback scipy uses when ``dcsrch`` fails.

:func:`strong_wolfe` runs the first and falls back to the second, as scipy's BFGS does.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, NamedTuple

import torch

ScalarFunction = Callable[[float], tuple[float, float]]

# Moré-Thuente constants: extrapolation bounds and the factor of interval shrinkage that triggers bisection.
_XTRAPL, _XTRAPU, _SHRINK = 1.1, 4.0, 0.66
LINE_SEARCHES = ("more-thuente", "zoom")


@dataclass
class LineSearchResult:
    """Outcome of a search: ``alpha`` is None when no step satisfying the strong Wolfe conditions was found."""

    alpha: float | None
    value: float
    slope: float
    evaluations: int
    message: str


class Evaluation(NamedTuple):
    """One trial point: θ + α p, the loss there, the (transformed) value and its gradient."""

    theta: torch.Tensor
    loss: torch.Tensor
    value: torch.Tensor
    grad: torch.Tensor


class DirectionalFunction:
    """phi(α) = F(θ + α p) and its slope, evaluated through ``objective.loss_and_grad`` (so counted).

    ``transform(loss, grad) -> (value, grad of value)`` maps the loss to the minimised function F
    (identity by default). Every evaluation is kept: :meth:`at` returns the one made at a given α.
    """

    def __init__(self, objective, theta: torch.Tensor, direction: torch.Tensor,
                 transform: Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]] | None = None
                 ) -> None:
        self.objective = objective
        self.theta = theta
        self.direction = direction
        self.transform = transform
        self.evaluations: dict[float, Evaluation] = {}

    def __call__(self, alpha: float) -> tuple[float, float]:
        theta = self.theta + alpha * self.direction
        loss, grad = self.objective.loss_and_grad(theta)
        value, grad_value = (loss, grad) if self.transform is None else self.transform(loss, grad)
        self.evaluations[alpha] = Evaluation(theta, loss, value, grad_value)
        return float(value), float(grad_value @ self.direction)

    def at(self, alpha: float) -> Evaluation:
        """The evaluation made at step ``alpha``."""
        return self.evaluations[alpha]


def _finite(*values: float) -> bool:
    return all(math.isfinite(v) for v in values)


def _cubic_step(stx: float, fx: float, dx: float, sty: float, fy: float, dy: float,
                stp: float, fp: float, dp: float, brackt: bool, stpmin: float, stpmax: float
                ) -> tuple[float, float, float, float, float, float, float, bool]:
    """One safeguarded step of the Moré-Thuente interval update (the four cases of MINPACK-2's ``dcstep``).

    (stx, fx, dx) is the best step so far, (sty, fy, dy) the other end of the interval, (stp, fp, dp) the
    trial. Returns the updated interval ends, the next trial step and whether a minimiser is bracketed.
    """
    sgnd = dp * math.copysign(1.0, dx)

    if fp > fx:
        # Case 1: higher value; the minimum is bracketed. Cubic step if closer to stx, else average.
        theta = 3.0 * (fx - fp) / (stp - stx) + dx + dp
        s = max(abs(theta), abs(dx), abs(dp))
        gamma = s * math.sqrt((theta / s) ** 2 - (dx / s) * (dp / s))
        if stp < stx:
            gamma = -gamma
        p = (gamma - dx) + theta
        q = ((gamma - dx) + gamma) + dp
        stpc = stx + (p / q) * (stp - stx)
        stpq = stx + ((dx / ((fx - fp) / (stp - stx) + dx)) / 2.0) * (stp - stx)
        stpf = stpc if abs(stpc - stx) < abs(stpq - stx) else stpc + (stpq - stpc) / 2.0
        brackt = True
    elif sgnd < 0.0:
        # Case 2: lower value, derivatives of opposite sign; bracketed. Cubic or secant, the farther one.
        theta = 3.0 * (fx - fp) / (stp - stx) + dx + dp
        s = max(abs(theta), abs(dx), abs(dp))
        gamma = s * math.sqrt((theta / s) ** 2 - (dx / s) * (dp / s))
        if stp > stx:
            gamma = -gamma
        p = (gamma - dp) + theta
        q = ((gamma - dp) + gamma) + dx
        stpc = stp + (p / q) * (stx - stp)
        stpq = stp + (dp / (dp - dx)) * (stx - stp)
        stpf = stpc if abs(stpc - stp) > abs(stpq - stp) else stpq
        brackt = True
    elif abs(dp) < abs(dx):
        # Case 3: lower value, same sign, derivative magnitude decreases.
        theta = 3.0 * (fx - fp) / (stp - stx) + dx + dp
        s = max(abs(theta), abs(dx), abs(dp))
        gamma = s * math.sqrt(max(0.0, (theta / s) ** 2 - (dx / s) * (dp / s)))
        if stp > stx:
            gamma = -gamma
        p = (gamma - dp) + theta
        q = (gamma + (dx - dp)) + gamma
        r = p / q
        if r < 0.0 and gamma != 0.0:
            stpc = stp + r * (stx - stp)
        elif stp > stx:
            stpc = stpmax
        else:
            stpc = stpmin
        stpq = stp + (dp / (dp - dx)) * (stx - stp)
        if brackt:
            stpf = stpc if abs(stpc - stp) < abs(stpq - stp) else stpq
            if stp > stx:
                stpf = min(stp + _SHRINK * (sty - stp), stpf)
            else:
                stpf = max(stp + _SHRINK * (sty - stp), stpf)
        else:
            stpf = stpc if abs(stpc - stp) > abs(stpq - stp) else stpq
            stpf = max(stpmin, min(stpmax, stpf))
    else:
        # Case 4: lower value, same sign, derivative magnitude does not decrease.
        if brackt:
            theta = 3.0 * (fp - fy) / (sty - stp) + dy + dp
            s = max(abs(theta), abs(dy), abs(dp))
            gamma = s * math.sqrt((theta / s) ** 2 - (dy / s) * (dp / s))
            if stp > sty:
                gamma = -gamma
            p = (gamma - dp) + theta
            q = ((gamma - dp) + gamma) + dy
            stpf = stp + (p / q) * (sty - stp)
        elif stp > stx:
            stpf = stpmax
        else:
            stpf = stpmin

    if fp > fx:
        sty, fy, dy = stp, fp, dp
    else:
        if sgnd < 0.0:
            sty, fy, dy = stx, fx, dx
        stx, fx, dx = stp, fp, dp
    return stx, fx, dx, sty, fy, dy, stpf, brackt


def more_thuente(phi: ScalarFunction, f0: float, d0: float, alpha0: float, c1: float = 1e-4, c2: float = 0.9,
                 xtol: float = 1e-14, alpha_min: float = 1e-100, alpha_max: float = 1e100,
                 max_evals: int = 100) -> LineSearchResult:
    """Moré-Thuente strong-Wolfe search from the trial step ``alpha0`` (f0 = phi(0), d0 = phi'(0) < 0).

    Follows MINPACK-2's ``dcsrch``: while no point satisfies the sufficient-decrease test with a positive
    slope, it works on the modified function f(α) - c1 α f'(0); it fails (alpha None) on the same warnings
    (rounding errors prevent progress, interval below ``xtol``, step at ``alpha_min`` or ``alpha_max``).
    A non-finite trial value is the one addition: the step is bisected back towards the best point.
    """
    if not d0 < 0.0:
        return LineSearchResult(None, f0, d0, 0, "not a descent direction")
    stp = min(max(alpha0, alpha_min), alpha_max)
    gtest = c1 * d0
    width = alpha_max - alpha_min
    width1 = 2.0 * width
    brackt, stage = False, 1
    stx, fx, gx = 0.0, f0, d0
    sty, fy, gy = 0.0, f0, d0
    stmin, stmax = 0.0, stp + _XTRAPU * stp
    for evals in range(1, max_evals + 1):
        f, g = phi(stp)
        if not _finite(f, g):
            alpha_max = stp
            stp = stx + 0.5 * (stp - stx)
            stmax = min(stmax, alpha_max)
            continue
        ftest = f0 + stp * gtest
        if stage == 1 and f <= ftest and g >= 0.0:
            stage = 2
        if f <= ftest and abs(g) <= -c2 * d0:
            return LineSearchResult(stp, f, g, evals, "converged")
        if brackt and (stp <= stmin or stp >= stmax):
            return LineSearchResult(None, f, g, evals, "rounding errors prevent progress")
        if brackt and stmax - stmin <= xtol * stmax:
            return LineSearchResult(None, f, g, evals, "interval below xtol")
        if stp == alpha_max and f <= ftest and g <= gtest:
            return LineSearchResult(None, f, g, evals, "step at alpha_max")
        if stp == alpha_min and (f > ftest or g >= gtest):
            return LineSearchResult(None, f, g, evals, "step at alpha_min")

        if stage == 1 and f <= fx and f > ftest:
            # Work on the modified function psi(α) = f(α) - α gtest until a step with psi <= 0, psi' >= 0.
            stx, fxm, gxm, sty, fym, gym, stp_next, brackt = _cubic_step(
                stx, fx - stx * gtest, gx - gtest, sty, fy - sty * gtest, gy - gtest,
                stp, f - stp * gtest, g - gtest, brackt, stmin, stmax)
            fx, gx = fxm + stx * gtest, gxm + gtest
            fy, gy = fym + sty * gtest, gym + gtest
        else:
            stx, fx, gx, sty, fy, gy, stp_next, brackt = _cubic_step(
                stx, fx, gx, sty, fy, gy, stp, f, g, brackt, stmin, stmax)

        if brackt:
            if abs(sty - stx) >= _SHRINK * width1:
                stp_next = stx + 0.5 * (sty - stx)
            width1, width = width, abs(sty - stx)
            stmin, stmax = min(stx, sty), max(stx, sty)
        else:
            stmin = stp_next + _XTRAPL * (stp_next - stx)
            stmax = stp_next + _XTRAPU * (stp_next - stx)
        stp = min(max(stp_next, alpha_min), alpha_max)
        if brackt and (stp <= stmin or stp >= stmax or stmax - stmin <= xtol * stmax):
            stp = stx
    return LineSearchResult(None, fx, gx, max_evals, "too many evaluations")


def _cubic_minimiser(a: float, fa: float, da: float, b: float, fb: float, db: float) -> float | None:
    """Minimiser of the cubic interpolating (a, fa, fa') and (b, fb, fb'), or None if it has none."""
    d1 = da + db - 3.0 * (fa - fb) / (a - b)
    disc = d1 * d1 - da * db
    if not (math.isfinite(disc) and disc >= 0.0):
        return None
    d2 = math.copysign(math.sqrt(disc), b - a)
    denom = db - da + 2.0 * d2
    if denom == 0.0:
        return None
    x = b - (b - a) * (db + d2 - d1) / denom
    return x if math.isfinite(x) else None


def bracket_zoom(phi: ScalarFunction, f0: float, d0: float, alpha0: float, c1: float = 1e-4, c2: float = 0.9,
                 alpha_max: float = 1e100, max_evals: int = 100) -> LineSearchResult:
    """Bracketing then zoom (Nocedal & Wright, Alg. 3.5/3.6) with cubic interpolation kept inside the
    middle 80% of the bracket (bisection otherwise). Steps double until a bracket is found."""
    if not d0 < 0.0:
        return LineSearchResult(None, f0, d0, 0, "not a descent direction")
    evals = 0

    def wolfe(alpha: float, f: float, g: float) -> bool:
        return f <= f0 + c1 * alpha * d0 and abs(g) <= -c2 * d0

    def zoom(lo: tuple[float, float, float], hi: tuple[float, float, float]) -> LineSearchResult:
        nonlocal evals
        while evals < max_evals:
            (a_lo, f_lo, d_lo), (a_hi, f_hi, d_hi) = lo, hi
            span = a_hi - a_lo
            if abs(span) <= 1e-16 * max(abs(a_lo), abs(a_hi)):
                break
            trial = _cubic_minimiser(a_lo, f_lo, d_lo, a_hi, f_hi, d_hi) if _finite(f_hi, d_hi) else None
            lo_edge, hi_edge = sorted((a_lo + 0.1 * span, a_hi - 0.1 * span))
            if trial is None or not lo_edge <= trial <= hi_edge:
                trial = a_lo + 0.5 * span
            f, g = phi(trial)
            evals += 1
            if not _finite(f, g) or f > f0 + c1 * trial * d0 or f >= f_lo:
                hi = (trial, f, g)
            else:
                if abs(g) <= -c2 * d0:
                    return LineSearchResult(trial, f, g, evals, "converged")
                if g * (a_hi - a_lo) >= 0.0:
                    hi = lo
                lo = (trial, f, g)
        return LineSearchResult(None, lo[1], lo[2], evals, "zoom found no acceptable step")

    prev = (0.0, f0, d0)
    alpha = min(alpha0, alpha_max)
    while evals < max_evals:
        f, g = phi(alpha)
        evals += 1
        if not _finite(f, g) or f > f0 + c1 * alpha * d0 or (evals > 1 and f >= prev[1]):
            return zoom(prev, (alpha, f, g))
        if wolfe(alpha, f, g):
            return LineSearchResult(alpha, f, g, evals, "converged")
        if g >= 0.0:
            return zoom((alpha, f, g), prev)
        if alpha >= alpha_max:
            break
        prev, alpha = (alpha, f, g), min(2.0 * alpha, alpha_max)
    return LineSearchResult(None, prev[1], prev[2], evals, "no bracket found")


def strong_wolfe(phi: ScalarFunction, f0: float, d0: float, alpha0: float, c1: float = 1e-4, c2: float = 0.9,
                 method: str = "more-thuente", max_evals: int = 100) -> LineSearchResult:
    """A strong-Wolfe step along phi: ``method`` 'more-thuente' (falling back to bracket-and-zoom from the same
    first trial step when it fails, as scipy's BFGS does) or 'zoom' alone. ``evaluations`` counts both."""
    if method not in LINE_SEARCHES:
        raise ValueError(f"unknown line search {method!r}; accepted: {', '.join(LINE_SEARCHES)}")
    if method == "zoom":
        return bracket_zoom(phi, f0, d0, alpha0, c1, c2, max_evals=max_evals)
    first = more_thuente(phi, f0, d0, alpha0, c1, c2, max_evals=max_evals)
    if first.alpha is not None:
        return first
    second = bracket_zoom(phi, f0, d0, alpha0, c1, c2, max_evals=max_evals)
    second.evaluations += first.evaluations
    if second.alpha is None:
        second.message = f"{first.message}; {second.message}"
    return second


def first_trial_step(value: float, previous_value: float | None, slope: float) -> float:
    """The first trial step of scipy's ``line_search_wolfe1`` and the SSBroyden authors' code:
    ``min(1, 2.02 (f_k - f_{k-1}) / (g·p))``, and 1 when there is no previous value or the formula is not
    positive (interpolation of a quadratic through the last decrease, Nocedal & Wright eq. 3.60)."""
    if previous_value is None or slope == 0.0:
        return 1.0
    alpha = min(1.0, 1.01 * 2.0 * (value - previous_value) / slope)
    return alpha if alpha > 0.0 and math.isfinite(alpha) else 1.0
