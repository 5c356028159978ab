"""The strong-Wolfe line searches, BFGS / SSBFGS / SSBroyden and L-BFGS, checked against scipy and theory."""
from __future__ import annotations

import math
import sys

import numpy as np
import pytest
import scipy.optimize
import torch

import pinnbench
from pinnbench import MLP, Objective, ResidualGroup
from pinnbench.problem import interior_grid, square_boundary
from pinnbench.registry import entries
from pinnbench.wolfe import bracket_zoom, more_thuente, strong_wolfe

C1, C2 = 1e-4, 0.9


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """These objectives are tiny: one thread avoids oversubscribing a shared machine."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


# ---------------------------------------------------------------- small objectives implementing the contract
class Counts:
    def __init__(self) -> None:
        self.gradient_evals = 0


class Rosenbrock:
    """f(x) = Σ 100 (x_{i+1} - x_i²)² + (1 - x_i)², gradient by autograd."""

    def __init__(self, n: int = 2) -> None:
        self.n_params = n
        self.counts = Counts()

    def loss_and_grad(self, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.counts.gradient_evals += 1
        x = theta.detach().requires_grad_(True)
        f = (100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2).sum()
        (g,) = torch.autograd.grad(f, x)
        return f.detach(), g


class Quadratic:
    """f(x) = ½ (x - x*)ᵀ A (x - x*) with A SPD, eigenvalues log-spaced in [lowest, lowest·cond]; minimum 0."""

    def __init__(self, n: int = 30, cond: float = 1e4, lowest: float = 1.0, seed: int = 0) -> None:
        gen = torch.Generator().manual_seed(seed)
        q, _ = torch.linalg.qr(torch.randn(n, n, generator=gen, dtype=torch.float64))
        eigenvalues = lowest * torch.logspace(0, math.log10(cond), n, dtype=torch.float64)
        self.A = (q * eigenvalues) @ q.T
        self.A = (self.A + self.A.T) / 2
        self.x_star = torch.randn(n, generator=gen, dtype=torch.float64)
        self.n_params = n
        self.counts = Counts()

    def loss_and_grad(self, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.counts.gradient_evals += 1
        g = self.A @ (theta - self.x_star)
        return 0.5 * (theta - self.x_star) @ g, g


def tiny_pinn() -> tuple[Objective, torch.Tensor]:
    """laplace2d's residuals on a [2,4,1] net (P = 17), 25 interior and 20 boundary points."""
    problem = pinnbench.get_problem("laplace2d")
    interior, boundary = problem.point_sets("paper", torch.Generator().manual_seed(0)).groups
    groups = [ResidualGroup("interior", interior_grid(7, (0, 0), (1, 1)), interior.residual, (0, 1)),
              ResidualGroup("boundary", square_boundary(5), boundary.residual)]
    model = MLP((2, 4, 1))
    return Objective(model, groups), model.init(torch.Generator().manual_seed(6865))


def scipy_bfgs(objective, theta0: torch.Tensor, iterations: int) -> tuple[list[np.ndarray], list[int]]:
    """scipy's BFGS iterates on the same (loss, grad) function, and the evaluations made before each iterate."""
    counts = [0]

    def fun(x: np.ndarray) -> tuple[float, np.ndarray]:
        counts[0] += 1
        loss, grad = objective.loss_and_grad(torch.from_numpy(x.copy()))
        return float(loss), grad.numpy()

    iterates, evaluations = [theta0.numpy().copy()], [1]

    def callback(xk: np.ndarray) -> None:
        iterates.append(xk.copy())
        evaluations.append(counts[0])

    scipy.optimize.minimize(fun, theta0.numpy(), jac=True, method="BFGS", callback=callback,
                            options={"gtol": 0.0, "maxiter": iterations, "c1": C1, "c2": C2})
    return iterates, evaluations


def run_pinnbench(name: str, objective, theta0: torch.Tensor, iterations: int, **hparams):
    opt = pinnbench.get_optimizer(name, **hparams)
    opt.reset(objective, theta0)
    theta, iterates, infos = theta0, [theta0.numpy().copy()], []
    for _ in range(iterations):
        theta = opt.step(objective, theta)
        iterates.append(theta.numpy().copy())
        infos.append(dict(opt.info))
    return opt, iterates, infos


# ---------------------------------------------------------------- line searches
def _scalar_functions():
    # (phi, phi', α0): the Moré-Thuente paper's first test function and two smooth ones with far minima.
    return [
        (lambda a: -a / (a * a + 2.0), lambda a: (a * a - 2.0) / (a * a + 2.0) ** 2, 1e-3),
        (lambda a: -a / (a * a + 0.004), lambda a: (a * a - 0.004) / (a * a + 0.004) ** 2, 1.0),
        (lambda a: (a - 30.0) ** 2 + math.sin(a), lambda a: 2 * (a - 30.0) + math.cos(a), 1.0),
        (lambda a: math.exp(-a) + 0.01 * a * a, lambda a: -math.exp(-a) + 0.02 * a, 0.5),
    ]


