"""Micro-benchmarks of the hot-path kernels (pytest-benchmark), each checked against an independent result.

By default they run once as cheap smoke tests (``--benchmark-disable`` in pyproject's addopts). To time them:
``python -m pytest tests/test_perf_kernels.py --benchmark-enable`` (add ``--benchmark-autosave``, later
``--benchmark-compare --benchmark-compare-fail=median:20%`` to fail on a regression against a saved run).
"""
import numpy as np
import pytest
import scipy.linalg
import torch

import pinnbench
import pinnbench.objective
from pinnbench.derivatives import generic_fields, generic_jacobian, residual_jacobian, taylor_forward
from pinnbench.linalg import SVD_ROUTES, implicit_svd, rank_above, relative_cutoff, thin_svd, truncated_solve
from pinnbench.linesearch import grid_line_search, step_grid
from pinnbench.objective import Objective
from pinnbench.probe import set_openblas_threads

SEED = 6865


@pytest.fixture(autouse=True)
def one_thread():
    """Pinned threads (torch's and scipy's BLAS), so that enabled benchmarks are comparable across runs."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    set_openblas_threads(1)
    yield
    torch.set_num_threads(previous)
    set_openblas_threads(previous)


_INSTANCES: dict[str, pinnbench.ProblemInstance] = {}


def paper(name: str) -> pinnbench.ProblemInstance:
    """The problem at its paper size (built once per test session)."""
    if name not in _INSTANCES:
        _INSTANCES[name] = pinnbench.build(name, SEED, "paper")
    return _INSTANCES[name]


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max())


def anagram_direction(objective, theta):
    jac, r = objective.jacobian(theta)
    svd = thin_svd(jac)
    return truncated_solve(svd, r, rank_above(svd, relative_cutoff(svd, objective.n_params)))


# ------------------------------------------------------------------------------------------ Jacobian
@pytest.mark.parametrize("path", ["taylor", "generic"])
@pytest.mark.parametrize("name", ["laplace2d", "heat", "nonlinear_poisson"])
def test_jacobian_paths_agree(benchmark, name, path):
    """Each derivative path's (J, r) at paper size equals the other path's (one- and two-hidden-layer nets)."""
    inst = paper(name)
    other = "generic" if path == "taylor" else "taylor"
    mine = Objective(inst.model, inst.point_sets.groups, derivatives=path)
    reference = Objective(inst.model, inst.point_sets.groups, derivatives=other)
    jac, r = benchmark(mine.jacobian, inst.theta0)
    ref_jac, ref_r = reference.jacobian(inst.theta0)
    assert jac.shape == (mine.n_residuals, mine.n_params)
    assert rel(jac, ref_jac) < 1e-12 and rel(r, ref_r) < 1e-12


def _nonlinear(x, f):
    return f.grad[:, 0] - 1e-3 * f.lap - 5 * (f.u - f.u ** 3) + torch.sin(x[:, -1])


def _value_only(x, f):
    return f.u ** 2 - x[:, 0]


@pytest.mark.parametrize("layers, lap_dims", [
    ((3, 6, 5, 4, 1), (0, 2)),      # three hidden layers, Laplacian over non-consecutive inputs
    ((2, 8, 8, 1), (1,)),           # two hidden layers, a partial Laplacian (heat-type)
    ((3, 7, 1), (2, 0)),            # one hidden layer, unordered dims
    ((2, 5, 4, 1), None),           # value-only groups (boundary conditions)
    ((3, 1), (0, 1, 2)),            # no hidden layer: an affine model
])
def test_fast_path_on_other_architectures(layers, lap_dims):
    """Fields, batched fields, J and the autograd gradient of the fast path against torch.func."""
    gen = torch.Generator().manual_seed(1)
    model = pinnbench.MLP(layers)
    theta = model.init(gen, std=0.7)
    x = torch.rand(17, layers[0], generator=gen, dtype=torch.float64)
    residual = _value_only if lap_dims is None else _nonlinear
    for fast, ref in zip(taylor_forward(model, theta, x, lap_dims), generic_fields(model, theta, x, lap_dims)):
        if ref is not None:
            assert float((fast - ref).abs().max()) < 1e-13 * max(1.0, float(ref.abs().max()))
    batch = torch.stack([theta, 0.5 * theta, -theta])
    batched = taylor_forward(model, batch, x, lap_dims)
    for i in range(batch.shape[0]):
        for a, b in zip(batched, taylor_forward(model, batch[i], x, lap_dims)):
            assert (a is None) == (b is None)
            assert a is None or float((a[i] - b).abs().max()) < 1e-14 * max(1.0, float(b.abs().max()))
    jac, r = residual_jacobian(model, theta, x, lap_dims, residual)
    ref_jac, ref_r = generic_jacobian(model, theta, x, lap_dims, residual)
    assert rel(jac, ref_jac) < 1e-13 and rel(r, ref_r) < 1e-13
    row_major = torch.empty(x.shape[0], model.n_params, dtype=torch.float64)
    assert torch.equal(residual_jacobian(model, theta, x, lap_dims, residual, out=row_major)[0], jac)
    th = theta.clone().requires_grad_(True)
    loss = residual(x, taylor_forward(model, th, x, lap_dims)).square().sum()
    (grad,) = torch.autograd.grad(loss, th)
    assert rel(grad, 2 * jac.T @ r) < 1e-12


# ------------------------------------------------------------------------------------------ SVD
@pytest.mark.parametrize("route", list(SVD_ROUTES))
@pytest.mark.parametrize("name", ["laplace2d", "heat"])
def test_svd_route_matches_lapack_gesdd(benchmark, name, route):
    """Every route's singular values equal LAPACK gesdd's (scipy) to 1e-14·s_max, down to the smallest ones
    (the spectra span ~18 decades); factors orthonormal and reconstructing J; same rank at the paper cutoff."""
    inst = paper(name)
    jac, r = inst.objective.jacobian(inst.theta0)
    svd = benchmark(thin_svd, jac, route)
    ref = torch.from_numpy(scipy.linalg.svd(np.asarray(jac), compute_uv=False, lapack_driver="gesdd"))
    s_max = float(ref[0])
    assert float(ref[-1]) < 1e-12 * s_max  # the test covers tiny singular values
    assert float((svd.S - ref).abs().max()) < 1e-14 * s_max
    assert bool((svd.S[:-1] >= svd.S[1:]).all())
    k = svd.S.numel()
    assert float((svd.U.mT @ svd.U - torch.eye(k, dtype=jac.dtype)).abs().max()) < 1e-13
    assert float((svd.V.mT @ svd.V - torch.eye(k, dtype=jac.dtype)).abs().max()) < 1e-13
    assert float((svd.U * svd.S @ svd.V.mT - jac).abs().max()) < 1e-13 * s_max
    cutoff = inst.problem.optimizer_defaults["anagram"]["cutoff"]
    assert rank_above(svd, cutoff) == int((ref >= cutoff).sum())


def test_svd_of_a_wide_jacobian_is_the_transposed_one():
    inst = paper("laplace2d")
    jac, _ = inst.objective.jacobian(inst.theta0)
    tall, wide = thin_svd(jac), thin_svd(jac.mT)
    assert wide.U.shape == (jac.shape[1], jac.shape[1]) and wide.V.shape == jac.shape
    assert torch.equal(wide.S, tall.S)
    assert float((wide.U * wide.S @ wide.V.mT - jac.mT).abs().max()) < 1e-13 * float(tall.S[0])


@pytest.mark.parametrize("shape", ["tall", "wide", "near-square"])
def test_implicit_svd_equals_the_explicit_one(benchmark, shape):
    """Q kept implicit (tall, wide) or a direct SVD (near-square): same S, same coefficients Uᵀr and
    truncated directions as thin_svd, and U, V on request."""
    inst = paper("heat")
    jac, r = inst.objective.jacobian(inst.theta0)  # 871 x 257
    if shape == "wide":
        jac, r = jac.mT[:120], torch.randn(120, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    elif shape == "near-square":
        jac, r = jac[:300], r[:300]
    svd = benchmark(implicit_svd, jac)
    ref = thin_svd(jac)
    s_max = float(ref.S[0])
    assert float((svd.S - ref.S).abs().max()) < 1e-14 * s_max
    assert float((svd.U * svd.S @ svd.V.mT - jac).abs().max()) < 1e-13 * s_max
    k = svd.S.numel()
    for factor in (svd.U, svd.V):
        assert float((factor.mT @ factor - torch.eye(k, dtype=jac.dtype)).abs().max()) < 1e-13
    assert float((svd.coefficients(r) - svd.U.mT @ r).abs().max()) < 1e-13 * float(r.abs().max())
    for cutoff in (1e-3 * s_max, 1e-6 * s_max, relative_cutoff(ref, jac.shape[1])):
        rank = rank_above(ref, cutoff)
        assert rank_above(svd, cutoff) == rank
        assert rel(truncated_solve(svd, r, rank), truncated_solve(ref, r, rank)) < 1e-8


def test_pseudo_inverse_direction_matches_pinv(benchmark):
    inst = paper("heat")
    obj = inst.objective
    jac, r = obj.jacobian(inst.theta0)

    def direction():
        svd = thin_svd(jac)
        return truncated_solve(svd, r, rank_above(svd, 1e-5))
    d = benchmark(direction)
    assert rel(d, torch.linalg.pinv(jac, atol=1e-5, rtol=0.0) @ r) < 1e-8


# ------------------------------------------------------------------------------------------ line search
def test_residuals_match_generic_fields(benchmark):
    inst = paper("heat")
    obj = inst.objective
    r = benchmark(obj.residuals, inst.theta0)
    parts = [g.residual(g.points, generic_fields(inst.model, inst.theta0, g.points, g.lap_dims)) for g in obj.groups]
    assert rel(r, torch.cat(parts)) < 1e-12


@pytest.mark.parametrize("name", ["laplace2d", "heat", "nonlinear_poisson"])
def test_line_search_equals_argmin_of_single_evaluations(benchmark, name):
    inst = paper(name)
    obj, theta = inst.objective, inst.theta0
    direction = anagram_direction(obj, theta)
    eta, theta_next, loss = benchmark(grid_line_search, obj, theta, direction)
    singles = torch.stack([obj.loss(theta - e * direction) for e in step_grid()])
    best = int(torch.argmin(singles))
    assert eta == 2.0 ** -best
    assert float(loss) == pytest.approx(float(singles[best]), rel=1e-12)
    assert torch.equal(theta_next, theta - eta * direction)


@pytest.mark.parametrize("chunking", ["one at a time", "cache-sized chunks", "all at once"])
def test_batched_losses_equal_single_losses(monkeypatch, chunking):
    inst = paper("laplace2d")
    budget = {"one at a time": 1, "cache-sized chunks": 256 * 2**20, "all at once": 2**40}[chunking]
    if chunking == "all at once":
        monkeypatch.setattr(pinnbench.objective, "CPU_CHUNK_BYTES", 2**40)
    obj = Objective(inst.model, inst.point_sets.groups, batch_memory=budget)
    thetas = inst.theta0 + 0.1 * torch.randn(31, obj.n_params, generator=torch.Generator().manual_seed(0),
                                             dtype=torch.float64)
    singles = torch.stack([obj.loss(t) for t in thetas])
    assert rel(obj.losses(thetas), singles) < 1e-13


# ------------------------------------------------------------------------------------------ full step
def test_anagram_step(benchmark):
    """One full ANaGRAM step at paper size: θ - η* pinv(J, cutoff) r, and the loss goes down."""
    inst = paper("laplace2d")
    obj, theta = inst.objective, inst.theta0
    cutoff = inst.problem.optimizer_defaults["anagram"]["cutoff"]
    opt = pinnbench.get_optimizer("anagram", cutoff=cutoff)
    opt.reset(obj, theta)
    theta_next = benchmark(opt.step, obj, theta)
    jac, r = obj.jacobian(theta)
    expected = theta - opt.info["eta"] * (torch.linalg.pinv(jac, atol=cutoff, rtol=0.0) @ r)
    assert rel(theta_next, expected) < 1e-8
    assert float(obj.loss(theta_next)) < float(obj.loss(theta))
