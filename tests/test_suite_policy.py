"""Suite policies: the default command isolates runs (a hang times out, a crash costs its run), suites that do not
resume still never repeat each other's runs, and the exit status says whether any run ended in error."""
import threading

import pytest

from pinnbench import registry
from pinnbench.cli import main
from pinnbench.execution.backend import InProcessBackend
from pinnbench.execution.backends import make_backend
from pinnbench.protocol import Protocol, load_protocol
from pinnbench.runner import RunSpec, run_suite
from pinnbench.store import load_runs, records

from conftest import REPO

PLUGINS = REPO / "tests" / "plugins"


@pytest.fixture
def scoped_registry():
    with registry.scoped():
        yield


def test_the_default_command_stops_a_hang_and_survives_a_crash(tmp_path, capsys, scoped_registry):
    out = tmp_path / "o"
    code = main(["run", "-p", "laplace2d", "-o", "test-hang", "test-segfault", "adam", "--plugin",
                 str(PLUGINS / "hostile.py"), "--budget", "2s", "--grace", "1s", "--retries", "0", "--out", str(out),
                 "--no-report"])
    err = capsys.readouterr().err
    assert make_backend(protocol=load_protocol("quick")).describe() in err  # quick: one isolated worker per core
    runs = load_runs(out).set_index("optimizer")
    assert runs.loc["test-hang", "status"] == "timeout" and runs.loc["adam", "status"] == "ok"
    assert "killed by signal SIGSEGV" in runs.loc["test-segfault", "error"]
    assert code == 1 and err.splitlines()[-1].startswith("pinnbench: 1 of 3 runs ended in error (first: laplace2d[net=2-24-24-1] "
                                                         "test-segfault seed 6865: worker process died")
    assert str(out) in err.splitlines()[-1]


@pytest.mark.parametrize("optimizer, code", [("test-raise", 1), ("test-nan", 0)])
def test_exit_status_is_1_only_when_runs_ended_in_error(tmp_path, capsys, scoped_registry, optimizer, code):
    args = ["run", "-p", "laplace2d", "-o", optimizer, "adam", "--steps", "4", "--plugin",
            str(PLUGINS / "faulty_optimizers.py"), "--out", str(tmp_path), "--in-process", "--no-report"]
    assert main(args) == code
    last = capsys.readouterr().err.splitlines()[-1]
    if code:
        assert last.startswith("pinnbench: 1 of 2 runs ended in error") and "always fails" in last
    else:
        assert last.startswith("pinnbench: ran 2 runs (1 ok, 1 diverged)")
    assert main(args) == 0  # resumed: nothing ran now, nothing ended in error now


def test_suites_that_do_not_resume_still_share_a_folder(tmp_path):
    specs = [RunSpec("laplace2d", "adam", seed) for seed in (1, 2, 3, 4)]
    protocol = Protocol(name="test", budget=60.0, steps=30, points="quick")
    run_suite(specs[:1], protocol, tmp_path, backend=InProcessBackend())  # found before: both run it again
    results = []
    suites = [threading.Thread(target=lambda: results.append(
        run_suite(specs, protocol, tmp_path, resume=False, backend=InProcessBackend()))) for _ in range(2)]
    for suite in suites:
        suite.start()
    for suite in suites:
        suite.join()
    assert sum(len(r.written) for r in results) == 4  # each run once, the first one re-run too
    assert sorted(len(r.written) + len(r.skipped) for r in results) == [4, 4]
    runs = load_runs(tmp_path)
    assert sorted(runs.seed) == [1, 2, 3, 4]


def test_a_step_that_overruns_the_budget_is_recorded_and_shown(tmp_path, capsys, scoped_registry):
    code = main(["run", "-p", "laplace2d", "-o", "test-slow-step", "--plugin", str(PLUGINS / "hostile.py"),
                 "--budget", "0.1s", "--in-process", "--out", str(tmp_path), "--no-report"])
    err = capsys.readouterr().err
    (m,) = [r.manifest for _, r in records(tmp_path)]
    assert code == 0 and m["steps"] == 1 and m["longest_step"] >= 0.3 and 0.2 <= m["overrun"] == m["time"] - 0.1
    assert "warning: over budget by 0.2 s (longest step 0.3 s); warning: only 1 steps in the budget" in err


@pytest.mark.parametrize("cores, threads, expected", [(4, 1, ("process", 4)), (4, 2, ("process", 2)),
                                                      (2, None, ("isolated", 1)), (2, 4, ("isolated", 1))])
def test_the_default_backend_runs_cores_over_threads_workers(monkeypatch, cores, threads, expected):
    from pinnbench.execution import backends
    monkeypatch.setattr(backends, "available_cpus", lambda: list(range(cores)))
    backend = backends.make_backend(protocol=Protocol(threads=threads))
    assert (backend.name, backend.jobs) == expected
    assert backends.make_backend(jobs=3, protocol=Protocol(threads=threads)).jobs == 3  # --jobs wins