@pytest.mark.parametrize("case", range(4))
def test_more_thuente_takes_scipy_dcsrch_steps(case):
    try:
        from scipy.optimize._linesearch import scalar_search_wolfe1
    except ImportError:  # private module moved: the BFGS comparisons below still cover the search
        pytest.skip("scipy.optimize._linesearch.scalar_search_wolfe1 not available")
    f, df, alpha0 = _scalar_functions()[case]
    trials_ours, trials_scipy = [], []

    def phi(a):
        trials_ours.append(a)
        return f(a), df(a)

    ours = more_thuente(phi, f(0.0), df(0.0), alpha0, C1, C2)

    def phi_scipy(a):
        trials_scipy.append(a)
        return f(a)

    # scalar_search_wolfe1 starts at 1 unless old_phi0 is given: choose old_phi0 so that its α0 is ours.
    old = f(0.0) - alpha0 * df(0.0) / 2.02 if alpha0 < 1 else None
    alpha, _, _ = scalar_search_wolfe1(phi_scipy, df, f(0.0), old, df(0.0), c1=C1, c2=C2, amin=1e-100,
                                       amax=1e100, xtol=1e-14)
    assert alpha is not None and ours.alpha is not None
    assert trials_ours == pytest.approx(trials_scipy, rel=1e-14, abs=0)
    assert ours.alpha == pytest.approx(alpha, rel=1e-14)
    assert f(ours.alpha) <= f(0.0) + C1 * ours.alpha * df(0.0) and abs(df(ours.alpha)) <= -C2 * df(0.0)


@pytest.mark.parametrize("case", range(4))
def test_bracket_zoom_satisfies_strong_wolfe(case):
    f, df, alpha0 = _scalar_functions()[case]
    result = bracket_zoom(lambda a: (f(a), df(a)), f(0.0), df(0.0), alpha0, C1, C2)
    a = result.alpha
    assert a is not None and result.evaluations < 30
    assert f(a) <= f(0.0) + C1 * a * df(0.0) and abs(df(a)) <= -C2 * df(0.0)


def test_strong_wolfe_survives_non_finite_values():
    # Overflow beyond α = 5: the search must back off instead of failing.
    def phi(a):
        if a > 5.0:
            return math.inf, math.nan
        return (a - 4.0) ** 2, 2 * (a - 4.0)

    for method in ("more-thuente", "zoom"):
        result = strong_wolfe(phi, 16.0, -8.0, 100.0, C1, C2, method=method)
        a = result.alpha
        assert a is not None and a <= 5.0
        assert (a - 4.0) ** 2 <= 16.0 - C1 * a * 8.0 and abs(2 * (a - 4.0)) <= C2 * 8.0


# ---------------------------------------------------------------- BFGS against scipy
def test_bfgs_reproduces_scipy_on_rosenbrock():
    objective = Rosenbrock()
    theta0 = torch.tensor([-1.2, 1.0], dtype=torch.float64)
    reference, ref_evals = scipy_bfgs(objective, theta0, 200)
    assert len(reference) > 30  # scipy converged after 35 iterations: the whole path is compared
    _, ours, infos = run_pinnbench("bfgs", Rosenbrock(), theta0, len(reference) - 1, restart_every=0)
    deviation = max(float(np.abs(a - b).max()) for a, b in zip(reference, ours))
    assert deviation < 1e-8
    assert float(np.abs(ours[-1] - 1.0).max()) < 1e-10
    our_evals = np.cumsum([1] + [int(i["line_search_evals"]) for i in infos])
    assert our_evals.tolist() == ref_evals


def test_bfgs_reproduces_scipy_on_tiny_pinn():
    objective, theta0 = tiny_pinn()
    # Rounding differences (matrix-vector products summed in another order) grow by ~3x per iteration on
    # this non-convex problem: iterates agree to ~1e-10 after 10 iterations, 1e-2 after 60. Compare 10
    # iterates to 1e-8, and the line-search path (evaluations per iteration) over 40.
    reference, ref_evals = scipy_bfgs(objective, theta0, 40)
    _, ours, infos = run_pinnbench("bfgs", objective, theta0, 40, restart_every=0)
    deviation = max(float(np.abs(a - b).max()) for a, b in zip(reference[:11], ours[:11]))
    assert deviation < 1e-8
    our_evals = np.cumsum([1] + [int(i["line_search_evals"]) for i in infos])
    assert our_evals.tolist() == ref_evals
    assert float(objective.loss(torch.from_numpy(ours[-1]))) < 0.1 * float(objective.loss(theta0))


