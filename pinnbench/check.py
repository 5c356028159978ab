"""``pinnbench check``: whether the problems and optimizers a plugin file registers keep the harness's contract.

A problem: its residual group names are unique; its sizes agree (the net's input width and the problem's
``dim``, each group's points, the residual's shape, the evaluation points, the exact solution's shape); its
exact solution makes every residual group vanish on the quick points (to 1e-8 of the group's residual at a
random net); and its residual Jacobian, the fast path the optimizers see, agrees with central finite
differences. An optimizer: a few steps on laplace2d return finite θ of the shape and dtype they were given, and
every key it sets in ``info`` / ``spectrum`` is declared in ``info_keys`` / ``spectrum_keys``.
Each check is one :class:`Outcome`, one line.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np
import torch

from .core.derivatives import Fields, taylor_forward
from .core.model import MLP
from .core.objective import Objective
from .core.optimizer import Converged
from .core.problem import PointSets, Problem
from .errors import PinnbenchError
from .execution.instance import build
from .execution.run import ContractError, RunSpec, check_theta, error_line, net_text, resolve_hparams
from .registry import KINDS, Entry, entries, get_optimizer, get_problem, load_plugin, registered_in, scoped

PRESET = "quick"
SEED = 0
EXACT_TOLERANCE = 1e-8
"""The largest |r| of the exact solution on a group, relative to the group's largest |r| at a random net."""
JACOBIAN_TOLERANCE = 1e-5
"""The largest relative error ‖J v - (r(θ + h v) - r(θ - h v)) / 2h‖ / ‖J v‖ over the random directions v."""
FD_STEP = 1e-4
DIRECTIONS = 3
OPTIMIZER_PROBLEM = "laplace2d"
OPTIMIZER_STEPS = 5
SCALARS = (int, float, np.integer, np.floating)
"""The ``info`` values the runner records (any other becomes NaN in the run file)."""


@dataclass(frozen=True)
class Outcome:
    """One check: ``PASS``, ``FAIL`` or ``SKIP``, of what (``problem heat``), and what was found."""

    status: str
    subject: str
    message: str

    def __str__(self) -> str:
        return f"{self.status} {self.subject}: {self.message}"


class _Failed(Exception):
    """The check found what it checks for to be false; the message says how."""


class _Skipped(Exception):
    """The check could not be made; the message says why."""


def _number(x: float, digits: int = 2) -> str:
    """``3e-15``, ``1e-8``: short scientific notation for messages."""
    return re.sub(r"e([+-])0*(\d)", r"e\1\2", f"{x:.{digits}g}").replace("e+", "e")


def _outcome(subject: str, passed: str, failed: str, check: Callable[[], str]) -> Outcome:
    """Run ``check`` (it returns what it found, or raises _Failed / _Skipped); any other exception fails it."""
    try:
        return Outcome("PASS", subject, f"{passed} ({check()})")
    except _Failed as exc:
        return Outcome("FAIL", subject, f"{failed}: {exc}")
    except _Skipped as exc:
        return Outcome("SKIP", subject, f"{passed}: not checked, {exc}")
    except Exception as exc:  # noqa: BLE001 - plugin code failing is a finding, not a crash of the checker
        return Outcome("FAIL", subject, f"{failed}: {error_line(exc)}")


def exact_fields(problem: Problem, x: torch.Tensor, lap_dims: tuple[int, ...] | None) -> Fields:
    """u*, and unless ``lap_dims`` is None ∇u* and Σ_{k in lap_dims} ∂²u*/∂x_k², at x by torch autograd
    (``exact`` is pointwise, so the gradient of the sum is each point's gradient)."""
    x = x.detach().clone().requires_grad_(lap_dims is not None)
    with torch.enable_grad():
        u = problem.exact(x)
        if lap_dims is None:
            return Fields(u.detach(), None, None)
        if u.grad_fn is None:
            raise _Skipped("the exact solution is not differentiable by torch autograd (exact(x) does not "
                           "depend on x through torch operations)")
        (grad,) = torch.autograd.grad(u.sum(), x, create_graph=True)
        lap = torch.zeros_like(u)
        for k in lap_dims:
            if grad.grad_fn is not None:
                (second,) = torch.autograd.grad(grad[:, k].sum(), x, retain_graph=True, allow_unused=True)
                lap = lap + (second[:, k] if second is not None else 0)
    return Fields(u.detach(), grad.detach(), lap.detach())


