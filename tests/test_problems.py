"""Exact solutions solve their PDEs at the collocation points; point sets follow PROTOCOLS.md."""
import pytest
import torch

import pinnbench
from pinnbench.derivatives import Fields

from conftest import ANALYTIC_PROBLEMS


def exact_fields(problem, x: torch.Tensor, lap_dims):
    """u*, ∇u* and the partial Laplacian of the exact solution by autograd (independent of the model code)."""
    def u(p):
        return problem.exact(p.unsqueeze(0))[0]
    if lap_dims is None:
        return Fields(problem.exact(x), None, None)
    grad = torch.func.vmap(torch.func.grad(u))(x)
    hess = torch.func.vmap(torch.func.hessian(u))(x)
    return Fields(problem.exact(x), grad, sum(hess[:, j, j] for j in lap_dims))


@pytest.mark.parametrize("name", ANALYTIC_PROBLEMS)
@pytest.mark.parametrize("preset", ["paper", "quick"])
def test_exact_solution_makes_residuals_vanish(name, preset):
    problem = pinnbench.get_problem(name)
    sets = problem.point_sets(preset, torch.Generator().manual_seed(0))
    for group in sets.groups:
        r = group.residual(group.points, exact_fields(problem, group.points, group.lap_dims))
        assert float(r.abs().max()) < 1e-10, group.name
        # and a perturbed solution does not: the check can fail
        f = exact_fields(problem, group.points, group.lap_dims)
        bad = f._replace(u=f.u + 1e-3) if group.lap_dims is None else f._replace(lap=f.lap + 1e-3)
        assert float(group.residual(group.points, bad).abs().min()) > 1e-4, group.name


def _no_duplicates(x: torch.Tensor) -> bool:
    return torch.unique(x, dim=0).shape[0] == x.shape[0]


def test_laplace2d_paper_points():
    sets = pinnbench.get_problem("laplace2d").point_sets("paper", torch.Generator().manual_seed(0))
    interior, boundary = (g.points for g in sets.groups)
    assert interior.shape == (784, 2) and boundary.shape == (116, 2)
    assert float(interior.min()) == pytest.approx(1 / 29) and float(interior.max()) == pytest.approx(28 / 29)
    on_edge = (boundary == 0) | (boundary == 1)
    assert bool(on_edge.any(dim=1).all()) and _no_duplicates(boundary)
    assert sets.evaluation.shape == (198 * 198, 2)


def test_heat_paper_points():
    sets = pinnbench.get_problem("heat").point_sets("paper", torch.Generator().manual_seed(0))
    sizes = {g.name: g.points.shape[0] for g in sets.groups}
    assert sizes == {"interior": 784, "initial": 29, "boundary": 58}
    everything = torch.cat([g.points for g in sets.groups])
    assert _no_duplicates(everything)
    assert sets.evaluation.shape == (298 * 298, 2)


def test_laplace5d_points_drawn_from_seed():
    problem = pinnbench.get_problem("laplace5d")
    a = problem.point_sets("paper", torch.Generator().manual_seed(1))
    b = problem.point_sets("paper", torch.Generator().manual_seed(1))
    c = problem.point_sets("paper", torch.Generator().manual_seed(2))
    assert [g.points.shape[0] for g in a.groups] == [4000, 500]
    assert torch.equal(a.groups[0].points, b.groups[0].points)
    assert not torch.equal(a.groups[0].points, c.groups[0].points)
    faces = a.groups[1].points
    assert bool(((faces == 0) | (faces == 1)).any(dim=1).all())
    assert torch.equal(a.evaluation, c.evaluation) and a.evaluation.shape == (40000, 5)


def test_model_init_is_n01_and_layout():
    model = pinnbench.MLP((2, 64, 64, 1))
    theta = model.init(torch.Generator().manual_seed(0))
    assert theta.dtype == torch.float64 and theta.shape == (model.n_params,) == (4417,)
    assert abs(float(theta.mean())) < 0.01 and float(theta.std()) == pytest.approx(0.1, rel=0.05)
    x = torch.rand(7, 2, dtype=torch.float64)
    (w1, b1), (w2, b2), (w3, b3) = model.unflatten(theta)
    manual = (torch.tanh(torch.tanh(x @ w1.T + b1) @ w2.T + b2) @ w3.T + b3).squeeze(-1)
    assert torch.equal(model.forward(theta, x), manual)
