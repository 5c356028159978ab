"""The modern baselines (issue #16): Levenberg-Marquardt (``lm``), ENGD in sample space with SPRING momentum
(``engd_woodbury``) and NysNewton-CG (``nncg``), each checked against a dense solve, for its adaptive logic, for
convergence on linear least squares and for descent on a tiny PINN."""
from __future__ import annotations

import sys

import pytest
import torch

import pinnbench
from pinnbench.linalg import DampedLeastSquares, kernel_solve, weighted_system
from pinnbench.registry import entries
from pinnbench.runner import RunSpec, execute

from test_engd import LinearLeastSquares, one_thread, tiny_pinn  # noqa: F401 - one_thread: autouse fixture

NEW = ("lm", "engd_woodbury", "nncg")


def module(name):
    return sys.modules[entries("optimizer")[name].cls.__module__]


def dense_damped_step(jac, r, weights, damping):
    """(JᵀWJ + λI)⁻¹ JᵀWr by a dense LU solve: the reference for every damped Gauss-Newton step here."""
    gram = jac.T @ (weights.unsqueeze(1) * jac)
    return torch.linalg.solve(gram + damping * torch.eye(jac.shape[1], dtype=jac.dtype), jac.T @ (weights * r))


def weighted_lstsq_solution(objective):
    root_w = objective.row_weights.sqrt()
    return torch.linalg.lstsq(objective.A * root_w.unsqueeze(1), (objective.b * root_w).unsqueeze(1)).solution[:, 0]


def start(objective):
    return torch.randn(objective.n_params, generator=torch.Generator().manual_seed(3), dtype=torch.float64)


# ------------------------------------------------------------------------------------------------ shared linalg
@pytest.mark.parametrize("shape", ["N = 50 > P = 6", "N = 6 < P = 10"])
def test_damped_solvers_and_woodbury_equal_the_parameter_space_solve(shape):
    objective = LinearLeastSquares() if shape.startswith("N = 50") else LinearLeastSquares((4, 2), 10)
    jac, r = objective.jacobian(start(objective))
    a, b = weighted_system(jac, r, objective.row_weights)
    for damping in (1e-1, 1e-4):
        expected = dense_damped_step(jac, r, objective.row_weights, damping)
        via_kernel = kernel_solve(a, b, damping)  # Aᵀ(AAᵀ + λI)⁻¹b
        assert float((via_kernel - expected).norm() / expected.norm()) < 1e-10
        for solver in ("auto", "svd", "cholesky", "woodbury"):
            d = DampedLeastSquares(a, b, solver).solve(damping)
            assert float((d - expected).norm() / expected.norm()) < 1e-10, solver


def test_kernel_solve_without_damping_falls_back_to_the_pseudo_inverse():
    # N = 50 > P = 6 and λ = 0: AAᵀ is singular, the Cholesky fails; the result is still the least-squares step.
    objective = LinearLeastSquares()
    jac, r = objective.jacobian(start(objective))
    a, b = weighted_system(jac, r, objective.row_weights)
    expected = torch.linalg.lstsq(a, b.unsqueeze(1)).solution[:, 0]
    assert float((kernel_solve(a, b, 0.0) - expected).norm() / expected.norm()) < 1e-8


# ------------------------------------------------------------------------------------------------ lm
def test_lm_step_equals_a_dense_solve_of_the_damped_system():
    # A [2,3,1] net with N(0, 2²) weights: a well-conditioned Gram (see test_engd).
    objective, _ = tiny_pinn(layers=(2, 3, 1))
    theta = objective.model.init(torch.Generator().manual_seed(6865), std=2.0)
    jac, r = objective.jacobian(theta)
    trials = set()
    for solver in ("auto", "cholesky", "svd", "woodbury"):
        opt = pinnbench.get_optimizer("lm", solver=solver)
        opt.reset(objective, theta)
        theta_next = opt.step(objective, theta)
        trials.add(opt.info["trials"])  # λ0 = 1e-3·max diag, then x2, x4, ... until the loss falls
        d = dense_damped_step(jac, r, objective.row_weights, opt.info["damping"])
        assert float((theta_next - (theta - d)).norm() / d.norm()) < 1e-10, solver
        assert opt.info["loss"] == pytest.approx(float(objective.loss(theta_next)), rel=1e-12)
        assert opt.info["loss"] < float(objective.loss(theta))
    assert len(trials) == 1  # every solver took the same decisions


class FirstTrialsFail(LinearLeastSquares):
    """Linear least squares whose first two ``loss`` calls report +inf: the first two trials must be rejected."""

    calls = 0

    def loss(self, theta):
        self.calls += 1
        return torch.tensor(float("inf")) if self.calls <= 2 else super().loss(theta)


