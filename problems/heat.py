"""Heat 1+1D: u_t - ¼ u_xx = 0 on (t,x) ∈ [0,1]², u(0,x) = sin(πx), u(t,0) = u(t,1) = 0;
u* = exp(-π² t/4) sin(πx). Inputs are ordered (t, x)."""
import torch

from pinnbench import PointSets, Problem, ResidualGroup, register_problem
from pinnbench.problem import PI, full_grid, interior_grid, segment


@register_problem("heat")
class Heat(Problem):
    description = "u_t - u_xx/4 = 0 on [0,1]², u(0,x)=sin(πx), u(t,0)=u(t,1)=0 (ANaGRAM paper)"
    dim = 2
    layers = (2, 64, 1)
    paper_steps = 2001
    optimizer_defaults = {"anagram": {"cutoff": 1e-5}, "amstramgram": {"anagram_cutoff": 1e-5}}

    def exact(self, x: torch.Tensor) -> torch.Tensor:
        return torch.exp(-PI**2 * x[:, 0] / 4) * torch.sin(PI * x[:, 1])

    def point_sets(self, preset: str, generator: torch.Generator) -> PointSets:
        def interior(x, f):
            return f.grad[..., 0] - 0.25 * f.lap

        def initial(x, f):
            return f.u - torch.sin(PI * x[:, 1])

        def boundary(x, f):
            return f.u

        # The three sides walked around (t=0: x 0→1, x=1: t 0→1, x=0: t 1→0), g points each, no corner twice;
        # paper: the ANaGRAM paper's g = 29 (28 x 28 interior); quick: g = 19 (18 x 18 interior), 381 points
        # instead of 871, so that a step costs about a third.
        g, n_eval = (29, 298) if preset == "paper" else (19, 100)
        return PointSets(
            groups=[ResidualGroup("interior", interior_grid(g + 1, (0, 0), (1, 1)), interior, lap_dims=(1,)),
                    ResidualGroup("initial", segment((0, 0), (0, 1), g), initial),
                    ResidualGroup("boundary", torch.cat([segment((0, 1), (1, 1), g),
                                                         segment((1, 0), (0, 0), g)]), boundary)],
            evaluation=full_grid((n_eval, n_eval), (0, 0), (1, 1)),
            notes={} if preset == "paper" else {"points": "quick: g = 19 per side (324 interior, 19 initial, 38 "
                                                           "boundary); the paper's has 29 (784 + 29 + 58)"},
        )
