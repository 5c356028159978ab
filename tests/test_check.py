"""`pinnbench check`: the built-in problems and optimizers pass, planted bugs fail on the check that names them,
and bad input is one line with exit 2."""
import pytest

from pinnbench import registry
from pinnbench.check import check_files
from pinnbench.cli import main

from conftest import REPO

PLUGINS = REPO / "tests" / "plugins"
PROBLEM_CHECKS = ["residual group names are unique", "sizes agree", "exact solution satisfies the PDE",
                  "residual Jacobian agrees with central finite differences"]
OPTIMIZER_CHECKS = ["steps on laplace2d keep θ finite, its shape and dtype", "info keys are declared",
                    "spectrum keys are declared"]
OPTIMIZER = '''
import torch
from pinnbench import Optimizer, register_optimizer

@register_optimizer("test-undeclared")
class Undeclared(Optimizer):
    info_keys = {{"loss": "the loss"}}

    def step(self, objective, theta):
        loss, grad = objective.loss_and_grad(theta)
        self.info = {{"loss": float(loss), "gradient_norm": float(grad.norm())}}
        return (theta - 1e-3 * grad){cast}
'''
NUMPY_EXACT = '''
import numpy as np
import torch
from pinnbench import PointSets, Problem, ResidualGroup, register_problem
from pinnbench.problem import PI, full_grid, interior_grid, square_boundary

@register_problem("test-numpy-exact")
class NumpyExact(Problem):
    dim, layers = 2, (2, 8, 1)

    def exact(self, x):
        x = x.detach().numpy()
        return torch.from_numpy(np.sin(np.pi * x[:, 0]) * np.sin(np.pi * x[:, 1]))

    def point_sets(self, preset, generator):
        def interior(x, f):
            return f.lap + 2 * PI**2 * torch.sin(PI * x[:, 0]) * torch.sin(PI * x[:, 1])

        return PointSets([ResidualGroup("interior", interior_grid(10, (0, 0), (1, 1)), interior, lap_dims=(0, 1)),
                          ResidualGroup("boundary", square_boundary(9), lambda x, f: f.u)],
                         full_grid((10, 10), (0, 0), (1, 1)))
'''
BAD_SIZES = '''
from pinnbench import PointSets, Problem, ResidualGroup, register_problem
from pinnbench.problem import full_grid, interior_grid

@register_problem("test-bad-sizes")
class BadSizes(Problem):
    dim, layers = 2, (2, 8, 1)

    def exact(self, x):
        return x[:, 0]

    def point_sets(self, preset, generator):
        points = interior_grid(10, (0, 0), (1, 1))
        return PointSets([ResidualGroup("interior", points, lambda x, f: f.u[:3]),
                          ResidualGroup("interior", points, lambda x, f: f.u, lap_dims=(0, 2))],
                         full_grid((10, 10), (0, 0), (1, 1)))
'''


def _lines(capsys) -> list[str]:
    return capsys.readouterr().out.splitlines()


def test_builtin_files_pass(capsys):
    """laplace2d, heat and every built-in optimizer, named by their files."""
    files = [REPO / "problems" / "laplace2d.py", REPO / "problems" / "heat.py",
             *sorted((REPO / "optimizers").glob("*.py"))]
    assert main(["check", *map(str, files)]) == 0
    lines = _lines(capsys)
    optimizers = [name for name, entry in registry.entries("optimizer").items() if entry.source == "builtin"]
    assert {"adam", "anagram", "lbfgs"} <= set(optimizers)
    expected = {f"PASS problem {name}: {check} (" for name in ("laplace2d", "heat") for check in PROBLEM_CHECKS}
    expected |= {f"PASS optimizer {name}: {check} (" for name in optimizers for check in OPTIMIZER_CHECKS}
    assert len(lines) == len(expected) and {line[:line.index(" (") + 2] for line in lines} == expected
    assert "PASS optimizer anagram: spectrum keys are declared (coefficients, rce, singular_values)" in lines


@pytest.mark.slow
def test_every_builtin_problem_and_optimizer_passes(capsys):
    assert main(["check", "--builtin"]) == 0
    lines = _lines(capsys)
    subjects = {line.split(":")[0].removeprefix("PASS ") for line in lines}
    assert subjects == {f"{kind} {name}" for kind in registry.KINDS for name in registry.entries(kind)}
    assert all(line.startswith("PASS ") for line in lines)


