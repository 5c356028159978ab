"""AMStraMGRAM: each of the author's rules on synthetic spectra, the sequential dual step, the offset, the
portfolio's never-worse rule, diagnostics, bad hyperparameters and machine precision on laplace2d."""
import sys

import pytest
import torch

import pinnbench
from pinnbench.linalg import implicit_svd, truncated_solve
from pinnbench.linesearch import grid_line_search, squared_exponent_grid
from pinnbench.protocol import load_protocol
from pinnbench.registry import entries
from pinnbench.spectral import Spectrum, spectrum


def amstramgram_module():
    return sys.modules[entries("optimizer")["amstramgram"].cls.__module__]


class LinearObjective:
    """r(θ) = A θ - b with a known zero-residual solution; loss = mean(r²) (one group)."""

    def __init__(self, n: int = 60, p: int = 20, decay: float = 1e-8, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        q1, _ = torch.linalg.qr(torch.randn(n, p, generator=g, dtype=torch.float64))
        q2, _ = torch.linalg.qr(torch.randn(p, p, generator=g, dtype=torch.float64))
        s = torch.logspace(0, torch.log10(torch.tensor(decay)).item(), p, dtype=torch.float64)
        self.a = q1 @ torch.diag(s) @ q2.T
        self.solution = torch.randn(p, generator=g, dtype=torch.float64)
        self.b = self.a @ self.solution
        self.n_params, self.n_residuals = p, n
        self.row_weights = torch.full((n,), 1.0 / n, dtype=torch.float64)

    def residuals(self, theta):
        return self.a @ theta - self.b

    def jacobian(self, theta):
        return self.a.clone(), self.residuals(theta)

    def loss_from_residuals(self, r):
        return (r * r) @ self.row_weights

    def loss(self, theta):
        return self.loss_from_residuals(self.residuals(theta))

    def losses(self, thetas):
        return self.loss_from_residuals(thetas @ self.a.T - self.b)

    def losses_along(self, theta, direction, etas):
        return self.losses(theta.unsqueeze(0) - etas.unsqueeze(1) * direction.unsqueeze(0))


def synthetic(singular_values, rce):
    s = torch.tensor(singular_values, dtype=torch.float64)
    return Spectrum(s, torch.zeros_like(s), torch.tensor(rce, dtype=torch.float64))


def test_ranks_are_counts_of_rce_below_s_and_of_rce_at_or_above_the_precision():
    def rce_ranks(spec, precision):
        return spec.intersection_rank(), spec.precision_rank(precision)
    # RCE_0..RCE_4; s crosses RCE between n = 2 and 3 and comes back above at n = 4: the author counts it
    spec = synthetic([1.0, 0.5, 0.01, 1e-3], [2.0, 0.4, 0.1, 0.05, 1e-4])
    r_int, r_eps = rce_ranks(spec, precision=0.05)
    assert r_int == 3  # n = 1, 2 and 4 (RCE_n < s_n), not the first crossing's 2
    assert r_eps == 3  # RCE_1, RCE_2, RCE_3 >= 0.05 (a tie counts), RCE_4 below
    assert rce_ranks(spec, precision=1e-6) == (3, 4)
    assert rce_ranks(spec, precision=10.0) == (3, 0)


def test_elbow_is_the_point_farthest_below_the_chord_of_log_s():
    elbow_rank = amstramgram_module().elbow_rank
    # log s falls fast over 5 values, then slowly: the knee at index 5 of the tail, 2 + 5 overall
    s = torch.cat([torch.logspace(0, -10, 6, dtype=torch.float64), torch.logspace(-10.2, -11, 5, dtype=torch.float64)])
    s = torch.cat([torch.tensor([10.0, 5.0], dtype=torch.float64), s])
    assert elbow_rank(s, 2) == 2 + 5
    # a curve that stays above its chord has no point below it: the start itself
    concave = torch.exp(-torch.linspace(0, 1, 8, dtype=torch.float64) ** 4)
    assert elbow_rank(concave, 0) == 0
    assert elbow_rank(torch.tensor([1.0, 0.5], dtype=torch.float64), 0) == 0  # too short


def test_r_max_grows_while_r_min_stands_still_until_liftoff_and_never_decreases():
    ranks = amstramgram_module().RankSchedule(r_max=5)
    # (r_int, r_eps) per iteration, k = 50
    assert ranks.advance(2, 40, 50) == 2 and ranks.r_max == 5  # first iteration: nothing to compare with
    assert ranks.advance(2, 40, 50) == 2 and ranks.r_max == 6  # r_min unchanged: +1
    assert ranks.advance(2, 40, 50) == 2 and ranks.r_max == 7
    assert ranks.advance(3, 40, 50) == 3 and ranks.r_max == 7  # r_min changed: no increment
    assert ranks.advance(3, 40, 50) == 3 and ranks.r_max == 8
    assert ranks.advance(1, 40, 50) == 1 and ranks.r_max == 8  # r_int fell: r_max does not
    assert not ranks.liftoff and not ranks.flattening
    assert ranks.advance(12, 40, 50) == 12 and ranks.r_max == 12 and ranks.liftoff  # r_min >= r_max: liftoff
    assert ranks.advance(12, 40, 50) == 12 and ranks.r_max == 12  # no increment after liftoff
    assert ranks.advance(30, 20, 50) == 20 and ranks.r_max == 30 and ranks.flattening  # r_int > r_eps
    assert ranks.advance(0, 0, 50) == 1  # r_min is at least 1
    capped = amstramgram_module().RankSchedule(r_max=49)
    capped.advance(2, 40, 50), capped.advance(2, 40, 50), capped.advance(2, 40, 50)
    assert capped.r_max == 50  # never above k


@pytest.mark.parametrize("offset", [0, 1, 3])
def test_one_iteration_is_an_r_max_half_step_then_an_r_min_half_step_each_with_its_own_svd(offset):
    obj = LinearObjective(n=60, p=20, decay=1e-8)
    theta0 = torch.zeros(obj.n_params, dtype=torch.float64)
    opt = pinnbench.get_optimizer("amstramgram", precision=1e-6, rank_offset=offset, fallback="none")
    opt.reset(obj, theta0)
    etas = squared_exponent_grid(101, 60.0)
    theta = theta0
    for _ in range(3):
        before = opt.ranks.r_max
        theta_next = opt.step(obj, theta)
        info = opt.info
        assert info["r_max"] >= before
        expected = theta
        for rank in (info["r_max"], info["r_min"]):  # the r_max half-step first, then r_min from its end point
            jac, r = obj.jacobian(expected)
            svd = implicit_svd(jac)  # the optimizer's route (thin_svd agrees to cond(J)·eps ~ 1e-8 here)
            direction = truncated_solve(svd, r, min(rank + offset, svd.S.numel()))
            _, expected, _ = grid_line_search(obj, expected, direction, etas=etas)
        torch.testing.assert_close(theta_next, expected, rtol=0, atol=1e-12)
        assert info["rank"] == min(info["r_min"] + offset, 20)
        theta = theta_next


def test_line_search_grid_is_the_authors():
    etas = squared_exponent_grid()
    assert etas.numel() == 101 and float(etas[0]) == 1.0 and float(etas[-1]) == 2.0 ** -60
    assert float(etas[10]) == pytest.approx(0.5 ** (60 * 0.1 ** 2))
    assert bool((etas[1:] < etas[:-1]).all())


def test_portfolio_is_never_worse_than_anagram_at_equal_steps_and_its_anagram_track_is_anagram():
    # two torch threads: torch's threaded kernels (the QR among them) round differently at one and two threads,
    # and at θ0, where J's smallest singular values are rounding noise, that decides the adaptive track's first
    # rank choices (at one thread the adaptive track leads from step 1)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        _portfolio_against_anagram()
    finally:
        torch.set_num_threads(threads)


def _portfolio_against_anagram():
    inst = pinnbench.build("laplace2d", 6865, "paper")  # the paper's 900 points (measured there)
    obj = inst.objective
    anagram = pinnbench.get_optimizer("anagram", cutoff=1e-6)
    # a precision above the residual keeps r_min at 1 and the offset at 0: ANaGRAM's track leads at first
    portfolio = pinnbench.get_optimizer("amstramgram", anagram_cutoff=1e-6, precision=1e3, rank_offset=0)
    theta_a, theta_p = inst.theta0.clone(), inst.theta0.clone()
    anagram.reset(obj, theta_a)
    portfolio.reset(obj, theta_p)
    tracks = set()
    for _ in range(12):
        theta_a = anagram.step(obj, theta_a)
        theta_p = portfolio.step(obj, theta_p)
        assert portfolio.info["anagram_loss"] == anagram.info["loss"]  # the same trajectory, bit for bit
        assert float(obj.loss(theta_p)) <= float(obj.loss(theta_a))
        assert portfolio.info["loss"] == min(portfolio.info["adaptive_loss"], portfolio.info["anagram_loss"])
        tracks.add(portfolio.info["track"])
    assert tracks == {0, 1}  # both tracks led at some step (measured: ANaGRAM at step 1, adaptive after)


def test_without_fallback_only_the_adaptive_track_runs():
    inst = pinnbench.build("laplace2d", 6865, "quick")
    opt = pinnbench.get_optimizer("amstramgram", fallback="none")
    opt.reset(inst.objective, inst.theta0)
    opt.step(inst.objective, inst.theta0)
    assert "anagram_loss" not in opt.info and opt.info["track"] == 0


def test_diagnostics_published_each_step():
    inst = pinnbench.build("laplace2d", 6865, "quick")
    obj, theta = inst.objective, inst.theta0
    for name, hp in (("amstramgram", {}), ("anagram", {"cutoff": 1e-6})):
        opt = pinnbench.get_optimizer(name, **hp)
        opt.reset(obj, theta)
        opt.step(obj, theta)
        k = min(obj.n_residuals, obj.n_params)
        assert opt.spectrum["singular_values"].shape == (k,)
        assert opt.spectrum["coefficients"].shape == (k,)
        assert opt.spectrum["rce"].shape == (k + 1,)
        r = obj.residuals(theta)
        torch.testing.assert_close(opt.spectrum["rce"][0] ** 2, r @ r / r.numel())
        assert {"eta", "rank", "cutoff", "r_int", "r_eps", "precision", "phase", "loss"} <= opt.info.keys()


@pytest.mark.parametrize("bad", [{"precision": 0.0}, {"precision": "abc"}, {"rank_offset": -1},
                                 {"rank_offset": 1.5}, {"line_search_points": 1}, {"fallback": "sometimes"}])
def test_rejects_bad_hyperparameters(bad):
    with pytest.raises(pinnbench.PinnbenchError):
        pinnbench.get_optimizer("amstramgram", **bad)


@pytest.mark.slow
def test_reaches_machine_precision_on_laplace2d_at_the_study_net():
    protocol = load_protocol("amstramgram")
    net = protocol.net_for("laplace2d")
    inst = pinnbench.build("laplace2d", 6865, "paper", layers=net)
    obj, theta = inst.objective, inst.theta0
    opt = pinnbench.get_optimizer("amstramgram", **protocol.hyperparameters_for("amstramgram", "laplace2d"))
    opt.reset(obj, theta)
    for _ in range(160):
        theta = opt.step(obj, theta)
    assert float(obj.loss(theta)) <= 1e-26  # measured 1.9e-28 after 130 iterations (seed 6865)
    assert inst.evaluate(theta)["l2_abs"] <= 1e-13
