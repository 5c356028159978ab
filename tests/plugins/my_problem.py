"""The README's example problem: Poisson in 1D, -u'' = π² sin(πx) on (0, 1), u(0) = u(1) = 0; u* = sin(πx)."""
import torch

from pinnbench import PointSets, Problem, ResidualGroup, register_problem
from pinnbench.problem import PI, full_grid, interior_grid


@register_problem("poisson1d")
class Poisson1D(Problem):
    description = "-u'' = π² sin(πx) on (0,1), u(0) = u(1) = 0"
    dim = 1
    layers = (1, 16, 1)
    paper_steps = 500

    def exact(self, x):
        return torch.sin(PI * x[:, 0])

    def point_sets(self, preset, generator):
        def interior(x, f):  # f.lap is u'' (lap_dims=(0,)); f.grad[:, 0] would be u'
            return -f.lap - PI**2 * torch.sin(PI * x[:, 0])

        def boundary(x, f):  # lap_dims None: f.u only
            return f.u

        n = 200 if preset == "paper" else 50
        return PointSets(
            groups=[ResidualGroup("interior", interior_grid(n + 2, (0.0,), (1.0,)), interior, lap_dims=(0,)),
                    ResidualGroup("boundary", torch.tensor([[0.0], [1.0]], dtype=torch.float64), boundary)],
            evaluation=full_grid((1000,), (0.0,), (1.0,)),
        )
