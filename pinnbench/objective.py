"""The objective contract every optimizer sees: residuals, Jacobian, loss and gradient on a flat θ.

Like scipy.optimize's ``(fun, jac)``, an optimizer sees only this object, never the model or the problem.
``loss = sum over groups of mean(r_group²)`` (no 1/2, unit group weights, as in the papers).
The objective counts its own work so that runs report a hardware-independent cost beside wall time.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, fields as dc_fields
from typing import Iterator

import torch

from .derivatives import Fields, generic_jacobian, residual_jacobian, taylor_forward
from .model import MLP
from .problem import ResidualGroup

DERIVATIVE_PATHS = ("taylor", "generic")


@dataclass
class WorkCounts:
    """Work done through the objective: calls, and points x θ-evaluations (line searches count each η)."""

    residual_evals: int = 0  # residual vectors r(θ) computed (one per θ, batched ones included)
    gradient_evals: int = 0  # loss gradients
    jacobian_evals: int = 0  # residual Jacobians

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in dc_fields(self)}


class Objective:
    """Least-squares PINN objective over stacked residual groups.

    Methods take θ of shape (P,) (``losses`` takes (B, P)) on the objective's device and dtype.
    """

    def __init__(self, model: MLP, groups: list[ResidualGroup], device: torch.device | str = "cpu",
                 dtype: torch.dtype = torch.float64, derivatives: str = "taylor",
                 batch_memory: int = 256 * 2**20) -> None:
        if derivatives not in DERIVATIVE_PATHS:
            raise ValueError(f"unknown derivative path {derivatives!r}; accepted: {', '.join(DERIVATIVE_PATHS)}")
        self.model = model
        self.groups = [
            ResidualGroup(g.name, g.points.to(device=device, dtype=dtype), g.residual, g.lap_dims) for g in groups
        ]
        self.derivatives = derivatives
        self.device = torch.device(device)
        self.dtype = dtype
        self.n_params = model.n_params
        sizes = [g.points.shape[0] for g in self.groups]
        self.n_residuals = sum(sizes)
        bounds = torch.tensor([0, *sizes]).cumsum(0).tolist()
        self.group_slices = {g.name: slice(a, b) for g, a, b in zip(self.groups, bounds[:-1], bounds[1:])}
        self.row_weights = torch.cat(
            [torch.full((n,), 1.0 / n, dtype=dtype, device=device) for n in sizes]
        )
        """Per-row weight 1/N_s, so that loss = sum(row_weights * r²)."""
        self.counts = WorkCounts()
        self._counting = True
        self._batch_memory = batch_memory

    # ------------------------------------------------------------------ accounting
    @contextlib.contextmanager
    def uncounted(self) -> Iterator[None]:
        """Work done inside this block (evaluation, logging) is not counted."""
        previous, self._counting = self._counting, False
        try:
            yield
        finally:
            self._counting = previous

    def _count(self, name: str, n: int = 1) -> None:
        if self._counting:
            setattr(self.counts, name, getattr(self.counts, name) + n)

    # ------------------------------------------------------------------ contract
    def _residuals(self, theta: torch.Tensor) -> torch.Tensor:
        """r(θ) for θ (P,) or a batch (B, P); residual functions always see one θ's fields (vmap over B)."""
        parts = []
        for g in self.groups:
            f = taylor_forward(self.model, theta, g.points, g.lap_dims)
            if theta.dim() == 1:
                parts.append(g.residual(g.points, f))
                continue
            def one(*tensors: torch.Tensor, g: ResidualGroup = g) -> torch.Tensor:
                return g.residual(g.points, Fields(*tensors) if len(tensors) == 3 else Fields(tensors[0], None, None))
            parts.append(torch.func.vmap(one)(*(t for t in f if t is not None)))
        return torch.cat(parts, dim=-1)

    def residuals(self, theta: torch.Tensor) -> torch.Tensor:
        """Stacked residual r(θ), shape (N,), groups in order."""
        self._count("residual_evals")
        with torch.no_grad():
            return self._residuals(theta)

    def jacobian(self, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(J, r) in one pass: J = dr/dθ of shape (N, P), r of shape (N,)."""
        self._count("jacobian_evals")
        self._count("residual_evals")
        jac = torch.empty(self.n_residuals, self.n_params, dtype=self.dtype, device=self.device)
        res = torch.empty(self.n_residuals, dtype=self.dtype, device=self.device)
        theta = theta.detach()
        for g in self.groups:
            rows = self.group_slices[g.name]
            if self.derivatives == "taylor":
                _, res[rows] = residual_jacobian(self.model, theta, g.points, g.lap_dims, g.residual,
                                                 out=jac[rows])
            else:
                jac[rows], res[rows] = generic_jacobian(self.model, theta, g.points, g.lap_dims, g.residual)
        return jac, res

    def loss_from_residuals(self, r: torch.Tensor) -> torch.Tensor:
        """Σ_groups mean(r_group²) for r of shape (..., N)."""
        return (r * r) @ self.row_weights

    def loss(self, theta: torch.Tensor) -> torch.Tensor:
        """The training loss at θ (a 0-d tensor)."""
        return self.loss_from_residuals(self.residuals(theta))

    def loss_and_grad(self, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(loss, ∇loss) at θ by reverse-mode autodiff through the Taylor forward pass."""
        self._count("residual_evals")
        self._count("gradient_evals")
        with torch.enable_grad():
            th = theta.detach().requires_grad_(True)
            loss = self.loss_from_residuals(self._residuals(th))
            (grad,) = torch.autograd.grad(loss, th)
        return loss.detach(), grad

    def losses(self, thetas: torch.Tensor) -> torch.Tensor:
        """Losses at a batch of parameter vectors (B, P) -> (B,), in memory-bounded chunks (line searches)."""
        b = thetas.shape[0]
        self._count("residual_evals", b)
        width = max(self.model.layers)
        per_theta = 8 * self.n_residuals * width * (self.model.layers[0] + 2) * 4
        chunk = max(1, self._batch_memory // max(per_theta, 1))
        with torch.no_grad():
            return torch.cat([self.loss_from_residuals(self._residuals(thetas[i:i + chunk]))
                              for i in range(0, b, chunk)])
