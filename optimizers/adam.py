"""Adam with the papers' schedule: lr 1e-3 times 0.1 at steps 15k, 25k, 35k, 45k (PROTOCOLS.md §5)."""
from __future__ import annotations

import torch

from pinnbench import Optimizer, register_optimizer


@register_optimizer("adam")
class Adam(Optimizer):
    """Adam (Kingma & Ba) on the flat θ; the learning rate is multiplied by ``decay`` at each of ``milestones``."""

    paper_steps = 20001
    info_keys = {"loss": "the train loss at the θ the step started from", "lr": "the learning rate of the step"}

    def __init__(self, lr: float = 1e-3, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8,
                 milestones: tuple[int, ...] = (15000, 25000, 35000, 45000), decay: float = 0.1) -> None:
        if not lr > 0 or not eps > 0 or not decay > 0:
            raise ValueError(f"lr, eps and decay must be > 0, got lr={lr}, eps={eps}, decay={decay}")
        if not (0 <= beta1 < 1 and 0 <= beta2 < 1):
            raise ValueError(f"betas must lie in [0, 1), got beta1={beta1}, beta2={beta2}")
        if any(m < 0 for m in milestones):
            raise ValueError(f"milestones must be steps >= 0, got {milestones}")
        self.lr, self.beta1, self.beta2, self.eps = lr, beta1, beta2, eps
        self.milestones, self.decay = tuple(milestones), decay

    def reset(self, objective, theta: torch.Tensor) -> None:
        self.m = torch.zeros_like(theta)
        self.v = torch.zeros_like(theta)
        self.t = 0

    def step(self, objective, theta: torch.Tensor) -> torch.Tensor:
        loss, grad = objective.loss_and_grad(theta)
        self.t += 1
        self.m.mul_(self.beta1).add_(grad, alpha=1 - self.beta1)
        self.v.mul_(self.beta2).addcmul_(grad, grad, value=1 - self.beta2)
        lr = self.lr * self.decay ** sum(self.t > m for m in self.milestones)
        m_hat = self.m / (1 - self.beta1 ** self.t)
        v_hat = self.v / (1 - self.beta2 ** self.t)
        self.info = {"loss": float(loss), "lr": lr}
        return theta - lr * m_hat / (v_hat.sqrt() + self.eps)
