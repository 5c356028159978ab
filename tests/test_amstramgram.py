"""AMStraMGRAM: stage logic on a linear least-squares objective, the dual-cutoff step, diagnostics, convergence."""
import pytest
import torch

import pinnbench
from pinnbench.linalg import rank_above, relative_cutoff, thin_svd, truncated_solve
from pinnbench.linesearch import grid_line_search
from pinnbench.spectral import spectrum


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


def run_until_converged(opt, obj, theta, max_steps=200):
    opt.reset(obj, theta)
    infos = []
    with pytest.raises(pinnbench.Converged):
        for _ in range(max_steps):
            theta = opt.step(obj, theta)
            infos.append(dict(opt.info))
    return theta, infos


@pytest.mark.parametrize("dual", [False, True])
def test_stages_lower_the_precision_and_converge_at_the_final_one(dual):
    obj = LinearObjective()
    opt = pinnbench.get_optimizer("amstramgram", precision_start=1e-3, precision_factor=1e-2,
                                  precision_final=1e-9, dual_cutoffs=dual)
    theta, infos = run_until_converged(opt, obj, torch.zeros(obj.n_params, dtype=torch.float64))
    precisions = [i["precision"] for i in infos]
    assert precisions == sorted(precisions, reverse=True)  # ε only ever decreases
    if not dual:  # one stage after the other (the dual candidate r_max may finish several stages in one step)
        assert {1e-3, 1e-5, 1e-7, 1e-9} <= {round(p, 15) for p in precisions}
    assert [i["stage"] for i in infos] == sorted(i["stage"] for i in infos)
    # converged: the RMS residual stands at the final precision
    assert float(obj.residuals(theta).norm() / obj.n_residuals**0.5) <= 1e-9
    for info in infos:
        assert info["r_min"] == max(1, min(info["r_int"], info["r_eps"]))
        assert info["phase"] == (0 if info["r_int"] < info["r_eps"] else 1)
        assert info["rank"] in (info["r_min"], info["r_max"])
    r_max = [i["r_max"] for i in infos]
    assert r_max == sorted(r_max)  # ascent


def test_single_cutoff_follows_the_precision_rank_on_a_linear_problem():
    obj = LinearObjective()
    opt = pinnbench.get_optimizer("amstramgram", precision_start=1e-6, precision_final=1e-6, dual_cutoffs=False)
    theta = torch.zeros(obj.n_params, dtype=torch.float64)
    opt.reset(obj, theta)
    jac, r = obj.jacobian(theta)
    sp = spectrum(thin_svd(jac), r)
    theta = opt.step(obj, theta)
    assert opt.info["rank"] == max(1, min(sp.intersection_rank(), sp.precision_rank(1e-6)))
    # a linear residual: one step with η = 1 removes the kept components, RCE then equals RCE at that rank
    if opt.info["eta"] == 1.0:
        rms = float(obj.residuals(theta).norm() / obj.n_residuals**0.5)
        assert rms == pytest.approx(float(sp.rce[opt.info["rank"]]), rel=1e-6, abs=1e-15)


def test_dual_cutoff_step_is_never_worse_than_either_candidate():
    inst = pinnbench.build("laplace2d", 6865, "quick")
    obj, theta = inst.objective, inst.theta0
    opt = pinnbench.get_optimizer("amstramgram")
    opt.reset(obj, theta)
    compared = 0
    for _ in range(6):
        jac, r = obj.jacobian(theta)
        svd = thin_svd(jac)
        theta_next = opt.step(obj, theta)
        info = opt.info
        single = [float(grid_line_search(obj, theta, truncated_solve(svd, r, rank))[2])
                  for rank in {info["r_min"], min(info["r_max"], svd.S.numel())}]
        assert info["loss"] <= min(single) * (1 + 1e-12)
        assert float(obj.loss(theta_next)) == pytest.approx(info["loss"], rel=1e-10)
        compared += len(single) == 2
        theta = theta_next
    assert compared > 0  # the dual case did occur


@pytest.mark.parametrize("cutoff", ["relative", 0.5])
def test_cutoff_caps_the_principal_rank_at_the_anagram_rank(cutoff):
    inst = pinnbench.build("laplace2d", 6865, "quick")
    obj, theta = inst.objective, inst.theta0
    opt = pinnbench.get_optimizer("amstramgram", cutoff=cutoff)
    opt.reset(obj, theta)
    capped = 0
    for _ in range(8):
        svd = thin_svd(obj.jacobian(theta)[0])
        alpha = relative_cutoff(svd, obj.n_params) if cutoff == "relative" else cutoff
        cap = rank_above(svd, alpha)
        theta = opt.step(obj, theta)
        info = opt.info
        assert info["r_min"] == max(1, min(info["r_int"], info["r_eps"], cap))
        capped += info["r_int"] > cap
    assert capped > 0 or cutoff == "relative"  # 0.5 binds within 8 steps; the relative cutoff later


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


@pytest.mark.parametrize("bad", [{"precision_factor": 1.5}, {"precision_start": 1e-12, "precision_final": 1e-6},
                                 {"rmax_increment": -1}, {"ignition_ratio": 0.0}, {"cutoff": -1.0},
                                 {"cutoff": "absolute"}])
def test_rejects_bad_hyperparameters(bad):
    with pytest.raises(pinnbench.PinnbenchError):
        pinnbench.get_optimizer("amstramgram", **bad)


@pytest.mark.slow
def test_reaches_machine_precision_on_laplace2d_with_64_units():
    inst = pinnbench.build("laplace2d", 6865, "paper", layers=(2, 64, 1))
    obj, theta = inst.objective, inst.theta0
    opt = pinnbench.get_optimizer("amstramgram")
    opt.reset(obj, theta)
    with pytest.raises(pinnbench.Converged):
        for _ in range(400):
            theta = opt.step(obj, theta)
    assert inst.evaluate(theta)["l2_abs"] <= 1e-12
