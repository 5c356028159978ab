"""Hyperparameters: checked against the optimizer constructor's signature and annotations before anything runs,
and recorded as the BOUND constructor arguments (every parameter, defaults filled in), never read back from the
instance's attributes (an optimizer that stores ``lr`` as ``self._lr`` still gets one run key per ``lr``).

An annotation is enforced when it is one of bool, int, float, str, None, a union of them (``float | None``),
``tuple[...]``/``list[...]`` of them, or ``Literal[...]``; other annotations (and none) accept any value. An int
given for a float becomes a float (``lr=1`` and ``lr=1.0`` are one run); a bool is never an int; NaN is never a
float. Range checks belong to the constructor: any ValueError, TypeError or PinnbenchError it raises becomes a
:class:`~pinnbench.errors.HyperparameterError`.
"""
from __future__ import annotations

import inspect
import math
import types
import typing
from typing import Any, Literal, Union

from .errors import HyperparameterError, PinnbenchError

_EMPTY = inspect.Parameter.empty


def accepted(cls: type) -> dict[str, inspect.Parameter]:
    """The constructor's keyword parameters (``self``, ``*args`` and ``**kwargs`` excluded)."""
    params = inspect.signature(cls.__init__).parameters
    return {k: p for k, p in params.items()
            if k != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def _takes_any_keyword(cls: type) -> bool:
    return any(p.kind is p.VAR_KEYWORD for p in inspect.signature(cls.__init__).parameters.values())


def _hints(cls: type) -> dict[str, Any]:
    try:
        return typing.get_type_hints(cls.__init__)
    except Exception:  # noqa: BLE001 - an annotation that does not resolve is not enforced
        return {}


class _Mismatch(Exception):
    pass


def _describe(hint: Any) -> str:
    if hint is type(None) or hint is None:
        return "None"
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        return " or ".join(_describe(a) for a in typing.get_args(hint))
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(hint))
    if origin in (tuple, list):
        args = typing.get_args(hint)
        inner = _describe(args[0]) if args else "values"
        return f"a {'tuple' if origin is tuple else 'list'} of {inner}"
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    return names.get(hint, getattr(hint, "__name__", str(hint)))


def conform(value: Any, hint: Any) -> Any:
    """``value`` checked against ``hint`` (coerced: int to float, list to tuple); raises _Mismatch."""
    if hint is _EMPTY or hint is Any:
        return value
    if hint is None or hint is type(None):
        if value is None:
            return None
        raise _Mismatch
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        for arg in typing.get_args(hint):
            try:
                return conform(value, arg)
            except _Mismatch:
                continue
        raise _Mismatch
    if origin is Literal:
        if any(value == a and type(value) is type(a) for a in typing.get_args(hint)):
            return value
        raise _Mismatch
    if origin in (tuple, list):
        if not isinstance(value, (tuple, list)):
            raise _Mismatch
        args = typing.get_args(hint)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                raise _Mismatch
            items = [conform(v, a) for v, a in zip(value, args)]
        else:
            items = [conform(v, args[0]) for v in value] if args else list(value)
        return tuple(items) if origin is tuple else items
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise _Mismatch
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise _Mismatch
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value):
            return float(value)
        raise _Mismatch
    if hint is str:
        if isinstance(value, str):
            return value
        raise _Mismatch
    return value  # an annotation pinnbench does not check


def bind(name: str, cls: type, hparams: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the checked values to construct with, the bound constructor arguments with defaults filled in).

    Raises HyperparameterError naming the first bad hyperparameter and what it accepts."""
    params = accepted(cls)
    hints = _hints(cls)
    given: dict[str, Any] = {}
    for key, value in hparams.items():
        if key not in params and not _takes_any_keyword(cls):
            raise HyperparameterError(f"optimizer {name!r} has no hyperparameter {key!r}; "
                                      f"accepted: {', '.join(params) or '(none)'}")
        hint = hints.get(key, _EMPTY)
        try:
            given[key] = conform(value, hint)
        except _Mismatch:
            raise HyperparameterError(f"optimizer {name!r}: invalid {key}={value!r}; expected {_describe(hint)}"
                                      ) from None
    missing = [k for k, p in params.items() if p.default is _EMPTY and k not in given]
    if missing:
        raise HyperparameterError(f"optimizer {name!r} needs a value for hyperparameter {missing[0]!r}")
    bound = {k: given.get(k, p.default) for k, p in params.items()}
    bound.update({k: v for k, v in given.items() if k not in params})
    return given, bound


def construct(name: str, cls: type, given: dict[str, Any]) -> Any:
    """``cls(**given)``; what the constructor rejects becomes a HyperparameterError."""
    try:
        return cls(**given)
    except HyperparameterError:
        raise
    except (TypeError, ValueError, PinnbenchError) as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise HyperparameterError(f"optimizer {name!r} rejected its hyperparameters {given}: {detail}") from exc
