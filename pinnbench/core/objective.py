"""The objective contract every optimizer sees: residuals, Jacobian, loss and gradient on a flat θ.

Like scipy.optimize's ``(fun, jac)``, an optimizer sees only this object, never the model or the problem.
``loss = sum over groups of mean(r_group²)`` (no 1/2, unit group weights, as in the papers).
The objective counts its own work so that runs report a hardware-independent cost beside wall time.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields as dc_fields

import torch

from .derivatives import (Fields, generic_jacobian, line_kernels_serve, residual_jacobian, taylor_forward,
                          taylor_forward_along)
from .model import MLP
from .problem import ResidualGroup

DERIVATIVE_PATHS = ("taylor", "generic")
CPU_CHUNK_BYTES = 16 * 2**20
"""On a CPU a batch of θ (a line search) is evaluated in chunks whose intermediates total about this many
bytes: each chunk pays a pass's fixed cost (tens of small kernels; the deep nets' pass most), a bigger chunk
adds memory traffic past the caches. Measured on the paper sizes (docs/performance.md): 8 MiB cost the deep
allen_cahn net's line search 1.3-1.5x against 16-64 MiB, which ran alike; the one-hidden nets ran alike at
8-32 MiB. On a GPU the whole batch goes at once, up to ``batch_memory``."""


@dataclass
class WorkCounts:
    """Work done through the objective: calls, and points x θ-evaluations (line searches count each η)."""

    residual_evals: int = 0  # residual vectors r(θ) computed (one per θ, batched ones included)
    gradient_evals: int = 0  # loss gradients
    jacobian_evals: int = 0  # residual Jacobians

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in dc_fields(self)}


def _member_fields(fields: Fields, g: ResidualGroup, rows: slice) -> Fields:
    """One group's fields among those of a shared pass (grad and lap dropped where the group needs none)."""
    if g.lap_dims is None:
        return Fields(fields.u[..., rows], None, None)
    return Fields(fields.u[..., rows], fields.grad[..., rows, :], fields.lap[..., rows])


@dataclass
class ForwardPass:
    """Groups that share one Taylor pass: their points stacked, the pass's lap_dims, each member group with
    its rows among the pass's points, and where the pass's rows go in r and J (a slice when contiguous)."""

    points: torch.Tensor
    lap_dims: tuple[int, ...] | None
    members: list[tuple[ResidualGroup, slice]]
    rows: slice | torch.Tensor

    def residual(self, x: torch.Tensor, fields: Fields) -> torch.Tensor:
        """The members' residuals at one θ's fields of the pass, stacked: a pointwise residual of the pass."""
        return torch.cat([g.residual(g.points, _member_fields(fields, g, rows)) for g, rows in self.members])


def _forward_passes(groups: list[ResidualGroup], group_slices: dict[str, slice]) -> list[ForwardPass]:
    """Groups that can share one Taylor pass, in order: those without second derivatives ride along with the
    first group that has them (a pass's fixed cost is many small kernel launches; the extra Laplacian rows cost
    little), groups with different ``lap_dims`` get their own pass."""
    lap_sets = list(dict.fromkeys(g.lap_dims for g in groups if g.lap_dims is not None))
    shared = lap_sets[0] if lap_sets else None
    passes: list[ForwardPass] = []
    for lap_dims in lap_sets or [None]:
        members = [g for g in groups if g.lap_dims == lap_dims or (g.lap_dims is None and lap_dims == shared)]
        bounds = torch.tensor([0, *(g.points.shape[0] for g in members)]).cumsum(0).tolist()
        spans = [group_slices[g.name] for g in members]
        contiguous = all(a.stop == b.start for a, b in zip(spans[:-1], spans[1:]))
        rows = slice(spans[0].start, spans[-1].stop) if contiguous else torch.cat(
            [torch.arange(sp.start, sp.stop) for sp in spans])
        passes.append(ForwardPass(torch.cat([g.points for g in members]), lap_dims,
                                  [(g, slice(a, b)) for g, a, b in zip(members, bounds[:-1], bounds[1:])], rows))
    return passes


