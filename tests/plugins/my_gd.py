"""The README's example plugin: plain gradient descent."""
from pinnbench import Optimizer, register_optimizer


@register_optimizer("my-gd")
class MyGD(Optimizer):
    """Gradient descent with a fixed learning rate."""

    def __init__(self, lr: float = 1e-3):
        self.lr = lr

    def step(self, objective, theta):  # theta: 1-D float64 tensor; returns the next theta
        loss, grad = objective.loss_and_grad(theta)
        return theta - self.lr * grad
