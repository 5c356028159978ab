"""Shared fixtures: small problem instances and a tiny protocol for fast runner tests."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch

import pinnbench
from pinnbench.protocol import Protocol

REPO = Path(__file__).resolve().parent.parent
ANALYTIC_PROBLEMS = ("laplace2d", "heat", "laplace5d", "nonlinear_poisson")


@pytest.fixture
def tiny_protocol() -> Protocol:
    """A protocol for tests: quick points, a generous budget, a small step cap."""
    return Protocol(name="test", seeds=(6865,), budget=60.0, steps=5, points="quick")


def subsample(groups, n: int):
    """The first n points of each group (keeps the torch.func reference path cheap)."""
    return [pinnbench.ResidualGroup(g.name, g.points[:n], g.residual, g.lap_dims) for g in groups]


def cli(*args: str, cwd: Path | None = None, env: dict | None = None):
    """Run ``python -m pinnbench ARGS`` in a subprocess; returns the CompletedProcess."""
    import subprocess
    full_env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run([sys.executable, "-m", "pinnbench", *args], capture_output=True, text=True,
                          cwd=cwd, env=full_env, timeout=600)


@pytest.fixture(autouse=True)
def _float64_and_threads():
    torch.set_default_dtype(torch.float64)
    yield
