"""Run identity: the key covers the code actually run (a plugin's file, uncommitted edits of the tree), the thread
count and the BOUND constructor arguments; hyperparameters are checked against the constructor's annotations."""
import os
import shutil
import subprocess
import sys

import pytest
import torch

from pinnbench import registry
from pinnbench.errors import HyperparameterError
from pinnbench.execution.backend import InProcessBackend
from pinnbench.hyperparameters import bind
from pinnbench.protocol import Protocol
from pinnbench.registry import load_plugin
from pinnbench.runner import RunSpec, resolve, run_suite, spec_key

from conftest import REPO

PROTOCOL = Protocol(name="identity", budget=60.0, steps=2, points="quick")


@pytest.fixture
def scoped_registry():
    with registry.scoped():
        yield


def test_editing_a_plugin_file_changes_the_key(tmp_path, scoped_registry):
    plugin = tmp_path / "my_gd.py"
    plugin.write_text((REPO / "tests" / "plugins" / "my_gd.py").read_text().replace('"my-gd"', '"my-gd-edited"'))
    load_plugin(plugin)
    spec = RunSpec("laplace2d", "my-gd-edited", 1)
    before = spec_key(spec, PROTOCOL)
    assert spec_key(spec, PROTOCOL) == before
    plugin.write_text(plugin.read_text().replace("theta - self.lr * grad", "theta - 2 * self.lr * grad"))
    assert spec_key(spec, PROTOCOL) != before


def test_the_thread_count_is_part_of_the_key(tmp_path):
    spec = RunSpec("laplace2d", "adam", 1)
    assert resolve(spec, PROTOCOL, threads=1).key != resolve(spec, PROTOCOL, threads=2).key
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = run_suite([spec], PROTOCOL, tmp_path, backend=InProcessBackend())
        torch.set_num_threads(2)
        two = run_suite([spec], PROTOCOL, tmp_path, backend=InProcessBackend())
    finally:
        torch.set_num_threads(threads)
    assert len(one.written) == 1 and len(two.written) == 1 and not two.skipped  # not reused across thread counts
    assert [r.manifest["threads"] for r in one.records + two.records] == [1, 2]


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_uncommitted_edits_to_builtin_code_change_the_code_version(tmp_path):
    tree = tmp_path / "tree"
    for folder in ("pinnbench", "problems", "optimizers"):
        shutil.copytree(REPO / folder, tree / folder, ignore=shutil.ignore_patterns("__pycache__"))
    git = ["git", "-C", str(tree), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "tree"], check=True)

    def version():
        out = subprocess.run([sys.executable, "-c", "from pinnbench.environment import code_version; "
                              "print(code_version())"], env={**os.environ, "PYTHONPATH": str(tree)},
                             capture_output=True, text=True, check=True, cwd=tmp_path)
        return out.stdout.strip()

    clean = version()
    adam = tree / "optimizers" / "adam.py"
    adam.write_text(adam.read_text().replace("lr: float = 1e-3", "lr: float = 2e-3"))
    edited = version()
    (tree / "optimizers" / "new.py").write_text("# untracked\n")
    untracked = version()
    assert ".dirty-" not in clean and ".dirty-" in edited and len({clean, edited, untracked}) == 3


def test_bound_arguments_are_the_hyperparameters(tmp_path, scoped_registry):
    load_plugin(REPO / "tests" / "plugins" / "faults.py")
    specs = [RunSpec("laplace2d", "fault-private-lr", 1, (("lr", 0.1),)),
             RunSpec("laplace2d", "fault-private-lr", 1, (("lr", 0.5),))]
    result = run_suite(specs, PROTOCOL, tmp_path, backend=InProcessBackend())
    assert len(result.written) == 2 and not result.skipped  # stored as self._lr, still two runs
    assert [r.manifest["hparams"] for r in result.records] == [{"lr": 0.1}, {"lr": 0.5}]
    assert resolve(RunSpec("laplace2d", "adam", 1, (("lr", 1),)), PROTOCOL).key == \
        resolve(RunSpec("laplace2d", "adam", 1, (("lr", 1.0),)), PROTOCOL).key  # 1 and 1.0 are one run
    assert set(resolve(RunSpec("laplace2d", "adam", 1), PROTOCOL).hparams) == {
        "lr", "beta1", "beta2", "eps", "milestones", "decay"}


class _Annotated:
    def __init__(self, lr: float = 0.1, steps: int = 3, mode: str = "a", cutoff: float | None = None,
                 sizes: tuple[int, ...] = (1,), flag: bool = False, anything=None):
        pass


@pytest.mark.parametrize("given, bound", [
    ({"lr": 1}, {"lr": 1.0}), ({"cutoff": None}, {"cutoff": None}), ({"cutoff": 2}, {"cutoff": 2.0}),
    ({"sizes": [2, 3]}, {"sizes": (2, 3)}), ({"flag": True}, {"flag": True}), ({"anything": [1, "x"]}, {"anything": [1, "x"]}),
])
def test_annotations_accept_and_coerce(given, bound):
    assert bind("t", _Annotated, given)[0] == bound


@pytest.mark.parametrize("given, message", [
    ({"lr": "abc"}, "invalid lr='abc'; expected a number"), ({"lr": True}, "invalid lr=True"),
    ({"lr": float("nan")}, "invalid lr=nan"), ({"steps": 1.5}, "expected an integer"),
    ({"steps": True}, "expected an integer"), ({"mode": 3}, "expected a string"),
    ({"sizes": [1.5]}, "expected a tuple of an integer"), ({"flag": 1}, "expected true or false"),
    ({"nope": 1}, "has no hyperparameter 'nope'"),
])
def test_annotations_reject(given, message):
    with pytest.raises(HyperparameterError, match=message.replace("(", r"\(").replace("[", r"\[")):
        bind("t", _Annotated, given)
