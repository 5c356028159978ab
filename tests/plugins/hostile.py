"""Optimizers (and a problem) that hang or kill their process on purpose, for the fault isolation tests."""
import ctypes
import os

from pinnbench import Optimizer, PointSets, Problem, ResidualGroup, register_optimizer, register_problem
from pinnbench.problem import interior_grid


class _Counting(Optimizer):
    def reset(self, objective, theta):
        self.calls = 0

    def step(self, objective, theta):
        self.calls += 1
        if self.calls >= 3:
            self.misbehave()
        loss, grad = objective.loss_and_grad(theta)
        return theta - 1e-3 * grad


@register_optimizer("test-hang")
class HangsAtThirdStep(_Counting):
    """An endless loop in its third step."""

    def misbehave(self):
        while True:
            pass


@register_optimizer("test-segfault")
class SegfaultsAtThirdStep(_Counting):
    """Reads address 0 in its third step: the process dies of SIGSEGV."""

    def misbehave(self):
        ctypes.string_at(0)


@register_optimizer("test-exit")
class ExitsAtThirdStep(_Counting):
    """Ends its process with os._exit(3) in its third step."""

    def misbehave(self):
        os._exit(3)


@register_problem("test-hang-setup")
class HangsInSetup(Problem):
    """Its exact solution never returns: the run hangs while it is being set up, outside optimizer time."""

    dim = 2
    layers = (2, 4, 1)

    def exact(self, x):
        while True:
            pass

    def point_sets(self, preset, generator):
        points = interior_grid(5, (0, 0), (1, 1))
        return PointSets([ResidualGroup("interior", points, lambda x, f: f.u)], evaluation=points)


@register_optimizer("test-slow-step")
class SlowSteps(Optimizer):
    """Gradient steps that each take 0.3 s: a run of 0.1 s budget overruns it by about 0.2 s."""

    def step(self, objective, theta):
        import time
        time.sleep(0.3)
        loss, grad = objective.loss_and_grad(theta)
        return theta - 1e-3 * grad
