"""Nonlinear Poisson 2D: Δu - e^u = f on (0,1)², u = u* on ∂Ω, with u* = 1 + sin(4πx) cos(4πy)
(the SSBroyden paper's k = 4) and f chosen so that u* solves it."""
import torch

from pinnbench import PointSets, Problem, ResidualGroup, register_problem
from pinnbench.problem import PI, full_grid, interior_grid, square_boundary

K = 4


@register_problem("nonlinear_poisson")
class NonlinearPoisson(Problem):
    description = "Δu - exp(u) = f on (0,1)², u* = 1 + sin(4πx)cos(4πy), Dirichlet (SSBroyden paper)"
    dim = 2
    layers = (2, 30, 30, 1)
    paper_steps = 2001
    optimizer_defaults = {}

    def exact(self, x: torch.Tensor) -> torch.Tensor:
        return 1 + torch.sin(K * PI * x[:, 0]) * torch.cos(K * PI * x[:, 1])

    def source(self, x: torch.Tensor) -> torch.Tensor:
        """f = Δu* - exp(u*)."""
        wave = torch.sin(K * PI * x[:, 0]) * torch.cos(K * PI * x[:, 1])
        return -2 * (K * PI) ** 2 * wave - torch.exp(1 + wave)

    def point_sets(self, preset: str, generator: torch.Generator) -> PointSets:
        def interior(x, f):
            return f.lap - torch.exp(f.u) - self.source(x)

        def boundary(x, f):
            return f.u - self.exact(x)

        # paper: a 30-point grid (28 x 28 interior, 29 per side); quick: a 20-point grid (18 x 18, 19 per side),
        # 400 points instead of 900, on which the natural-gradient methods reach 1e-3 within the quick budget.
        n_grid, n_eval = (30, 256) if preset == "paper" else (20, 100)
        return PointSets(
            groups=[ResidualGroup("interior", interior_grid(n_grid, (0, 0), (1, 1)), interior, lap_dims=(0, 1)),
                    ResidualGroup("boundary", square_boundary(n_grid - 1), boundary)],
            evaluation=full_grid((n_eval, n_eval), (0, 0), (1, 1)),
            notes={"points": "the SSBroyden study's exact sets are not published: a 30x30-type grid is used"
                             + ("" if preset == "paper" else "; quick: a 20-point grid (324 interior, 76 boundary)")},
        )