class Objective:
    """Least-squares PINN objective over stacked residual groups.

    Methods take θ of shape (P,) (``losses`` takes (B, P)) on the objective's device and dtype.
    """

    def __init__(self, model: MLP, groups: list[ResidualGroup], device: torch.device | str = "cpu",
                 dtype: torch.dtype = torch.float64, derivatives: str = "taylor",
                 batch_memory: int = 256 * 2**20) -> None:
        if derivatives not in DERIVATIVE_PATHS:
            raise ValueError(f"unknown derivative path {derivatives!r}; accepted: {', '.join(DERIVATIVE_PATHS)}")
        names = [g.name for g in groups]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            from ..errors import PinnbenchError

            raise PinnbenchError(f"two residual groups are named {repeated[0]!r}: every group of a problem needs "
                                 f"its own name (its rows of r and J are found by name)")
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
        self._passes = _forward_passes(self.groups, self.group_slices)
        self._counts = WorkCounts()
        self._batch_memory = batch_memory
        per_point = 3 if len(model.layers) == 3 else 3 * (model.layers[0] + 2)  # live (width,) tensors per point
        self._bytes_per_theta = 8 * self.n_residuals * max(model.layers[:-1]) * per_point
        self._broadcasts: dict[str, bool] = {}  # group name: its residual takes a batch of fields directly

    # ------------------------------------------------------------------ accounting
    @property
    def counts(self) -> WorkCounts:
        """The work done through this objective so far (a copy: the harness's record cannot be edited here)."""
        return dataclasses.replace(self._counts)

    def _count(self, name: str, n: int = 1) -> None:
        setattr(self._counts, name, getattr(self._counts, name) + n)

    # ------------------------------------------------------------------ contract
    def _residuals(self, theta: torch.Tensor, line: tuple[torch.Tensor, torch.Tensor] | None = None
                   ) -> torch.Tensor:
        """r(θ) for θ (P,) or a batch (B, P), or r(θ - η d) for ``line`` = (d, etas (B,)); residual functions
        always see one θ's fields (vmap over B)."""
        parts: dict[str, torch.Tensor] = {}
        for fp in self._passes:
            if line is None:
                fields = taylor_forward(self.model, theta, fp.points, fp.lap_dims)
            else:
                fields = taylor_forward_along(self.model, theta, *line, fp.points, fp.lap_dims)
            for g, rows in fp.members:
                f = _member_fields(fields, g, rows)
                parts[g.name] = g.residual(g.points, f) if f.u.dim() == 1 else self._batched_residual(g, f)
        return torch.cat([parts[g.name] for g in self.groups], dim=-1)

    def _batched_residual(self, g: ResidualGroup, f: Fields) -> torch.Tensor:
        """The group's residual for a batch of fields (B, M, ...): one θ at a time under vmap, or, once a first
        batch has shown that the function broadcasts over the leading dimension to the same bits (pointwise
        code written with ``...`` does), called directly, which saves vmap's fixed cost in every line search."""
        if self._broadcasts.get(g.name):
            return g.residual(g.points, f)

        def one(*tensors: torch.Tensor) -> torch.Tensor:
            return g.residual(g.points, Fields(*tensors) if len(tensors) == 3 else Fields(tensors[0], None, None))
        mapped = torch.func.vmap(one)(*(t for t in f if t is not None))
        if g.name not in self._broadcasts:
            try:
                direct = g.residual(g.points, f)
                self._broadcasts[g.name] = direct.shape == mapped.shape and bool(
                    torch.isclose(direct, mapped, rtol=0.0, atol=0.0, equal_nan=True).all())
            except Exception:  # noqa: BLE001 - a residual that does not broadcast keeps vmap
                self._broadcasts[g.name] = False
        return mapped

    def residuals(self, theta: torch.Tensor) -> torch.Tensor:
        """Stacked residual r(θ), shape (N,), groups in order."""
        self._count("residual_evals")
        with torch.no_grad():
            return self._residuals(theta)

    def jacobian(self, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(J, r) in one pass: J = dr/dθ of shape (N, P), r of shape (N,).

        J is column-major (the transpose of a contiguous (P, N) tensor): the fast path writes it that way and
        LAPACK reads it that way. Call ``.contiguous()`` where a row-major copy is needed.
        """
        self._count("jacobian_evals")
        self._count("residual_evals")
        jac = torch.empty(self.n_params, self.n_residuals, dtype=self.dtype, device=self.device).mT
        res = torch.empty(self.n_residuals, dtype=self.dtype, device=self.device)
        theta = theta.detach()
        if self.derivatives == "generic":
            for g in self.groups:
                rows = self.group_slices[g.name]
                jac[rows], res[rows] = generic_jacobian(self.model, theta, g.points, g.lap_dims, g.residual)
            return jac, res
        for fp in self._passes:  # one forward and one reverse pass for all groups that share them
            if isinstance(fp.rows, slice):
                _, res[fp.rows] = residual_jacobian(self.model, theta, fp.points, fp.lap_dims, fp.residual,
                                                    out=jac[fp.rows])
            else:
                jac[fp.rows], res[fp.rows] = residual_jacobian(self.model, theta, fp.points, fp.lap_dims,
                                                               fp.residual)
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

    def _chunk(self, b: int, line: bool = False) -> int:
        """How many θ of a batch of b to evaluate at once (see CPU_CHUNK_BYTES); a line search on the compiled
        kernels holds only its output fields."""
        budget = self._batch_memory if self.device.type != "cpu" else min(self._batch_memory, CPU_CHUNK_BYTES)
        per_theta = self._bytes_per_theta
        if line and all(line_kernels_serve(self.model, fp.points, fp.lap_dims) for fp in self._passes):
            per_theta = 8 * self.n_residuals * (self.model.layers[0] + 3)
        return max(1, min(b, budget // per_theta))

    def losses(self, thetas: torch.Tensor) -> torch.Tensor:
        """Losses at a batch of parameter vectors (B, P) -> (B,), in memory-bounded chunks."""
        b = thetas.shape[0]
        self._count("residual_evals", b)
        chunk = self._chunk(b)
        with torch.no_grad():
            if chunk == 1:
                return torch.stack([self.loss_from_residuals(self._residuals(theta)) for theta in thetas])
            return torch.cat([self.loss_from_residuals(self._residuals(thetas[i:i + chunk]))
                              for i in range(0, b, chunk)])

    def losses_along(self, theta: torch.Tensor, direction: torch.Tensor, etas: torch.Tensor) -> torch.Tensor:
        """Losses at θ - η d for every step size η of ``etas`` (B,) -> (B,): a line search's evaluations, the
        same values as ``losses`` of those θ up to rounding, in memory-bounded chunks of η."""
        b = etas.shape[0]
        self._count("residual_evals", b)
        with torch.no_grad():
            chunk = self._chunk(b, line=True)
            losses = [self.loss_from_residuals(self._residuals(theta, (direction, etas[i:i + chunk])))
                      for i in range(0, b, chunk)]
            return losses[0] if len(losses) == 1 else torch.cat(losses)
