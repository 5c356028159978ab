"""Execution backends: worker processes and a real Dask cluster give the sequential results; a killed suite or
worker loses nothing but the run in progress; two suites share a results folder; stale claims are broken."""
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from pinnbench.execution import backend as execution_backend
from pinnbench.backends import DaskBackend, ProcessBackend, available_cpus, oversubscription
from pinnbench.claims import Claims
from pinnbench.cli import main
from pinnbench.protocol import Protocol, load_protocol
from pinnbench.runner import Progress, RunSpec, grid, run_suite
from pinnbench.store import load_runs, read_run

from conftest import REPO
from record_checks import assert_same_results

GRID = grid(["laplace2d"], [("adam", {}), ("anagram", {})], [1, 2])


@pytest.fixture
def threads_of_half_the_cores():
    """This process computes with the threads each of two concurrent workers gets (cores // 2)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(max(1, len(available_cpus()) // 2))
    yield torch.get_num_threads()
    torch.set_num_threads(threads)


def _records(folder: Path) -> dict:
    return {(r.manifest["optimizer"], r.manifest["seed"]): r for r in map(read_run, sorted(folder.rglob("*.npz")))}


def _assert_same_suite(reference: Path, other: Path) -> None:
    expected, got = _records(reference), _records(other)
    assert expected.keys() == got.keys() and len(got) == len(GRID)
    for key, record in expected.items():
        assert_same_results(record, got[key])


def test_jobs_2_gives_the_sequential_results(tmp_path, threads_of_half_the_cores, capsys):
    run_suite(GRID, load_protocol("quick").replace(steps=5), tmp_path / "sequential")
    args = ["run", "-p", "laplace2d", "-o", "adam", "anagram", "--seeds", "1", "2", "--steps", "5",
            "--out", str(tmp_path / "jobs2"), "--jobs", "2", "--no-report"]
    assert main(args) == 0
    assert "2 worker processes" in capsys.readouterr().err
    _assert_same_suite(tmp_path / "sequential", tmp_path / "jobs2")
    executions = [r.manifest["execution"] for r in _records(tmp_path / "jobs2").values()]
    assert {e["backend"] for e in executions} == {"process"} and {e["concurrent_runs"] for e in executions} == {2}
    assert {e["threads"] for e in executions} == {threads_of_half_the_cores}
    cpu_sets = {tuple(e["cpus"]) for e in executions}
    if len(available_cpus()) >= 2:  # each worker pinned to its own cores
        assert len(cpu_sets) == 2 and not set.intersection(*map(set, cpu_sets))


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


@pytest.mark.heavy
@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs /proc to find the worker processes")
def test_killed_parallel_suite_resumes_each_run_once(tmp_path, threads_of_half_the_cores):
    out = tmp_path / "o"
    args = [sys.executable, "-m", "pinnbench", "run", "-p", "laplace2d", "-o", "adam", "--seeds", "1", "2", "3",
            "4", "--steps", "100", "--out", str(out)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    suite = subprocess.Popen([*args, "--jobs", "2"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 180
    while time.time() < deadline and not list(out.glob("*.npz")):
        time.sleep(0.05)
    workers = _children(suite.pid)
    suite.send_signal(signal.SIGKILL)
    suite.wait()
    finished = len(list(out.glob("*.npz")))
    assert 1 <= finished < 4 and workers
    deadline = time.time() + 10  # the workers die with their suite
    while time.time() < deadline and any(Path(f"/proc/{pid}").exists() for pid in workers):
        time.sleep(0.1)
    assert not [pid for pid in workers if Path(f"/proc/{pid}").exists()]
    assert list((out / ".locks").glob("*.lock"))  # the killed suite's claims are left behind, stale
    specs = [RunSpec("laplace2d", "adam", seed) for seed in (1, 2, 3, 4)]
    resumed = run_suite(specs, load_protocol("quick").replace(steps=100), out)  # any backend resumes
    assert len(resumed.skipped) == finished and len(resumed.written) == 4 - finished
    runs = load_runs(out)
    assert sorted(runs.seed) == [1, 2, 3, 4] and runs.run_id.is_unique and set(runs.status) == {"ok"}
    assert not list((out / ".locks").glob("*.lock"))


def test_two_suites_share_a_folder_without_doing_a_run_twice(tmp_path, threads_of_half_the_cores):
    specs = [RunSpec("laplace2d", "adam", seed) for seed in (1, 2, 3, 4)]
    protocol = Protocol(name="test", budget=60.0, steps=100, points="quick")
    results = []
    suites = [threading.Thread(target=lambda: results.append(run_suite(specs, protocol, tmp_path)))
              for _ in range(2)]
    for suite in suites:
        suite.start()
    for suite in suites:
        suite.join()
    assert sorted(len(r.written) + len(r.skipped) for r in results) == [4, 4]
    assert sum(len(r.written) for r in results) == 4  # each run done by one suite, found done by the other
    runs = load_runs(tmp_path)
    assert sorted(runs.seed) == [1, 2, 3, 4] and runs.run_id.is_unique


def _write_lock(folder: Path, key: str, holder: dict, age: float = 0.0) -> Path:
    path = folder / ".locks" / f"{key}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(holder))
    os.utime(path, (time.time() - age, time.time() - age))
    return path


def test_stale_claims_are_broken_and_live_ones_respected(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    host = socket.gethostname()
    _write_lock(tmp_path, "dead", {"host": host, "pid": int(dead.stdout)})
    _write_lock(tmp_path, "alive", {"host": host, "pid": 1})
    _write_lock(tmp_path, "elsewhere", {"host": "another-host", "pid": 1})
    _write_lock(tmp_path, "forgotten", {"host": "another-host", "pid": 1}, age=3600)
    _write_lock(tmp_path, "mine-from-before", {"host": host, "pid": os.getpid()})
    with Claims(tmp_path) as claims:
        assert claims.claim("dead") and claims.claim("forgotten") and claims.claim("mine-from-before")
        assert not claims.claim("alive") and not claims.claim("elsewhere")
        assert claims.claim("new") and not Claims(tmp_path).claim("new")
    assert sorted(p.stem for p in (tmp_path / ".locks").glob("*.lock")) == ["alive", "elsewhere"]


def test_oversubscription_warning(tmp_path, capsys, monkeypatch):
    assert oversubscription(2, 1, 2) is None and "3 concurrent runs x 1 threads" in oversubscription(3, 1, 2)
    monkeypatch.setattr(execution_backend, "available_cpus", lambda: [0])
    protocol = tmp_path / "p.toml"
    protocol.write_text("threads = 2\nsteps = 1\n")
    assert main(["run", "-p", "laplace2d", "-o", "adam", "--protocol", str(protocol), "--out", str(tmp_path),
                 "--no-report"]) == 0
    assert "warning: 1 concurrent runs x 2 threads = 2 threads on 1 cores" in capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    (["--jobs", "0"], "invalid --jobs 0"),
    (["--in-process", "--grace", "5s"], "--grace and --retries apply to isolated runs"),
    (["--in-process", "--jobs", "2"], "--in-process excludes --jobs"),
    (["--jobs", "2", "--scheduler", "tcp://127.0.0.1:1"], "--jobs and a Dask scheduler exclude each other"),
])
def test_bad_execution_options(tmp_path, capsys, args, message):
    assert main(["run", "-p", "laplace2d", "-o", "adam", "--out", str(tmp_path / "o"), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and not (tmp_path / "o").exists()


@pytest.mark.heavy
def test_dask_cluster_gives_the_sequential_results(dask_cluster, tmp_path, tiny_protocol,
                                                   threads_of_half_the_cores):
    scheduler_file, _ = dask_cluster
    run_suite(GRID, tiny_protocol, tmp_path / "sequential")
    with DaskBackend(scheduler_file=str(scheduler_file)) as backend:
        assert backend.address.startswith("tcp://127.0.0.1:")
        run_suite(GRID, tiny_protocol, tmp_path / "dask", backend=backend)
    _assert_same_suite(tmp_path / "sequential", tmp_path / "dask")
    executions = [r.manifest["execution"] for r in _records(tmp_path / "dask").values()]
    assert {e["backend"] for e in executions} == {"dask"} and {e["concurrent_runs"] for e in executions} == {2}
    assert {e["worker"].split()[1] for e in executions} == {"(w1)", "(w2)"}


@pytest.mark.heavy
def test_killing_a_dask_worker_loses_only_its_run(dask_cluster, tmp_path):
    scheduler_file, workers = dask_cluster
    protocol = Protocol(name="test", budget=60.0, steps=100, points="quick", threads=1)  # w2 alone would take every core
    specs = [RunSpec("laplace2d", "adam", seed) for seed in range(1, 5)]
    killed = []

    class KillW1AfterTheFirstRun(Progress):
        def finished(self, index, total, spec, record):
            super().finished(index, total, spec, record)
            if record is not None and not killed:
                workers["w1"].kill()
                killed.append(record.manifest["execution"]["worker"])

    with DaskBackend(scheduler_file=str(scheduler_file)) as backend:
        result = run_suite(specs, protocol, tmp_path, progress=KillW1AfterTheFirstRun(), backend=backend)
    assert killed and workers["w1"].wait(timeout=10) is not None
    runs = load_runs(tmp_path)
    assert sorted(runs.seed) == [1, 2, 3, 4] and runs.run_id.is_unique
    assert (runs.status == "ok").sum() >= 3 and len(result.written) == 4
    late = [r.manifest["execution"]["worker"] for r in result.records[2:]]
    assert all("(w2)" in worker for worker in late)  # after the kill, w2 does the rest
