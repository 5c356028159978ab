"""The compiled kernels (pinnbench/core/one_hidden.c, deep_line.c) against the torch paths they replace, their
build cache and fallbacks; and the shared Taylor passes of the objective against one pass per group."""
import shutil

import pytest
import torch

import pinnbench
from pinnbench.core import native
from pinnbench.core.derivatives import _forward, _one_hidden_fields, _sigmoid_arguments, taylor_forward_along
from pinnbench.objective import Objective

needs_compiler = pytest.mark.skipif(shutil.which("cc") is None and shutil.which("gcc") is None,
                                    reason="no C compiler: the kernel cannot be built here")


def _torch_fields(model, theta, direction, etas, x, lap_dims):
    """The same fields through the torch ops of the lean one-hidden-layer pass."""
    layers = model.unflatten(theta.unsqueeze(0) - etas.unsqueeze(1) * direction.unsqueeze(0))
    (w0, b0), (dw0, db0) = model.unflatten(theta)[0], model.unflatten(direction)[0]
    y = torch.addcmul(_sigmoid_arguments(w0, b0, x.mT), etas.view(-1, 1, 1), _sigmoid_arguments(dw0, db0, x.mT),
                      value=-1.0)
    return _one_hidden_fields(y, layers[0][0], *layers[1], list(lap_dims))


@needs_compiler
@pytest.mark.parametrize("dim, lap_dims", [(2, (0, 1)), (2, (1,)), (5, (0, 1, 2, 3, 4)), (3, (0, 2))])
def test_the_kernel_gives_the_torch_fields_to_rounding(dim, lap_dims):
    gen = torch.Generator().manual_seed(dim)
    model = pinnbench.MLP((dim, 24, 1))
    theta = model.init(gen, std=1.0)
    direction = 2.0 * torch.randn(model.n_params, generator=gen, dtype=torch.float64)
    etas = torch.cat([torch.pow(2.0, -torch.arange(31, dtype=torch.float64)), torch.tensor([40.0, -3.0])])
    x = torch.rand(203, dim, generator=gen, dtype=torch.float64)  # not a multiple of the kernel's block
    with torch.no_grad():
        assert native.applies(x, dim), native.status()
        fast = taylor_forward_along(model, theta, direction, etas, x, lap_dims)
        ref = _torch_fields(model, theta, direction, etas, x, lap_dims)
    for a, b in zip(fast, ref):
        scale = b.abs().amax(dim=tuple(range(1, b.dim())), keepdim=True).clamp_min(1.0)
        assert float(((a - b).abs() / scale).max()) < 1e-13


@needs_compiler
@pytest.mark.parametrize("layers, lap_dims", [((2, 20, 20, 20, 1), (1,)), ((2, 7, 5, 1), (0, 1)),
                                              ((5, 13, 9, 6, 1), (0, 1, 2, 3, 4)), ((3, 8, 8, 1), (0, 2))])
def test_the_deep_kernel_gives_the_torch_fields_to_rounding_on_any_thread_count(layers, lap_dims):
    gen = torch.Generator().manual_seed(len(layers) + layers[1])
    model = pinnbench.MLP(layers)
    theta = model.init(gen, std=0.8)  # some neurons saturate
    direction = 2.0 * torch.randn(model.n_params, generator=gen, dtype=torch.float64)
    etas = torch.cat([torch.pow(2.0, -torch.arange(31, dtype=torch.float64)), torch.tensor([40.0, -3.0])])
    x = torch.rand(203, layers[0], generator=gen, dtype=torch.float64)  # not a multiple of the kernel's tile
    candidates = theta.unsqueeze(0) - etas.unsqueeze(1) * direction.unsqueeze(0)
    threads = torch.get_num_threads()
    try:
        with torch.no_grad():
            assert native.applies(x, layers[0]), native.status()
            ref = _forward(model, candidates, x, lap_dims, None)  # the torch pass
            by_threads = []
            for n in (1, 2, 3):
                torch.set_num_threads(n)
                by_threads.append(taylor_forward_along(model, theta, direction, etas, x, lap_dims))
    finally:
        torch.set_num_threads(threads)
    # at η = 40 most neurons saturate and the torch pass loses digits to s1 = 1 - a² (against autograd through
    # torch.tanh: the kernel's 4 q (1 - q) 1.4e-10, the torch pass 1.3e-9); elsewhere both are exact to rounding
    tolerance = torch.where(etas.abs() > 10.0, 1e-8, 1e-12)
    for a, b in zip(by_threads[0], ref):
        scale = b.abs().amax(dim=tuple(range(1, b.dim())), keepdim=True).clamp_min(1.0)
        assert bool(((a - b).abs() / scale).amax(dim=tuple(range(1, b.dim()))).le(tolerance).all())
    for other in by_threads[1:]:  # each (candidate, tile) is computed by one thread in a fixed order
        assert all(torch.equal(a, b) for a, b in zip(by_threads[0], other))


