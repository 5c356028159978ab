"""The AMStraMGRAM study's helpers: the nets plugin and the table script, on two short runs."""
import importlib.util
from pathlib import Path

import pytest

import pinnbench
from pinnbench import registry
from pinnbench.registry import load_plugin

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


@pytest.fixture(autouse=True)
def _restore_registry():
    """The nets plugin registers two problems; later tests must see the built-in set only."""
    registry.discover()
    saved = {kind: dict(found) for kind, found in registry._REGISTRY.items()}
    loaded = set(registry._loaded_files)
    yield
    for kind, found in saved.items():
        registry._REGISTRY[kind].clear()
        registry._REGISTRY[kind].update(found)
    registry._loaded_files.clear()
    registry._loaded_files.update(loaded)


def load_table_script():
    spec = importlib.util.spec_from_file_location("amstramgram_table", SCRIPTS / "amstramgram_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_nets_plugin_changes_only_the_net():
    load_plugin(SCRIPTS / "amstramgram_nets.py")
    wide, base = pinnbench.get_problem("laplace2d_w64"), pinnbench.get_problem("laplace2d")
    assert wide.layers == (2, 64, 1) and base.layers == (2, 32, 1)
    assert wide.optimizer_defaults == base.optimizer_defaults
    assert pinnbench.get_problem("heat_w64x2").layers == (2, 64, 64, 1)


def test_table_lists_each_variant_with_the_published_numbers(tmp_path):
    table = load_table_script()
    load_plugin(SCRIPTS / "amstramgram_nets.py")
    runs = pinnbench.run("laplace2d_w64", ["amstramgram", "anagram"], seeds=[1, 2], steps=2, out=tmp_path)
    text = table.study_table(tmp_path)
    lines = text.splitlines()
    assert len(lines) == 2 + 2  # header, rule, one row per optimizer
    row = next(line for line in lines if "| amstramgram" in line)
    assert "2x64x1" in row and "| laplace2d " in row and "2.24e-15" in row  # the paper's AMStraMGRAM L2
    mean_l2 = runs[runs.optimizer == "amstramgram"].groupby("seed").l2_abs.last().mean()
    assert f"{mean_l2:.2e}" in row
    assert table.base_problem("heat_w64x2") == "heat" and table.base_problem("laplace5d") == "laplace5d"
