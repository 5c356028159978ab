"""The fast Taylor-mode path agrees with the generic torch.func path on every registered problem."""
import pytest
import torch

import pinnbench
from pinnbench.derivatives import generic_fields, taylor_forward
from pinnbench.objective import Objective
from pinnbench.registry import entries

from conftest import subsample

PROBLEMS = list(entries("problem"))


def _setup(name: str, n_points: int = 40):
    problem = pinnbench.get_problem(name)
    sets = problem.point_sets("quick", torch.Generator().manual_seed(3))
    model = pinnbench.MLP(problem.layers)
    theta = model.init(torch.Generator().manual_seed(11), std=0.5)  # larger weights: nonlinear regime
    return model, theta, subsample(sets.groups, n_points)


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-300))


@pytest.mark.parametrize("name", PROBLEMS)
def test_fields_agree(name):
    model, theta, groups = _setup(name)
    for g in groups:
        fast = taylor_forward(model, theta, g.points, g.lap_dims)
        ref = generic_fields(model, theta, g.points, g.lap_dims)
        for a, b in zip(fast, ref):
            if b is not None:
                assert _rel(a, b) < 1e-10


@pytest.mark.parametrize("name", PROBLEMS)
def test_jacobians_agree(name):
    model, theta, groups = _setup(name)
    fast_j, fast_r = Objective(model, groups, derivatives="taylor").jacobian(theta)
    ref_j, ref_r = Objective(model, groups, derivatives="generic").jacobian(theta)
    assert fast_j.shape == (sum(g.points.shape[0] for g in groups), model.n_params)
    assert _rel(fast_j, ref_j) < 1e-10
    assert _rel(fast_r, ref_r) < 1e-10


@pytest.mark.parametrize("name", PROBLEMS)
def test_gradient_is_weighted_jacobian_transpose_residual(name):
    """∇L from reverse mode equals 2 Jᵀ W r from the fast Jacobian: two independent computations."""
    model, theta, groups = _setup(name)
    objective = Objective(model, groups)
    loss, grad = objective.loss_and_grad(theta)
    jac, r = objective.jacobian(theta)
    assert _rel(grad, 2 * jac.T @ (objective.row_weights * r)) < 1e-10
    assert float(loss) == pytest.approx(float(objective.loss(theta)), rel=1e-14)


def test_batched_losses_equal_one_by_one():
    model, theta, groups = _setup("heat")
    objective = Objective(model, groups)
    thetas = theta + 0.1 * torch.randn(5, model.n_params, generator=torch.Generator().manual_seed(0))
    batched = objective.losses(thetas)
    single = torch.stack([objective.loss(t) for t in thetas])
    assert _rel(batched, single) < 1e-13


@pytest.mark.parametrize("name", PROBLEMS)
def test_losses_along_a_line_equal_the_losses_of_its_points(name):
    # the line search's path (first layer affine in η, the lean one-hidden-layer pass) against single losses
    model, theta, groups = _setup(name)
    objective = Objective(model, groups)
    direction = 0.3 * torch.randn(model.n_params, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    etas = torch.pow(2.0, -torch.arange(9, dtype=torch.float64))
    along = objective.losses_along(theta, direction, etas)
    single = torch.stack([objective.loss(theta - eta * direction) for eta in etas])
    assert _rel(along, single) < 1e-12


def test_work_counters_count_and_cannot_be_edited_through_the_objective():
    model, theta, groups = _setup("laplace2d")
    objective = Objective(model, groups)
    objective.jacobian(theta)
    objective.loss_and_grad(theta)
    objective.losses(theta.expand(4, -1))
    objective.counts.residual_evals = 0  # a copy: the record is not touched
    assert objective.counts.as_dict() == {"residual_evals": 6, "gradient_evals": 1, "jacobian_evals": 1}
    with pytest.raises(AttributeError):
        objective.counts = None


def test_residual_groups_with_one_name_are_rejected():
    model, theta, groups = _setup("laplace2d")
    twice = [groups[0], pinnbench.ResidualGroup(groups[0].name, groups[1].points, groups[1].residual)]
    with pytest.raises(pinnbench.PinnbenchError, match="two residual groups are named 'interior'"):
        Objective(model, twice)


def test_the_sigmoid_form_of_tanh_and_its_derivatives_is_accurate_to_a_few_ulps_of_one():
    # _Tanh computes tanh(z) = 1 - 2 sigmoid(-2z); its absolute errors against torch.tanh stay ~1e-16
    from pinnbench.core.derivatives import _Tanh
    z = torch.cat([torch.linspace(-40, 40, 20001, dtype=torch.float64), torch.tensor([0.0, 1e-300, -1e-9])])
    act = _Tanh.at(-2.0 * z, second=True)
    a = torch.tanh(z)
    s1 = 1.0 - a * a
    assert float((act.a - a).abs().max()) <= 4e-16
    assert float((act.s1 - s1).abs().max()) <= 8e-16
    assert float((act.s2 - (-2.0 * a * s1)).abs().max()) <= 1.6e-15
    assert float(act.a[-3]) == 0.0 and bool((act.a.abs() <= 1.0).all())
