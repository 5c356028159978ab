"""A problem instance: a problem bound to a seed, its point sets, its net, a device and a dtype."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..core.model import MLP
from ..core.objective import Objective
from ..core.problem import PointSets, Problem, ResidualGroup
from ..errors import PinnbenchError
from ..protocol import Protocol, load_protocol
from ..registry import get_problem

_POINTS_STREAM = 0x5EED  # points and θ0 come from two independent streams of the same seed


def resolve_device(name: str) -> torch.device:
    """'auto' picks cuda when available, else cpu; 'cuda' without a GPU is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise PinnbenchError(f"device {name!r} requested but CUDA is not available; accepted here: cpu, auto")
    return torch.device(name)


@dataclass
class ProblemInstance:
    """What a run needs: ``objective``, ``theta0`` and ``evaluate(theta)`` (errors on the evaluation set)."""

    problem: Problem
    model: MLP
    objective: Objective
    theta0: torch.Tensor
    point_sets: PointSets
    evaluation_points: torch.Tensor
    exact_values: torch.Tensor

    def independent_copy(self) -> "ProblemInstance":
        """A copy that shares nothing mutable with this one (its own model, objective and point tensors): the
        harness evaluates with it, out of reach of an optimizer that edits the objective it was given."""
        model = MLP(tuple(self.model.layers))
        groups = [ResidualGroup(g.name, g.points.clone(), g.residual, g.lap_dims) for g in self.objective.groups]
        objective = Objective(model, groups, device=self.objective.device, dtype=self.objective.dtype,
                              derivatives=self.objective.derivatives)
        return ProblemInstance(self.problem, model, objective, self.theta0.clone(), self.point_sets,
                               self.evaluation_points.clone(), self.exact_values.clone())

    def predict(self, theta: torch.Tensor) -> torch.Tensor:
        """u_θ at the evaluation points."""
        with torch.no_grad():
            return self.model.forward(theta, self.evaluation_points)

    def evaluate(self, theta: torch.Tensor) -> dict[str, float]:
        """Absolute RMS error ``l2_abs = sqrt(mean((u_θ - u*)²))`` and ``l2_rel = l2_abs / sqrt(mean(u*²))``."""
        err = self.predict(theta) - self.exact_values
        l2_abs = float(torch.sqrt(torch.mean(err * err)))
        scale = float(torch.sqrt(torch.mean(self.exact_values ** 2)))
        return {"l2_abs": l2_abs, "l2_rel": l2_abs / scale if scale > 0 else float("nan")}


def build(problem: str | Problem, seed: int = 6865, protocol: str | Protocol = "quick",
          device: str | None = None, layers: tuple[int, ...] | None = None) -> ProblemInstance:
    """Instantiate ``problem`` for ``seed`` under ``protocol`` (its point preset, device, dtype, derivative path)."""
    proto = load_protocol(protocol) if isinstance(protocol, str) else protocol
    prob = get_problem(problem) if isinstance(problem, str) else problem
    dev = resolve_device(device or proto.device)
    dtype = getattr(torch, proto.dtype)
    sets = prob.point_sets(proto.points, torch.Generator().manual_seed(seed ^ _POINTS_STREAM))
    model = MLP(tuple(layers or prob.layers))
    objective = Objective(model, sets.groups, device=dev, dtype=dtype, derivatives=proto.derivatives)
    theta0 = model.init(torch.Generator().manual_seed(seed), dtype=dtype, device=dev)
    x_eval = sets.evaluation.to(device=dev, dtype=dtype)
    exact = prob.exact(sets.evaluation).to(device=dev, dtype=dtype)
    return ProblemInstance(prob, model, objective, theta0, sets, x_eval, exact)