@pytest.mark.parametrize("rule", ["nielsen", "marquardt"])
def test_lm_damping_goes_down_after_good_steps_and_up_after_a_rejected_one(rule):
    objective = FirstTrialsFail()
    theta = start(objective)
    opt = pinnbench.get_optimizer("lm", rule=rule)
    opt.reset(objective, theta)
    theta = opt.step(objective, theta)
    jac, _ = objective.jacobian(theta)
    a = jac * objective.row_weights.sqrt().unsqueeze(1)
    lam0 = 1e-3 * float((a * a).sum(0).max())
    up = 2.0 * 4.0 if rule == "nielsen" else 10.0 * 10.0  # Nielsen: λ·ν, ν = 2 then 4; Marquardt: λ·10 twice
    assert opt.info["trials"] == 3 and opt.info["damping"] == pytest.approx(up * lam0, rel=1e-12)
    # A quadratic: ρ = 1 exactly, so Nielsen's factor is max(1/3, 1 - 1³) = 1/3; Marquardt's 1/10.
    assert opt.info["rho"] == pytest.approx(1.0, rel=1e-9)
    down = 1 / 3 if rule == "nielsen" else 1 / 10
    lams = [opt.info["damping"]]
    for _ in range(3):
        theta = opt.step(objective, theta)
        lams.append(opt.info["damping"])
        assert opt.info["trials"] == 1
    assert lams[1:] == pytest.approx([lams[0] * down ** k for k in (1, 2, 3)], rel=1e-9)
    if rule == "nielsen":
        assert opt.nu == 2.0  # reset after the accepted step


def test_lm_converges_on_linear_least_squares_in_few_steps_then_stops():
    # A consistent system (b = A x*, minimum loss 0): with a nonzero minimum, decreases below eps·L* cannot be
    # told from rounding and every loss-based acceptance test stops at ~sqrt(eps) relative error.
    objective = LinearLeastSquares()
    solution = start(objective)
    objective.b = objective.A @ solution
    theta = torch.zeros(objective.n_params, dtype=torch.float64)
    opt = pinnbench.get_optimizer("lm")
    opt.reset(objective, theta)
    errors = []
    with pytest.raises(pinnbench.Converged):  # at the minimum no λ lowers the loss any more: the run ends
        for _ in range(40):
            theta = opt.step(objective, theta)
            errors.append(float((theta - solution).norm() / solution.norm()))
    assert len(errors) <= 20 and errors[-1] < 1e-13
    assert all(b < a for a, b in zip(errors, errors[1:]) if a > 1e-13)  # monotone down to rounding
    assert errors[min(11, len(errors) - 1)] < 1e-13  # 12 steps: λ falls 3x per step, so the contraction λ/(s² + λ) soon vanishes


# ------------------------------------------------------------------------------------------------ engd_woodbury
@pytest.mark.parametrize("shape", ["N = 50 > P = 6", "N = 6 < P = 10"])
def test_woodbury_direction_is_damped_engd_and_spring_solves_its_regularised_problem(shape):
    objective = LinearLeastSquares() if shape.startswith("N = 50") else LinearLeastSquares((4, 2), 10)
    theta = start(objective)
    jac, r = objective.jacobian(theta)
    w = objective.row_weights
    damping = 1e-3
    # momentum 0: plain damped ENGD, whose direction (Jᵀ W J + λI)⁻¹ ∇L is twice the Gauss-Newton step φ
    plain = pinnbench.get_optimizer("engd_woodbury", damping=damping, momentum=0.0)
    plain.reset(objective, theta)
    phi = plain.direction(jac, r, w)
    engd_direction, *_ = module("engd").natural_gradient(jac, r, w, "gram", damping=damping)
    assert float((2 * phi - engd_direction).norm() / engd_direction.norm()) < 1e-10
    assert float((phi - dense_damped_step(jac, r, w, damping)).norm() / phi.norm()) < 1e-10
    # momentum μ: φ_k = argmin ‖Aφ - b‖² + λ‖φ - μφ_{k-1}‖², i.e. (AᵀA + λI)φ_k = Aᵀb + λμφ_{k-1}, in both spaces
    a, b = weighted_system(jac, r, w)
    for space in ("sample", "parameter", "auto"):
        opt = pinnbench.get_optimizer("engd_woodbury", damping=damping, momentum=0.9, space=space)
        opt.reset(objective, theta)
        first = opt.direction(jac, r, w).clone()
        assert float((first - phi).norm() / phi.norm()) < 1e-10  # φ_0 = 0: the first step has no momentum
        jac2, r2 = objective.jacobian(theta - 0.5 * first)
        second = opt.direction(jac2, r2, w)
        a2, b2 = weighted_system(jac2, r2, w)
        normal = (a2.T @ a2 + damping * torch.eye(a2.shape[1], dtype=a2.dtype)) @ second - a2.T @ b2 \
            - damping * 0.9 * first
        assert float(normal.norm() / (a2.T @ b2).norm()) < 1e-10, space
        assert float((second - first).norm()) > 1e-3 * float(first.norm())  # the momentum term mattered


