"""Allen-Cahn 1+1D: u_t - 1e-3 u_xx - 5(u - u³) = 0 on (t,x) ∈ [0,1]x[-1,1], u(0,x) = x² cos(πx),
u(t,±1) = -1. No closed form: the reference is pinnbench's own Chebyshev/ETDRK4 solution, computed on first use
and cached on disk (pinnbench.references.allen_cahn). Inputs are ordered (t, x)."""
from functools import cached_property

import torch

from pinnbench import PointSets, Problem, ResidualGroup, register_problem
from pinnbench.problem import PI, full_grid, segment
from pinnbench.references import allen_cahn
from pinnbench.references.interpolation import SpaceTimeInterpolant

DIFFUSION = allen_cahn.DIFFUSION
REACTION = allen_cahn.REACTION


def _open_grid(n_t: int, n_x: int) -> torch.Tensor:
    """Tensor grid of linspace(0,1,n_t) x linspace(-1,1,n_x) without the ends of either axis, t slowest."""
    t = torch.linspace(0, 1, n_t, dtype=torch.float64)[1:-1]
    x = torch.linspace(-1, 1, n_x, dtype=torch.float64)[1:-1]
    return torch.cartesian_prod(t, x)


@register_problem("allen_cahn")
class AllenCahn(Problem):
    description = "u_t - 1e-3 u_xx - 5(u - u³) = 0 on [0,1]x[-1,1], u(0,x)=x²cos(πx), u(t,±1)=-1 (AMStraMGRAM)"
    dim = 2
    layers = (2, 20, 20, 20, 1)
    paper_steps = 4001

    @cached_property
    def reference(self) -> SpaceTimeInterpolant:
        """The cached spectral reference solution (computed on first use, about 10 s)."""
        return allen_cahn.reference()

    def exact(self, x: torch.Tensor) -> torch.Tensor:
        return self.reference(x).to(x.dtype)

    def point_sets(self, preset: str, generator: torch.Generator) -> PointSets:
        def interior(x, f):
            return f.grad[..., 0] - DIFFUSION * f.lap - REACTION * (f.u - f.u**3)

        def initial(x, f):
            return f.u - x[:, 1] ** 2 * torch.cos(PI * x[:, 1])

        def boundary(x, f):
            return f.u + 1

        # As in the authors' code (ngrad's grids, 30 points per unit length): interior t in linspace(0,1,30) and
        # x in linspace(-1,1,60) without their ends; side x=-1 has t = k/29 (k = 0..28), side x=+1 has
        # t = 1 - k/29; the initial line has linspace(-1,1,41), corners included.
        n_t, n_x = (101, 201) if preset == "paper" else (51, 101)
        initial_points = torch.stack([torch.zeros(41, dtype=torch.float64),
                                      torch.linspace(-1, 1, 41, dtype=torch.float64)], dim=1)
        return PointSets(
            groups=[ResidualGroup("interior", _open_grid(30, 60), interior, lap_dims=(1,)),
                    ResidualGroup("initial", initial_points, initial),
                    ResidualGroup("boundary_left", segment((0, -1), (1, -1), 29), boundary),
                    ResidualGroup("boundary_right", segment((1, 1), (0, 1), 29), boundary)],
            evaluation=full_grid((n_t, n_x), (0, -1), (1, 1)),
            notes={"reference": "pinnbench's Chebyshev/ETDRK4 solution (docs/references.md): changes by < 3e-11 "
                                "on the 101x201 grid under refinement; the community allen_cahn_reference.mat "
                                "differs from it by up to 4.9e-4",
                   "evaluation": "the 101 (t) x 201 (x) reference grid" if preset == "paper"
                                 else "every other point of the 101 x 201 reference grid (51 x 101)"},
        )
