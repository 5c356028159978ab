"""pinnbench: an honest benchmark harness for PINN optimizers.

The plugin-facing API (``Optimizer``, ``Problem``, ``register_*``, ``get_*``, the objective and the net) imports
torch and the numerical core only; ``run``, ``load_results`` and ``load_runs`` load the execution and results
layers (pandas, the backends) the first time they are used.
"""
import importlib
import importlib.abc
import importlib.util
import sys

from ._version import __version__
from .allocator import tune_allocator

tune_allocator()  # before any tensor is allocated: see pinnbench/allocator.py

# The modules that moved into the layers keep their former names (other code imports them): importing
# ``pinnbench.linalg`` gives the very module ``pinnbench.core.linalg`` (one module object, so monkeypatching
# either name patches both).
MOVED = {
    **{f"pinnbench.{name}": f"pinnbench.core.{name}" for name in
       ("model", "derivatives", "objective", "problem", "optimizer", "linalg", "spectral", "wolfe")},
    "pinnbench.linesearch": "pinnbench.core.grid_search",
    **{f"pinnbench.{name}": f"pinnbench.execution.{name}" for name in
       ("instance", "backends", "isolation", "claims", "environment")},
    "pinnbench.probe": "pinnbench.perf.probe",
}


class _MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds a former module name and hands out the module that now holds its code."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname in MOVED:
            return importlib.util.spec_from_loader(fullname, self)
        return None

    def create_module(self, spec):
        return importlib.import_module(MOVED[spec.name])

    def exec_module(self, module):
        pass


if not any(isinstance(finder, _MovedModules) for finder in sys.meta_path):
    sys.meta_path.insert(0, _MovedModules())

from .core.derivatives import Fields  # noqa: E402 - after the finder: plugins may use the former names
from .core.model import MLP  # noqa: E402
from .core.objective import Objective  # noqa: E402
from .core.optimizer import Converged, Optimizer  # noqa: E402
from .core.problem import PointSets, Problem, ResidualGroup  # noqa: E402
from .errors import HyperparameterError, PinnbenchError  # noqa: E402
from .execution.instance import ProblemInstance, build  # noqa: E402
from .registry import get_optimizer, get_problem, register_optimizer, register_problem  # noqa: E402

_LAZY = {"run": ("api", "run"), "compare": ("api", "compare"), "load_results": ("store", "load_results"),
         "load_runs": ("store", "load_runs")}

__all__ = [
    "Converged", "Fields", "HyperparameterError", "MLP", "Objective", "Optimizer", "PinnbenchError", "PointSets",
    "Problem", "ProblemInstance", "ResidualGroup", "build", "get_optimizer", "get_problem", "load_results",
    "load_runs", "register_optimizer", "register_problem", "run", "__version__",
]


def __getattr__(name: str):
    """The heavier names, imported on first use (PEP 562)."""
    if name in _LAZY:
        module, attribute = _LAZY[name]
        value = getattr(importlib.import_module(f".{module}", __name__), attribute)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'pinnbench' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
