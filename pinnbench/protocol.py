"""The fixed protocol under which runs are executed: seeds, wall-clock budget, step cap, points, device, dtype.

Two presets (``quick``, ``paper``) and protocol files (TOML or JSON) that set any of the same keys, optionally
on top of a preset (``extends = "quick"``).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import PinnbenchError

MISSION_OPTIMIZERS = ("adam", "lbfgs", "engd", "anagram", "amstramgram", "ssbroyden")
"""What ``pinnbench run --all`` runs under ``quick``: the papers' six (the others on request, ``-o NAME``)."""
QUICK_STEP_CAP = 1_000_000
"""quick's step cap, which no run reaches in its budget: every quick run ends on its budget (or converges)."""
QUICK_BUDGETS = (("allen_cahn", 40.0), ("burgers", 30.0), ("heat", 20.0), ("laplace2d", 20.0), ("laplace5d", 20.0),
                 ("nonlinear_poisson", 30.0))
QUICK_NETS = (("burgers", (2, 32, 32, 1)), ("heat", (2, 24, 24, 1)), ("laplace2d", (2, 24, 24, 1)))
"""quick's optimizer seconds per run, per problem (docs/quick-protocol.md: how each was chosen, measured)."""
PAPER_SEEDS = (6865, 8369, 4785, 6705, 5729, 4353, 3409, 3601, 5681, 1857)
DTYPES = ("float64", "float32")
DEVICES = ("cpu", "cuda", "auto")
POINT_PRESETS = ("paper", "quick")

