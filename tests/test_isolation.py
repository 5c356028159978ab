"""Fault isolation: a child process gives the in-process results; hangs time out at budget + grace; a dying
process costs only its run (retried as configured, then recorded), and the suite goes on."""
import os
import time

import pytest
import torch

from pinnbench.backends import ProcessBackend
from pinnbench import isolation
from pinnbench.isolation import IsolatedWorker, default_grace
from pinnbench.protocol import Protocol
from pinnbench.registry import load_plugin
from pinnbench.runner import RunSpec, execute, run_suite
from pinnbench.store import load_runs

from conftest import REPO
from record_checks import assert_same_results

load_plugin(REPO / "tests" / "plugins" / "hostile.py")


@pytest.fixture(scope="module")
def worker():
    """One isolated worker with one thread, shared by the tests of this module (restarted after each failure)."""
    with IsolatedWorker(threads=1, execution={"backend": "test"}) as isolated:
        yield isolated


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("problem, optimizer, seed", [("laplace2d", "adam", 6865), ("heat", "anagram", 8369)])
def test_child_gives_bit_identical_results(worker, one_thread, tiny_protocol, problem, optimizer, seed):
    spec = RunSpec(problem, optimizer, seed)
    isolated = worker.run(spec, tiny_protocol)
    assert_same_results(execute(spec, tiny_protocol), isolated)
    execution = isolated.manifest["execution"]
    assert execution["worker"] != f"pid {os.getpid()}" and execution["threads"] == 1
    assert execution["backend"] == "test" and execution["attempts"] == 1


def test_endless_loop_is_stopped_at_budget_plus_grace(worker):
    protocol = Protocol(name="test", budget=1.0, points="quick")
    worker.run(RunSpec("laplace2d", "adam", 1), protocol.replace(steps=1))  # the child is up: time the run only
    start = time.monotonic()
    record = worker.run(RunSpec("laplace2d", "test-hang", 1), protocol, grace=1.0)
    wall = time.monotonic() - start
    m = record.manifest
    assert m["status"] == "timeout" and "budget 1 s + grace 1 s exceeded" in m["error"]
    assert 2.0 <= m["time"] < 3.0 and m["steps"] == 2
    assert wall < 2.0 + 3.0  # budget + grace, plus setting the run up and killing the child
    assert record.trajectory["step"][:3] == [0, 1, 2]  # what was seen before the hang is kept
    assert worker.pid is None  # the hung child is gone; the next run gets a fresh one


def test_hang_outside_optimizer_code_is_stopped_too(worker, monkeypatch):
    monkeypatch.setattr(isolation, "HARNESS_STRETCH_SECONDS", 0.0)  # the limit is then budget + grace
    record = worker.run(RunSpec("test-hang-setup", "adam", 1), Protocol(name="test", budget=1.0), grace=1.0)
    assert record.manifest["status"] == "timeout" and "in one stretch of setup or evaluation" in record.manifest["error"]
    assert record.manifest["steps"] == 0 and record.manifest["time"] == 0.0


def test_a_dying_process_costs_only_its_run(tmp_path, tiny_protocol):
    specs = [RunSpec("laplace2d", "test-segfault", 1), RunSpec("laplace2d", "adam", 1),
             RunSpec("laplace2d", "test-exit", 1)]
    result = run_suite(specs, tiny_protocol, tmp_path, backend=ProcessBackend(1, retries=1))
    assert result.status_counts() == {"ok": 1, "diverged": 0, "error": 2, "timeout": 0}
    runs = load_runs(tmp_path).set_index("optimizer")
    assert "died during the run: killed by signal SIGSEGV" in runs.loc["test-segfault", "error"]
    assert "died during the run: exited with code 3" in runs.loc["test-exit", "error"]
    assert runs.loc["test-exit", "steps"] == 2 and runs.loc["adam", "steps"] == tiny_protocol.steps
    attempts = {r.manifest["optimizer"]: r.manifest["execution"]["attempts"] for r in result.records}
    assert attempts == {"test-segfault": 2, "adam": 1, "test-exit": 2}  # each death retried once, as configured


def test_default_grace():
    assert default_grace(10.0) == 10.0 and default_grace(1800.0) == 180.0