@dataclass
class _ProblemCheck:
    """The checks of one problem on its quick point sets and a net drawn from a fixed seed."""

    problem: Problem
    sets: PointSets
    model: MLP
    theta: torch.Tensor
    scales: dict[str, float] = field(default_factory=dict)  # each group's max |r| at the random net

    def names(self) -> str:
        names = [g.name for g in self.sets.groups]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if not names:
            raise _Failed("the point sets have no residual group")
        if repeated:
            raise _Failed(f"more than one group is named {', '.join(map(repr, repeated))} (rows of r and J are "
                          "found by group name)")
        return ", ".join(names)

    def sizes(self) -> str:
        dim, layers = self.problem.dim, tuple(self.model.layers)
        wrong = [] if layers[0] == dim else [f"the net {net_text(layers)} takes {layers[0]} inputs, dim is {dim}"]
        for g in self.sets.groups:
            points = g.points
            if not (isinstance(points, torch.Tensor) and points.dim() == 2 and points.shape[1] == dim
                    and points.shape[0] > 0):
                wrong.append(f"group {g.name} has points of shape {_shape(points)}, expected (M, {dim}) with M > 0")
            elif g.lap_dims is not None and not all(0 <= k < dim for k in g.lap_dims):
                wrong.append(f"group {g.name} has lap_dims {g.lap_dims}, expected input indices 0..{dim - 1}")
            else:
                r = _attempt(lambda: g.residual(points, taylor_forward(self.model, self.theta, points, g.lap_dims)))
                if isinstance(r, str):
                    wrong.append(f"group {g.name}: the residual at a random net {r}")
                elif isinstance(r, torch.Tensor) and tuple(r.shape) == (points.shape[0],):
                    self.scales[g.name] = float(r.abs().max())
                else:
                    wrong.append(f"group {g.name}: the residual at {points.shape[0]} points has shape {_shape(r)}, "
                                 f"expected ({points.shape[0]},)")
        evaluation = self.sets.evaluation
        if not (isinstance(evaluation, torch.Tensor) and evaluation.dim() == 2 and evaluation.shape[1] == dim):
            wrong.append(f"the evaluation points have shape {_shape(evaluation)}, expected (M, {dim})")
        else:
            u = _attempt(lambda: self.problem.exact(evaluation[:4]))
            if isinstance(u, str):
                wrong.append(f"exact() at evaluation points {u}")
            elif not (isinstance(u, torch.Tensor) and tuple(u.shape) == (min(4, evaluation.shape[0]),)):
                wrong.append(f"exact() at {min(4, evaluation.shape[0])} points returned shape {_shape(u)}, "
                             f"expected ({min(4, evaluation.shape[0])},)")
        if wrong:
            raise _Failed("; ".join(wrong))
        groups = ", ".join(f"{g.name} {g.points.shape[0]}" for g in self.sets.groups)
        inputs = f"{dim} input{'s' * (dim != 1)}"
        return f"net {net_text(layers)} on {inputs}; points {groups}; {evaluation.shape[0]} evaluation points"

    def exact(self) -> str:
        worst, failures, unchecked, reason = 0.0, [], [], ""
        for g in self.sets.groups:
            try:
                fields = exact_fields(self.problem, g.points, g.lap_dims)
            except _Skipped as exc:
                unchecked.append(g.name)
                reason = str(exc)
                continue
            error = float(g.residual(g.points, fields).abs().max())
            tolerance = EXACT_TOLERANCE * max(self.scales[g.name], torch.finfo(torch.float64).tiny)
            if not error <= tolerance:
                failures.append(f"group {g.name} has max |r| {_number(error)} > {_number(tolerance)} "
                                f"({_number(EXACT_TOLERANCE)} x its max |r| {_number(self.scales[g.name])} at a "
                                "random net)")
            worst = max(worst, error)
        if failures:
            raise _Failed("; ".join(failures))
        if unchecked:
            raise _Skipped(f"groups {', '.join(unchecked)} need derivatives of u*: {reason}")
        return (f"max |r| {_number(worst, 1)} on the quick points; tolerance {_number(EXACT_TOLERANCE)} x each "
                "group's max |r| at a random net")

    def jacobian(self) -> str:
        objective = Objective(self.model, self.sets.groups)
        jac, r = objective.jacobian(self.theta)
        direct = objective.residuals(self.theta)
        if not torch.allclose(r, direct, rtol=1e-12, atol=1e-12 * float(direct.abs().max())):
            gap = float((r - direct).abs().max())
            raise _Failed(f"the r returned with J differs from residuals(θ) by {_number(gap)}")
        generator = torch.Generator().manual_seed(SEED)
        worst, where = 0.0, ""
        for _ in range(DIRECTIONS):
            v = torch.randn(self.theta.shape, generator=generator, dtype=self.theta.dtype)
            v /= v.norm()
            jv = jac @ v
            fd = (objective.residuals(self.theta + FD_STEP * v) - objective.residuals(self.theta - FD_STEP * v)) \
                / (2 * FD_STEP)
            for name, rows in objective.group_slices.items():
                scale = max(float(jv[rows].norm()), float(fd[rows].norm()), torch.finfo(jv.dtype).tiny)
                error = float((jv[rows] - fd[rows]).norm()) / scale
                if not error <= worst:
                    worst, where = error, name
        if not worst < JACOBIAN_TOLERANCE:
            raise _Failed(f"relative error {_number(worst)} on group {where} (tolerance {_number(JACOBIAN_TOLERANCE)}; "
                          f"central differences with step {_number(FD_STEP)} along {DIRECTIONS} random unit "
                          "directions)")
        return f"max relative error {_number(worst, 1)} on {DIRECTIONS} random directions"


