"""Burgers 1+1D: u_t + u u_x - (0.01/π) u_xx = 0 on (t,x) ∈ [0,1]x[-1,1], u(0,x) = -sin(πx), u(t,±1) = 0.
The exact solution is the Cole-Hopf integral, evaluated pointwise by quadrature
(pinnbench.references.burgers). Inputs are ordered (t, x)."""
import torch

from pinnbench import PointSets, Problem, ResidualGroup, register_problem
from pinnbench.problem import PI, full_grid, interior_grid, segment
from pinnbench.references import burgers

VISCOSITY = burgers.VISCOSITY
QUICK_HORIZON = 0.25
"""The quick point sets stop at t = 0.25, before the shock forms at t = 1/π."""


@register_problem("burgers")
class Burgers(Problem):
    description = "u_t + u u_x - (0.01/π) u_xx = 0 on [0,1]x[-1,1], u(0,x)=-sin(πx), u(t,±1)=0 (AMStraMGRAM)"
    dim = 2
    layers = (2, 64, 64, 1)
    paper_steps = 4001

    def exact(self, x: torch.Tensor) -> torch.Tensor:
        return burgers.solution(x).to(x.dtype)

    def point_sets(self, preset: str, generator: torch.Generator) -> PointSets:
        def interior(x, f):
            return f.grad[..., 0] + f.u * f.grad[..., 1] - VISCOSITY * f.lap

        def initial(x, f):
            return f.u + torch.sin(PI * x[:, 1])

        def boundary(x, f):
            return f.u

        # Sides walked around, 30 points each, no corner twice: t=0 (x from -1 up), x=+1 (t from 0 up),
        # x=-1 (t from T down). paper: T = 1 and the usual evaluation grid t = 0, 0.01, ..., 0.99, x =
        # linspace(-1,1,256); quick: the same points on t <= T = 0.25, before the shock forms (t = 1/π), which
        # no optimizer resolves in the quick budget (all stall at L2 ~0.15 on t <= 1).
        horizon, n_t, n_x, t_last = ((1.0, 100, 256, 0.99) if preset == "paper"
                                     else (QUICK_HORIZON, 26, 128, QUICK_HORIZON))
        return PointSets(
            groups=[ResidualGroup("interior", interior_grid(30, (0, -1), (horizon, 1)), interior, lap_dims=(1,)),
                    ResidualGroup("initial", segment((0, -1), (0, 1), 30), initial),
                    ResidualGroup("boundary_right", segment((0, 1), (horizon, 1), 30), boundary),
                    ResidualGroup("boundary_left", segment((horizon, -1), (0, -1), 30), boundary)],
            evaluation=full_grid((n_t, n_x), (0, -1), (t_last, 1)),
            notes={"points": "the AMStraMGRAM study's exact point sets are not published: a 30x30 interior grid "
                             "without its ends (28x28), 30 initial points and 30 per side are used",
                   "steps": "4001 steps (the AMStraMGRAM study's count for Burgers is not published; the same "
                            "as Allen-Cahn)",
                   "reference": "Cole-Hopf by trapezoidal quadrature, pointwise, accurate to ~1e-15",
                   **({} if preset == "paper" else {"domain": f"quick: t in [0, {QUICK_HORIZON:g}], before the shock "
                                                              f"(t = 1/π); paper: t in [0, 1]"})},
        )
