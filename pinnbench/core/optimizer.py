"""The ``Optimizer`` base class: state on the instance (as in torch.optim), one ``step`` per iteration.

An optimizer sees only the objective (residuals, jacobian, loss, loss_and_grad, losses, row_weights,
group_slices) and θ. It never reads the clock: the runner owns time and budget.
"""
from __future__ import annotations

from typing import Any, ClassVar

import torch

from ..hyperparameters import accepted


class Converged(Exception):
    """Raised by ``step`` when the optimizer has nothing left to do (the run ends with stop reason 'converged')."""


class Optimizer:
    """Base class of an optimizer plugin.

    Hyperparameters are constructor keyword arguments with defaults (settable from the CLI as
    ``-o name:key=value``). ``step(objective, theta)`` returns the next θ. After each step, ``info``
    may hold scalars (e.g. ``eta``, ``rank``) that the runner records per step, and ``spectrum`` may hold
    per-step vectors (e.g. singular values) that it records every ``diagnostics_every`` steps. Every key either
    may hold is declared, with its meaning, in ``info_keys`` / ``spectrum_keys`` (``pinnbench check`` holds the
    steps to them).
    """

    name: ClassVar[str] = ""
    paper_steps: ClassVar[int | None] = None
    """The step count of the authors' protocol when it differs from the problem's (e.g. Adam's 20 001)."""

    def reset(self, objective: Any, theta: torch.Tensor) -> None:
        """Called once before the first step of a run; override to initialise state from θ0."""

    def step(self, objective: Any, theta: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    info: dict[str, float] = {}
    spectrum: dict[str, torch.Tensor] = {}
    info_keys: ClassVar[dict[str, str]] = {}
    """Every key ``info`` may hold after a step, and what it means."""
    spectrum_keys: ClassVar[dict[str, str]] = {}
    """Every key ``spectrum`` may hold after a step, and what it means."""

    @classmethod
    def hyperparameters(cls) -> dict[str, Any]:
        """Constructor keyword arguments and their defaults (the harness records the bound arguments of a run,
        see :mod:`pinnbench.hyperparameters`)."""
        return {k: p.default for k, p in accepted(cls).items()}