def _attempt(call: Callable[[], object]) -> object:
    """``call()``, or ``raised <exception>`` (a str) when it raises."""
    try:
        return call()
    except Exception as exc:  # noqa: BLE001 - plugin code failing is a finding
        return f"raised {error_line(exc)}"


def _shape(value: object) -> str:
    return str(tuple(value.shape)) if isinstance(value, torch.Tensor) else f"of a {type(value).__name__}"


def check_problem(name: str) -> Iterator[Outcome]:
    """The checks of problem ``name``; the exact-solution and Jacobian checks need unique names and sizes that
    agree."""
    subject = f"problem {name}"
    try:
        problem = get_problem(name)
        sets = problem.point_sets(PRESET, torch.Generator().manual_seed(SEED))
        model = MLP(tuple(problem.layers))
    except Exception as exc:  # noqa: BLE001
        yield Outcome("FAIL", subject, f"cannot build its quick point sets and default net: {error_line(exc)}")
        return
    check = _ProblemCheck(problem, sets, model, model.init(torch.Generator().manual_seed(SEED)))
    structure = [_outcome(subject, "residual group names are unique", "residual group names are not unique",
                          check.names),
                 _outcome(subject, "sizes agree", "sizes disagree", check.sizes)]
    yield from structure
    numeric = [("exact solution satisfies the PDE", "exact solution does not satisfy the PDE", check.exact),
               ("residual Jacobian agrees with central finite differences",
                "residual Jacobian disagrees with central finite differences", check.jacobian)]
    for passed, failed, run in numeric:
        if all(o.status == "PASS" for o in structure):
            yield _outcome(subject, passed, failed, run)
        else:
            yield Outcome("SKIP", subject, f"{passed}: not checked, the names and sizes above must hold first")


