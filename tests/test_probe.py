"""The performance probe runs end to end, its numbers are consistent, and bad input gets one line and exit 2."""
import csv
import json

import pytest
import torch

from pinnbench import probe


@pytest.fixture(autouse=True)
def one_thread():
    """One BLAS thread: tiny kernels with two threads stall for milliseconds when the other core is busy."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    probe.set_openblas_threads(1)
    yield
    torch.set_num_threads(previous)
    probe.set_openblas_threads(previous)


def test_probe_problem_table_json_and_csv(tmp_path, capsys):
    out_json, out_csv = tmp_path / "probe.json", tmp_path / "probe.csv"
    code = probe.main(["-p", "laplace2d", "--optimizers", "anagram", "--no-scaling", "--repeat", "1",
                       "--threads", "1", "--json", str(out_json), "--csv", str(out_csv)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "laplace2d" in printed and "anagram / bound" in printed and "GFLOP/s" in printed
    report = json.loads(out_json.read_text())
    assert report["threads"] == 1 and report["peak_gflops"] > 0 and report["bandwidth_gbs"] > 0
    assert set(report["ns_per_value"]) == {"tanh", "sigmoid", "addcmul"} and min(report["ns_per_value"].values()) > 0
    (row,) = report["problems"]
    assert (row["N"], row["P"]) == (900, 129)
    assert row["bound_ms"] == pytest.approx(row["svd_implicit_ms"] + row["jac_fast_ms"] + 31 * row["residual_ms"])
    assert row["anagram_step_of_bound"] == pytest.approx(row["anagram_step_ms"] / row["bound_ms"])
    assert row["anagram_in_run_of_warm"] == pytest.approx(row["anagram_in_run_ms"] / row["anagram_step_ms"])
    assert "anagram in-run / warm" in printed
    assert row["jac_speedup"] == pytest.approx(row["jac_generic_ms"] / row["jac_fast_ms"])
    assert row["svd_of_peak"] == pytest.approx(
        probe.svd_flops(900, 129) / (report["peak_gflops"] * 1e9) / (row["svd_ms"] / 1e3))
    with open(out_csv) as fh:
        lines = list(csv.DictReader(fh))
    assert {(line["case"], line["metric"]) for line in lines} >= {("laplace2d", "bound_ms"),
                                                                  ("laplace2d", "anagram_step_ms")}


def test_in_run_step_is_the_median_of_the_run_loops_step_times(monkeypatch):
    """Steps 6+ of a real run, timed by the run loop's own clock: a planted 20 ms sleep in every step from the
    sixth shows up in full, and the clock differences add up to the run's optimizer time."""
    import time
    from pinnbench.registry import get_optimizer
    sleeps = {"n": 0}
    anagram = type(get_optimizer("anagram"))
    original = anagram.step

    def slow_step(self, objective, theta):
        sleeps["n"] += 1
        if sleeps["n"] >= 6:
            time.sleep(0.02)
        return original(self, objective, theta)

    fast = probe.in_run_step("laplace2d", "anagram", torch.device("cpu"), steps=10)
    monkeypatch.setattr(anagram, "step", slow_step)
    slow = probe.in_run_step("laplace2d", "anagram", torch.device("cpu"), steps=10)
    assert 0.0 < fast and slow - fast == pytest.approx(0.02, abs=0.01)


def test_scaling_series_times_every_route():
    timer = probe.Timer(torch.device("cpu"))
    ceilings = probe.Ceilings(peak_gflops=10.0, bandwidth_gbs=10.0)
    rows = probe.probe_scaling([(64, (2, 8, 1)), (40, (2, 6, 6, 1))], torch.device("cpu"), timer, ceilings, 1)
    assert [(row["N"], row["P"]) for row in rows] == [(64, 33), (40, 67)]
    for row in rows:
        routes = {key for key in row if key.startswith("svd_") and key.endswith("_ms")}
        assert routes == {"svd_gesdd_ms", "svd_qr+gesdd_ms", "svd_scipy-gesdd_ms", "svd_scipy-gesvd_ms",
                          "svd_q-implicit_ms"}
        assert row["svd_best_route"] in {"gesdd", "qr+gesdd", "scipy-gesdd", "scipy-gesvd"}
        assert row[f"svd_{row['svd_best_route']}_ms"] == min(row[f"svd_{r}_ms"] for r in probe.SVD_ROUTES)


def test_model_flop_counts():
    assert probe.svd_flops(900, 129) == probe.svd_flops(129, 900) == 4 * 900 * 129**2 + 22 * 129**3
    model = probe.MLP((2, 32, 1))
    groups = [probe.ResidualGroup("i", torch.zeros(10, 2), lambda x, f: f.lap, lap_dims=(0, 1)),
              probe.ResidualGroup("b", torch.zeros(5, 2), lambda x, f: f.u)]
    assert probe.jacobian_flops(model, groups) == 6 * (2 * 32 + 32) * (4 * 10 + 1 * 5)


@pytest.mark.parametrize("argv, message", [
    (["-p", "nowhere"], "unknown problem 'nowhere'"),
    (["--optimizers", "nothing"], "unknown optimizer 'nothing'"),
    (["--threads", "0"], "invalid --threads 0"),
])
def test_bad_input_is_one_line_and_exit_2(capsys, argv, message):
    assert probe.main([*argv, "--no-scaling"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("pinnbench: error: ") and message in err[-1]
