"""The runner: the clock excludes evaluation, runs are reproducible, failures are recorded and the suite goes on."""
import time

import numpy as np
import pytest
import torch

from pinnbench.instance import ProblemInstance
from pinnbench.registry import load_plugin
from pinnbench.runner import RunSpec, execute, run_suite
from pinnbench.store import load_results, load_runs, read_run, run_files

from conftest import REPO

load_plugin(REPO / "tests" / "plugins" / "faulty_optimizers.py")


def test_clock_excludes_slow_evaluation(monkeypatch, tiny_protocol):
    original = ProblemInstance.evaluate
    delay = 0.5

    def slow_evaluate(self, theta):
        time.sleep(delay)
        return original(self, theta)

    monkeypatch.setattr(ProblemInstance, "evaluate", slow_evaluate)
    start = time.perf_counter()
    record = execute(RunSpec("laplace2d", "adam", 6865), tiny_protocol.replace(steps=6))
    wall = time.perf_counter() - start
    evaluations = len(record.trajectory["step"])
    slept = delay * evaluations
    assert evaluations == 7 and wall > slept
    # were evaluation charged, the recorded optimizer time would exceed the time slept
    assert record.manifest["time"] <= wall - slept and record.manifest["time"] < slept / 2
    assert record.trajectory["time"] == sorted(record.trajectory["time"])


def test_same_seed_gives_bit_identical_trajectories(tiny_protocol):
    spec = RunSpec("heat", "anagram", 8369)
    a, b = execute(spec, tiny_protocol), execute(spec, tiny_protocol)
    for column in ("step", "loss", "l2_abs", "l2_rel", "residual_evals", "jacobian_evals"):
        assert a.trajectory[column] == b.trajectory[column]
    assert a.info.keys() == b.info.keys()
    for key in a.info:  # NaN (a scalar that does not apply to this optimizer) counts as equal to itself
        np.testing.assert_array_equal(np.asarray(a.info[key]), np.asarray(b.info[key]), err_msg=key)
    c = execute(RunSpec("heat", "anagram", 4785), tiny_protocol)
    assert c.trajectory["loss"] != a.trajectory["loss"]


def test_budget_and_step_cap_stop_the_run(tiny_protocol):
    capped = execute(RunSpec("laplace2d", "adam", 1), tiny_protocol.replace(steps=7))
    assert capped.manifest["steps"] == 7 and capped.manifest["stop_reason"] == "steps"
    timed = execute(RunSpec("laplace2d", "adam", 1), tiny_protocol.replace(steps=None, budget=0.3))
    assert timed.manifest["stop_reason"] == "budget" and 0.3 <= timed.manifest["time"] < 3.0
    assert timed.trajectory["step"][-1] == timed.manifest["steps"] > 0


def test_failures_are_recorded_and_the_suite_goes_on(tmp_path, tiny_protocol):
    specs = [RunSpec("laplace2d", "test-nan", 1), RunSpec("laplace2d", "test-raise", 1),
             RunSpec("laplace2d", "adam", 1)]
    result = run_suite(specs, tiny_protocol, tmp_path)
    assert len(result.written) == 3
    runs = load_runs(tmp_path).set_index("optimizer")
    assert runs.loc["test-nan", "status"] == "diverged" and runs.loc["test-nan", "steps"] == 3
    assert runs.loc["test-raise", "status"] == "error"
    assert "always fails" in runs.loc["test-raise", "error"]
    assert runs.loc["adam", "status"] == "ok"


def test_results_frame_and_resume_skips_finished_runs(tmp_path, tiny_protocol):
    specs = [RunSpec("laplace2d", "adam", s) for s in (1, 2)]
    first = run_suite(specs, tiny_protocol, tmp_path)
    again = run_suite(specs + [RunSpec("laplace2d", "adam", 3)], tiny_protocol, tmp_path)
    assert len(first.written) == 2 and len(again.skipped) == 2 and len(again.written) == 1
    frame = load_results(tmp_path)
    for column in ("problem", "optimizer", "seed", "step", "time", "loss", "l2_abs", "l2_rel", "status"):
        assert column in frame.columns
    assert sorted(frame.seed.unique()) == [1, 2, 3]
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_run_file_round_trip(tmp_path, tiny_protocol):
    record = execute(RunSpec("heat", "anagram", 1), tiny_protocol)
    (path,) = run_suite([RunSpec("heat", "anagram", 1)], tiny_protocol, tmp_path).written
    back = read_run(path)
    assert back.trajectory["loss"] == record.trajectory["loss"]
    assert back.manifest["points"] == {"interior": 324, "initial": 19, "boundary": 38}  # heat's quick grid
    assert len(back.spectra["singular_values"]) == len(back.spectrum_steps) >= 1
    assert torch.equal(torch.as_tensor(back.spectra["singular_values"][0]).sort(descending=True).values,
                       torch.as_tensor(back.spectra["singular_values"][0]))
    assert run_files(tmp_path) == [path]


def test_unreadable_file_is_skipped_with_a_warning(tmp_path, tiny_protocol):
    run_suite([RunSpec("laplace2d", "adam", 1)], tiny_protocol, tmp_path)
    (tmp_path / "garbage.npz").write_bytes(b"not a zip file")
    with pytest.warns(UserWarning, match="unreadable"):
        assert len(load_runs(tmp_path)) == 1


def test_python_api_run_returns_only_its_grid(tmp_path):
    import pinnbench
    pinnbench.run("laplace2d", "adam", seeds=[1], steps=3, out=tmp_path)
    frame = pinnbench.run("laplace2d", ["adam", ("anagram", {"cutoff": 1e-7})], seeds=[2], steps=3, out=tmp_path)
    assert set(frame.seed) == {2} and set(frame.optimizer) == {"adam", "anagram[cutoff=1e-07]"}
    assert set(frame.status) == {"ok"} and frame.step.max() == 3
