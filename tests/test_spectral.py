"""The reconstruction-error curve and the ranks read from it (pinnbench.spectral)."""
import torch

from pinnbench.linalg import ThinSVD, thin_svd
from pinnbench.spectral import intersection_rank, is_reachable, precision_rank, reconstruction_error, spectrum


def random_orthonormal(n: int, k: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(n, k, generator=g, dtype=torch.float64))
    return q


def test_rce_zero_is_mean_squared_residual_and_curve_is_non_increasing():
    g = torch.Generator().manual_seed(0)
    for n, p in [(60, 20), (20, 60)]:
        jac = torch.randn(n, p, generator=g, dtype=torch.float64) @ torch.diag(
            torch.logspace(0, -12, p, dtype=torch.float64))
        r = torch.randn(n, generator=g, dtype=torch.float64)
        c, rce = reconstruction_error(thin_svd(jac), r)
        assert rce.shape == (min(n, p) + 1,)
        torch.testing.assert_close(rce[0] ** 2, r @ r / n, rtol=1e-13, atol=0)
        assert bool((rce[1:] <= rce[:-1]).all())
        # each RCE_n agrees with the direct projection of r onto the complement of the n leading directions
        svd = thin_svd(jac)
        for k in (0, 3, min(n, p)):
            outside = r - svd.U[:, :k] @ (svd.U[:, :k].mT @ r)
            torch.testing.assert_close(rce[k], outside.norm() / n**0.5, rtol=1e-12, atol=1e-15)


def test_rce_keeps_relative_accuracy_far_below_the_residual_norm():
    # r = (1, 1e-12): the naive ||r||² - Σc² loses the tail to cancellation; the tail sum does not.
    svd = ThinSVD(torch.eye(2, dtype=torch.float64), torch.tensor([1.0, 0.5], dtype=torch.float64),
                  torch.eye(2, dtype=torch.float64))
    _, rce = reconstruction_error(svd, torch.tensor([1.0, 1e-12], dtype=torch.float64))
    torch.testing.assert_close(rce[1], torch.tensor(1e-12 / 2**0.5, dtype=torch.float64), rtol=1e-14, atol=0)
    assert float(rce[2]) == 0.0


def synthetic(singular_values: list[float], coefficients: list[float], outside: float = 0.0, n: int = 40):
    """A spectrum with prescribed s, c = Uᵀr and a residual part ``outside`` orthogonal to span(U)."""
    k = len(singular_values)
    q = random_orthonormal(n, k + 1, seed=1)
    u, w = q[:, :k], q[:, k]
    c = torch.tensor(coefficients, dtype=torch.float64)
    r = u @ c + outside * w
    svd = ThinSVD(u, torch.tensor(singular_values, dtype=torch.float64), torch.eye(k, dtype=torch.float64))
    return spectrum(svd, r)


def test_ranks_on_a_spectrum_with_known_intersection_and_plateau():
    # N = 40, so RCE_n = ||tail||/sqrt(40). Coefficients: big for n = 1..4, zero on the plateau n = 5..7,
    # then small ones; singular values decay by 10 per index.
    s = [1e2, 1e1, 1e0, 1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7]
    c = [5.0, 4.0, 3.0, 2.0, 0.0, 0.0, 0.0, 4e-5, 3e-5, 2e-5]
    sp = synthetic(s, c)
    rce = sp.rce
    plateau = (16e-10 + 9e-10 + 4e-10) ** 0.5 / 40**0.5  # RCE_4 .. RCE_7: the flattened part
    torch.testing.assert_close(rce[4:8], torch.full((4,), plateau, dtype=torch.float64), rtol=1e-9, atol=0)
    # s_4 = 0.1 > RCE_4 = 8.5e-6, s_5 = 0.01 > RCE_5, s_6 = 1e-3 > RCE_6, s_7 = 1e-4 > 8.5e-6,
    # s_8 = 1e-5 > RCE_8 = 5.7e-6, s_9 = 1e-6 <= RCE_9 = 3.2e-6, s_10 = 1e-7 > RCE_10 = 0: a count, so 9.
    assert sp.intersection_rank() == 9
    # precision line 1e-5 lies above the plateau (8.5e-6): RCE_1..RCE_3 at or above it.
    assert sp.precision_rank(1e-5) == 3
    # precision 5e-6 lies below the plateau and below RCE_8 = 5.7e-6, above RCE_9 = 3.2e-6: RCE_1..RCE_8.
    assert sp.precision_rank(5e-6) == 8
    # the residual at the precision before any direction (RCE_1 < RCE_0): 0; precision 0: every RCE_n >= 0, k.
    assert sp.precision_rank(float(rce[0])) == 0
    assert sp.precision_rank(0.0) == len(s) and not is_reachable(rce, 0.0)
    assert is_reachable(rce, float(rce[-1]) * 1.01) and not is_reachable(rce, float(rce[-1]))


def test_rank_rules_ties_and_no_crossing():
    rce = torch.tensor([4.0, 2.0, 1.0, 0.5], dtype=torch.float64)
    # a tie s_2 == RCE_2 does not count (RCE_n < s_n strictly)
    assert intersection_rank(torch.tensor([3.0, 1.0, 0.1], dtype=torch.float64), rce) == 1
    # no crossing: every direction
    assert intersection_rank(torch.tensor([3.0, 2.5, 1.5], dtype=torch.float64), rce) == 3
    # a count, not the first crossing: s rising above the RCE again at n = 3 counts (the author's rule)
    assert intersection_rank(torch.tensor([3.0, 0.5, 0.9], dtype=torch.float64), rce) == 2
    # below at once
    assert intersection_rank(torch.tensor([1.0, 0.5, 0.1], dtype=torch.float64), rce) == 0
    # a tie with the precision counts (RCE_n >= eps): RCE_1 = 2 and RCE_2 = 1
    assert precision_rank(rce, 1.0) == 2
    assert precision_rank(rce, 4.0) == 0


def test_implicit_svd_gives_the_thin_svd_spectrum_with_a_small_outside_part():
    # tall (QR first), near-square (direct) and wide J; r with a part outside span(U) 1e-10 of its size
    from pinnbench.linalg import implicit_svd, project
    g = torch.Generator().manual_seed(3)
    for n, p in [(300, 40), (50, 45), (30, 80)]:
        jac = torch.randn(n, p, generator=g, dtype=torch.float64) @ torch.diag(
            torch.logspace(0, -10, p, dtype=torch.float64))
        thin = thin_svd(jac)
        inside = thin.U @ torch.randn(thin.S.numel(), generator=g, dtype=torch.float64)
        noise = torch.randn(n, generator=g, dtype=torch.float64)
        outside = noise - thin.U @ (thin.U.mT @ noise)
        r = inside + (1e-10 * outside if n > p else 0.0)
        implicit = implicit_svd(jac)
        c_thin, out_thin = project(thin, r)
        c_impl, out_impl = project(implicit, r)
        torch.testing.assert_close(implicit.S, thin.S, rtol=1e-12, atol=1e-14)
        torch.testing.assert_close(c_impl.abs(), c_thin.abs(), rtol=1e-9, atol=1e-13)  # singular-vector signs
        torch.testing.assert_close(out_impl, out_thin, rtol=1e-6, atol=1e-28)
        if n > p:
            # eps·||r|| / ||outside|| ~ 1e-5: the floor of any computation of the outside part
            torch.testing.assert_close(out_impl, 1e-20 * (outside @ outside), rtol=1e-4, atol=0)
        torch.testing.assert_close(spectrum(implicit, r).rce, spectrum(thin, r).rce, rtol=1e-8, atol=1e-14)