def test_planted_broken_problem_fails_the_exact_solution_check_only(capsys):
    assert main(["check", str(PLUGINS / "shifted_laplace2d.py")]) == 1
    lines = _lines(capsys)
    assert len(lines) == 4 and [line.split()[0] for line in lines].count("FAIL") == 1
    (fail,) = [line for line in lines if line.startswith("FAIL")]
    assert fail.startswith("FAIL problem shifted-laplace2d: exact solution does not satisfy the PDE: group interior "
                           "has max |r| 0.001 > ")
    assert "shifted-laplace2d" not in registry.entries("problem")  # the check left the registry as it was


def test_repeated_group_names_and_wrong_sizes_fail_and_skip_the_numeric_checks(tmp_path, capsys):
    plugin = tmp_path / "bad_sizes.py"
    plugin.write_text(BAD_SIZES)
    assert main(["check", str(plugin)]) == 1
    assert _lines(capsys) == [
        "FAIL problem test-bad-sizes: residual group names are not unique: more than one group is named 'interior' "
        "(rows of r and J are found by group name)",
        "FAIL problem test-bad-sizes: sizes disagree: group interior: the residual at 64 points has shape (3,), "
        "expected (64,); group interior has lap_dims (0, 2), expected input indices 0..1",
        *[f"SKIP problem test-bad-sizes: {check}: not checked, the names and sizes above must hold first"
          for check in PROBLEM_CHECKS[2:]]]


def test_an_exact_solution_autograd_cannot_differentiate_skips_the_groups_that_need_it(tmp_path, capsys):
    plugin = tmp_path / "numpy_exact.py"
    plugin.write_text(NUMPY_EXACT)
    assert main(["check", str(plugin)]) == 0
    assert _lines(capsys)[2] == (
        "SKIP problem test-numpy-exact: exact solution satisfies the PDE: not checked, groups interior need "
        "derivatives of u*: the exact solution is not differentiable by torch autograd (exact(x) does not depend "
        "on x through torch operations)")


def test_an_undeclared_info_key_fails_that_check(tmp_path):
    plugin = tmp_path / "undeclared.py"
    plugin.write_text(OPTIMIZER.format(cast=""))
    steps, info, spectrum = check_files([str(plugin)])
    assert (steps.status, spectrum.status) == ("PASS", "PASS")
    assert str(info) == ("FAIL optimizer test-undeclared: info keys are not declared: gradient_norm not in "
                         "info_keys (declared: loss)")


def test_a_step_that_changes_the_dtype_fails_the_steps_check(tmp_path):
    plugin = tmp_path / "float32.py"
    plugin.write_text(OPTIMIZER.format(cast=".to(torch.float32)"))
    steps, info, spectrum = check_files([str(plugin)])
    assert str(steps) == ("FAIL optimizer test-undeclared: steps on laplace2d break the θ contract: step 1: step "
                          "returned a tensor of shape (129,), float32 on cpu, expected shape (129,), float64 on cpu")
    assert (info.status, spectrum.status) == ("SKIP", "SKIP")


@pytest.mark.parametrize("args, message", [
    (["check"], "choose what to check"),
    (["check", "{tmp}/missing.py"], "plugin '{tmp}/missing.py' not found"),
    (["check", "{tmp}/notes.txt"], "'{tmp}/notes.txt' is not a .py file"),
    (["check", "{tmp}/nothing.py"], "'{tmp}/nothing.py' registers no problem and no optimizer"),
    (["check", str(PLUGINS / "broken_import.py")], "failed to import: ModuleNotFoundError"),
])
def test_bad_input_is_one_line_exit_2(tmp_path, capsys, args, message):
    (tmp_path / "notes.txt").write_text("not python\n")
    (tmp_path / "nothing.py").write_text("import pinnbench\n")
    assert main([arg.format(tmp=tmp_path) for arg in args]) == 2
    captured = capsys.readouterr()
    assert not captured.out and captured.err.count("\n") == 1 and message.format(tmp=tmp_path) in captured.err


def _readme_block(marker: str) -> str:
    """The fenced block after ``<!-- marker -->`` in README.md, without its fences."""
    after = (REPO / "README.md").read_text().split(f"<!-- {marker} -->\n", 1)[1]
    return after.split("```", 2)[1].split("\n", 1)[1]


def test_readme_problem_example_is_the_plugin_and_passes_as_shown(capsys):
    assert _readme_block("my-problem") == (PLUGINS / "my_problem.py").read_text()
    assert main(["check", str(PLUGINS / "my_problem.py")]) == 0
    shown = [line for line in _readme_block("my-problem-check").splitlines() if line.startswith(("PASS", "FAIL"))]
    lines = _lines(capsys)
    assert [line.split(" (")[0] for line in lines] == [line.split(" (")[0] for line in shown] and len(shown) == 4
    assert lines[1] == shown[1]  # the sizes line has no measured number
