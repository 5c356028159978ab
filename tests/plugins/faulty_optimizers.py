"""Optimizers that misbehave on purpose, for the runner's failure handling tests."""
import torch

from pinnbench import Optimizer, register_optimizer


@register_optimizer("test-nan")
class NaNAfterTwoSteps(Optimizer):
    """Returns NaN parameters at its third step."""

    def reset(self, objective, theta):
        self.calls = 0

    def step(self, objective, theta):
        self.calls += 1
        return theta * float("nan") if self.calls == 3 else theta * 0.99


@register_optimizer("test-raise")
class RaisesAtFirstStep(Optimizer):
    """Raises inside step."""

    def step(self, objective, theta):
        raise RuntimeError("this optimizer always fails")
