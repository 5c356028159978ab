"""Laplace 5D: Δu = -π² Σ_k sin(πx_k) on (0,1)^5, u = u* on ∂Ω; u* = Σ_k sin(πx_k)."""
import torch

from pinnbench import PointSets, Problem, ResidualGroup, register_problem
from pinnbench.problem import PI, cube_boundary, uniform

EVALUATION_SEED = 20250101  # one evaluation set for every run, independent of the run's seed


@register_problem("laplace5d")
class Laplace5D(Problem):
    description = "Δu = -π² Σ sin(πx_k) on (0,1)^5, Dirichlet u* on ∂Ω (ANaGRAM paper)"
    dim = 5
    layers = (5, 64, 1)
    paper_steps = 1001

    def exact(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sin(PI * x).sum(-1)

    def point_sets(self, preset: str, generator: torch.Generator) -> PointSets:
        def interior(x, f):
            return f.lap + PI**2 * torch.sin(PI * x).sum(-1)

        def boundary(x, f):
            return f.u - self.exact(x)

        n_int, n_bdry, n_eval = (4000, 500, 40000) if preset == "paper" else (1000, 200, 10000)
        x_int = uniform(n_int, 5, generator)
        x_bdry = cube_boundary(n_bdry, 5, generator)
        evaluation = uniform(n_eval, 5, torch.Generator().manual_seed(EVALUATION_SEED))
        return PointSets(
            groups=[ResidualGroup("interior", x_int, interior, lap_dims=tuple(range(5))),
                    ResidualGroup("boundary", x_bdry, boundary)],
            evaluation=evaluation,
            notes={"evaluation": f"{n_eval} uniform points drawn once from seed {EVALUATION_SEED}"},
        )