@dataclass
class _OptimizerCheck:
    """A few steps of one optimizer on laplace2d, and the keys it set in ``info`` and ``spectrum``."""

    name: str
    steps: int = 0
    info: dict[str, object] = field(default_factory=dict)  # each key set, with a value it had
    spectrum: set[str] = field(default_factory=set)

    def run(self) -> str:
        spec = RunSpec(OPTIMIZER_PROBLEM, self.name, SEED)
        optimizer = get_optimizer(self.name, **resolve_hparams(spec))
        instance = build(OPTIMIZER_PROBLEM, SEED, PRESET, device="cpu")
        objective, theta = instance.objective, instance.theta0.clone()
        stop = ""
        try:
            optimizer.reset(objective, theta)
            while self.steps < OPTIMIZER_STEPS:
                new = optimizer.step(objective, theta)
                try:
                    new = check_theta(new, theta)
                except ContractError as exc:
                    raise _Failed(f"step {self.steps + 1}: {exc}") from None
                if not bool(torch.isfinite(new).all()):
                    raise _Failed(f"step {self.steps + 1} returned a θ with {int((~torch.isfinite(new)).sum())} "
                                  "non-finite entries")
                theta = new
                self.steps += 1
                self.info.update(getattr(optimizer, "info", None) or {})
                self.spectrum.update(getattr(optimizer, "spectrum", None) or {})
        except Converged as exc:
            stop = f", then Converged: {exc}"
        except _Failed:
            raise
        except Exception as exc:  # noqa: BLE001
            raise _Failed(f"{'reset' if self.steps == 0 else f'step {self.steps + 1}'} raised {error_line(exc)}") \
                from None
        return (f"{self.steps} steps from a seeded net{stop}: shape {tuple(theta.shape)}, "
                f"{str(theta.dtype).removeprefix('torch.')}")

    def _declared(self, kind: str, keys: Iterable[str], declared: dict[str, str]) -> str:
        if self.steps == 0:
            raise _Skipped("no step completed")
        undeclared = sorted(set(keys) - set(declared))
        if undeclared:
            raise _Failed(f"{', '.join(undeclared)} not in {kind}_keys (declared: {', '.join(declared) or 'none'})")
        return ", ".join(sorted(keys)) or "none set"

    def info_keys(self) -> str:
        found = self._declared("info", self.info, entries("optimizer")[self.name].cls.info_keys)
        wrong = sorted(k for k, v in self.info.items() if not isinstance(v, SCALARS))
        if wrong:
            raise _Failed(f"{', '.join(f'{k} is a {type(self.info[k]).__name__}' for k in wrong)}: the runner "
                          "records int and float values only (use float(...))")
        return found

    def spectrum_keys(self) -> str:
        return self._declared("spectrum", self.spectrum, entries("optimizer")[self.name].cls.spectrum_keys)


def check_optimizer(name: str) -> Iterator[Outcome]:
    """The checks of optimizer ``name``: its steps, then the keys of ``info`` and ``spectrum`` they set."""
    subject = f"optimizer {name}"
    check = _OptimizerCheck(name)
    yield _outcome(subject, f"steps on {OPTIMIZER_PROBLEM} keep θ finite, its shape and dtype",
                   f"steps on {OPTIMIZER_PROBLEM} break the θ contract", check.run)
    yield _outcome(subject, "info keys are declared", "info keys are not declared", check.info_keys)
    yield _outcome(subject, "spectrum keys are declared", "spectrum keys are not declared", check.spectrum_keys)


def _plugin_file(text: str) -> Path:
    path = Path(text)
    if path.suffix != ".py":
        raise PinnbenchError(f"{text!r} is not a .py file: expected a plugin file that registers problems or "
                             "optimizers")
    if not path.is_file():
        raise PinnbenchError(f"plugin {text!r} not found: expected a .py file")
    return path


def check_files(paths: Iterable[str], builtin: bool = False) -> Iterator[Outcome]:
    """Check what each plugin file registers (and, with ``builtin``, every built-in problem and optimizer), in a
    scope that leaves the registry as it was. Bad input (a file missing, not a .py, failing to import or
    registering nothing) raises a one-line PinnbenchError before any check runs."""
    files = [_plugin_file(p) for p in paths]
    with scoped():
        targets: dict[tuple[str, str], Entry] = {}
        for file in files:
            load_plugin(file)
            found = registered_in(file)
            if not found:
                raise PinnbenchError(f"{str(file)!r} registers no problem and no optimizer: expected a .py file "
                                     "that uses @register_problem or @register_optimizer")
            targets.update(((kind, entry.name), entry) for kind, entry in found)
        if builtin:
            targets.update(((kind, name), entry) for kind in KINDS for name, entry in entries(kind).items()
                           if entry.source == "builtin")
        for kind, name in targets:
            yield from check_problem(name) if kind == "problem" else check_optimizer(name)
