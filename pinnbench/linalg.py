"""Thin SVD of the residual Jacobian and the truncated pseudo-inverse built on it."""
from __future__ import annotations

from typing import Callable, NamedTuple

import torch


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


def relative_cutoff(svd: ThinSVD, n_params: int) -> float:
    """The default relative cutoff sqrt(eps_float64 · P) · s_max of the ANaGRAM code."""
    eps = torch.finfo(svd.S.dtype).eps
    return float((eps * n_params) ** 0.5 * svd.S[0]) if svd.S.numel() else 0.0


def truncated_solve(svd: ThinSVD, r: torch.Tensor, rank: int) -> torch.Tensor:
    """d = V_k S_k^-1 U_k^T r using the ``rank`` largest singular triplets."""
    coeffs = svd.U[:, :rank].mT @ r
    return svd.V[:, :rank] @ (coeffs / svd.S[:rank])


def rank_above(svd: ThinSVD, cutoff: float) -> int:
    """Number of singular values >= cutoff."""
    return int((svd.S >= cutoff).sum())
