"""Thin SVD of the residual Jacobian and the truncated pseudo-inverse built on it."""
from __future__ import annotations

import functools
from typing import Callable, NamedTuple

import torch

from . import bidiagonal
from .bidiagonal import BidiagonalSVD
from .blas_threads import set_openblas_threads


class ThinSVD(NamedTuple):
    """J = U diag(S) V^T with U (N, k), S (k,) descending, V (P, k), k = min(N, P)."""

    U: torch.Tensor
    S: torch.Tensor
    V: torch.Tensor


def _svd_torch(a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    u, s, vh = torch.linalg.svd(a, full_matrices=False)
    return u, s, vh.mT


def _svd_qr_first(a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    q, r = torch.linalg.qr(a)
    u, s, vh = torch.linalg.svd(r)
    return q @ u, s, vh.mT


def _svd_scipy(driver: str) -> Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    def route(a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        import scipy.linalg
        if a.device.type != "cpu":
            raise ValueError(f"the scipy-{driver} SVD route runs on the CPU only, not on {a.device}")
        u, s, vh = scipy.linalg.svd(a.numpy(), full_matrices=False, lapack_driver=driver, check_finite=False)
        return torch.from_numpy(u), torch.from_numpy(s), torch.from_numpy(vh).mT
    return route


SVD_ROUTES: dict[str, Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor, torch.Tensor]]] = {
    "gesdd": _svd_torch,
    "qr+gesdd": _svd_qr_first,
    "scipy-gesdd": _svd_scipy("gesdd"),
    "scipy-gesvd": _svd_scipy("gesvd"),
}
"""Exact thin-SVD routes, all applied to the tall orientation of J. ``gesdd`` is torch.linalg.svd (LAPACK
divide and conquer on a CPU, cuSOLVER on a GPU); ``qr+gesdd`` factors J = QR first and decomposes R;
the scipy routes call LAPACK's gesdd / gesvd. ``pinnbench.probe`` times them all per size; ``gesdd`` was the
fastest or within noise of it at every size measured (docs/performance.md), so it is the default. No Gram /
eigh route: it squares the condition number and loses the small singular values the cutoffs depend on."""


def thin_svd(jac: torch.Tensor, route: str = "gesdd") -> ThinSVD:
    """Thin SVD computed on the tall orientation of J (up to 4x faster than the wide one with LAPACK gesdd)."""
    if route not in SVD_ROUTES:
        raise ValueError(f"unknown SVD route {route!r}; accepted: {', '.join(SVD_ROUTES)}")
    n, p = jac.shape
    if n >= p:
        return ThinSVD(*SVD_ROUTES[route](jac))
    v, s, u = SVD_ROUTES[route](jac.mT)
    return ThinSVD(u, s, v)


QR_FIRST_RATIO = 1.4
"""ImplicitSVD factors A = QR first when its aspect ratio m/n is at least this (measured crossover 1.3-1.4 on
PINN-like spectra; LAPACK's gesdd switches to its own QR-first path at 11/6)."""


@functools.cache
def _openblas_on_one_thread() -> bool:
    """Put scipy's OpenBLAS on one thread, once per process (runs set it per run: execution/run.py)."""
    return set_openblas_threads(1) > 0


class _ExplicitSquareSVD:
    """A small SVD with its factors formed: U (None: the identity), S, V, applied by products."""

    def __init__(self, u: torch.Tensor | None, s: torch.Tensor, v: torch.Tensor) -> None:
        self._u, self.S, self._v = u, s, v

    def left(self, x: torch.Tensor, transpose: bool = False) -> torch.Tensor:
        if self._u is None:
            return x
        return self._u.mT @ x if transpose else self._u @ x

    def right(self, x: torch.Tensor, transpose: bool = False) -> torch.Tensor:
        return self._v.mT @ x if transpose else self._v @ x


class _ImplicitSquareSVD:
    """A small SVD kept as LAPACK's bidiagonalization (:class:`pinnbench.core.bidiagonal.BidiagonalSVD`),
    applied to torch vectors."""

    def __init__(self, r: torch.Tensor) -> None:
        self._svd = BidiagonalSVD(r.numpy())
        self.S = torch.from_numpy(self._svd.S)

    def left(self, x: torch.Tensor, transpose: bool = False) -> torch.Tensor:
        return torch.from_numpy(self._svd.left(x.numpy(), transpose))

    def right(self, x: torch.Tensor, transpose: bool = False) -> torch.Tensor:
        return torch.from_numpy(self._svd.right(x.numpy(), transpose))


def _square_svd(r: torch.Tensor) -> _ExplicitSquareSVD | _ImplicitSquareSVD:
    """The SVD of the small square factor R (contiguous; overwritten). On the CPU in float64: LAPACK's gebrd +
    bdsdc through scipy (OpenBLAS, kept on one thread), with U and V left as reflectors: gesdd's algorithm
    without its two n³ products, 1.3-1.6x faster than gesdd on the paper's R at one or two torch threads, where
    OpenBLAS on two threads was slower (docs/performance.md). Elsewhere torch.linalg.svd, with U and V formed."""
    if r.device.type == "cpu" and r.dtype == torch.float64 and r.shape[0] > 0 and bidiagonal.available():
        _openblas_on_one_thread()
        try:
            return _ImplicitSquareSVD(r)
        except bidiagonal.LapackError:  # bdsdc did not converge: torch's gesdd decides
            pass
    u, s, vh = torch.linalg.svd(r)
    return _ExplicitSquareSVD(u, s, vh.mT)


def _project_onto(u: torch.Tensor, r: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(c, ||r - u c||²) for orthonormal columns u: c = uᵀr, the outside part formed as r - u c."""
    c = u.mT @ r
    outside = r - u @ c
    return c, outside @ outside


class ImplicitSVD:
    """The thin SVD J = U diag(S) Vᵀ with its long factor kept as the Householder reflectors of a QR.

    The tall orientation A (m x n) of J (A = J, or Jᵀ when N < P) is factored A = Q R (LAPACK geqrf) and only
    the small square R = U_R S V_Rᵀ is decomposed (:func:`_square_svd`, whose U_R and V_R stay reflectors too).
    What the SVD-based optimizers use then costs O(m·n): the spectral coefficients Uᵀr (:meth:`coefficients`)
    and the truncated pseudo-inverse direction V_k S_k⁻¹ c_k (:meth:`direction`). Forming the long factor is
    what makes LAPACK's full thin SVD cost 1.4-2.4x more at the paper sizes; :attr:`U` and :attr:`V` still
    give it on request. Near-square A (m < QR_FIRST_RATIO·n), where a QR first costs more than it saves, is
    decomposed directly. The same decomposition as :func:`thin_svd` up to the signs of singular-vector pairs.
    """

    def __init__(self, jac: torch.Tensor) -> None:
        n, p = jac.shape
        self.transposed = n < p
        a = jac.mT if self.transposed else jac
        m, k = a.shape
        self._q: torch.Tensor | None = None  # the long factor itself, when A was decomposed directly
        if m >= QR_FIRST_RATIO * k:
            self._reflectors, self._tau = torch.geqrf(a)
            self._small = _square_svd(self._reflectors[:k].triu())  # A = Q U_R S V_Rᵀ
        else:
            self._q, s, vh = torch.linalg.svd(a, full_matrices=False)
            self._small = _ExplicitSquareSVD(None, s, vh.mT)  # A = Q S Vᵀ
        self.S = self._small.S

    def _long(self, small: torch.Tensor) -> torch.Tensor:
        """Q @ small for small (k, c): columns of the long factor from vectors of R's left space."""
        if self._q is not None:
            return self._q[:, :small.shape[0]] @ small
        padded = small.new_zeros(self._reflectors.shape[0], small.shape[1])
        padded[:small.shape[0]] = small
        return torch.ormqr(self._reflectors, self._tau, padded)

    def coefficients(self, r: torch.Tensor) -> torch.Tensor:
        """c = Uᵀ r (k,)."""
        return self.project(r)[0]

    def project(self, r: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(c, ||r - U c||²): c = Uᵀ r and the squared norm of the part of r outside span(U).

        With the QR, Qᵀr is formed whole (m,): its first k entries give c, the rest is the outside part, so its
        norm comes without the cancellation of ||r||² - ||c||².
        """
        if self.transposed:  # U = V_R, square: the outside part is rounding, formed as r - U c
            c = self._small.right(r, transpose=True)
            outside = r - self._small.right(c)
            return c, outside @ outside
        if self._q is not None:
            c, outside_sq = _project_onto(self._q, r)
            return self._small.left(c, transpose=True), outside_sq
        k = self.S.numel()
        qtr = torch.ormqr(self._reflectors, self._tau, r.unsqueeze(-1), transpose=True)[:, 0]
        return self._small.left(qtr[:k].contiguous(), transpose=True), qtr[k:] @ qtr[k:]

    def direction(self, coefficients: torch.Tensor, rank: int) -> torch.Tensor:
        """d = V_k S_k⁻¹ c_k with the ``rank`` largest singular values (c = :meth:`coefficients` of r)."""
        scaled = torch.zeros_like(self.S)
        scaled[:rank] = coefficients[:rank] / self.S[:rank]
        if not self.transposed:
            return self._small.right(scaled)
        return self._long(self._small.left(scaled).unsqueeze(-1))[:, 0]

    def _long_factor(self) -> torch.Tensor:
        """U_A = Q U_R (m, k), formed."""
        return self._long(self._small.left(torch.eye(self.S.numel(), dtype=self.S.dtype, device=self.S.device)))

    def _square_factor(self) -> torch.Tensor:
        """V_A = V_R (k, k), formed."""
        return self._small.right(torch.eye(self.S.numel(), dtype=self.S.dtype, device=self.S.device))

    @property
    def U(self) -> torch.Tensor:  # noqa: N802 - the ThinSVD field name
        """U (N, k), formed on request."""
        return self._square_factor() if self.transposed else self._long_factor()

    @property
    def V(self) -> torch.Tensor:  # noqa: N802 - the ThinSVD field name
        """V (P, k), formed on request."""
        return self._long_factor() if self.transposed else self._square_factor()


def implicit_svd(jac: torch.Tensor) -> ImplicitSVD:
    """The thin SVD of J with Q kept implicit: the fast route when only Uᵀr and truncated solves are needed."""
    return ImplicitSVD(jac)


def relative_cutoff(svd: ThinSVD | ImplicitSVD, n_params: int) -> float:
    """The default relative cutoff sqrt(eps_float64 · P) · s_max of the ANaGRAM code."""
    eps = torch.finfo(svd.S.dtype).eps
    return float((eps * n_params) ** 0.5 * svd.S[0]) if svd.S.numel() else 0.0


def project(svd: ThinSVD | ImplicitSVD, r: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(c, ||r - U c||²): the coefficients c = Uᵀr (k,) and the squared norm of r outside span(U), computed
    directly (never as ||r||² - ||c||²)."""
    if isinstance(svd, ImplicitSVD):
        return svd.project(r)
    return _project_onto(svd.U, r)


def truncated_solve(svd: ThinSVD | ImplicitSVD, r: torch.Tensor, rank: int) -> torch.Tensor:
    """d = V_k S_k^-1 U_k^T r using the ``rank`` largest singular triplets."""
    if isinstance(svd, ImplicitSVD):
        return svd.direction(svd.coefficients(r), rank)
    coeffs = svd.U[:, :rank].mT @ r
    return svd.V[:, :rank] @ (coeffs / svd.S[:rank])


def rank_above(svd: ThinSVD | ImplicitSVD, cutoff: float) -> int:
    """Number of singular values >= cutoff."""
    return int((svd.S >= cutoff).sum())


# ---------------------------------------------------------------------------------------------------------------
# Damped Gauss-Newton systems on the weighted residual (LM, ENGD in sample space, NNCG)


def weighted_system(jac: torch.Tensor, r: torch.Tensor, weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A = W^½ J and b = W^½ r for the row weights W = diag(1/N_s) of the objective.

    Then the loss is L = ‖b‖², its gradient ∇L = 2 Aᵀb, and AᵀA = Jᵀ W J is the Gauss-Newton (energy Gram) matrix
    of L/2: the linearised loss at θ - d is ‖b - A d‖².
    """
    root_w = weights.sqrt()
    return jac * root_w.unsqueeze(1), r * root_w


def shifted_cholesky_solve(matrix: torch.Tensor, rhs: torch.Tensor, shift: float) -> torch.Tensor | None:
    """(M + shift·I)⁻¹ rhs for a symmetric positive semi-definite M by Cholesky; None when M + shift·I is not
    numerically positive definite (LAPACK potrf fails). ``matrix`` is left unchanged."""
    shifted = matrix.clone()
    shifted.diagonal().add_(shift)
    factor, info = torch.linalg.cholesky_ex(shifted)
    if int(info) != 0:
        return None
    return torch.cholesky_solve(rhs.unsqueeze(-1), factor).squeeze(-1)


def shifted_pinv_solve(matrix: torch.Tensor, rhs: torch.Tensor, shift: float, rcond: float | None = None
                       ) -> torch.Tensor:
    """(M + shift·I)⁺ rhs by eigh, eigenvalues with |λ| <= rcond·max|λ| dropped (default rcond = eps·n, the
    lstsq/pinv convention): the fallback when the Cholesky of an (almost) singular system fails."""
    lam, vecs = torch.linalg.eigh(matrix)
    lam = lam + shift
    if rcond is None:
        rcond = torch.finfo(matrix.dtype).eps * matrix.shape[0]
    keep = lam.abs() > rcond * lam.abs().max()
    return vecs[:, keep] @ ((vecs[:, keep].mT @ rhs) / lam[keep])


def kernel_solve(a: torch.Tensor, rhs: torch.Tensor, damping: float, kernel: torch.Tensor | None = None
                 ) -> torch.Tensor:
    """Aᵀ (A Aᵀ + damping·I)⁻¹ rhs: the sample-space (push-through / Woodbury) form of the damped solve.

    For rhs = b it equals (AᵀA + damping·I)⁻¹ Aᵀ b, since Aᵀ(AAᵀ + λI) = (AᵀA + λI)Aᵀ. It needs the N x N kernel
    A Aᵀ (O(N² P) to form, O(N³) to factor) instead of the P x P Gram. Cholesky first; when the kernel is
    numerically singular (damping 0 with N > P, or damping below rounding) the eigh pseudo-inverse instead.
    ``kernel``: A Aᵀ if already formed.
    """
    kernel = a @ a.mT if kernel is None else kernel
    coeffs = shifted_cholesky_solve(kernel, rhs, damping)
    if coeffs is None:
        coeffs = shifted_pinv_solve(kernel, rhs, damping)
    return a.mT @ coeffs


DAMPED_SOLVERS = ("auto", "svd", "cholesky", "woodbury")


class DampedLeastSquares:
    """d(λ) = (AᵀA + λI)⁻¹ Aᵀb for any number of damping values λ > 0 from one preparation.

    solver:
    - 'svd': one thin SVD A = U S Vᵀ (O(min(N,P)² max(N,P))); then every λ costs O(P·k):
      d = V diag(s/(s² + λ)) Uᵀb. No Gram is formed, so nothing squares the condition number.
    - 'cholesky': the P x P Gram AᵀA once (O(N P²)), a Cholesky per λ (O(P³/3)).
    - 'woodbury': the N x N kernel AAᵀ once (O(N² P)), a Cholesky per λ (O(N³/3)), d = Aᵀ(AAᵀ + λI)⁻¹b.
    - 'auto': 'cholesky' when N >= P, else 'woodbury' (the fastest per LM step measured, docs/modern-baselines.md).
    :meth:`solve` returns None when a Cholesky fails (the damped matrix is not numerically positive definite).
    """

    def __init__(self, a: torch.Tensor, b: torch.Tensor, solver: str = "auto") -> None:
        if solver not in DAMPED_SOLVERS:
            raise ValueError(f"unknown solver {solver!r}; accepted: {', '.join(DAMPED_SOLVERS)}")
        if solver == "auto":
            solver = "cholesky" if a.shape[0] >= a.shape[1] else "woodbury"
        self.solver = solver
        self.a, self.b = a, b
        if self.solver == "svd":
            self.svd = thin_svd(a)
            self.coefficients = self.svd.U.mT @ b
        elif self.solver == "cholesky":
            self.gram = a.mT @ a
            self.rhs = a.mT @ b
        else:
            self.kernel = a @ a.mT

    def solve(self, damping: float) -> torch.Tensor | None:
        if self.solver == "svd":
            s = self.svd.S
            denominator = s * s + damping
            scale = torch.where(denominator > 0, s / denominator, torch.zeros_like(s))
            return self.svd.V @ (scale * self.coefficients)
        if self.solver == "cholesky":
            return shifted_cholesky_solve(self.gram, self.rhs, damping)
        coeffs = shifted_cholesky_solve(self.kernel, self.b, damping)
        return None if coeffs is None else self.a.mT @ coeffs
