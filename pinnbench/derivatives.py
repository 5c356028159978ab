"""Derivatives of the model at collocation points: the fast path and the generic path.

The fast path propagates, through every layer at once, the value, the d first derivatives and a partial
Laplacian ``sum_{k in lap_dims} d²u/dx_k²`` (forward Taylor mode), with one matmul per layer for all points.
The residual Jacobian is the hand-derived reverse of that pass: per layer, one batched matmul writes the
per-point parameter gradients straight into J. Cost O(N·P·(d+2)), never O(N²·P).

The generic path computes the same quantities with nested ``torch.func`` autodiff, point by point under
``vmap``. It is slower and exists to check the fast path and to serve operators the fast path cannot express.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, NamedTuple

import torch

from .model import MLP


class Fields(NamedTuple):
    """u and its derivatives at M points: u (..., M), grad (..., M, d), lap (..., M) (None if not needed)."""

    u: torch.Tensor
    grad: torch.Tensor | None
    lap: torch.Tensor | None


ResidualFn = Callable[[torch.Tensor, Fields], torch.Tensor]
"""``residual(x, fields) -> r``: a pointwise operator, r[i] depends only on x[i] and fields at point i."""


@dataclass
class _Layer:
    h_in: torch.Tensor  # (K, M, n_in): value/derivative components entering the layer
    z: torch.Tensor | None = None  # (K, M, n_out) pre-activation components (hidden layers only)
    a: torch.Tensor | None = None
    s1: torch.Tensor | None = None
    s2: torch.Tensor | None = None


def _input_components(x: torch.Tensor, lap_dims: tuple[int, ...] | None) -> torch.Tensor:
    """(K, M, d): the coordinates, their unit first derivatives and a zero Laplacian."""
    m, d = x.shape
    if lap_dims is None:
        return x.unsqueeze(0)
    h = torch.zeros(d + 2, m, d, dtype=x.dtype, device=x.device)
    h[0] = x
    h[1 : d + 1] = torch.eye(d, dtype=x.dtype, device=x.device).unsqueeze(1)
    return h


def taylor_forward(model: MLP, theta: torch.Tensor, x: torch.Tensor, lap_dims: tuple[int, ...] | None,
                   _save: list[_Layer] | None = None) -> Fields:
    """Value (and, if ``lap_dims`` is not None, gradient and partial Laplacian) of u_θ at x (M, d).

    θ may be a batch (B, P); the fields then carry a leading B dimension. Differentiable by autograd.
    """
    m, d = x.shape
    h = _input_components(x, lap_dims)
    k_comp = h.shape[0]
    layers = model.unflatten(theta)
    lead = theta.shape[:-1]
    z = h
    for index, (w, b) in enumerate(layers):
        n_out = w.shape[-2]
        z = (h.reshape(*h.shape[:-3], k_comp * m, h.shape[-1]) @ w.mT).reshape(*lead, k_comp, m, n_out)
        z[..., 0, :, :] += b.unsqueeze(-2)
        if index == len(layers) - 1:
            if _save is not None:
                _save.append(_Layer(h_in=h))
            break
        a = torch.tanh(z[..., 0, :, :])
        s1 = 1.0 - a * a
        if lap_dims is None:
            s2 = None
            h_next = a.unsqueeze(-3)
        else:
            s2 = -2.0 * a * s1
            z_grad = z[..., 1 : d + 1, :, :]
            square = (z[..., [1 + j for j in lap_dims], :, :] ** 2).sum(-3)
            h_lap = s1 * z[..., d + 1, :, :] + s2 * square
            h_next = torch.cat([a.unsqueeze(-3), s1.unsqueeze(-3) * z_grad, h_lap.unsqueeze(-3)], dim=-3)
        if _save is not None:
            _save.append(_Layer(h_in=h, z=z, a=a, s1=s1, s2=s2))
        h = h_next
    out = z[..., 0]  # (..., K, M)
    if lap_dims is None:
        return Fields(out[..., 0, :], None, None)
    return Fields(out[..., 0, :], out[..., 1 : d + 1, :].transpose(-1, -2), out[..., d + 1, :])


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
    return r.detach(), torch.cat([du.unsqueeze(0), dgrad.T, dlap.unsqueeze(0)], dim=0)


def _tanh_backward(hbar: torch.Tensor, layer: _Layer, lap_dims: tuple[int, ...] | None) -> torch.Tensor:
    """Cotangents of the pre-activation components given those of the activation components."""
    a, s1, s2, z = layer.a, layer.s1, layer.s2, layer.z
    if lap_dims is None:
        return (hbar[0] * s1).unsqueeze(0)
    d = hbar.shape[0] - 2
    lap_idx = [1 + j for j in lap_dims]
    z_grad, z_lap = z[1 : d + 1], z[d + 1]
    bar_grad, bar_lap = hbar[1 : d + 1], hbar[d + 1]
    s3 = -2.0 * s1 * s1 - 2.0 * a * s2
    square = (z[lap_idx] ** 2).sum(0)
    zbar = torch.empty_like(hbar)
    zbar[0] = hbar[0] * s1 + s2 * (bar_grad * z_grad).sum(0) + bar_lap * (s2 * z_lap + s3 * square)
    zbar[1 : d + 1] = bar_grad * s1
    zbar[lap_idx] += (2.0 * bar_lap * s2) * z[lap_idx]
    zbar[d + 1] = bar_lap * s1
    return zbar


def residual_jacobian(model: MLP, theta: torch.Tensor, x: torch.Tensor, lap_dims: tuple[int, ...] | None,
                      residual: ResidualFn, out: torch.Tensor | None = None
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """(J, r) of a pointwise residual at x (M, d), fast path; J (M, P) is written into ``out`` if given."""
    saved: list[_Layer] = []
    fields = taylor_forward(model, theta.detach(), x, lap_dims, _save=saved)
    r, zbar = _output_cotangents(x, fields, residual)
    zbar = zbar.unsqueeze(-1)  # (K, M, 1): cotangents of the output layer's components
    m = x.shape[0]
    if out is None:
        out = torch.empty(m, model.n_params, dtype=theta.dtype, device=theta.device)
    params = model.unflatten(theta.detach())
    slices = model.slices
    for index in range(len(params) - 1, -1, -1):
        w_slice, b_slice, n_out, n_in = slices[index]
        h_in = saved[index].h_in
        grad_w = torch.bmm(zbar.permute(1, 2, 0), h_in.permute(1, 0, 2))  # (M, out, in)
        out[:, w_slice] = grad_w.reshape(m, n_out * n_in)
        out[:, b_slice] = zbar[0]
        if index > 0:
            k_comp = zbar.shape[0]
            hbar = (zbar.reshape(k_comp * m, n_out) @ params[index][0]).reshape(k_comp, m, n_in)
            zbar = _tanh_backward(hbar, saved[index - 1], lap_dims)
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