def test_engd_woodbury_converges_on_linear_least_squares():
    objective = LinearLeastSquares()
    theta = torch.zeros(objective.n_params, dtype=torch.float64)
    solution = weighted_lstsq_solution(objective)
    opt = pinnbench.get_optimizer("engd_woodbury", damping=1e-6)
    opt.reset(objective, theta)
    for _ in range(20):
        theta = opt.step(objective, theta)
    assert float((theta - solution).norm() / solution.norm()) < 1e-7


def test_engd_woodbury_fixed_step_respects_the_norm_constraint():
    objective, theta = tiny_pinn()
    opt = pinnbench.get_optimizer("engd_woodbury", lr=1.0, norm_constraint=1e-4)
    opt.reset(objective, theta)
    theta_next = opt.step(objective, theta)
    assert float((theta_next - theta).norm()) == pytest.approx(1e-2, rel=1e-9)  # sqrt(C) < lr·‖φ‖


# ------------------------------------------------------------------------------------------------ nncg
def spd(n=30, rank=None, seed=0):
    """A symmetric positive semi-definite matrix with eigenvalues 10^0 .. 10^-6 (or ``rank`` of them)."""
    gen = torch.Generator().manual_seed(seed)
    q = torch.linalg.qr(torch.randn(n, n, generator=gen, dtype=torch.float64)).Q
    lam = torch.logspace(0, -6, n, dtype=torch.float64)
    if rank is not None:
        lam[rank:] = 0
    return (q * lam) @ q.T


