"""`pinnbench list`: every optimizer with its hyperparameters and defaults, every problem with its net and the
points of each residual group."""
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


def test_list_shows_each_problems_points_per_group_for_quick_and_paper(capsys):
    assert main(["list"]) == 0
    header, _, *lines = capsys.readouterr().out.split("\n\n")[0].splitlines()
    net, points = header.index("net (default; where a protocol pins another)"), header.index("collocation points per group")
    cells: dict[str, list[str]] = {}  # problem -> [its net cell, its points cell], wrapped lines joined
    for line in lines:
        if line[:1].strip():
            cells[line.split()[0]] = ["", ""]
        name = list(cells)[-1]
        cells[name] = [f"{cells[name][0]} {line[net:points].strip()}".strip(),
                       f"{cells[name][1]} {line[points:].strip()}".strip()]
    assert set(cells) == set(entries("problem"))
    assert cells["laplace2d"] == ["net 2-32-1 (P = 129); quick: 2-24-24-1 (P = 697); amstramgram: 2-32-32-1 (P = "
                                  "1185)", "quick: interior 324, boundary 76; paper: interior 784, boundary 116"]
    assert cells["heat"][1] == "quick: interior 324, initial 19, boundary 38; paper: interior 784, initial 29, boundary 58"
    assert cells["laplace5d"][1] == "quick: interior 1000, boundary 200; paper: interior 4000, boundary 500"
    assert cells["allen_cahn"] == ["net 2-20-20-20-1 (P = 921)", "quick: interior 1624, initial 41, boundary_left "
                                   "29, boundary_right 29; paper: the same"]
