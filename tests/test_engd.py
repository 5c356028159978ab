"""E-NGD: the direction against lstsq/pinv of the Gram matrix, the Gauss-Newton step on linear least squares,
and descent on a real PINN objective."""
from __future__ import annotations

import sys

import pytest
import torch

import pinnbench
from pinnbench import MLP, Objective, ResidualGroup
from pinnbench.problem import interior_grid, square_boundary
from pinnbench.registry import entries


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def engd_module():
    return sys.modules[entries("optimizer")["engd"].cls.__module__]


def tiny_pinn(layers=(2, 4, 1), n_grid=7, n_side=5) -> tuple[Objective, torch.Tensor]:
    """laplace2d's residuals on a small net: (n_grid-2)² interior points and 4·n_side boundary points."""
    problem = pinnbench.get_problem("laplace2d")
    interior, boundary = problem.point_sets("paper", torch.Generator().manual_seed(0)).groups
    groups = [ResidualGroup("interior", interior_grid(n_grid, (0, 0), (1, 1)), interior.residual, (0, 1)),
              ResidualGroup("boundary", square_boundary(n_side), boundary.residual)]
    model = MLP(layers)
    return Objective(model, groups), model.init(torch.Generator().manual_seed(6865))


class LinearLeastSquares:
    """r(θ) = A θ - b (A of the given rank) in two groups of unequal size (weights 1/N_s): the contract E-NGD
    needs (jacobian, row_weights, losses)."""

    def __init__(self, sizes=(40, 10), n_params=6, rank=None, seed=0) -> None:
        gen = torch.Generator().manual_seed(seed)
        n = sum(sizes)
        rank = rank or n_params
        self.A = (torch.randn(n, rank, generator=gen, dtype=torch.float64)
                  @ torch.randn(rank, n_params, generator=gen, dtype=torch.float64))
        self.b = torch.randn(n, generator=gen, dtype=torch.float64)
        self.row_weights = torch.cat([torch.full((k,), 1.0 / k, dtype=torch.float64) for k in sizes])
        self.n_params = n_params

    def jacobian(self, theta):
        return self.A, self.A @ theta - self.b

    def losses(self, thetas):
        r = thetas @ self.A.T - self.b
        return (r * r) @ self.row_weights

    def losses_along(self, theta, direction, etas):
        return self.losses(theta.unsqueeze(0) - etas.unsqueeze(1) * direction.unsqueeze(0))

    def loss(self, theta):
        return self.losses(theta.unsqueeze(0))[0]


def test_direction_equals_lstsq_of_the_gram_matrix():
    # A [2,3,1] net with N(0, 2²) weights: the Gram's condition number is ~1e6, so lstsq, eigh and the SVD
    # of W^½ J agree to ~1e-10 (at the default N(0, 0.1²) init it is ~1e16 and only the kept subspace is defined).
    objective, _ = tiny_pinn(layers=(2, 3, 1))
    theta = objective.model.init(torch.Generator().manual_seed(6865), std=2.0)
    jac, r = objective.jacobian(theta)
    w = objective.row_weights
    gram = jac.T @ (w.unsqueeze(1) * jac)
    _, grad = objective.loss_and_grad(theta)
    expected = torch.linalg.lstsq(gram, grad.unsqueeze(1), driver="gelsd").solution.squeeze(1)
    for solver in ("gram", "svd"):
        direction, grad_from_j, _, rank = engd_module().natural_gradient(jac, r, w, solver)
        assert rank == objective.n_params  # N = 45 > P = 13: full rank, nothing cut
        assert float((grad_from_j - grad).norm() / grad.norm()) < 1e-12  # ∇L = 2 Jᵀ W r, consistent
        assert float((direction - expected).norm() / expected.norm()) < 1e-8
    # and the optimizer's step is θ - η* d with η* from the 2^-k grid
    opt = pinnbench.get_optimizer("engd")
    opt.reset(objective, theta)
    theta_next = opt.step(objective, theta)
    assert float((theta_next - (theta - opt.info["eta"] * expected)).norm() / theta.norm()) < 1e-8
    assert opt.info["loss"] < float(objective.loss(theta))