@needs_compiler
def test_the_kernel_sigmoid_is_accurate_and_saturates_and_propagates_nan():
    # one neuron with u = q, grad = g, lap = h: the kernel's q = sigmoid(y) against torch's at every y
    y = torch.cat([torch.linspace(-60, 60, 40001, dtype=torch.float64),
                   torch.tensor([-800.0, -709.5, 709.5, 800.0, 0.0, float("nan")], dtype=torch.float64)])
    one = torch.ones(1, 1, dtype=torch.float64)
    u, grad, lap = native.one_hidden_line_fields(y.unsqueeze(0), torch.zeros(1, y.numel(), dtype=torch.float64),
                                                 torch.zeros(1, dtype=torch.float64), one, torch.zeros(1,
                                                 dtype=torch.float64), one.unsqueeze(0), one)
    q = torch.sigmoid(y)
    finite = ~torch.isnan(y)
    assert float((u[0] - q)[finite].abs().max()) <= 2.3e-16
    assert float((grad[0, 0] - q * (1 - q))[finite].abs().max()) <= 2.3e-16
    assert float((lap[0] - q * (1 - q) * (1 - 2 * q))[finite].abs().max()) <= 4.5e-16
    assert u[0, -6:-2].tolist() == pytest.approx([0.0, 0.0, 1.0, 1.0], abs=1e-300)
    assert torch.isnan(u[0, -1]) and torch.isnan(grad[0, 0, -1]) and torch.isnan(lap[0, -1])


@needs_compiler
def test_the_build_is_cached_by_source_and_rebuilt_when_it_changes(tmp_path, monkeypatch):
    monkeypatch.setenv("PINNBENCH_CACHE", str(tmp_path))
    native._load.cache_clear()
    try:
        assert native.status().startswith("compiled")
        first = sorted(p.name for p in tmp_path.iterdir())
        changed = tmp_path / "src" / "one_hidden.c"
        changed.parent.mkdir()
        changed.write_text(native.SOURCES[0].read_text() + "\n/* changed */\n")
        monkeypatch.setattr(native, "SOURCES", (changed, *native.SOURCES[1:]))
        native._load.cache_clear()
        assert native.status().startswith("compiled")
        second = sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".so")
        assert len(first) == 1 and len(second) == 2 and first[0] in second
    finally:
        native._load.cache_clear()


def test_without_a_compiler_or_when_turned_off_the_torch_path_serves(monkeypatch):
    x = torch.rand(10, 2, dtype=torch.float64)
    try:
        monkeypatch.setattr(native.shutil, "which", lambda name: None)
        native._load.cache_clear()
        with torch.no_grad():
            assert not native.applies(x, 2)
        assert native.status() == "unavailable: no C compiler (cc, gcc) on PATH"
        monkeypatch.undo()
        monkeypatch.setenv("PINNBENCH_NATIVE", "0")
        native._load.cache_clear()
        assert native.status().startswith("off")
        model = pinnbench.MLP((2, 8, 1))
        theta = model.init(torch.Generator().manual_seed(0))
        with torch.no_grad():
            fields = taylor_forward_along(model, theta, theta, torch.tensor([0.5], dtype=torch.float64), x, (0, 1))
        assert fields.lap.shape == (1, 10)
    finally:
        native._load.cache_clear()


def _three_groups():
    """Groups whose lap_dims differ, with the u-only group between them: passes regroup the rows."""
    gen = torch.Generator().manual_seed(5)
    pts = [torch.rand(k, 2, generator=gen, dtype=torch.float64) for k in (30, 12, 20)]
    return [pinnbench.ResidualGroup("heat_like", pts[0], lambda x, f: f.grad[..., 0] - f.lap, (1,)),
            pinnbench.ResidualGroup("boundary", pts[1], lambda x, f: f.u - x[:, 0]),
            pinnbench.ResidualGroup("laplace_like", pts[2], lambda x, f: f.lap + f.u ** 3, (0, 1))]


