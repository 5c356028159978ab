"""The implicit small SVD (LAPACK gebrd + bdsdc, U and V applied as reflectors) against numpy's gesdd."""
import numpy as np
import pytest
import torch

from pinnbench.core import bidiagonal, linalg
from pinnbench.core.bidiagonal import BidiagonalSVD


def _matrix(n: int, decades: float, seed: int = 0) -> np.ndarray:
    """A square matrix with singular values spread over ``decades`` decades."""
    rng = np.random.default_rng(seed)
    left, _ = np.linalg.qr(rng.standard_normal((n, n)))
    right, _ = np.linalg.qr(rng.standard_normal((n, n)))
    return (left * np.logspace(0, -decades, n)) @ right.T


@pytest.mark.parametrize("n, decades", [(1, 0), (2, 1), (25, 4), (26, 4), (129, 12), (300, 15)])
def test_singular_values_and_factors_match_gesdd(n, decades):
    r = _matrix(n, decades)
    u_ref, s_ref, vt_ref = np.linalg.svd(r)
    svd = BidiagonalSVD(np.ascontiguousarray(r.copy()))
    assert np.abs(svd.S - s_ref).max() <= 4e-15 * n * s_ref[0]
    assert np.all(np.diff(svd.S) <= 0)
    eye = np.eye(n)
    u, v = svd.left(eye), svd.right(eye)
    for factor in (u, v):
        assert np.abs(factor.T @ factor - eye).max() < 1e-13
    assert np.abs((u * svd.S) @ v.T - r).max() < 1e-14 * n * s_ref[0]
    # well-separated singular values: the same singular vectors as gesdd up to sign
    separated = np.r_[True, np.diff(s_ref) < -1e-6 * s_ref[0]] & np.r_[np.diff(s_ref) < -1e-6 * s_ref[0], True]
    signs = np.sign(np.sum(u * u_ref, axis=0))
    assert np.abs((u * signs - u_ref)[:, separated]).max() < 1e-8
    assert np.abs((v * signs - vt_ref.T)[:, separated]).max() < 1e-8


def test_applying_a_factor_or_its_transpose_equals_the_product_with_the_formed_factor():
    n = 40
    svd = BidiagonalSVD(np.ascontiguousarray(_matrix(n, 6)))
    u, v = svd.left(np.eye(n)), svd.right(np.eye(n))
    rng = np.random.default_rng(1)
    x, block = rng.standard_normal(n), rng.standard_normal((n, 3))
    for apply, factor in ((svd.left, u), (svd.right, v)):
        assert np.abs(apply(x) - factor @ x).max() < 1e-13
        assert np.abs(apply(x, transpose=True) - factor.T @ x).max() < 1e-13
        assert np.abs(apply(block) - factor @ block).max() < 1e-13
        assert apply(x).shape == (n,) and apply(block).shape == (n, 3)


def test_input_not_square_float64_c_contiguous_is_refused():
    with pytest.raises(ValueError, match="C-contiguous square float64"):
        BidiagonalSVD(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="C-contiguous square float64"):
        BidiagonalSVD(np.zeros((3, 3), order="F"))
    with pytest.raises(ValueError, match="C-contiguous square float64"):
        BidiagonalSVD(np.zeros((3, 3), dtype=np.float32))


def test_the_implicit_svd_takes_the_bidiagonal_route_on_the_cpu_in_float64_and_torch_elsewhere():
    assert bidiagonal.available()
    jac = torch.from_numpy(_matrix(60, 8)[:, :20].copy())  # tall: QR first, then R (20 x 20)
    assert isinstance(linalg.implicit_svd(jac)._small, linalg._ImplicitSquareSVD)
    assert isinstance(linalg.implicit_svd(jac.float())._small, linalg._ExplicitSquareSVD)


def test_a_non_finite_jacobian_raises_as_torch_does():
    jac = torch.from_numpy(_matrix(60, 8)[:, :20].copy())
    jac[3, 4] = float("nan")
    with pytest.raises(torch.linalg.LinAlgError):
        linalg.implicit_svd(jac)