def test_nystrom_preconditioned_cg_equals_a_direct_solve():
    nncg = module("nncg")
    h = spd()
    g = torch.randn(30, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    mu = 1e-4
    u, lam = nncg.nystrom_approximation(lambda v: h @ v, 30, 10, torch.Generator().manual_seed(2))
    pre = nncg.NystromPreconditioner(u, lam, mu)
    x, iters, _ = nncg.preconditioned_cg(lambda v: h @ v + mu * v, g, torch.zeros(30, dtype=torch.float64),
                                         pre.apply_inverse, 1e-13, 200)
    expected = torch.linalg.solve(h + mu * torch.eye(30, dtype=torch.float64), g)
    assert float((x - expected).norm() / expected.norm()) < 1e-10
    plain = nncg.preconditioned_cg(lambda v: h @ v + mu * v, g, torch.zeros(30, dtype=torch.float64),
                                   lambda v: v, 1e-13, 200)[1]
    assert iters < plain  # the preconditioner helps


def test_nystrom_preconditioner_is_exact_on_a_low_rank_matrix():
    nncg = module("nncg")
    h = spd(rank=5)
    mu = 1e-3
    u, lam = nncg.nystrom_approximation(lambda v: h @ v, 30, 10, torch.Generator().manual_seed(2))
    assert float(((u * lam) @ u.T - h).norm() / h.norm()) < 1e-10  # H = UΛUᵀ exactly
    assert float(lam[5:].abs().max()) < 1e-12  # λ_s = 0
    pre = nncg.NystromPreconditioner(u, lam, mu)
    preconditioned = torch.stack([pre.apply_inverse(col) for col in (h + mu * torch.eye(30, dtype=torch.float64)).T])
    eig = torch.linalg.eigvals(preconditioned).real
    assert float(eig.max() / eig.min()) < 1 + 1e-8  # P⁻¹(H + μI) = μI: condition number 1
    g = torch.randn(30, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    x, iters, _ = nncg.preconditioned_cg(lambda v: h @ v + mu * v, g, torch.zeros(30, dtype=torch.float64),
                                         pre.apply_inverse, 1e-10, 100)
    assert iters == 1
    expected = torch.linalg.solve(h + mu * torch.eye(30, dtype=torch.float64), g)
    assert float((x - expected).norm() / expected.norm()) < 1e-10


def test_nncg_step_is_the_damped_newton_step_and_converges_on_linear_least_squares():
    objective = LinearLeastSquares()
    theta = torch.zeros(objective.n_params, dtype=torch.float64)
    solution = weighted_lstsq_solution(objective)
    opt = pinnbench.get_optimizer("nncg", rank=4, mu=1e-8, cg_tol=1e-14)
    opt.reset(objective, theta)
    jac, r = objective.jacobian(theta)
    theta_next = opt.step(objective, theta)
    # the Hessian of a linear least-squares loss is exactly 2 JᵀWJ: d = (2JᵀWJ + μI)⁻¹ 2JᵀWr, t = 1 accepted
    assert opt.info["eta"] == 1.0 and opt.info["backtracks"] == 0 and opt.info["preconditioner_updated"] == 1
    d = dense_damped_step(jac, r, objective.row_weights, 1e-8 / 2)
    assert float((theta_next - (theta - d)).norm() / d.norm()) < 1e-9
    with pytest.raises(pinnbench.Converged):  # at the minimum CG returns no descent direction
        for _ in range(10):
            theta_next = opt.step(objective, theta_next)
    assert float((theta_next - solution).norm() / solution.norm()) < 1e-10


def test_nncg_pipeline_runs_adam_then_lbfgs_then_nncg():
    objective, theta = tiny_pinn()
    opt = pinnbench.get_optimizer("nncg", adam_steps=3, lbfgs_steps=2, update_freq=2)
    opt.reset(objective, theta)
    stages, updated = [], []
    for _ in range(9):
        theta = opt.step(objective, theta)
        stages.append(opt.info["stage"])
        updated.append(opt.info.get("preconditioner_updated"))
    assert stages == [0, 0, 0, 1, 1, 2, 2, 2, 2]
    assert updated[5:] == [1, 0, 1, 0]  # rebuilt every update_freq NNCG steps
    assert objective.counts.jacobian_evals == 4  # Adam and L-BFGS use gradients only


# ------------------------------------------------------------------------------------------------ all three
INFO_KEYS = {"lm": {"eta", "damping", "loss", "rho", "trials"},
             "engd_woodbury": {"eta", "damping", "momentum", "loss"},
             "nncg": {"eta", "damping", "loss", "stage", "cg_iters", "cg_residual", "backtracks",
                      "preconditioner_updated"}}


@pytest.mark.parametrize("name, hparams, factor, monotone", [
    ("lm", {}, 1e-2, True),  # a step that raises the loss is never taken
    ("engd_woodbury", {}, 1e-1, False),  # the grid's argmin is taken unconditionally
    ("nncg", {"cg_max_iters": 200}, 1e-2, True),  # Armijo
])
def test_descends_on_a_tiny_pinn(name, hparams, factor, monotone):
    objective, theta = tiny_pinn(layers=(2, 8, 1), n_grid=8, n_side=6)
    losses = [float(objective.loss(theta))]
    opt = pinnbench.get_optimizer(name, **hparams)
    opt.reset(objective, theta)
    for _ in range(30):
        theta = opt.step(objective, theta)
        losses.append(opt.info["loss"])
    assert losses[-1] == pytest.approx(float(objective.loss(theta)), rel=1e-12)
    assert losses[-1] < factor * losses[0]
    assert not monotone or all(b < a for a, b in zip(losses, losses[1:]))
    assert objective.counts.jacobian_evals == 30


@pytest.mark.parametrize("name", NEW)
def test_registered_listed_and_recorded_by_the_runner(name, tiny_protocol):
    assert name in entries("optimizer") and entries("optimizer")[name].source == "builtin"
    record = execute(RunSpec("laplace2d", name, 6865), tiny_protocol)
    assert record.manifest["status"] == "ok" and record.manifest["steps"] == 5
    assert INFO_KEYS[name] <= set(record.info)
    for key in INFO_KEYS[name]:
        assert len(record.info[key]) == 5 and all(torch.isfinite(torch.tensor(record.info[key]))), key
    losses = record.trajectory["loss"]
    assert losses[-1] < losses[0]


@pytest.mark.parametrize("name", NEW)
def test_shape_dtype_and_finiteness_kept(name):
    objective, theta = tiny_pinn()
    opt = pinnbench.get_optimizer(name)
    opt.reset(objective, theta)
    for _ in range(3):
        theta_next = opt.step(objective, theta)
        assert theta_next.shape == theta.shape and theta_next.dtype == torch.float64
        assert bool(torch.isfinite(theta_next).all()) and not torch.equal(theta_next, theta)
        assert all(isinstance(v, float) for v in opt.info.values())
        theta = theta_next


@pytest.mark.parametrize("name, bad", [("lm", {"rule": "other"}), ("lm", {"tau": 0.0}),
                                       ("engd_woodbury", {"momentum": 1.0}), ("engd_woodbury", {"space": "x"}),
                                       ("nncg", {"mu": 0.0}), ("nncg", {"adam_steps": -1})])
def test_bad_hyperparameters_are_rejected(name, bad):
    with pytest.raises(pinnbench.PinnbenchError):
        pinnbench.get_optimizer(name, **bad)