def test_ssbfgs_without_scaling_is_bfgs():
    """SSBFGS with τ forced to 1 runs the very same code path as BFGS: identical iterates."""
    objective, theta0 = tiny_pinn()
    _, bfgs, _ = run_pinnbench("bfgs", objective, theta0, 15, restart_every=0)
    cls = entries("optimizer")["ssbfgs"].cls
    module = sys.modules[cls.__module__]
    original = module.scaling_and_family
    try:
        module.scaling_and_family = lambda rule, b, h, n: (1.0, 1.0) if b > 0 else None
        _, ssbfgs, _ = run_pinnbench("ssbfgs", objective, theta0, 15, restart_every=0)
    finally:
        module.scaling_and_family = original
    assert max(float(np.abs(a - b).max()) for a, b in zip(bfgs, ssbfgs)) == 0.0
    _, scaled, infos = run_pinnbench("ssbfgs", objective, theta0, 15, restart_every=0)
    assert any(i["tau"] < 1.0 for i in infos)  # the real SSBFGS does scale, and so differs
    assert float(np.abs(scaled[-1] - bfgs[-1]).max()) > 1e-6


# ---------------------------------------------------------------- SSBroyden's update
@pytest.mark.parametrize("name", ["ssbroyden", "ssbfgs"])
def test_self_scaled_update_is_secant_and_spd_on_quadratic(name):
    # eigenvalues 1e-3..10 around H0 = I: b = sᵀBs / sᵀy exceeds 1 and SSBFGS's τ = 1/b < 1 is exercised
    objective = Quadratic(n=30, cond=1e4, lowest=1e-3)
    theta = torch.zeros(30, dtype=torch.float64)
    opt = pinnbench.get_optimizer(name, restart_every=0)
    opt.reset(objective, theta)
    non_bfgs = 0
    for _ in range(25):
        g_old = objective.A @ (theta - objective.x_star)
        theta_next = opt.step(objective, theta)
        assert opt.info["skipped_update"] == 0.0
        s = theta_next - theta
        y = objective.A @ (theta_next - objective.x_star) - g_old
        H = opt.H
        assert float((H @ y - s).norm() / s.norm()) < 1e-10
        assert torch.equal(H, H.T)
        assert float(torch.linalg.eigvalsh(H).min()) > 0.0
        non_bfgs += opt.info["tau"] != 1.0 or opt.info["phi"] != 1.0
        theta = theta_next
    assert non_bfgs >= 3  # the self-scaled update (τ != 1 or φ != 1) was really exercised


@pytest.mark.parametrize("name", ["ssbroyden", "ssbfgs", "bfgs"])
def test_dense_quasi_newton_solves_a_quadratic_to_machine_precision(name):
    objective = Quadratic(n=30, cond=1e4)
    theta = torch.zeros(30, dtype=torch.float64)
    opt = pinnbench.get_optimizer(name)
    opt.reset(objective, theta)
    for _ in range(150):
        theta = opt.step(objective, theta)
        if opt.info["loss"] < 1e-24:
            break
    assert opt.info["loss"] < 1e-24


def test_scaling_rule_guards_and_limits():
    module = sys.modules[entries("optimizer")["ssbroyden"].cls.__module__]
    rule = module.scaling_and_family
    assert rule("ssbroyden2", 0.0, 1.0, 10) is None and rule("ssbroyden2", -1.0, 2.0, 10) is None
    assert rule("ssbfgs", 4.0, 1.0, 10) == (0.25, 1.0) and rule("ssbfgs", 0.5, 3.0, 10) == (1.0, 1.0)
    assert rule("bfgs", -1.0, 1.0, 10) == (1.0, 1.0)
    # a -> 0 (s parallel to Hy): the coefficients are continuous at the guard
    for b, h in ((0.5, 2.0), (2.0, 0.5), (0.8, 1.25)):
        limit = rule("ssbroyden2", b, h, 10)
        near = rule("ssbroyden2", b, h * (1 + 1e-9), 10)
        assert limit is not None and near is not None
        assert limit[0] == pytest.approx(near[0], rel=1e-3)


def test_line_search_evaluations_are_counted_and_reported():
    objective, theta = tiny_pinn()
    opt = pinnbench.get_optimizer("ssbroyden")
    opt.reset(objective, theta)
    before = objective.counts.gradient_evals
    theta = opt.step(objective, theta)
    assert objective.counts.gradient_evals - before == 1 + opt.info["line_search_evals"]
    for _ in range(10):
        before = objective.counts.gradient_evals
        theta = opt.step(objective, theta)
        assert objective.counts.gradient_evals - before == opt.info["line_search_evals"] >= 1


