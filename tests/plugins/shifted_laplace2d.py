"""A broken laplace2d for tests/test_check.py: its interior residual is off by a constant (+1e-3), so the exact
solution no longer solves it; everything else is laplace2d's."""
from pinnbench import PointSets, ResidualGroup, register_problem
from pinnbench.registry import lookup


@register_problem("shifted-laplace2d")
class ShiftedLaplace2D(lookup("problem", "laplace2d").cls):
    description = "laplace2d with its interior residual off by 1e-3 (a planted bug)"

    def point_sets(self, preset: str, generator) -> PointSets:
        sets = super().point_sets(preset, generator)
        interior = sets.groups[0]
        sets.groups[0] = ResidualGroup(interior.name, interior.points, lambda x, f: interior.residual(x, f) + 1e-3,
                                       interior.lap_dims)
        return sets
