"""``pinnbench compare``: the README's example optimizer against stored baselines, reused when protocol and
machine match, run again (never overwritten) when they do not."""
import importlib
from pathlib import Path

import pandas as pd
import pytest
import torch

from pinnbench import report
from pinnbench.cli import main
from pinnbench.protocol import load_protocol
from pinnbench.runner import RunSpec, run_suite
from pinnbench.store import load_runs, read_run, run_files, write_run

from conftest import REPO

MY_GD = str(REPO / "tests" / "plugins" / "my_gd.py")
compare_module = importlib.import_module("pinnbench.compare")  # the module: pinnbench.compare is also a function


@pytest.fixture(autouse=True)
def one_thread():
    """Runs here are tiny: one thread keeps them fast on a loaded machine (the thread count is not in run keys)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_compare_reuses_the_stored_baselines(tmp_path, capsys):
    out = tmp_path / "results"
    assert main(["run", "-p", "laplace2d", "-o", "adam", "--steps", "5", "--out", str(out), "--no-report"]) == 0
    capsys.readouterr()
    compare = ["compare", MY_GD, "--against", "adam", "anagram", "-p", "laplace2d", "--steps", "5", "--out", str(out)]
    assert main(compare) == 0
    captured = capsys.readouterr()
    assert "reused 1 stored runs (1 baselines), ran 2 (1 of the new optimizer, 1 missing baselines)" in captured.err
    table = captured.out.splitlines()
    assert table[0] == "final L2 error (absolute RMS), median [95% bootstrap CI] over ok seeds per problem:"
    assert "my-gd (new)" in table[1] and "adam" in table[1] and "anagram" in table[1]
    runs = load_runs(out).set_index("optimizer")
    row = next(line for line in table if line.startswith("laplace2d")).split()
    assert row[1:] == [f"{runs.loc[name, 'l2_abs']:.2e}" for name in ("my-gd", "adam", "anagram")]
    report = (out / "compare-my-gd" / "README.md").read_text()
    assert "my-gd" in report and "anagram" in report
    assert main([*compare, "--no-report"]) == 0
    assert "reused 3 stored runs (2 baselines), ran 0" in capsys.readouterr().err
    assert len(run_files(out)) == 3


def test_baselines_from_another_machine_are_run_again_beside_them(tmp_path):
    protocol = load_protocol("quick").replace(steps=3)
    (path,) = run_suite([RunSpec("laplace2d", "adam", 6865)], protocol, tmp_path).written
    elsewhere = read_run(path)
    elsewhere.manifest["environment"]["hostname"] = "another-machine"
    write_run(elsewhere, tmp_path)
    comparison = compare_module.compare_plugin(MY_GD, protocol, out=tmp_path, against=[("adam", {})],
                                               problems=["laplace2d"], report=False)
    assert comparison.reused == 0 and comparison.ran == 2
    hosts = sorted(read_run(p).manifest["environment"]["hostname"] for p in run_files(tmp_path)
                   if read_run(p).manifest["optimizer"] == "adam")
    assert len(hosts) == 2 and "another-machine" in hosts
    assert read_run(path).manifest["environment"]["hostname"] == "another-machine"  # kept, not overwritten


def test_report_highlights_the_new_optimizer(tmp_path, monkeypatch):
    calls = []

    def write_report(results_dir, out_dir=None, formats=("md",), **options):
        calls.append((results_dir, out_dir, options))
        return Path(out_dir)

    monkeypatch.setattr(report, "write_report", write_report)
    comparison = compare_module.compare_plugin(MY_GD, load_protocol("quick").replace(steps=2), out=tmp_path,
                                               against=[], problems=["laplace2d"])
    assert calls == [(tmp_path, tmp_path / "compare-my-gd", {"highlight": "my-gd"})]
    assert comparison.report == tmp_path / "compare-my-gd"


def test_median_errors_table_marks_the_new_optimizer():
    runs = pd.DataFrame({"problem": ["heat"] * 4 + ["laplace2d"],
                         "optimizer": ["adam", "adam", "my-gd", "my-gd", "adam"],
                         "status": ["ok", "ok", "ok", "error", "ok"], "l2_abs": [1e-3, 3e-3, 1e-5, 1.0, 0.5]})
    table = compare_module.median_errors(runs, ["my-gd"])
    assert list(table.columns) == ["my-gd (new)", "adam"]
    assert table.loc["heat"].tolist() == ["1.00e-05 (1/2 seeds ok)", "2.00e-03"]  # the failed 1.0 is not in it
    assert table.loc["laplace2d"].tolist() == ["-", "5.00e-01"]


def test_plugin_without_optimizer(tmp_path, capsys):
    empty = tmp_path / "empty.py"
    empty.write_text("x = 1\n")
    assert main(["compare", str(empty), "--out", str(tmp_path / "o")]) == 2
    assert "registers no optimizer" in capsys.readouterr().err and not (tmp_path / "o").exists()
