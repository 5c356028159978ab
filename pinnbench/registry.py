"""Registration and discovery of problems and optimizers (benchopt-style).

Three sources, one mechanism: the files of the built-in ``problems/`` and ``optimizers/`` folders, files
given with ``--plugin PATH``, and installed packages exposing the entry-point groups ``pinnbench.problems`` /
``pinnbench.optimizers``. Each file registers its classes with ``@register_problem(name)`` or
``@register_optimizer(name)`` when it is imported.
"""
from __future__ import annotations

import contextlib
import importlib.util
import inspect
import re
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

from .errors import PinnbenchError
from .hyperparameters import accepted, bind, construct
from .core.optimizer import Optimizer
from .core.problem import Problem

T = TypeVar("T", bound=type)

KINDS = {"problem": "problems", "optimizer": "optimizers"}
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}$")
"""A registered name: it becomes part of file names and labels, so no path separator, no leading dot, no ':'."""


def check_name(kind: str, name: Any) -> str:
    """``name`` if it is a valid problem/optimizer/protocol name, else a one-line PinnbenchError."""
    if not isinstance(name, str) or not NAME.match(name):
        raise PinnbenchError(f"invalid {kind} name {name!r}: expected 1-64 letters, digits, '_', '-', '.' or '+', "
                             "starting with a letter or digit")
    return name


@dataclass
class Entry:
    """A registered class and where it came from ('builtin', 'plugin' or 'entry point', and a path)."""

    name: str
    cls: type
    source: str
    location: str


_REGISTRY: dict[str, dict[str, Entry]] = {"problem": {}, "optimizer": {}}
_source = "python"
_discovered = False
_loaded_files: set[Path] = set()


def _register(kind: str, name: str, base: type) -> Callable[[T], T]:
    check_name(kind, name)

    def decorator(cls: T) -> T:
        if not (isinstance(cls, type) and issubclass(cls, base)):
            raise PinnbenchError(f"@register_{kind}({name!r}) must decorate a subclass of {base.__name__}")
        location = inspect.getsourcefile(cls) or cls.__module__
        existing = _REGISTRY[kind].get(name)
        if existing is not None and existing.location != location:
            raise PinnbenchError(
                f"{kind} {name!r} from {location} clashes with the {existing.source} one from {existing.location}")
        cls.name = name
        _REGISTRY[kind][name] = Entry(name, cls, _source, location)
        return cls
    return decorator


def register_optimizer(name: str) -> Callable[[T], T]:
    """Class decorator: make an :class:`Optimizer` subclass available as ``name``."""
    return _register("optimizer", name, Optimizer)


def register_problem(name: str) -> Callable[[T], T]:
    """Class decorator: make a :class:`Problem` subclass available as ``name``."""
    return _register("problem", name, Problem)


def _builtin_folder(kind: str) -> Path | None:
    here = Path(__file__).resolve().parent
    for candidate in (here / KINDS[kind], here.parent / KINDS[kind]):
        if candidate.is_dir():
            return candidate
    return None


def load_plugin(path: str | Path, source: str = "plugin") -> None:
    """Import a plugin file, registering what it defines; a failure raises a one-line PinnbenchError."""
    global _source
    path = Path(path).resolve()
    if path in _loaded_files:
        return
    if not path.is_file():
        raise PinnbenchError(f"plugin {str(path)!r} not found: expected a .py file")
    module_name = f"pinnbench_plugin_{abs(hash(str(path)))}_{path.stem}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise PinnbenchError(f"plugin {str(path)!r} cannot be imported: expected a .py file")
    module = importlib.util.module_from_spec(spec)
    previous, _source = _source, source
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except PinnbenchError:
        raise
    except BaseException as exc:  # noqa: BLE001 - any failure of user code becomes one clear line
        sys.modules.pop(module_name, None)
        detail = str(exc).splitlines()[0] if str(exc) else ""
        raise PinnbenchError(f"plugin {str(path)!r} failed to import: {type(exc).__name__}: {detail}") from exc
    finally:
        _source = previous
    _loaded_files.add(path)


def _load_entry_points(kind: str) -> None:
    global _source
    for ep in metadata.entry_points(group=f"pinnbench.{KINDS[kind]}"):
        previous, _source = _source, "entry point"
        try:
            obj = ep.load()
        except Exception as exc:  # noqa: BLE001
            raise PinnbenchError(f"entry point {ep.name!r} ({ep.value}) failed to import: "
                                 f"{type(exc).__name__}: {exc}") from exc
        finally:
            _source = previous
        if isinstance(obj, type) and ep.name not in _REGISTRY[kind]:
            _source, previous = "entry point", _source
            try:
                _register(kind, ep.name, Optimizer if kind == "optimizer" else Problem)(obj)
            finally:
                _source = previous


def discover() -> None:
    """Load the built-in folders and the installed entry points (once)."""
    global _discovered
    if _discovered:
        return
    _discovered = True
    for kind in KINDS:
        folder = _builtin_folder(kind)
        if folder is not None:
            for file in sorted(folder.glob("*.py")):
                if not file.name.startswith("_"):
                    load_plugin(file, source="builtin")
        _load_entry_points(kind)


def entries(kind: str) -> dict[str, Entry]:
    """All registered entries of ``kind`` ('problem' or 'optimizer'), discovering first."""
    discover()
    return dict(sorted(_REGISTRY[kind].items()))


def registered_in(path: str | Path) -> list[tuple[str, Entry]]:
    """(kind, entry) of every problem and optimizer whose class is defined in the file ``path``."""
    path = Path(path).resolve()
    return [(kind, entry) for kind in KINDS for entry in entries(kind).values()
            if Path(entry.location).resolve() == path]


def lookup(kind: str, name: str) -> Entry:
    """The entry registered as ``name``; a one-line PinnbenchError naming what is accepted if none is."""
    known = entries(kind)
    if name not in known:
        raise PinnbenchError(f"unknown {kind} {name!r}; accepted: {', '.join(known) or '(none registered)'}")
    return known[name]


def check_hyperparameters(name: str, hparams: dict[str, Any]) -> dict[str, Any]:
    """The bound constructor arguments of optimizer ``name`` with ``hparams`` (every parameter, defaults filled
    in); a HyperparameterError if one is unknown, of the wrong type, or rejected by the constructor."""
    cls = lookup("optimizer", name).cls
    given, bound = bind(name, cls, hparams)
    construct(name, cls, given)
    return bound


def optimizer_parameters(name: str) -> list[str]:
    """The hyperparameters optimizer ``name`` accepts."""
    return list(accepted(lookup("optimizer", name).cls))


def get_optimizer(name: str, **hparams: Any) -> Optimizer:
    """A fresh instance of the optimizer registered as ``name``, its hyperparameters checked first."""
    cls = lookup("optimizer", name).cls
    given, _ = bind(name, cls, hparams)
    return construct(name, cls, given)


def get_problem(name: str) -> Problem:
    """An instance of the problem registered as ``name``."""
    return lookup("problem", name).cls()


@contextlib.contextmanager
def scoped() -> Iterator[None]:
    """Registrations and plugin loads made inside the block are undone at its end (tests)."""
    discover()
    saved = {k: dict(v) for k, v in _REGISTRY.items()}, set(_loaded_files)
    try:
        yield
    finally:
        for kind in KINDS:
            _REGISTRY[kind].clear()
            _REGISTRY[kind].update(saved[0][kind])
        _loaded_files.clear()
        _loaded_files.update(saved[1])
