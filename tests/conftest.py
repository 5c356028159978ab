"""Shared fixtures: small problem instances and a tiny protocol for fast runner tests."""
from __future__ import annotations

import os
import subprocess
import sys
import time
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


@pytest.fixture(scope="module")
def dask_cluster(tmp_path_factory):
    """A real Dask scheduler and two one-thread workers on the loopback interface (127.0.0.1 only)."""
    pytest.importorskip("distributed")
    folder = tmp_path_factory.mktemp("dask")
    scheduler_file = folder / "scheduler.json"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    dask = [sys.executable, "-m", "dask"]
    common = ["--no-dashboard", "--scheduler-file", str(scheduler_file)]
    processes = [subprocess.Popen([*dask, "scheduler", "--host", "127.0.0.1", "--port", "0", *common],
                                  env=env, cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        deadline = time.time() + 120
        while not scheduler_file.exists() and time.time() < deadline:
            time.sleep(0.1)
        workers = {name: subprocess.Popen([*dask, "worker", "--host", "127.0.0.1", "--nthreads", "1", "--no-nanny",
                                           "--name", name, *common], env=env, cwd=folder,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                   for name in ("w1", "w2")}
        processes += workers.values()
        from pinnbench.backends import DaskBackend

        with DaskBackend(scheduler_file=str(scheduler_file)) as backend:
            backend.client.wait_for_workers(2, timeout=120)
        yield scheduler_file, workers
    finally:
        for process in reversed(processes):
            process.kill()
            process.wait()