def test_log_transform_decreases_the_loss_monotonically():
    objective, theta = tiny_pinn()
    opt = pinnbench.get_optimizer("ssbroyden", loss_transform="log")
    opt.reset(objective, theta)
    losses = [float(objective.loss(theta))]
    for _ in range(40):
        theta = opt.step(objective, theta)
        losses.append(opt.info["loss"])
        assert losses[-1] == pytest.approx(float(objective.loss(theta)), rel=1e-12)
    assert all(b < a for a, b in zip(losses, losses[1:]))
    assert losses[-1] < 0.1 * losses[0]


def test_warmup_is_the_authors_adam():
    objective, theta0 = tiny_pinn()
    opt = pinnbench.get_optimizer("ssbroyden", warmup=5)
    opt.reset(objective, theta0)
    param = torch.nn.Parameter(theta0.clone())
    adam = torch.optim.Adam([param], lr=5e-3, betas=(0.99, 0.999), eps=1e-20)
    theta = theta0
    for step in range(5):
        theta = opt.step(objective, theta)
        assert opt.info["warmup"] == 1.0
        for group in adam.param_groups:
            group["lr"] = 5e-3 * 0.98 ** (step / 1000)
        adam.zero_grad()
        objective.loss_from_residuals(objective._residuals(param)).backward()
        adam.step()
    assert float((theta - param.detach()).abs().max()) < 1e-13
    theta = opt.step(objective, theta)  # the first quasi-Newton iteration follows
    assert "warmup" not in opt.info and opt.info["loss"] < float(objective.loss(param.detach()))


def test_block_restart_symmetrises_and_resets_non_spd():
    objective = Quadratic(n=8, cond=10)
    theta = torch.zeros(8, dtype=torch.float64)
    opt = pinnbench.get_optimizer("ssbroyden", restart_every=3)
    opt.reset(objective, theta)
    for _ in range(3):
        theta = opt.step(objective, theta)
    skew = torch.triu(torch.ones(8, 8, dtype=torch.float64), 1) * 1e-3
    opt.H = opt.H + skew
    opt._end_block()
    assert torch.equal(opt.H, opt.H.T)
    opt.H = -torch.eye(8, dtype=torch.float64)
    opt._end_block()
    assert torch.equal(opt.H, torch.eye(8, dtype=torch.float64))


# ---------------------------------------------------------------- L-BFGS
def test_two_loop_recursion_equals_dense_bfgs_from_scaled_identity():
    module = sys.modules[entries("optimizer")["lbfgs"].cls.__module__]
    gen = torch.Generator().manual_seed(1)
    n, pairs = 12, []
    A = torch.randn(n, n, generator=gen, dtype=torch.float64)
    A = A @ A.T + n * torch.eye(n, dtype=torch.float64)
    for _ in range(5):
        s = torch.randn(n, generator=gen, dtype=torch.float64)
        pairs.append((s, A @ s, 1.0 / float(s @ A @ s)))
    g = torch.randn(n, generator=gen, dtype=torch.float64)
    s, y, rho = pairs[-1]
    H = torch.eye(n, dtype=torch.float64) * float(s @ y) / float(y @ y)
    eye = torch.eye(n, dtype=torch.float64)
    for s, y, rho in pairs:
        H = (eye - rho * torch.outer(s, y)) @ H @ (eye - rho * torch.outer(y, s)) + rho * torch.outer(s, s)
    from collections import deque
    direction = module.two_loop_direction(g, deque(pairs))
    assert float((direction + H @ g).norm() / (H @ g).norm()) < 1e-12


def test_lbfgs_drives_a_convex_quadratic_to_1e_minus_20():
    objective = Quadratic(n=50, cond=1e2)
    theta = torch.zeros(50, dtype=torch.float64)
    opt = pinnbench.get_optimizer("lbfgs")
    opt.reset(objective, theta)
    losses = []
    for _ in range(600):
        theta = opt.step(objective, theta)
        losses.append(opt.info["loss"])
        if losses[-1] < 1e-20:
            break
    assert losses[-1] < 1e-20
    # no stalling: the memory keeps being refreshed below 1e-10, where torch.optim.LBFGS stops storing pairs
    assert opt.info["memory"] == 10.0 and opt.info["pair_stored"] == 1.0
    assert all(b <= a for a, b in zip(losses, losses[1:]))


def test_lbfgs_reduces_tiny_pinn_loss():
    objective, theta = tiny_pinn()
    opt = pinnbench.get_optimizer("lbfgs", history_size=5)
    opt.reset(objective, theta)
    start = float(objective.loss(theta))
    for _ in range(100):
        theta = opt.step(objective, theta)
    assert opt.info["loss"] < 1e-3 * start