@pytest.mark.parametrize("shape", ["rank 3 < P = 6 < N = 50", "N = 6 < P = 10"])
def test_rank_deficient_direction_is_the_pseudo_inverse(shape):
    # The Gram is singular; the solution is the minimum-norm one, pinv(G) ∇L. With N < P, 'auto' takes the SVD.
    objective = LinearLeastSquares(rank=3) if shape.startswith("rank") else LinearLeastSquares((4, 2), 10)
    expected_rank = 3 if shape.startswith("rank") else 6
    theta = torch.randn(objective.n_params, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    jac, r = objective.jacobian(theta)
    w = objective.row_weights
    gram = jac.T @ (w.unsqueeze(1) * jac)
    grad = 2 * jac.T @ (w * r)
    rcond = torch.finfo(torch.float64).eps * objective.n_params
    via_pinv = torch.linalg.pinv(gram, rtol=rcond, hermitian=True) @ grad
    via_lstsq = torch.linalg.lstsq(gram, grad.unsqueeze(1), rcond=rcond, driver="gelsd").solution.squeeze(1)
    for solver in ("auto", "gram", "svd"):
        direction, _, spectrum, rank = engd_module().natural_gradient(jac, r, w, solver)
        assert rank == expected_rank
        assert float((direction - via_pinv).norm() / via_pinv.norm()) < 1e-10
        assert float((direction - via_lstsq).norm() / via_lstsq.norm()) < 1e-10
        assert bool((spectrum[:-1] >= spectrum[1:]).all())  # reported largest first


def test_damping_solves_the_regularised_system():
    objective, theta = tiny_pinn()
    jac, r = objective.jacobian(theta)
    w = objective.row_weights
    gram = jac.T @ (w.unsqueeze(1) * jac)
    grad = 2 * jac.T @ (w * r)
    expected = torch.linalg.solve(gram + 1e-3 * torch.eye(objective.n_params, dtype=torch.float64), grad)
    for solver in ("gram", "svd"):
        direction, *_ = engd_module().natural_gradient(jac, r, w, solver, damping=1e-3)
        assert float((direction - expected).norm() / expected.norm()) < 1e-10


def test_one_step_solves_weighted_linear_least_squares():
    """For r = Aθ - b the Gram is the exact Hessian / 2: η* = 1/2 lands on the weighted least-squares solution."""
    objective = LinearLeastSquares()
    theta = torch.zeros(objective.n_params, dtype=torch.float64)
    opt = pinnbench.get_optimizer("engd")
    opt.reset(objective, theta)
    theta = opt.step(objective, theta)
    root_w = objective.row_weights.sqrt()
    solution = torch.linalg.lstsq(objective.A * root_w.unsqueeze(1), (objective.b * root_w).unsqueeze(1)).solution
    assert opt.info["eta"] == 0.5
    assert float((theta - solution.squeeze(1)).norm() / solution.norm()) < 1e-10


def test_engd_converges_on_a_small_pinn():
    # laplace2d's net [2,32,1] on 100 interior + 44 boundary points. (With 8-16 hidden units the undamped
    # pseudo-inverse direction is dominated by the Gram's smallest eigenvalues and E-NGD crawls: η* ~ 1e-7.)
    # The early steps are sensitive to last-bit changes in J (sharing one Jacobian pass between the groups
    # moved the 1e-5 mark past step 40); by step 60 the loss is below 1e-8 of its start (4.8e-14 measured).
    objective, theta = tiny_pinn(layers=(2, 32, 1), n_grid=12, n_side=11)
    start = float(objective.loss(theta))
    opt = pinnbench.get_optimizer("engd")
    opt.reset(objective, theta)
    for _ in range(60):
        theta = opt.step(objective, theta)
    assert opt.info["loss"] < 1e-8 * start
    assert objective.counts.jacobian_evals == 60
