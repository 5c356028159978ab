"""Derivatives of the model at collocation points: the fast path and the generic path.

The fast path propagates, through every layer at once, the value, the d first derivatives and a partial
Laplacian ``sum_{k in lap_dims} d²u/dx_k²`` (forward Taylor mode), with one matmul per layer for all points.
The residual Jacobian is the hand-derived reverse of that pass, written per layer straight into J.
Cost O(N·P·(d+2)), never O(N²·P).

What keeps the fast path close to the memory and BLAS limits:
- the first layer's input components are known in closed form (x, unit vectors, zero Laplacian), so after it
  the gradient components are ``s1 ⊙ W0[:, j]`` and the Laplacian ``s2 ⊙ Σ_j W0[:, j]²``: only x goes
  through the first matmul;
- with one hidden layer (the usual PINN net) those components are never materialised per point: the linear
  output layer folds them into three small matmuls of tanh, tanh', tanh'' (forward and reverse);
- components are laid out feature-major with the points last, (..., n, K, M) with K = 1 + d + 1 (value,
  gradient, Laplacian): a layer is one matmul ``W @ h`` over all components and points, every elementwise
  pass runs along the M points, and the per-point parameter gradients of a layer are K rank-1 passes written
  straight into Jᵀ. J is therefore produced column-major (the transpose of a contiguous (P, M) tensor),
  which is also the layout LAPACK wants for the SVD that follows;
- for one-hidden-layer nets on the CPU in float64, the line search's fields and the Jacobian's reverse run in
  compiled C kernels (native.py, one fused pass per neuron and point), the torch code below being their
  fallback and their reference in the tests.

The generic path computes the same quantities with nested ``torch.func`` autodiff, point by point under
``vmap``. It is slower and exists to check the fast path and to serve operators the fast path cannot express.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, NamedTuple

import torch

from . import native
from .model import MLP


class Fields(NamedTuple):
    """u and its derivatives at M points: u (..., M), grad (..., M, d), lap (..., M) (None if not needed)."""

    u: torch.Tensor
    grad: torch.Tensor | None
    lap: torch.Tensor | None


ResidualFn = Callable[[torch.Tensor, Fields], torch.Tensor]
"""``residual(x, fields) -> r``: a pointwise operator, r[i] depends only on x[i] and fields at point i."""

Index = slice | list[int]


def _lap_index(lap_dims: tuple[int, ...]) -> Index:
    """The gradient components summed in the Laplacian: a slice when they are consecutive (a view, no copy)."""
    dims = list(lap_dims)
    if dims and dims == list(range(dims[0], dims[0] + len(dims))):
        return slice(dims[0], dims[0] + len(dims))
    return dims


_ONE = torch.ones((), dtype=torch.float64)


@dataclass
class _Tanh:
    """tanh and its derivatives at the pre-activation values (s2 only when second derivatives are needed).

    tanh(z) is computed as 1 - 2·sigmoid(-2z): torch's float64 sigmoid is vectorised (exp-based) and ran ~3x
    faster than its float64 tanh on this project's machines (docs/performance.md), and the line search spends
    most of its time here. The absolute error stays within a few units of 1e-16 (tests/test_derivatives.py
    checks it against torch.tanh); activations enter the net linearly, so absolute accuracy is what counts.
    """

    a: torch.Tensor
    s1: torch.Tensor
    s2: torch.Tensor | None

    @classmethod
    def at(cls, y: torch.Tensor, second: bool) -> "_Tanh":
        """At the sigmoid arguments y = -2z of the pre-activations z; y is overwritten (pass a tensor nothing
        else holds)."""
        a = torch.rsub(y.sigmoid_(), 1.0, alpha=2.0)
        s1 = torch.addcmul(_ONE.to(a.dtype), a, a, value=-1.0)
        return cls(a, s1, torch.mul(a, s1).mul_(-2.0) if second else None)

    def third(self) -> torch.Tensor:
        """The third derivative of tanh, s1 (6 a² - 2)."""
        return self.s1 * (6.0 * self.a * self.a - 2.0)


@dataclass
class _Trace:
    """What the reverse pass needs from the forward pass of one θ."""

    acts: list[_Tanh] = field(default_factory=list)  # per hidden layer
    z: list[torch.Tensor | None] = field(default_factory=list)  # per hidden layer (n, K, M); None: first
    h: list[torch.Tensor] = field(default_factory=list)  # components entering layers 1.. (n, K, M)


def _first_layer_sums(w0: torch.Tensor, lap: Index) -> torch.Tensor:
    """c = Σ_{j in lap} W0[:, j]², the first layer's contribution to the Laplacian component (..., n)."""
    w_lap = w0[..., lap]
    return (w_lap * w_lap).sum(-1)


