"""The ``Problem`` base class: a PDE, its point sets, its exact (or reference) solution and its defaults.

A problem never sees an optimizer. It describes residual groups (interior, boundary, initial, ...), each a set
of points with a pointwise residual operator written on the fields (u, grad u, partial Laplacian); the
objective turns them into r, J, loss and gradient.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar

import torch

from .derivatives import Fields, ResidualFn



@dataclass
class ResidualGroup:
    """One term of the loss, mean over its points of residual(x, fields)².

    ``lap_dims``: None if the operator uses u only; otherwise the residual gets the full gradient and the sum
    of second derivatives over these input coordinates (e.g. (1,) for u_xx with inputs (t, x)).
    """

    name: str
    points: torch.Tensor
    residual: ResidualFn
    lap_dims: tuple[int, ...] | None = None


@dataclass
class PointSets:
    """The training groups and the evaluation points of one problem instance."""

    groups: list[ResidualGroup]
    evaluation: torch.Tensor
    notes: dict[str, str] = field(default_factory=dict)


class Problem:
    """Base class of a benchmark problem; subclasses are registered with ``@register_problem(name)``.

    Subclasses set ``dim``, ``layers`` (the default net, e.g. (2, 32, 1)), ``paper_steps`` and implement
    :meth:`exact` and :meth:`point_sets`. ``optimizer_defaults`` maps an optimizer name to hyperparameters
    the problem's published setup uses (e.g. ANaGRAM's cutoff); user settings override them.
    """

    name: ClassVar[str] = ""
    dim: ClassVar[int] = 0
    layers: ClassVar[tuple[int, ...]] = ()
    paper_steps: ClassVar[int | None] = None
    optimizer_defaults: ClassVar[dict[str, dict]] = {}
    description: ClassVar[str] = ""

    def exact(self, x: torch.Tensor) -> torch.Tensor:
        """The exact (or reference) solution at x of shape (M, dim), returned as (M,)."""
        raise NotImplementedError

    def point_sets(self, preset: str, generator: torch.Generator) -> PointSets:
        """Training groups and evaluation points for ``preset`` ('paper' or 'quick'), in float64 on the CPU.

        Random sets must be drawn from ``generator`` only, so that the run's seed fixes them.
        """
        raise NotImplementedError


# ---------------------------------------------------------------- point-set helpers (float64, CPU)

def interior_grid(n: int, lows: tuple[float, ...], highs: tuple[float, ...]) -> torch.Tensor:
    """Tensor grid of ``linspace(lo, hi, n)`` per axis without the two ends: (n-2)^d points."""
    axes = [torch.linspace(lo, hi, n, dtype=torch.float64)[1:-1] for lo, hi in zip(lows, highs)]
    return torch.cartesian_prod(*axes).reshape(-1, len(axes))


def full_grid(counts: tuple[int, ...], lows: tuple[float, ...], highs: tuple[float, ...]) -> torch.Tensor:
    """Tensor grid including the ends: ``linspace(lo, hi, n)`` per axis, first axis slowest."""
    axes = [torch.linspace(lo, hi, n, dtype=torch.float64) for n, lo, hi in zip(counts, lows, highs)]
    return torch.cartesian_prod(*axes).reshape(-1, len(axes))


def segment(start: tuple[float, float], end: tuple[float, float], n: int) -> torch.Tensor:
    """n points from ``start`` towards ``end``, spacing |end-start|/n, ``end`` itself excluded."""
    s = torch.linspace(0.0, 1.0, n + 1, dtype=torch.float64)[:-1].unsqueeze(1)
    a = torch.tensor(start, dtype=torch.float64)
    b = torch.tensor(end, dtype=torch.float64)
    return a + s * (b - a)


def square_boundary(n: int, lows: tuple[float, float] = (0.0, 0.0), highs: tuple[float, float] = (1.0, 1.0)
                    ) -> torch.Tensor:
    """The four sides of a rectangle, n points per side, walked around so that no corner repeats (4n points)."""
    (x0, y0), (x1, y1) = lows, highs
    corners = [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
    return torch.cat([segment(corners[i], corners[(i + 1) % 4], n) for i in range(4)])


def uniform(n: int, dim: int, generator: torch.Generator, lows: float = 0.0, highs: float = 1.0) -> torch.Tensor:
    """n i.i.d. uniform points in the box [lows, highs]^dim."""
    return lows + (highs - lows) * torch.rand(n, dim, generator=generator, dtype=torch.float64)


def cube_boundary(n: int, dim: int, generator: torch.Generator) -> torch.Tensor:
    """n points on the faces of [0,1]^dim: a uniform point with one random coordinate set to 0 or 1."""
    x = uniform(n, dim, generator)
    axis = torch.randint(0, dim, (n,), generator=generator)
    side = torch.randint(0, 2, (n,), generator=generator).to(torch.float64)
    x[torch.arange(n), axis] = side
    return x


PI = math.pi
