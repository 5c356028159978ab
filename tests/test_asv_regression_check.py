"""scripts/asv_regression_check.py exits 1 on a planted 2x slowdown and 0 without one.

A temporary git repository holds a one-benchmark asv project (recipe A, as pinnbench's asv.conf.json) whose
benchmark calls ``planted.work()``; one commit makes it twice as slow. asv runs for real (offline, existing
environment), so this is marked slow: ``python -m pytest -m slow tests/test_asv_regression_check.py``.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "scripts" / "asv_regression_check.py"


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout.strip()


def _commit(repo: Path, seconds: float, message: str) -> str:
    (repo / "planted.py").write_text(f"import time\n\n\ndef work():\n    time.sleep({seconds})  # {message}\n")
    _git(repo, "add", "-A")
    _git(repo, "-c", "user.name=test", "-c", "user.email=test@example.invalid", "commit", "-q", "-m", message)
    return _git(repo, "rev-parse", "HEAD")


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """(repository, {name: commit}): base at 10 ms, 'same' at 10 ms, 'slower' at 20 ms per call."""
    repo = tmp_path_factory.mktemp("planted")
    config = json.loads((REPO / "asv.conf.json").read_text())
    config.update(project="planted", branches=["main"])
    (repo / "asv.conf.json").write_text(json.dumps(config, indent=2))
    (repo / "benchmarks").mkdir()
    (repo / "benchmarks" / "__init__.py").write_text("")
    (repo / "benchmarks" / "bench_planted.py").write_text(
        "import planted\n\n\ndef time_work():\n    planted.work()\n")
    (repo / ".gitignore").write_text(".asv/\n")
    _git(repo, "init", "-q", "-b", "main")
    commits = {"base": _commit(repo, 0.01, "base"), "same": _commit(repo, 0.01, "same speed"),
               "slower": _commit(repo, 0.02, "planted 2x slowdown")}
    return repo, commits


def _check(repo: Path, base: str, head: str, home: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "HOME": str(home)}  # asv writes its machine file under HOME
    env.pop("PYTHONPATH", None)
    return subprocess.run([sys.executable, str(SCRIPT), base, head, "--machine", "planted-test", "--factor", "1.2"],
                          cwd=repo, env=env, capture_output=True, text=True, timeout=600)


def test_planted_slowdown_fails_the_check(planted, tmp_path):
    repo, commits = planted
    result = _check(repo, commits["base"], commits["slower"], tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    rows = [line for line in result.stdout.splitlines() if "time_work" in line]
    assert rows and rows[0].split("|")[1].strip() == "+"
    assert len(_git(repo, "worktree", "list").splitlines()) == 1  # the temporary worktrees are gone


def test_same_speed_passes_the_check(planted, tmp_path):
    repo, commits = planted
    result = _check(repo, commits["base"], commits["same"], tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no regression" in result.stderr