_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|sec|m|min|h)?\s*$")
_UNIT_SECONDS = {None: 1.0, "ms": 1e-3, "s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}


def parse_duration(text: str | float | int, what: str = "budget") -> float:
    """Seconds from '30s', '5m', '1.5h', '250ms' or a bare number of seconds; must be positive and finite."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        seconds = float(text)
    else:
        match = _DURATION.match(str(text)) if isinstance(text, str) else None
        if not match:
            raise PinnbenchError(f"invalid {what} {text!r}: expected a duration like 30s, 5m, 1.5h or 250ms")
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if not 0 < seconds < 1e9:
        raise PinnbenchError(f"invalid {what} {text!r}: must be a positive duration like 30s, 5m, 1.5h")
    return seconds


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


MAX_SEED = 2**63 - 1
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}$")


@dataclass(frozen=True)
class Protocol:
    """Everything that must be equal for two runs to be compared.

    budget: optimizer seconds per run (evaluation is never charged). steps: a step cap per run; None takes the
    optimizer's published count if it has one, else the problem's. suite_budget: if set, a suite of n runs gives
    each at most suite_budget / n seconds, so a whole suite keeps to its time as problems and optimizers are added.
    nets: (problem, layers) pairs, the net each named problem trains instead of its default.
    problem_steps: (problem, steps) pairs that replace the problem's published step count (an optimizer with a
    published count of its own, Adam or SSBroyden, keeps it; ``steps`` overrides both).
    problem_budgets: (problem, seconds) pairs, a budget per problem that takes precedence over ``budget``.
    hyperparameters: (optimizer, problem, ((key, value), ...)) triples, settings pinned for one optimizer on one
    problem (on top of the problem's published defaults; the user's settings still win).
    """

    name: str = "quick"
    seeds: tuple[int, ...] = (6865,)
    budget: float = 10.0
    steps: int | None = None
    points: str = "quick"
    device: str = "cpu"
    dtype: str = "float64"
    threads: int | None = None
    derivatives: str = "taylor"
    diagnostics_every: int = 10
    suite_budget: float | None = None
    problems: tuple[str, ...] | None = None
    optimizers: tuple[str, ...] | None = None
    nets: tuple[tuple[str, tuple[int, ...]], ...] = ()
    problem_steps: tuple[tuple[str, int], ...] = ()
    problem_budgets: tuple[tuple[str, float], ...] = ()
    hyperparameters: tuple[tuple[str, str, tuple[tuple[str, Any], ...]], ...] = ()
    description: str = field(default="", compare=False)

    def net_for(self, problem: str) -> tuple[int, ...] | None:
        """The net this protocol pins for ``problem`` (None: the problem's default)."""
        return dict(self.nets).get(problem)

    def steps_for(self, problem: str) -> int | None:
        """The step count this protocol gives ``problem`` in place of its published one (None: none)."""
        return dict(self.problem_steps).get(problem)

    def budget_for(self, problem: str) -> float:
        """The budget of ``problem``: its own entry in ``problem_budgets``, else ``budget``."""
        return dict(self.problem_budgets).get(problem, self.budget)

    def hyperparameters_for(self, optimizer: str, problem: str) -> dict[str, Any]:
        """The settings this protocol pins for ``optimizer`` on ``problem``."""
        return {k: v for o, p, items in self.hyperparameters if o == optimizer and p == problem for k, v in items}

    def replace(self, **changes: Any) -> "Protocol":
        return _validated(dataclasses.replace(self, **changes))

    @property
    def comparable_settings(self) -> dict[str, Any]:
        """The settings that decide whether two runs are comparable (seeds and name excluded)."""
        settings = {k: getattr(self, k) for k in ("budget", "steps", "points", "device", "dtype", "threads",
                                                  "derivatives")}
        per_problem = ("nets", "problem_steps", "problem_budgets", "hyperparameters")
        settings.update({k: getattr(self, k) for k in per_problem if getattr(self, k)})  # empty: ids unchanged
        return settings

    @property
    def protocol_id(self) -> str:
        """A short hash of :attr:`comparable_settings`: runs with different ids are never averaged together."""
        blob = json.dumps(self.comparable_settings, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:10]

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


PRESETS: dict[str, Protocol] = {
    "quick": Protocol(
        name="quick", seeds=(6865,), budget=30.0, steps=QUICK_STEP_CAP, points="quick", threads=1,
        optimizers=MISSION_OPTIMIZERS,
        nets=QUICK_NETS, problem_budgets=QUICK_BUDGETS,
        description="the papers' story in about 10 minutes on 2 cores: one seed, runs of one thread, one per core, "
                    "20-40 s per run by problem, every run ends on its budget; laplace2d and heat on [2,24,24,1], "
                    "burgers on [2,32,32,1] and t <= 0.25; laplace2d, heat and nonlinear_poisson on 400-point grids"),
    "paper": Protocol(
        name="paper", seeds=PAPER_SEEDS, budget=1800.0, points="paper",
        description="the papers' ten seeds, point sets, nets and step counts; 30 min per run at most"),
    "amstramgram": Protocol(
        name="amstramgram", seeds=PAPER_SEEDS[:3], budget=300.0, points="paper", threads=1, diagnostics_every=5,
        optimizers=("amstramgram", "anagram", "ssbroyden"),
        nets=(("heat", (2, 24, 24, 1)), ("laplace2d", (2, 32, 32, 1))),
        problem_steps=(("laplace5d", 100),),
        problem_budgets=(("heat", 120.0), ("laplace2d", 240.0), ("laplace5d", 600.0)),
        hyperparameters=(("amstramgram", "heat", (("precision", 1e-14),)),
                         ("amstramgram", "laplace2d", (("precision", 1e-14),))),
        description="the AMStraMGRAM study: paper points, 3 seeds, 1 thread; laplace2d on [2,32,32,1], heat on "
                    "[2,24,24,1] (the smallest nets measured to reach machine precision), precision 1e-14; "
                    "laplace5d at 100 equal steps"),
}

_FIELDS = {f.name for f in dataclasses.fields(Protocol)} | {"extends"}


def _validated(p: Protocol) -> Protocol:
    def bad(key: str, value: Any, accepted: str) -> PinnbenchError:
        return PinnbenchError(f"protocol {p.name!r}: invalid {key} {value!r}; accepted: {accepted}")
    if not isinstance(p.name, str) or not NAME.match(p.name):
        raise bad("name", p.name, "1-64 letters, digits, '_', '-', '.' or '+', starting with a letter or digit")
    if not isinstance(p.points, str) or p.points not in POINT_PRESETS:
        raise bad("points", p.points, ", ".join(POINT_PRESETS))
    if not isinstance(p.device, str) or (p.device not in DEVICES and not re.fullmatch(r"cuda:\d+", p.device)):
        raise bad("device", p.device, ", ".join(DEVICES) + ", cuda:N")
    if not isinstance(p.dtype, str) or p.dtype not in DTYPES:
        raise bad("dtype", p.dtype, ", ".join(DTYPES))
    if p.steps is not None and (not _is_int(p.steps) or p.steps < 1):
        raise bad("steps", p.steps, "a positive integer")
    if (not isinstance(p.seeds, tuple) or not p.seeds
            or not all(_is_int(s) and 0 <= s <= MAX_SEED for s in p.seeds)):
        raise bad("seeds", p.seeds, "a non-empty list of integers from 0 to 2^63 - 1")
    if p.threads is not None and (not _is_int(p.threads) or p.threads < 1):
        raise bad("threads", p.threads, "a positive integer")
    if p.derivatives not in ("taylor", "generic"):
        raise bad("derivatives", p.derivatives, "taylor, generic")
    if not _is_int(p.diagnostics_every) or p.diagnostics_every < 1:
        raise bad("diagnostics_every", p.diagnostics_every, "a positive integer")
    for key in ("budget", "suite_budget"):
        value = getattr(p, key)
        if (value is not None or key == "budget") and (isinstance(value, bool) or not isinstance(value, (int, float))
                                                       or not 0 < value < 1e9):
            raise bad(key, value, "a positive duration")
    for key in ("problems", "optimizers"):
        names = getattr(p, key)
        if names is not None and (not isinstance(names, tuple) or not all(isinstance(n, str) for n in names)):
            raise bad(key, names, "a list of names")
    for problem, layers in p.nets:
        if (not isinstance(layers, tuple) or len(layers) < 2
                or not all(_is_int(n) and n > 0 for n in layers)):
            raise bad(f"nets.{problem}", layers, "a list of at least two positive integers, e.g. [2, 64, 1]")
    for problem, steps in p.problem_steps:
        if not _is_int(steps) or steps < 1:
            raise bad(f"problem_steps.{problem}", steps, "a positive integer")
    return p


def _pairs(table: Any, key: str, source: str) -> tuple[tuple[str, Any], ...]:
    """A TOML/JSON table {problem: value} as sorted (problem, value) pairs (lists become tuples)."""
    if not isinstance(table, dict):
        raise PinnbenchError(f"protocol {source!r}: {key} must be a table of problem = value")
    return tuple(sorted((str(k), tuple(v) if isinstance(v, list) else v) for k, v in table.items()))


def _pinned(table: Any, source: str) -> tuple[tuple[str, str, tuple[tuple[str, Any], ...]], ...]:
    """A table {optimizer: {problem: {key: value}}} as sorted (optimizer, problem, ((key, value), ...)) triples."""
    if not isinstance(table, dict) or not all(isinstance(v, dict) and all(isinstance(h, dict) for h in v.values())
                                               for v in table.values()):
        raise PinnbenchError(f"protocol {source!r}: hyperparameters must be a table of "
                             "optimizer.problem = {key = value}")
    return tuple(sorted((str(o), str(p), tuple(sorted(h.items()))) for o, by_problem in table.items()
                        for p, h in by_problem.items()))


def load_protocol(spec: str | Path) -> Protocol:
    """A preset name ('quick', 'paper') or the path of a TOML/JSON protocol file."""
    if str(spec) in PRESETS:
        return PRESETS[str(spec)]
    path = Path(spec)
    if not path.is_file():
        raise PinnbenchError(f"unknown protocol {str(spec)!r}; accepted: {', '.join(PRESETS)} or a .toml/.json file")
    try:
        text = path.read_text()
        data = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (ValueError, OSError) as exc:
        raise PinnbenchError(f"protocol file {str(path)!r} is malformed: {exc}") from exc
    if not isinstance(data, dict):
        raise PinnbenchError(f"protocol file {str(path)!r} is malformed: expected a table of keys")
    unknown = sorted(set(data) - _FIELDS)
    if unknown:
        raise PinnbenchError(f"protocol file {str(path)!r}: unknown key {unknown[0]!r}; "
                             f"accepted: {', '.join(sorted(_FIELDS))}")
    base_name = data.pop("extends", "quick")
    if base_name not in PRESETS:
        raise PinnbenchError(f"protocol file {str(path)!r}: extends {base_name!r}; accepted: {', '.join(PRESETS)}")
    changes: dict[str, Any] = {"name": data.pop("name", re.sub(r"[^A-Za-z0-9_.+-]", "_", path.stem).lstrip("._")
                                          [:64] or "protocol")}
    for key, value in data.items():
        if key in ("budget", "suite_budget"):
            value = parse_duration(value, key)
        elif key in ("seeds", "problems", "optimizers"):
            if not isinstance(value, list):
                raise PinnbenchError(f"protocol file {str(path)!r}: {key} must be a list")
            value = tuple(value)
        elif key in ("nets", "problem_steps"):
            value = _pairs(value, key, str(path))
        elif key == "problem_budgets":
            value = tuple((problem, parse_duration(v, f"{key}.{problem}"))
                          for problem, v in _pairs(value, key, str(path)))
        elif key == "hyperparameters":
            value = _pinned(value, str(path))
        changes[key] = value
    try:
        return PRESETS[base_name].replace(**changes)
    except TypeError as exc:
        raise PinnbenchError(f"protocol file {str(path)!r} is malformed: {exc}") from exc
