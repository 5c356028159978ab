"""Every fault a plugin can inject into a run, for the fault-injection tests (tests/test_faults.py).

Optimizers misbehave at their second step (after one good one), problems in set-up or evaluation. Each fault
is named ``fault-<what>``; a test runs each beside good runs under every backend.
"""
import ctypes
import os
import signal

import torch

from pinnbench import Optimizer, PointSets, Problem, ResidualGroup, register_optimizer, register_problem
from pinnbench.problem import full_grid, interior_grid


class _SecondStep(Optimizer):
    """Gradient descent that calls ``misbehave(objective, theta)`` at its second step and returns what it returns."""

    def reset(self, objective, theta):
        self.calls = 0

    def step(self, objective, theta):
        self.calls += 1
        loss, grad = objective.loss_and_grad(theta)
        theta = theta - 1e-3 * grad
        return self.misbehave(objective, theta) if self.calls >= 2 else theta


def _fault(name):
    def decorator(misbehave):
        register_optimizer(name)(type(misbehave.__name__, (_SecondStep,), {"misbehave": staticmethod(misbehave),
                                                                           "__doc__": misbehave.__doc__}))
        return misbehave
    return decorator


@_fault("fault-raise")
def raises(objective, theta):
    """Raises RuntimeError."""
    raise RuntimeError("fault: step raised")


@_fault("fault-system-exit")
def system_exit(objective, theta):
    """Calls sys.exit(3) (SystemExit)."""
    raise SystemExit(3)


@_fault("fault-base-exception")
def base_exception(objective, theta):
    """Raises a BaseException that is neither Exception nor KeyboardInterrupt."""
    raise GeneratorExit("fault: a BaseException")


@_fault("fault-shape")
def wrong_shape(objective, theta):
    """Returns θ of shape (1, P)."""
    return theta.unsqueeze(0)


@_fault("fault-dtype")
def wrong_dtype(objective, theta):
    """Returns θ in float32."""
    return theta.float()


@_fault("fault-device")
def wrong_device(objective, theta):
    """Returns θ on the meta device."""
    return theta.to("meta")


@_fault("fault-not-a-tensor")
def not_a_tensor(objective, theta):
    """Returns a numpy array."""
    return theta.numpy()


@_fault("fault-nan")
def nan(objective, theta):
    """Returns NaN parameters."""
    return theta * float("nan")


@_fault("fault-hang")
def hang(objective, theta):
    """An endless loop."""
    while True:
        pass


@_fault("fault-segfault")
def segfault(objective, theta):
    """Reads address 0: SIGSEGV."""
    ctypes.string_at(0)


@_fault("fault-os-exit")
def os_exit(objective, theta):
    """os._exit(3)."""
    os._exit(3)


@_fault("fault-sigkill")
def sigkill(objective, theta):
    """Sends itself SIGKILL."""
    os.kill(os.getpid(), signal.SIGKILL)


@_fault("fault-cheat")
def cheat(objective, theta):
    """Edits the objective it was given so that losses read 0 and counters read 0, and stops moving θ."""
    objective.row_weights.zero_()
    objective.loss = lambda th: torch.zeros((), dtype=th.dtype)
    objective.counts.residual_evals = 0
    for group in objective.groups:
        group.points.mul_(0.0)
    return theta


@register_optimizer("fault-raise-reset")
class RaisesInReset(Optimizer):
    """Raises in reset."""

    def reset(self, objective, theta):
        raise ValueError("fault: reset raised")

    def step(self, objective, theta):
        return theta


@register_optimizer("fault-info")
class BadInfo(Optimizer):
    """Publishes an ``info`` that is not a dict."""

    info = property(lambda self: 42)

    def step(self, objective, theta):
        return theta


class _Small(Problem):
    dim = 2
    layers = (2, 4, 1)

    def exact(self, x):
        return x[:, 0] * 0.0

    def point_sets(self, preset, generator):
        points = interior_grid(6, (0, 0), (1, 1))
        return PointSets([ResidualGroup("interior", points, lambda x, f: f.u)], evaluation=full_grid((5, 5), (0, 0), (1, 1)))


@register_problem("fault-setup")
class FailsInSetUp(_Small):
    """Its point sets raise: the run fails while it is set up."""

    def point_sets(self, preset, generator):
        raise RuntimeError("fault: point sets raised")


@register_problem("fault-evaluation")
class FailsFromTheThirdEvaluation(_Small):
    """Its residual raises from its fourth call on (a step or an evaluation, then the final evaluation too)."""

    def point_sets(self, preset, generator):
        calls = [0]

        def residual(x, f):
            calls[0] += 1
            if calls[0] >= 4:
                raise FloatingPointError("fault: residual raised")
            return f.u

        return PointSets([ResidualGroup("interior", interior_grid(6, (0, 0), (1, 1)), residual)],
                         evaluation=full_grid((5, 5), (0, 0), (1, 1)))


@register_problem("fault-groups")
class TwoGroupsOneName(_Small):
    """Two residual groups named alike (their Jacobian rows would be left uninitialised)."""

    def point_sets(self, preset, generator):
        points = interior_grid(6, (0, 0), (1, 1))
        return PointSets([ResidualGroup("interior", points, lambda x, f: f.u),
                          ResidualGroup("interior", points[:4], lambda x, f: f.u)],
                         evaluation=full_grid((5, 5), (0, 0), (1, 1)))


@register_optimizer("fault-private-lr")
class PrivateLearningRate(Optimizer):
    """Keeps its hyperparameter under another attribute name (the harness records the bound arguments)."""

    def __init__(self, lr: float = 0.1):
        self._lr = lr

    def step(self, objective, theta):
        loss, grad = objective.loss_and_grad(theta)
        return theta - self._lr * 1e-2 * grad
