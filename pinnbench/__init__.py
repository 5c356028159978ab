"""pinnbench: an honest benchmark harness for PINN optimizers."""
__version__ = "0.1.0"

from .allocator import tune_allocator

tune_allocator()  # before any tensor is allocated: see pinnbench/allocator.py

from .derivatives import Fields
from .errors import PinnbenchError
from .model import MLP
from .objective import Objective
from .optimizer import Converged, Optimizer
from .problem import PointSets, Problem, ResidualGroup
from .registry import get_optimizer, get_problem, register_optimizer, register_problem
from .instance import ProblemInstance, build
from .store import load_results, load_runs
from .api import run

__all__ = [
    "Converged", "Fields", "MLP", "Objective", "Optimizer", "PinnbenchError", "PointSets", "Problem",
    "ProblemInstance", "ResidualGroup", "build", "get_optimizer", "get_problem", "load_results", "load_runs",
    "register_optimizer", "register_problem", "run", "__version__",
]