def _components_after_first(act: _Tanh, w0: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """(..., n, K, M): value a, gradient s1 ⊙ W0[:, j], Laplacian s2 ⊙ c after the first hidden layer."""
    grad = act.s1.unsqueeze(-2) * w0.unsqueeze(-1)
    lap = act.s2 * c.unsqueeze(-1)
    return torch.cat([act.a.unsqueeze(-2), grad, lap.unsqueeze(-2)], dim=-2)


def _components_after_hidden(act: _Tanh, z: torch.Tensor, d: int, lap: Index) -> torch.Tensor:
    """(..., n, K, M) after a hidden layer whose pre-activation components are z (..., n, K, M)."""
    z_grad, z_lap = z[..., 1:d + 1, :], z[..., d + 1, :]
    z_sq = z_grad[..., lap, :]
    h_lap = act.s1 * z_lap + act.s2 * (z_sq * z_sq).sum(-2)
    return torch.cat([act.a.unsqueeze(-2), act.s1.unsqueeze(-2) * z_grad, h_lap.unsqueeze(-2)], dim=-2)


def _linear(w: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """W @ h for h (..., n_in, K, M), one matmul over all components and points -> (..., n_out, K, M)."""
    lead, (n_in, k, m) = h.shape[:-3], h.shape[-3:]
    # W is a view into θ (or a batch of θ): a contiguous copy of the small matrix is cheap and BLAS-friendly
    return (w.contiguous() @ h.reshape(*lead, n_in, k * m)).reshape(*lead, w.shape[-2], k, m)


def _sigmoid_arguments(w: torch.Tensor, b: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """y = -2 (W h + b) for h (..., n_in, M): the sigmoid arguments of tanh(W h + b), the -2 folded into W, b."""
    return ((-2.0 * w) @ h).add_((-2.0 * b).unsqueeze(-1))


def _hidden_arguments(z_value: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """y = -2 (z + b) for a hidden layer's value component z (..., n, M), in one pass."""
    return torch.add((-2.0 * b).unsqueeze(-1), z_value, alpha=-2.0)


def _one_hidden_fields(y: torch.Tensor, w0: torch.Tensor, w: torch.Tensor, b: torch.Tensor, lap: Index | None
                       ) -> Fields:
    """Fields of a one-hidden-layer net from the sigmoid arguments y = -2z (..., n, M) of its pre-activations
    z, overwritten: the lean pass of loss evaluations (no trace for a reverse pass).

    With q = sigmoid(-2z): tanh z = 1 - 2q, tanh' = 4g and tanh'' = -8h for g = q(1-q), h = g(1-2q); the
    constants fold into the output layer, so each field is one small matmul of q, g or h and no tanh, tanh'
    or tanh'' array is formed: four elementwise passes per value instead of nine.
    """
    q = torch.sigmoid(y) if y.requires_grad else y.sigmoid_()
    u = ((-2.0 * w) @ q).squeeze(-2) + (b + w.sum(-1))
    if lap is None:
        return Fields(u, None, None)
    g = torch.addcmul(q, q, q, value=-1.0)
    grad = (4.0 * w0 * w.mT).mT @ g  # (..., d, M)
    if q.requires_grad:  # under autograd (loss gradients) sigmoid's backward still needs q
        h = torch.addcmul(g, q, g, value=-2.0)
    else:  # q is no longer needed: h takes its memory
        h = torch.addcmul(g, q, g, value=-2.0, out=q)
    lap_u = ((-8.0 * _first_layer_sums(w0, lap).unsqueeze(-2) * w) @ h).squeeze(-2)
    return Fields(u, grad.mT, lap_u)


def _lean_activation(y: torch.Tensor, value: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """tanh at the sigmoid arguments y = -2z written into ``value``, and tanh' = 1 - tanh² in y's memory."""
    a = torch.add(_ONE.to(y.dtype), y.sigmoid_(), alpha=-2.0, out=value)
    return a, torch.addcmul(_ONE.to(y.dtype), a, a, value=-1.0, out=y)


def _squared_norms(z: torch.Tensor) -> torch.Tensor:
    """Σ_k z_k² over the components axis of z (..., K, M) -> (..., M), one pass per component (a sum over the
    axis zero-fills its output first, a pass of its own where K is 1 or 2)."""
    first = z[..., 0, :]
    total = first * first
    for k in range(1, z.shape[-2]):
        total.addcmul_(z[..., k, :], z[..., k, :])
    return total


def _deep_fields(y: torch.Tensor, layers: list[tuple[torch.Tensor, torch.Tensor]], d: int, lap: Index
                 ) -> Fields:
    """Fields of a net with two or more hidden layers from the first layer's sigmoid arguments y (..., n, M),
    overwritten: the lean pass of loss evaluations (no trace, no autograd).

    Each layer's components are written straight into one (..., n, K, M) buffer with tanh'' = -2 tanh tanh'
    folded into the Laplacian (s1 (z_lap - 2 a Σ z_k²)): about half the elementwise passes of the traced
    forward and no concatenation.
    """
    (w0, _), (w, b) = layers[0], layers[-1]
    lead, (n, m) = y.shape[:-2], y.shape[-2:]
    h = y.new_empty(*lead, n, d + 2, m)
    a, s1 = _lean_activation(y, h[..., 0, :])
    torch.mul(s1.unsqueeze(-2), w0.unsqueeze(-1), out=h[..., 1:d + 1, :])
    torch.mul(a, (-2.0 * _first_layer_sums(w0, lap)).unsqueeze(-1), out=h[..., d + 1, :]).mul_(s1)
    for w_k, b_k in layers[1:-1]:
        z = _linear(w_k, h)
        y_k = _hidden_arguments(z[..., 0, :], b_k)
        z_grad, z_lap = z[..., 1:d + 1, :], z[..., d + 1, :]
        a, s1 = _lean_activation(y_k, z[..., 0, :])  # z's value component is no longer needed
        curvature = torch.addcmul(z_lap, a, _squared_norms(z_grad[..., lap, :]), value=-2.0)
        h = z
        torch.mul(s1, curvature, out=h[..., d + 1, :])
        h[..., 1:d + 1, :].mul_(s1.unsqueeze(-2))
    out = _linear(w, h).squeeze(-3)  # (..., K, M)
    return Fields(out[..., 0, :] + b, out[..., 1:d + 1, :].mT, out[..., d + 1, :])


def _forward(model: MLP, theta: torch.Tensor, x: torch.Tensor, lap_dims: tuple[int, ...] | None,
             trace: _Trace | None, first: torch.Tensor | None = None) -> Fields:
    """The fields at θ (P,) or (B, P); ``first``: the first layer's sigmoid arguments -2(W0 x + b0) if already
    computed."""
    layers = model.unflatten(theta)
    d = x.shape[1]
    lap = None if lap_dims is None else _lap_index(lap_dims)
    w0, b0 = layers[0]
    if len(layers) == 1:  # no hidden layer: u = W x + b is affine
        u = (w0 @ x.mT).squeeze(-2) + b0
        if lap is None:
            return Fields(u, None, None)
        return Fields(u, w0.expand(*u.shape, d), torch.zeros_like(u))
    y_first = _sigmoid_arguments(w0, b0, x.mT) if first is None else first  # (..., n, M)
    if len(layers) == 2 and trace is None:
        return _one_hidden_fields(y_first, w0, *layers[1], lap)
    if trace is None and lap is not None and not y_first.requires_grad:
        return _deep_fields(y_first, layers, d, lap)
    act = _Tanh.at(y_first, second=lap is not None)
    if trace is not None:
        trace.acts.append(act)
        trace.z.append(None)
    w, b = layers[-1]
    if lap is None:
        h = act.a
        for w_k, b_k in layers[1:-1]:
            if trace is not None:
                trace.h.append(h.unsqueeze(-2))
            act = _Tanh.at(_sigmoid_arguments(w_k, b_k, h), second=False)
            if trace is not None:
                trace.acts.append(act)
                trace.z.append(None)
            h = act.a
        if trace is not None:
            trace.h.append(h.unsqueeze(-2))
        return Fields((w @ h).squeeze(-2) + b, None, None)
    c = _first_layer_sums(w0, lap)
    if len(layers) == 2:  # one hidden layer: fold the output layer into the first layer's components
        u = (w @ act.a).squeeze(-2) + b
        grad = (w0 * w.mT).mT @ act.s1  # (..., d, M)
        lap_u = ((c.unsqueeze(-2) * w) @ act.s2).squeeze(-2)
        return Fields(u, grad.mT, lap_u)
    h = _components_after_first(act, w0, c)
    for w_k, b_k in layers[1:-1]:
        z = _linear(w_k, h)
        act = _Tanh.at(_hidden_arguments(z[..., 0, :], b_k), second=True)
        if trace is not None:
            trace.h.append(h)
            trace.acts.append(act)
            trace.z.append(z)
        h = _components_after_hidden(act, z, d, lap)
    if trace is not None:
        trace.h.append(h)
    out = _linear(w, h).squeeze(-3)  # (..., K, M)
    return Fields(out[..., 0, :] + b, out[..., 1:d + 1, :].mT, out[..., d + 1, :])


def taylor_forward(model: MLP, theta: torch.Tensor, x: torch.Tensor, lap_dims: tuple[int, ...] | None
                   ) -> Fields:
    """Value (and, if ``lap_dims`` is not None, gradient and partial Laplacian) of u_θ at x (M, d).

    θ may be a batch (B, P); the fields then carry a leading B dimension. Differentiable by autograd.
    """
    return _forward(model, theta, x, lap_dims, None)


def taylor_forward_along(model: MLP, theta: torch.Tensor, direction: torch.Tensor, etas: torch.Tensor,
                         x: torch.Tensor, lap_dims: tuple[int, ...] | None) -> Fields:
    """The fields of :func:`taylor_forward` at θ - η d for every η of ``etas`` (B,): a line search's batch.

    The first layer's pre-activations are affine in η, W0(η) x + b0(η) = z0 - η dz, so z0 and dz are computed
    once (as sigmoid arguments -2 z0, -2 dz) and each candidate's first layer costs one fused multiply-add
    instead of a matmul and a bias.
    """
    if one_hidden_kernels_serve(model, x, lap_dims):
        return _one_hidden_fields_native(model, theta, direction, etas, x, _lap_index(lap_dims))
    candidates = theta.unsqueeze(0) - etas.unsqueeze(1) * direction.unsqueeze(0)
    if len(model.layers) == 2:  # no hidden layer: u is affine in x, nothing to share
        return _forward(model, candidates, x, lap_dims, None)
    (w0, b0), (dw0, db0) = model.unflatten(theta)[0], model.unflatten(direction)[0]
    xt = x.mT
    y0, dy = _sigmoid_arguments(w0, b0, xt), _sigmoid_arguments(dw0, db0, xt)
    if deep_kernel_serves(model, x, lap_dims):
        u, grad, lap_u = native.deep_line_fields(model.layers, candidates, y0, dy, etas,
                                                 _lap_mask(x.shape[1], _lap_index(lap_dims), theta.dtype))
        return Fields(u, grad.mT, lap_u)
    return _forward(model, candidates, x, lap_dims, None, torch.addcmul(y0, etas.view(-1, 1, 1), dy, value=-1.0))


def line_kernels_serve(model: MLP, x: torch.Tensor, lap_dims: tuple[int, ...] | None) -> bool:
    """Whether a compiled kernel computes this net's line-search fields at points x: one or more hidden layers,
    second derivatives wanted, and what :func:`native.applies` asks (CPU, float64, no autograd)."""
    return len(model.layers) >= 3 and lap_dims is not None and native.applies(x, x.shape[1])


def one_hidden_kernels_serve(model: MLP, x: torch.Tensor, lap_dims: tuple[int, ...] | None) -> bool:
    """Whether the one-hidden-layer kernels compute this net's line-search fields and Jacobian at points x."""
    return len(model.layers) == 3 and line_kernels_serve(model, x, lap_dims)


def deep_kernel_serves(model: MLP, x: torch.Tensor, lap_dims: tuple[int, ...] | None) -> bool:
    """Whether the deep kernel computes this net's line-search fields at points x (two or more hidden layers)."""
    return len(model.layers) >= 4 and line_kernels_serve(model, x, lap_dims)


def _lap_mask(d: int, lap: Index, dtype: torch.dtype) -> torch.Tensor:
    """1 on the Laplacian's coordinates, 0 elsewhere (d,): how the kernels take ``lap``."""
    mask = torch.zeros(d, dtype=dtype)
    mask[lap] = 1.0
    return mask


def _one_hidden_fields_native(model: MLP, theta: torch.Tensor, direction: torch.Tensor, etas: torch.Tensor,
                              x: torch.Tensor, lap: Index) -> Fields:
    """:func:`_one_hidden_fields` of the candidates θ - η d on the compiled kernels (native.py): the
    coefficients of q, g, h per candidate in one call, the fields summed in one fused pass per neuron and point
    instead of nine passes through memory."""
    layers, steps = model.unflatten(theta), model.unflatten(direction)
    xt = x.mT
    coefficients = native.line_coefficients(etas, layers, steps, _lap_mask(x.shape[1], lap, theta.dtype))
    y0, dy = _sigmoid_arguments(*layers[0], xt), _sigmoid_arguments(*steps[0], xt)
    u, grad, lap_u = native.one_hidden_line_fields(y0, dy, etas, *coefficients)
    return Fields(u, grad.mT, lap_u)


def _output_cotangents(x: torch.Tensor, fields: Fields, residual: ResidualFn
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """r and the seed cotangents (K, M) = (dr/du, dr/dgrad_1..d, dr/dlap) per point."""
    leaves = [f.detach().requires_grad_(True) if f is not None else None for f in fields]
    with torch.enable_grad():
        r = residual(x, Fields(*leaves))
        present = [f for f in leaves if f is not None]
        partials = torch.autograd.grad(r.sum(), present, allow_unused=True)
    partials = [torch.zeros_like(f) if p is None else p for f, p in zip(present, partials)]
    if fields.grad is None:
        return r.detach(), partials[0].unsqueeze(0)
    du, dgrad, dlap = partials
    return r.detach(), torch.cat([du.unsqueeze(0), dgrad.mT, dlap.unsqueeze(0)], dim=0)


def _tanh_backward(hbar: torch.Tensor, act: _Tanh, z: torch.Tensor, d: int, lap: Index) -> torch.Tensor:
    """Cotangents (n, K, M) of a hidden layer's pre-activation components from those of its outputs."""
    z_grad, z_lap = z[:, 1:d + 1], z[:, d + 1]
    bar_grad, bar_lap = hbar[:, 1:d + 1], hbar[:, d + 1]
    z_sq = z_grad[:, lap]
    zbar = torch.empty_like(hbar)
    zbar[:, 0] = (hbar[:, 0] * act.s1 + act.s2 * (bar_grad * z_grad).sum(1)
                  + bar_lap * (act.s2 * z_lap + act.third() * (z_sq * z_sq).sum(1)))
    torch.mul(bar_grad, act.s1.unsqueeze(1), out=zbar[:, 1:d + 1])
    zbar[:, 1:d + 1][:, lap] += (2.0 * bar_lap * act.s2).unsqueeze(1) * z_sq
    torch.mul(bar_lap, act.s1, out=zbar[:, d + 1])
    return zbar


def _lap_columns(w0: torch.Tensor, lap: Index) -> torch.Tensor:
    """W0 with the columns outside ``lap`` set to zero (n, d)."""
    out = torch.zeros_like(w0)
    out[:, lap] = w0[:, lap]
    return out


def _write_first_layer(jt: torch.Tensor, model: MLP, xt: torch.Tensor, zbar0: torch.Tensor) -> torch.Tensor:
    """Jᵀ[W0] = zbar0 ⊗ x and Jᵀ[b0] = zbar0 (zbar0: (n, M), xt = xᵀ (d, M) contiguous); returns the W0
    block (n, d, M) for the remaining terms."""
    w_slice, b_slice, n_out, n_in = model.slices[0]
    block = jt[w_slice].view(n_out, n_in, -1)
    torch.mul(zbar0.unsqueeze(1), xt.unsqueeze(0), out=block)
    jt[b_slice] = zbar0
    return block


def _first_layer_backward(jt: torch.Tensor, model: MLP, xt: torch.Tensor, hbar: torch.Tensor, act: _Tanh,
                          w0: torch.Tensor, lap: Index | None) -> None:
    """Jᵀ[W0], Jᵀ[b0] from the cotangents hbar (n, K, M) of the first hidden layer's output components.

    The layer's pre-activation components are W0 x + b0, W0[:, j] (gradient) and 0 (Laplacian), so
    Jᵀ[W0[o, j], m] = zbar0[o, m] x[m, j] + zbar_grad_j[o, m].
    """
    if lap is None:
        _write_first_layer(jt, model, xt, hbar[:, 0] * act.s1)
        return
    d = w0.shape[1]
    bar_grad, bar_lap = hbar[:, 1:d + 1], hbar[:, d + 1]
    zbar0 = (hbar[:, 0] * act.s1 + act.s2 * (bar_grad * w0.unsqueeze(-1)).sum(1)
             + bar_lap * act.third() * _first_layer_sums(w0, lap).unsqueeze(-1))
    block = _write_first_layer(jt, model, xt, zbar0)
    block.addcmul_(bar_grad, act.s1.unsqueeze(1))
    block.addcmul_((2.0 * bar_lap * act.s2).unsqueeze(1), _lap_columns(w0, lap).unsqueeze(-1))


def _reverse_one_hidden(jt: torch.Tensor, model: MLP, theta: torch.Tensor, xt: torch.Tensor,
                        act: _Tanh, ubar: torch.Tensor, lap: Index | None) -> None:
    """Jᵀ of a one-hidden-layer net from the output cotangents ubar (K, M), without per-point components.

    The output layer sees the components a, s1 ⊙ W0[:, j], s2 ⊙ c with c = Σ_{j in lap} W0[:, j]²; with
    t = Σ_j W0[:, j] dr/dgrad_j and e = c ⊗ dr/dlap every cotangent is a handful of (n, M) products.
    """
    (w0, _), (w, _) = model.unflatten(theta)
    w = w[0].unsqueeze(-1)  # (n, 1)
    w_slice, b_slice, *_ = model.slices[1]
    bar_u = ubar[:1]
    jt[b_slice] = bar_u
    grad_w = torch.mul(act.a, bar_u, out=jt[w_slice])
    if lap is None:
        _write_first_layer(jt, model, xt, act.s1 * bar_u * w)
        return
    d = xt.shape[0]
    bar_grad, bar_lap = ubar[1:d + 1], ubar[d + 1:]
    t = w0 @ bar_grad
    e = _first_layer_sums(w0, lap).unsqueeze(-1) * bar_lap
    grad_w.addcmul_(act.s1, t).addcmul_(act.s2, e)
    zbar0 = (act.s1 * bar_u).addcmul_(act.s2, t).addcmul_(act.third(), e).mul_(w)
    block = _write_first_layer(jt, model, xt, zbar0)
    block.addcmul_((w * act.s1).unsqueeze(1), bar_grad.unsqueeze(0))
    block.addcmul_((2.0 * w * bar_lap * act.s2).unsqueeze(1), _lap_columns(w0, lap).unsqueeze(-1))


def _reverse_deep(jt: torch.Tensor, model: MLP, theta: torch.Tensor, xt: torch.Tensor, trace: _Trace,
                  ubar: torch.Tensor, lap: Index | None) -> None:
    """Jᵀ of a net with two or more hidden layers: per layer K rank-1 passes into Jᵀ, then the tanh reverse."""
    params = model.unflatten(theta)
    slices = model.slices
    d, m = xt.shape
    zbar = ubar.unsqueeze(0)  # (1, K, M): cotangents of the output layer's components
    for index in range(len(params) - 1, 0, -1):
        w_slice, b_slice, n_out, n_in = slices[index]
        h_in = trace.h[index - 1]
        block = jt[w_slice].view(n_out, n_in, m)
        torch.mul(zbar[:, 0].unsqueeze(1), h_in[:, 0].unsqueeze(0), out=block)
        for k in range(1, zbar.shape[1]):
            block.addcmul_(zbar[:, k].unsqueeze(1), h_in[:, k].unsqueeze(0))
        jt[b_slice] = zbar[:, 0]
        hbar = _linear(params[index][0].mT, zbar)
        if index > 1:
            act = trace.acts[index - 1]
            if lap is None:
                zbar = hbar * act.s1.unsqueeze(1)
            else:
                zbar = _tanh_backward(hbar, act, trace.z[index - 1], d, lap)
    _first_layer_backward(jt, model, xt, hbar, trace.acts[0], params[0][0], lap)


def _one_hidden_jacobian_native(model: MLP, theta: torch.Tensor, x: torch.Tensor, lap_dims: tuple[int, ...],
                                residual: ResidualFn, out: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`residual_jacobian` of a one-hidden-layer net on the compiled kernels (native.py): the fields from
    the line kernel at η = 0, the cotangents by autograd through the residual, the rows of Jᵀ from the reverse
    kernel (the computation of :func:`_reverse_one_hidden`)."""
    layers = model.unflatten(theta)
    (w0, b0), (w, _) = layers
    mask = _lap_mask(x.shape[1], _lap_index(lap_dims), theta.dtype)
    xt = x.mT.contiguous()
    y0 = _sigmoid_arguments(w0, b0, xt)
    eta0 = torch.zeros(1, dtype=theta.dtype)  # θ itself: the line θ - 0·θ
    u, grad, lap_u = native.one_hidden_line_fields(y0, y0, eta0, *native.line_coefficients(eta0, layers, layers, mask))
    r, ubar = _output_cotangents(x, Fields(u[0], grad[0].mT, lap_u[0]), residual)
    jt = torch.empty(model.n_params, x.shape[0], dtype=theta.dtype) if out is None or not out.mT.is_contiguous() \
        else out.mT
    (w0_rows, b0_rows, *_), (w_rows, b_rows, *_) = model.slices
    native.one_hidden_jacobian(jt, y0, w0, w[0], mask, xt, ubar, w0_rows.start, b0_rows.start, w_rows.start)
    jt[b_rows] = ubar[:1]
    if out is None:
        return jt.mT, r
    if jt.data_ptr() != out.data_ptr():
        out.copy_(jt.mT)
    return out, r


def residual_jacobian(model: MLP, theta: torch.Tensor, x: torch.Tensor, lap_dims: tuple[int, ...] | None,
                      residual: ResidualFn, out: torch.Tensor | None = None
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """(J, r) of a pointwise residual at x (M, d), fast path; J (M, P) is written into ``out`` if given.

    Without ``out``, J is the transpose of a contiguous (P, M) tensor (column-major). Any layout of ``out``
    gives the same values; a column-major one (``out.mT`` contiguous) is the fast one.
    """
    theta = theta.detach()
    with torch.no_grad():
        if one_hidden_kernels_serve(model, x, lap_dims):
            return _one_hidden_jacobian_native(model, theta, x, lap_dims, residual, out)
    trace = _Trace()
    with torch.no_grad():
        fields = _forward(model, theta, x, lap_dims, trace)
    r, ubar = _output_cotangents(x, fields, residual)
    if out is None:
        out = torch.empty(model.n_params, x.shape[0], dtype=theta.dtype, device=theta.device).mT
    lap = None if lap_dims is None else _lap_index(lap_dims)
    xt = x.mT.contiguous()
    with torch.no_grad():
        if len(model.layers) == 2:
            block = _write_first_layer(out.mT, model, xt, ubar[:1])
            if lap is not None:
                block += ubar[1:x.shape[1] + 1].unsqueeze(0)
        elif len(model.layers) == 3:
            _reverse_one_hidden(out.mT, model, theta, xt, trace.acts[0], ubar, lap)
        else:
            _reverse_deep(out.mT, model, theta, xt, trace, ubar, lap)
    return out, r


def generic_fields(model: MLP, theta: torch.Tensor, x: torch.Tensor, lap_dims: tuple[int, ...] | None
                   ) -> Fields:
    """The same fields as :func:`taylor_forward`, by nested torch.func autodiff per point."""
    def point_fields(th: torch.Tensor, xp: torch.Tensor):
        def u_of(y: torch.Tensor) -> torch.Tensor:
            return model.forward(th, y.unsqueeze(0))[0]
        if lap_dims is None:
            return (u_of(xp),)
        hess = torch.func.hessian(u_of)(xp)
        return u_of(xp), torch.func.grad(u_of)(xp), sum(hess[j, j] for j in lap_dims)
    out = torch.func.vmap(point_fields, in_dims=(None, 0))(theta, x)
    return Fields(out[0], None, None) if lap_dims is None else Fields(*out)


def generic_jacobian(model: MLP, theta: torch.Tensor, x: torch.Tensor, lap_dims: tuple[int, ...] | None,
                     residual: ResidualFn) -> tuple[torch.Tensor, torch.Tensor]:
    """(J, r) by ``vmap(jacrev(residual at one point))``: the reference the fast path is checked against."""
    def point_residual(th: torch.Tensor, xp: torch.Tensor) -> torch.Tensor:
        f = generic_fields(model, th, xp.unsqueeze(0), lap_dims)
        return residual(xp.unsqueeze(0), f)[0]
    jac = torch.func.vmap(torch.func.jacrev(point_residual), in_dims=(None, 0))(theta, x)
    r = torch.func.vmap(point_residual, in_dims=(None, 0))(theta, x)
    return jac, r
