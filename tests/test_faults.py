"""Fault injection: every fault a plugin can cause (tests/plugins/faults.py), beside good runs, under every
backend. The faulty run is recorded non-ok with what went wrong, every other run is ok, the suite finishes, and
the backends agree. Hangs and process deaths are survived by the isolated backends only (the in-process backend
is documented as offering no protection against them)."""
import pytest
import torch

from pinnbench import registry
from pinnbench.backends import DaskBackend, InProcessBackend, IsolatedBackend, ProcessBackend
from pinnbench.protocol import Protocol
from pinnbench.registry import load_plugin
from pinnbench.runner import RunSpec, run_suite
from pinnbench.store import load_runs

from conftest import REPO

PROTOCOL = Protocol(name="faults", budget=3.0, steps=5, points="quick", threads=1)
GRACE = 4.0  # seconds past the budget: a good 5-step run must never reach budget + grace, even on a loaded CI machine
GOOD = ("laplace2d", "adam")

# (problem, optimizer) -> (status, part of the error message); each runs between two good runs
RAISED = {
    ("laplace2d", "fault-raise"): ("error", "RuntimeError: fault: step raised"),
    ("laplace2d", "fault-system-exit"): ("error", "SystemExit: 3"),
    ("laplace2d", "fault-base-exception"): ("error", "GeneratorExit: fault: a BaseException"),
    ("laplace2d", "fault-shape"): ("error", "step returned a tensor of shape (1, 129), float64 on cpu, expected "
                                            "shape (129,), float64 on cpu"),
    ("laplace2d", "fault-dtype"): ("error", "step returned a tensor of shape (129,), float32"),
    ("laplace2d", "fault-device"): ("error", "float64 on meta, expected"),
    ("laplace2d", "fault-not-a-tensor"): ("error", "step returned a ndarray"),
    ("laplace2d", "fault-raise-reset"): ("error", "ValueError: fault: reset raised"),
    ("laplace2d", "fault-info"): ("error", "AttributeError"),
    ("laplace2d", "fault-nan"): ("diverged", None),
    ("laplace2d", "fault-cheat"): ("ok", None),
    ("fault-setup", "adam"): ("error", "RuntimeError: fault: point sets raised"),
    ("fault-evaluation", "adam"): ("error", "FloatingPointError: fault: residual raised"),
    ("fault-groups", "adam"): ("error", "two residual groups are named 'interior'"),
}
KILLED = {  # hangs and deaths: survived by isolated backends
    ("laplace2d", "fault-hang"): ("timeout", "budget 3 s + grace 4 s exceeded"),
    ("laplace2d", "fault-segfault"): ("error", "worker process died during the run: killed by signal SIGSEGV"),
    ("laplace2d", "fault-os-exit"): ("error", "worker process died during the run: exited with code 3"),
    ("laplace2d", "fault-sigkill"): ("error", "worker process died during the run: killed by signal SIGKILL"),
}


@pytest.fixture(scope="module", autouse=True)
def fault_plugins():
    with registry.scoped():
        load_plugin(REPO / "tests" / "plugins" / "faults.py")
        yield


def _specs(faults):
    specs, seed = [RunSpec(*GOOD, 1)], 1
    for problem, optimizer in faults:
        seed += 1
        specs += [RunSpec(problem, optimizer, seed), RunSpec(*GOOD, seed)]
    return specs


def _check(folder, faults, result):
    assert len(result.written) == 2 * len(faults) + 1
    runs = load_runs(folder)
    assert len(runs) == 2 * len(faults) + 1 and runs.run_id.is_unique
    good = runs[(runs.problem == GOOD[0]) & (runs.optimizer == GOOD[1])]
    assert set(good.status) == {"ok"}, good[good.status != "ok"][["run_id", "status", "error"]].to_dict("records")
    assert len(good) == len(faults) + 1 and set(good.steps) == {PROTOCOL.steps}
    seen = {}
    for (problem, optimizer), (status, message) in faults.items():
        (row,) = runs[(runs.problem == problem) & (runs.optimizer == optimizer)].itertuples()
        assert row.status == status, (optimizer, row.error)
        if message:
            assert message in row.error, (optimizer, row.error)
        seen[problem, optimizer] = row.status, row.error
    cheat = runs[runs.optimizer == "fault-cheat"].iloc[0]
    assert cheat.loss > 1e-3 and cheat.residual_evals > 0  # the harness's own loss and counters
    return seen


def test_faults_in_process(tmp_path):
    result = run_suite(_specs(RAISED), PROTOCOL, tmp_path, backend=InProcessBackend())
    _check(tmp_path, RAISED, result)


def test_faults_in_the_default_isolated_worker_and_it_agrees_with_in_process(tmp_path):
    faults = {**RAISED, **KILLED}
    with IsolatedBackend(grace=GRACE, retries=0) as backend:
        result = run_suite(_specs(faults), PROTOCOL, tmp_path / "isolated", backend=backend)
    isolated = _check(tmp_path / "isolated", faults, result)
    in_process = _check(tmp_path / "in-process", RAISED,
                        run_suite(_specs(RAISED), PROTOCOL, tmp_path / "in-process", backend=InProcessBackend()))
    assert {k: v for k, v in isolated.items() if k in RAISED} == in_process


def test_faults_in_worker_processes(tmp_path):
    faults = {**RAISED, **KILLED}
    with ProcessBackend(2, grace=GRACE, retries=0) as backend:
        result = run_suite(_specs(faults), PROTOCOL, tmp_path, backend=backend)
    _check(tmp_path, faults, result)


@pytest.mark.heavy
def test_faults_on_a_dask_cluster(dask_cluster, tmp_path):
    scheduler_file, _ = dask_cluster
    faults = {**RAISED, **KILLED}
    with DaskBackend(scheduler_file=str(scheduler_file), grace=GRACE, retries=0) as backend:
        result = run_suite(_specs(faults), PROTOCOL, tmp_path, backend=backend)
    _check(tmp_path, faults, result)


def test_cheating_optimizer_gets_the_harness_loss(tmp_path):
    """The recorded loss and counters are the harness's, whatever the optimizer did to the objective it got."""
    (record,) = run_suite([RunSpec("laplace2d", "fault-cheat", 7)], PROTOCOL, tmp_path,
                          backend=InProcessBackend()).records
    losses, evals = record.trajectory["loss"], record.trajectory["residual_evals"]
    assert record.manifest["status"] == "ok" and losses[2] == losses[-1] > 1e-3
    assert evals == sorted(evals) and evals[-1] >= PROTOCOL.steps
