"""`pinnbench list`: every optimizer with its hyperparameters and defaults, every problem with its net."""
from pinnbench.cli import main
from pinnbench.registry import entries


def test_list_shows_hyperparameters_with_defaults_and_default_nets(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "precision=1e-12" in out and "fallback='portfolio'" in out  # amstramgram's
    assert "cutoff=None, line_search_steps=31" in out  # anagram's
    assert "net 2-32-1 (P = 129)" in out and "net 2-64-64-1 (P = 4417)" in out  # laplace2d, burgers
    for name in entries("optimizer"):
        assert name in out
    assert "amstramgram" in out.split("protocol")[-1]  # the study preset is listed
