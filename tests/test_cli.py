"""The command line: listing, running, plugins from three sources, resume after a kill, one-line errors, the
live progress line."""
import io
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from pinnbench.backends import InProcessBackend, IsolatedBackend
from pinnbench.cli import main
from pinnbench.execution.progress import Progress
from pinnbench.protocol import Protocol
from pinnbench.runner import RunSpec, run_suite
from pinnbench.store import load_runs

from conftest import REPO, cli

PLUGINS = REPO / "tests" / "plugins"


@pytest.mark.parametrize("args, message", [
    (["run", "-p", "nope", "-o", "adam"], "unknown problem 'nope'; accepted: "),
    (["run", "-p", "laplace2d", "-o", "nope"], "unknown optimizer 'nope'; accepted: "),
    (["run", "-p", "laplace2d", "-o", "adam", "--budget", "3x"], "invalid budget '3x'"),
    (["run", "-p", "laplace2d", "-o", "adam", "--budget=-1s"], "invalid budget '-1s'"),
    (["run", "-p", "laplace2d", "-o", "adam", "--budget", "0s"], "invalid budget '0s'"),
    (["run", "-p", "laplace2d", "-o", "adam", "--steps", "0"], "invalid --steps 0"),
    (["run", "-p", "laplace2d", "-o", "adam", "--device", "tpu"], "invalid device 'tpu'"),
    (["run", "-p", "laplace2d", "-o", "anagram:cutof=1e-7"], "has no hyperparameter 'cutof'; accepted: cutoff"),
    (["run", "-p", "laplace2d", "-o", "adam", "--protocol", "nope"], "unknown protocol 'nope'; accepted: quick"),
])
def test_bad_input_one_line_exit_2_nothing_written(tmp_path, capsys, args, message):
    out = tmp_path / "out"
    assert main([*args, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("pinnbench: error: ") and message in err
    assert not out.exists()


def test_protocol_file_with_wrong_key(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text('budget = "5s"\nbudgett = "5s"\n')
    assert main(["run", "-p", "laplace2d", "-o", "adam", "--protocol", str(bad), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "unknown key 'budgett'; accepted: " in err and err.count("\n") == 1
    broken = tmp_path / "broken.toml"
    broken.write_text("budget = = 3\n")
    assert main(["run", "--all", "--protocol", str(broken)]) == 2
    assert "is malformed" in capsys.readouterr().err


def test_protocol_file_sets_the_run(tmp_path):
    good = tmp_path / "tiny.toml"
    good.write_text('extends = "quick"\nseeds = [1, 2]\nbudget = "2s"\nsteps = 3\n'
                    'problems = ["laplace2d"]\noptimizers = ["adam"]\n')
    assert main(["run", "--all", "--protocol", str(good), "--out", str(tmp_path / "o")]) == 0
    runs = load_runs(tmp_path / "o")
    assert sorted(runs.seed) == [1, 2] and set(runs.steps) == {3} and set(runs.protocol) == {"tiny"}


def test_plugin_that_fails_to_import(tmp_path, capsys):
    code = main(["run", "-p", "laplace2d", "-o", "adam", "--plugin", str(PLUGINS / "broken_import.py"),
                 "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and "failed to import: ModuleNotFoundError" in err and err.count("\n") == 1
    assert not (tmp_path / "o").exists()


def test_plugin_file_runs_and_is_listed(tmp_path):
    listed = cli("list", "--plugin", str(PLUGINS / "my_gd.py"))
    assert listed.returncode == 0 and "my-gd" in listed.stdout and "plugin" in listed.stdout
    ran = cli("run", "-p", "laplace2d", "-o", "my-gd:lr=0.01", "--steps", "5", "--plugin",
              str(PLUGINS / "my_gd.py"), "--out", str(tmp_path / "o"))
    assert ran.returncode == 0, ran.stderr
    runs = load_runs(tmp_path / "o")
    assert list(runs.optimizer) == ["my-gd[lr=0.01]"] and runs.loss[0] < 200


def test_plugin_dropped_into_optimizers_folder(tmp_path):
    tree = tmp_path / "tree"
    for folder in ("pinnbench", "problems", "optimizers"):
        shutil.copytree(REPO / folder, tree / folder, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(PLUGINS / "my_gd.py", tree / "optimizers" / "my_gd.py")
    listed = cli("list", env={"PYTHONPATH": str(tree)}, cwd=tmp_path)
    assert listed.returncode == 0 and "my-gd" in listed.stdout and "builtin" in listed.stdout


def test_plugin_from_entry_point(tmp_path):
    site = tmp_path / "site"
    (site / "mygd_pkg").mkdir(parents=True)
    shutil.copy(PLUGINS / "my_gd.py", site / "mygd_pkg" / "__init__.py")
    dist = site / "mygd_pkg-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: mygd-pkg\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[pinnbench.optimizers]\nmy-gd = mygd_pkg:MyGD\n")
    listed = cli("list", env={"PYTHONPATH": f"{REPO}{os.pathsep}{site}"})
    assert listed.returncode == 0, listed.stderr
    assert any("my-gd" in line and "entry point" in line for line in listed.stdout.splitlines())


@pytest.mark.heavy
@pytest.mark.parametrize("signum, code", [(signal.SIGKILL, -9), (signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_killed_suite_resumes_without_losing_or_duplicating(tmp_path, signum, code):
    out = tmp_path / "o"
    args = [sys.executable, "-m", "pinnbench", "run", "-p", "laplace2d", "-o", "adam", "--seeds", "1", "2", "3",
            "4", "--budget", "1.5s", "--out", str(out)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and len(list(out.glob("*.npz"))) < 1:
        time.sleep(0.05)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    finished = len(list(out.glob("*.npz")))
    assert proc.returncode == code and 1 <= finished < 4
    if signum != signal.SIGKILL:  # stopped cleanly: one line, claims released, no temporary file
        assert err.splitlines()[-1] == "pinnbench: interrupted; finished runs are saved, run again to resume"
        assert not list(out.glob(".locks/*.lock")) and not list(out.glob(".*.tmp"))
    resumed = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stderr.count("already done, skipped") == finished
    runs = load_runs(out)
    assert sorted(runs.seed) == [1, 2, 3, 4] and runs.run_id.is_unique


def test_python_m_and_list():
    listed = cli("list")
    assert listed.returncode == 0
    for name in ("laplace2d", "heat", "laplace5d", "nonlinear_poisson", "adam", "anagram", "quick", "paper"):
        assert name in listed.stdout


def test_run_writes_the_report_and_report_command(tmp_path, capsys):
    out = tmp_path / "o"
    assert main(["run", "-p", "laplace2d", "-o", "adam", "--steps", "3", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert f"report written to {out / 'report' / 'index.html'}" in captured.err
    summary = captured.out.splitlines()  # the final values by the one statistic, named
    assert summary[0].startswith("final values per problem and optimizer: median of the n ok seeds")
    (row,) = [line.split() for line in summary if line.startswith("laplace2d")]
    assert row[:3] == ["laplace2d[net=2-24-24-1]", "adam", "1/1"] and row[-2] == f"{load_runs(out).l2_abs[0]:.2e}"
    assert (out / "report" / "README.md").is_file()
    assert main(["report", str(out), "--out", str(tmp_path / "r"), "--format", "latex", "--no-figures"]) == 0
    assert list((tmp_path / "r").rglob("*.tex"))
    assert main(["report", str(tmp_path / "missing")]) == 2
    assert "results folder" in capsys.readouterr().err


def test_plot_spectrum_of_an_anagram_run(tmp_path, capsys):
    out = tmp_path / "o"
    assert main(["run", "-p", "laplace2d", "-o", "anagram", "--steps", "12", "--out", str(out), "--no-report"]) == 0
    (run,) = out.glob("*.npz")
    assert main(["plot", "spectrum", str(run), "--out", str(tmp_path / "fig")]) == 0
    assert (tmp_path / "fig.png").stat().st_size > 10_000 and (tmp_path / "fig.svg").is_file()
    assert main(["plot", "spectrum", str(tmp_path / "missing.npz")]) == 2
    assert "run file" in capsys.readouterr().err


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("backend", [InProcessBackend, IsolatedBackend])
def test_live_progress_line_names_the_run(tmp_path, backend):
    protocol = Protocol(name="test", budget=60.0, steps=3, points="quick")
    terminal = _Terminal()
    with backend() as chosen:
        run_suite([RunSpec("heat", "adam", 7, (("lr", 0.01),))], protocol, tmp_path, progress=Progress(terminal),
                  backend=chosen)
    live = [part for part in terminal.getvalue().split("\r\033[K") if "step " in part and "/60 s" in part]
    assert live and all(part.startswith("  heat adam[lr=0.01] seed 7 [") for part in live)


def test_plot_spectrum_of_a_run_without_spectra_is_one_line(tmp_path, capsys):
    out = tmp_path / "o"
    assert main(["run", "-p", "laplace2d", "-o", "adam", "--steps", "2", "--out", str(out), "--no-report",
                 "--in-process"]) == 0
    (run,) = out.glob("*.npz")
    capsys.readouterr()
    assert main(["plot", "spectrum", str(run), "--out", str(tmp_path / "fig")]) == 2
    err = capsys.readouterr().err
    assert err == (f"pinnbench: error: run {run.name} (adam) has no spectra: only SVD-based optimizers "
                   "(amstramgram, anagram) record them\n")
    assert not list(tmp_path.glob("fig*"))
