"""pinnbench: an honest benchmark harness for PINN optimizers."""
from .derivatives import Fields
from .errors import PinnbenchError
from .model import MLP
from .objective import Objective
from .optimizer import Converged, Optimizer
from .problem import PointSets, Problem, ResidualGroup
from .registry import get_optimizer, get_problem, register_optimizer, register_problem

__version__ = "0.1.0"

__all__ = [
    "Converged", "Fields", "MLP", "Objective", "Optimizer", "PinnbenchError", "PointSets", "Problem",
    "ResidualGroup", "get_optimizer", "get_problem", "register_optimizer", "register_problem", "__version__",
]