@pytest.mark.parametrize("layers", [(2, 16, 1), (2, 8, 8, 1)])
def test_shared_passes_keep_every_groups_rows_and_values(layers):
    groups = _three_groups()
    model = pinnbench.MLP(layers)
    theta = model.init(torch.Generator().manual_seed(2), std=0.7)
    shared = Objective(model, groups)
    assert len(shared._passes) == 2  # boundary rides along with the first group
    generic = Objective(model, groups, derivatives="generic")  # one group at a time, torch.func
    (j1, r1), (j2, r2) = shared.jacobian(theta), generic.jacobian(theta)
    assert float((j1 - j2).abs().max() / j2.abs().max()) < 1e-12
    assert float((r1 - r2).abs().max() / r2.abs().max()) < 1e-12
    direction = torch.randn(model.n_params, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    etas = torch.tensor([1.0, 0.25, 1e-3], dtype=torch.float64)
    along = shared.losses_along(theta, direction, etas)
    single = torch.stack([generic.loss(theta - eta * direction) for eta in etas])
    assert float(((along - single).abs() / single).max()) < 1e-12


def test_a_residual_that_does_not_broadcast_keeps_vmap_and_its_values():
    # f.grad[:, 0] indexes the point axis as dim 0: on a batch it would pick the wrong axis
    gen = torch.Generator().manual_seed(7)
    x = torch.rand(25, 2, generator=gen, dtype=torch.float64)
    groups = [pinnbench.ResidualGroup("interior", x, lambda x, f: f.grad[:, 0] - 0.5 * f.lap, (1,))]
    model = pinnbench.MLP((2, 6, 6, 1))
    theta = model.init(gen)
    objective = Objective(model, groups)
    direction = torch.randn(model.n_params, generator=gen, dtype=torch.float64)
    etas = torch.tensor([0.5, 0.1, 0.01], dtype=torch.float64)
    for _ in range(2):  # the second call goes the way the first one chose
        along = objective.losses_along(theta, direction, etas)
        single = torch.stack([objective.loss(theta - eta * direction) for eta in etas])
        assert float(((along - single).abs() / single).max()) < 1e-12
    assert objective._broadcasts == {"interior": False}


@needs_compiler
@pytest.mark.parametrize("dim, lap_dims", [(2, (1,)), (3, (0, 2)), (5, (0, 1, 2, 3, 4))])
def test_the_jacobian_kernel_agrees_with_autodiff_into_any_layout(dim, lap_dims):
    from pinnbench.core.derivatives import generic_jacobian, residual_jacobian
    gen = torch.Generator().manual_seed(dim)
    model = pinnbench.MLP((dim, 12, 1))
    theta = model.init(gen, std=1.0)
    x = torch.rand(70, dim, generator=gen, dtype=torch.float64)

    def residual(x, f):  # nonlinear in every field: all cotangents vary per point
        return f.grad[..., 0] * f.u - 0.3 * f.lap + torch.sin(f.u) * x[:, -1]
    ref, r_ref = generic_jacobian(model, theta, x, lap_dims, residual)
    with torch.no_grad():
        assert native.applies(x, dim), native.status()
    fast, r = residual_jacobian(model, theta, x, lap_dims, residual)
    into = torch.empty(model.n_params, 100, dtype=torch.float64).mT[10:80]  # rows of a bigger column-major J
    residual_jacobian(model, theta, x, lap_dims, residual, out=into)
    for j in (fast, into):
        assert float((j - ref).abs().max() / ref.abs().max()) < 1e-13
    assert float((r - r_ref).abs().max()) < 1e-13


def test_the_step_breakdown_script_times_the_parts_of_a_real_run():
    import importlib.util
    from pathlib import Path
    path = Path(__file__).parents[1] / "scripts" / "step_breakdown.py"
    spec = importlib.util.spec_from_file_location("step_breakdown", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    from pinnbench.core.objective import Objective
    jacobian, geqrf = Objective.jacobian, torch.geqrf
    run_step, parts = script.breakdown("laplace2d", "anagram", steps=9)
    assert Objective.jacobian is jacobian and torch.geqrf is geqrf  # the timers are removed afterwards
    assert {"Jacobian", "SVD", "spectrum", "line search", "  losses along d"} <= set(parts)
    assert all(v > 0 for v in parts.values())
    # the parts are inside the step: their sum cannot exceed it by more than timer noise
    assert parts["Jacobian"] + parts["SVD"] + parts["line search"] < 1.5 * run_step
    assert parts["  losses along d"] <= parts["line search"]
