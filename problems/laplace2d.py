"""Laplace 2D: Δu = -2π² sin(πx) sin(πy) on (0,1)², u = 0 on the boundary; u* = sin(πx) sin(πy)."""
import torch

from pinnbench import PointSets, Problem, ResidualGroup, register_problem
from pinnbench.problem import PI, full_grid, interior_grid, square_boundary


@register_problem("laplace2d")
class Laplace2D(Problem):
    description = "Δu = -2π² sin(πx)sin(πy) on (0,1)², u=0 on ∂Ω (ANaGRAM paper)"
    dim = 2
    layers = (2, 32, 1)
    paper_steps = 2001
    optimizer_defaults = {"anagram": {"cutoff": 1e-6}, "amstramgram": {"anagram_cutoff": 1e-6}}

    def exact(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sin(PI * x[:, 0]) * torch.sin(PI * x[:, 1])

    def point_sets(self, preset: str, generator: torch.Generator) -> PointSets:
        def interior(x, f):
            return f.lap + 2 * PI**2 * torch.sin(PI * x[:, 0]) * torch.sin(PI * x[:, 1])

        def boundary(x, f):
            return f.u

        # paper: the ANaGRAM paper's 30-point grid (28 x 28 interior, 29 per side); quick: a 20-point grid
        # (18 x 18 interior, 19 per side), 400 points instead of 900, so that a step costs about a third.
        n_grid, n_eval = (30, 198) if preset == "paper" else (20, 100)
        return PointSets(
            groups=[ResidualGroup("interior", interior_grid(n_grid, (0, 0), (1, 1)), interior, lap_dims=(0, 1)),
                    ResidualGroup("boundary", square_boundary(n_grid - 1), boundary)],
            evaluation=full_grid((n_eval, n_eval), (0, 0), (1, 1)),
            notes={} if preset == "paper" else {"points": "quick: a 20-point grid (324 interior, 76 boundary); "
                                                           "the paper's has 30 points (784 + 116)"},
        )
