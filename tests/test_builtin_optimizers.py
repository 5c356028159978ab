"""ANaGRAM and Adam checked against independent computations, and ANaGRAM's convergence on laplace2d."""
import pytest
import torch

import pinnbench
from pinnbench.linesearch import grid_line_search, step_grid


def _instance(name="laplace2d", seed=6865):
    return pinnbench.build(name, seed, "paper")


@pytest.mark.parametrize("cutoff", [1e-3, 1e-6, None])
def test_anagram_direction_equals_pinv_with_same_cutoff(cutoff):
    inst = _instance("heat")
    obj, theta = inst.objective, inst.theta0
    opt = pinnbench.get_optimizer("anagram", cutoff=cutoff)
    opt.reset(obj, theta)
    theta_next = opt.step(obj, theta)
    jac, r = obj.jacobian(theta)
    s_max = torch.linalg.matrix_norm(jac, ord=2)
    atol = cutoff if cutoff is not None else (torch.finfo(torch.float64).eps * obj.n_params) ** 0.5 * s_max
    # pinv keeps s > atol, ANaGRAM keeps s >= cutoff: equal unless a singular value sits exactly on it
    direction = torch.linalg.pinv(jac, atol=float(atol), rtol=0.0) @ r
    expected = theta - opt.info["eta"] * direction
    assert float((theta_next - expected).norm() / (theta - theta_next).norm()) < 1e-8
    # and via lstsq on the projected system
    u, s, vh = torch.linalg.svd(jac, full_matrices=False)
    keep = s >= atol
    via_lstsq = vh[keep].T @ torch.linalg.lstsq(torch.diag(s[keep]), u[:, keep].T @ r).solution
    assert float((direction - via_lstsq).norm() / direction.norm()) < 1e-8


def test_grid_line_search_takes_the_argmin_unconditionally():
    inst = _instance()
    obj, theta = inst.objective, inst.theta0
    direction = -torch.ones_like(theta)  # a poor direction: the loss may go up, the argmin is still taken
    eta, theta_next, loss = grid_line_search(obj, theta, direction)
    losses = [float(obj.loss(theta - e * direction)) for e in step_grid()]
    best = min(range(31), key=losses.__getitem__)
    assert eta == 2.0 ** -best and float(loss) == pytest.approx(losses[best], rel=1e-12)


def test_anagram_converges_on_laplace2d():
    inst = _instance()
    obj, theta = inst.objective, inst.theta0
    opt = pinnbench.get_optimizer("anagram", cutoff=1e-6)
    opt.reset(obj, theta)
    for _ in range(120):
        theta = opt.step(obj, theta)
    assert inst.evaluate(theta)["l2_abs"] < 0.1 < inst.evaluate(inst.theta0)["l2_abs"]


def test_adam_matches_torch_optim_adam():
    inst = _instance()
    obj, theta = inst.objective, inst.theta0
    ours = pinnbench.get_optimizer("adam", lr=1e-2)
    ours.reset(obj, theta)
    param = torch.nn.Parameter(theta.clone())
    reference = torch.optim.Adam([param], lr=1e-2, betas=(0.9, 0.999), eps=1e-8)
    for _ in range(30):
        theta = ours.step(obj, theta)
        reference.zero_grad()
        obj.loss_from_residuals(obj._residuals(param)).backward()
        reference.step()
    assert float((theta - param.detach()).abs().max()) < 1e-12


def test_adam_learning_rate_schedule():
    adam = pinnbench.get_optimizer("adam", milestones=(2, 4))
    inst = _instance()
    adam.reset(inst.objective, inst.theta0)
    theta, lrs = inst.theta0, []
    for _ in range(5):
        theta = adam.step(inst.objective, theta)
        lrs.append(adam.info["lr"])
    assert lrs == pytest.approx([1e-3, 1e-3, 1e-4, 1e-4, 1e-5])
