"""The package's layout: layers import downwards only (no cycle, no upward import, function-level imports
included), the plugin-facing API is light to import, and the former module names still work."""
import ast
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

PACKAGE = REPO / "pinnbench"
LAYERS = [  # lowest first; a module may import its own layer and the ones below
    ("pinnbench._version", "pinnbench.errors", "pinnbench.hyperparameters", "pinnbench.allocator"),
    ("pinnbench.core",),
    ("pinnbench.registry", "pinnbench.protocol"),
    ("pinnbench.store", "pinnbench.references", "pinnbench.statistics"),
    ("pinnbench.execution",),
    ("pinnbench.report", "pinnbench.perf", "pinnbench.plot_spectrum"),
    ("pinnbench.api", "pinnbench.check", "pinnbench.cli", "pinnbench.compare", "pinnbench.__main__",
     "pinnbench.runner"),
]


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(REPO).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Every pinnbench module ``name`` imports, at the top or inside functions."""
    is_package = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        targets = []
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            targets = [f"{target}.{a.name}" if f"{target}.{a.name}" in modules else target for a in node.names]
        elif isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        found.update(t for t in targets if t in modules and t != name)
    return found


def _layer(name: str) -> int | None:
    for rank, prefixes in enumerate(LAYERS):
        if any(name == p or name.startswith(p + ".") for p in prefixes):
            return rank
    return None


def test_no_import_cycle_and_no_upward_import():
    modules = _modules()
    graph = {name: _imports(name, path, modules) for name, path in modules.items()}
    upward = [(a, b) for a, deps in graph.items() for b in deps
              if a != "pinnbench" and b != "pinnbench" and _layer(a) is not None and _layer(b) is not None
              and _layer(b) > _layer(a)]
    assert not upward
    unplaced = [name for name in modules if name != "pinnbench" and _layer(name) is None]
    assert not unplaced  # every module belongs to a layer
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for dep in graph[node]:
            assert state.get(dep) != 1, f"import cycle: {' -> '.join(trail + [node, dep])}"
            if dep not in state:
                visit(dep, trail + [node])
        state[node] = 2

    for name in graph:
        if name not in state:
            visit(name, [])


def test_the_plugin_api_is_light():
    probe = ("import sys; from pinnbench import Optimizer, Problem, register_optimizer, get_optimizer; "
             "print(sorted(m for m in ('pandas', 'dask', 'distributed', 'tabulate', 'matplotlib', 'seaborn') "
             "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("former, current", [
    ("pinnbench.linalg", "pinnbench.core.linalg"), ("pinnbench.spectral", "pinnbench.core.spectral"),
    ("pinnbench.linesearch", "pinnbench.core.grid_search"), ("pinnbench.problem", "pinnbench.core.problem"),
    ("pinnbench.backends", "pinnbench.execution.backends"), ("pinnbench.isolation", "pinnbench.execution.isolation"),
    ("pinnbench.probe", "pinnbench.perf.probe"),
])
def test_former_module_names_are_the_moved_modules(former, current):
    import importlib

    assert importlib.import_module(former) is importlib.import_module(current)
    from pinnbench.linesearch import grid_line_search, squared_exponent_grid  # noqa: F401 - other branches use them
    import pinnbench

    for name in ("build", "run", "load_results", "load_runs", "get_problem", "get_optimizer", "register_problem",
                 "register_optimizer", "Optimizer", "Problem", "Converged", "PinnbenchError"):
        assert getattr(pinnbench, name) is not None
