"""Reference solution of the Allen-Cahn benchmark, computed by a spectral solver and cached on disk.

    u_t - 1e-3 u_xx - 5(u - u³) = 0,  (t, x) in [0, 1] x [-1, 1],  u(0, x) = x² cos(πx),  u(t, ±1) = -1.

Method of lines: Chebyshev collocation in x at the points cos(jπ/n) with the Dirichlet data imposed exactly
(unknown v = u + 1 at the interior points; the solution is even in x, so only the n/2 points with x ≥ 0),
then ETDRK4 in time. The linear part is L = 1e-3 D² - 10 (D² the squared differentiation matrix restricted to
even functions vanishing at ±1; -10 = f'(±1) moves the reaction's linearisation around both stable states into
the exact exponential), diagonalised once: L = V diag(λ) V⁻¹ (real eigenvalues, well-conditioned eigenvectors).
The nonlinear part is N(v) = 5(u - u³) + 10 v.

Steps are uniform (``save_dt / substeps``) for t ≥ ``t_uniform``; below it the stored levels are graded
geometrically down to ``t_min`` (ratio ``grading``) with ``substeps`` steps between consecutive levels. The
grading resolves the corner layer at (0, ±1), where the initial data does not satisfy the equation's
compatibility condition (1e-3 u0''(±1) ≠ 0 while u_t(t, ±1) = 0), so the solution is not smooth in t there.

Every 101 x 201 evaluation-grid time (multiples of 0.01) is a stored level; other times are interpolated
(see :mod:`.interpolation`). The default resolution changes by less than 1e-10 on that grid when n and the
number of steps are both refined (see docs/references.md for the measurements).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from .cache import cached
from .chebyshev import differentiation_matrix, points
from .etdrk4 import CONTOUR_POINTS, ETDRK4Step
from .interpolation import SpaceTimeInterpolant

DIFFUSION = 1e-3
REACTION = 5.0
BOUNDARY_VALUE = -1.0
T_END = 1.0
SHIFT = 10.0  # -f'(±1) for f(u) = 5(u - u³): the part of the reaction treated exactly


def initial_condition(x: np.ndarray) -> np.ndarray:
    """u(0, x) = x² cos(πx)."""
    return x**2 * np.cos(np.pi * x)


@dataclass(frozen=True)
class Resolution:
    """Discretisation of the reference solver.

    degree: Chebyshev polynomial degree n in x (n+1 points). save_dt: spacing of the stored time levels on
    [t_uniform, 1] (must divide 0.01). substeps: ETDRK4 steps between consecutive stored levels.
    grading, t_min: geometric ratio and smallest positive level of the graded levels below t_uniform.
    """

    degree: int = 768
    save_dt: float = 2e-3
    substeps: int = 4
    grading: float = 1.25
    t_min: float = 1e-9

    @property
    def t_uniform(self) -> float:
        """Where the graded levels join the uniform ones: the graded spacing there equals save_dt."""
        return self.save_dt / (1 - 1 / self.grading)

    def refined(self, degree: int | None = None, substeps_factor: int = 2) -> "Resolution":
        """The same stored levels computed with more points and/or shorter steps."""
        return replace(self, degree=self.degree if degree is None else degree,
                       substeps=self.substeps * substeps_factor)


DEFAULT_RESOLUTION = Resolution()


def time_levels(res: Resolution) -> np.ndarray:
    """The stored levels: 0, the graded ones, then uniform from t_uniform (rounded to save_dt) to 1."""
    k_first = int(np.ceil(res.t_uniform / res.save_dt - 1e-9))
    k_last = int(round(T_END / res.save_dt))
    if abs(k_last * res.save_dt - T_END) > 1e-12 or abs(round(0.01 / res.save_dt) * res.save_dt - 0.01) > 1e-12:
        raise ValueError(f"save_dt={res.save_dt} must divide 0.01")
    uniform = np.arange(k_first, k_last + 1) / k_last * T_END
    graded = []
    level = uniform[0] / res.grading
    while level >= res.t_min:
        graded.append(level)
        level /= res.grading
    return np.concatenate([[0.0], graded[::-1], uniform])


def even_second_derivative(n: int) -> np.ndarray:
    """The Chebyshev second-derivative matrix acting on even functions vanishing at ±1.

    Unknowns: the values at the points x_1..x_{n/2} (0 < x_j < 1, and x_{n/2} = 0); an even function takes
    the same value at x_{n-j} = -x_j, so the columns of the mirrored points fold onto their partners.
    """
    if n % 2:
        raise ValueError(f"the Chebyshev degree must be even, got {n}")
    d = differentiation_matrix(n)
    d2 = d @ d
    half = n // 2
    rows = np.arange(1, half + 1)
    folded = d2[np.ix_(rows, rows)]
    folded[:, :-1] += d2[np.ix_(rows, n - rows[:-1])]
    return folded


def solve(res: Resolution = DEFAULT_RESOLUTION) -> tuple[np.ndarray, np.ndarray]:
    """(t_levels, u) with u of shape (len(t_levels), degree+1): u at the Chebyshev points cos(jπ/n).

    The data and the equation are symmetric under x -> -x, so the solution is even and only the points with
    x ≥ 0 are unknowns (a quarter of the cost of the full system).
    """
    n = res.degree
    x = points(n)
    if not np.allclose(initial_condition(x), initial_condition(-x), rtol=0, atol=1e-15):
        raise RuntimeError("the even reduction needs an even initial condition")
    eigenvalues, vectors = np.linalg.eig(even_second_derivative(n))
    if np.max(np.abs(eigenvalues.imag)) > 1e-8 * np.max(np.abs(eigenvalues.real)):
        raise RuntimeError("the Chebyshev second-derivative matrix has complex eigenvalues")
    vectors = vectors.real
    inverse = np.linalg.inv(vectors)
    lam = DIFFUSION * eigenvalues.real - SHIFT

    def nonlinear(w: np.ndarray) -> np.ndarray:
        v = vectors @ w
        u = v + BOUNDARY_VALUE
        return inverse @ (REACTION * (u - u**3) + SHIFT * v)

    levels = time_levels(res)
    half = x[1:n // 2 + 1]
    w = inverse @ (initial_condition(half) - BOUNDARY_VALUE)
    uniform_step = ETDRK4Step.build(lam, res.save_dt / res.substeps)
    values = [initial_condition(half)]
    for t0, t1 in zip(levels[:-1], levels[1:]):
        graded = t0 < res.t_uniform * (1 - 1e-9)
        step = ETDRK4Step.build(lam, (t1 - t0) / res.substeps) if graded else uniform_step
        for _ in range(res.substeps):
            w = step.advance(w, nonlinear)
        values.append(vectors @ w + BOUNDARY_VALUE)
    values = np.array(values)
    u = np.full((levels.shape[0], n + 1), BOUNDARY_VALUE)
    u[:, 1:n // 2 + 1] = values
    u[:, n // 2 + 1:n] = values[:, -2::-1]
    return levels, u


def cache_parameters(res: Resolution) -> dict:
    """Everything the cached arrays depend on."""
    return {"equation": "u_t - D u_xx - R (u - u^3) = 0, u(0,x) = x^2 cos(pi x), u(t,+-1) = -1",
            "diffusion": DIFFUSION, "reaction": REACTION, "t_end": T_END, "shift": SHIFT,
            "contour_points": CONTOUR_POINTS, "solver": "chebyshev-etdrk4", **asdict(res)}


def reference(res: Resolution = DEFAULT_RESOLUTION, folder: Path | None = None, t_degree: int = 9
              ) -> SpaceTimeInterpolant:
    """The reference solution as an interpolant, from the cache (``folder`` or the default) or computed.

    ``t_degree``: degree of the local Lagrange interpolation in t between stored levels.
    """
    def compute() -> dict[str, np.ndarray]:
        t, u = solve(res)
        return {"t": t, "u": u}

    arrays = cached("allen_cahn", cache_parameters(res), compute, folder)
    return SpaceTimeInterpolant(arrays["t"], arrays["u"], t_degree=t_degree)
