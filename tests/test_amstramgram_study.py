"""The AMStraMGRAM study: nets as data (CLI, protocol, run key, manifest, labels), the `amstramgram` preset, and
the study's table script on short runs."""
import importlib.util
import json
from pathlib import Path

import pytest

import pinnbench
from pinnbench.cli import main, parse_problem
from pinnbench.protocol import load_protocol
from pinnbench.runner import RunSpec, grid, spec_key, step_cap
from pinnbench.store import load_runs

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def load_table_script():
    spec = importlib.util.spec_from_file_location("amstramgram_table", SCRIPTS / "amstramgram_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_problem_settings_parse_a_net_in_any_separator():
    assert parse_problem("laplace2d") == ("laplace2d", None)
    assert parse_problem("laplace2d:net=2,64,64,1") == ("laplace2d", (2, 64, 64, 1))
    assert parse_problem("heat:net=2x24x24x1") == ("heat", (2, 24, 24, 1))
    for bad in ("laplace2d:net=", "laplace2d:width=3", "laplace2d:net=2,a,1", "laplace2d:net"):
        with pytest.raises(pinnbench.PinnbenchError):
            parse_problem(bad)


def test_a_net_changes_the_run_key_and_the_default_net_does_not_count_as_one():
    quick = load_protocol("quick").replace(nets=())  # the problem's default net, [2,32,1]
    base, = grid(["laplace2d"], [("anagram", {})], [1], quick)
    wide, = grid([("laplace2d", (2, 64, 64, 1))], [("anagram", {})], [1], quick)
    same, = grid([("laplace2d", (2, 32, 1))], [("anagram", {})], [1], quick)
    assert base.net is None and same == base and spec_key(same, quick) == spec_key(base, quick)
    assert wide.net == (2, 64, 64, 1) and wide.problem_label == "laplace2d[net=2-64-64-1]"
    assert spec_key(wide, quick) != spec_key(base, quick)
    with pytest.raises(pinnbench.PinnbenchError, match="invalid net"):
        grid([("laplace2d", (3, 8, 1))], [("anagram", {})], [1], quick)


def test_net_from_the_cli_is_trained_recorded_and_kept_apart(tmp_path, capsys):
    out = tmp_path / "r"
    args = ["run", "-o", "anagram", "--steps", "1", "--seeds", "1", "--protocol", "paper", "--out", str(out),
            "--no-report"]
    assert main([*args, "-p", "laplace2d:net=2,8,8,1", "laplace2d"]) == 0
    runs = load_runs(out).set_index("problem")
    assert set(runs.index) == {"laplace2d", "laplace2d[net=2-8-8-1]"}
    assert runs.loc["laplace2d[net=2-8-8-1]", "net"] == "2-8-8-1" and runs.loc["laplace2d", "net"] == "2-32-1"
    manifest = json.loads(runs.loc["laplace2d[net=2-8-8-1]", "manifest"])
    assert manifest["layers"] == [2, 8, 8, 1] and manifest["n_params"] == 2 * 8 + 8 + 8 * 8 + 8 + 9
    assert manifest["problem_name"] == "laplace2d"
    assert main([*args, "-p", "laplace2d:net=2,9,1"]) == 0  # another net: a new run, not a resumed one
    assert len(load_runs(out)) == 3
    assert main([*args, "-p", "laplace2d:net=3,9,1"]) == 2
    assert "invalid net" in capsys.readouterr().err and len(load_runs(out)) == 3


def test_the_preset_pins_nets_precisions_steps_and_budgets():
    preset = load_protocol("amstramgram")
    assert preset.net_for("laplace2d") == (2, 32, 32, 1) and preset.net_for("heat") == (2, 24, 24, 1)
    assert preset.net_for("laplace5d") is None
    assert preset.hyperparameters_for("amstramgram", "laplace2d") == {"precision": 1e-14}
    assert preset.hyperparameters_for("anagram", "laplace2d") == {}
    assert preset.budget_for("laplace2d") == 240.0 and preset.budget_for("burgers") == preset.budget
    specs = {s.optimizer: s for s in grid(["laplace5d"], [("anagram", {}), ("ssbroyden", {})], [1], preset)}
    assert step_cap(specs["anagram"], preset) == 100  # equal steps for the SVD methods
    assert step_cap(specs["ssbroyden"], preset) == 20_000  # SSBroyden keeps its own published count
    assert load_protocol("paper").net_for("laplace2d") is None
    assert preset.protocol_id != load_protocol("paper").protocol_id


def test_protocol_files_set_nets_steps_budgets_and_hyperparameters(tmp_path):
    path = tmp_path / "study.toml"
    path.write_text('extends = "paper"\n[nets]\nheat = [2, 16, 1]\n[problem_steps]\nheat = 7\n'
                    '[problem_budgets]\nheat = "2m"\n[hyperparameters.amstramgram.heat]\nprecision = 1e-13\n')
    proto = load_protocol(path)
    assert proto.net_for("heat") == (2, 16, 1) and proto.steps_for("heat") == 7 and proto.budget_for("heat") == 120
    assert proto.hyperparameters_for("amstramgram", "heat") == {"precision": 1e-13}
    spec, = grid(["heat"], [("amstramgram", {})], [1], proto)
    assert spec.net == (2, 16, 1)
    path.write_text('[nets]\nheat = [2, 0, 1]\n')
    with pytest.raises(pinnbench.PinnbenchError, match="nets.heat"):
        load_protocol(path)
    path.write_text('hyperparameters = {amstramgram = 3}\n')
    with pytest.raises(pinnbench.PinnbenchError, match="hyperparameters"):
        load_protocol(path)


def test_pinned_hyperparameters_reach_the_optimizer_and_the_user_still_wins(tmp_path):
    preset = load_protocol("amstramgram").replace(seeds=(1,))
    runs = pinnbench.run([("laplace2d", (2, 6, 6, 1))], ["amstramgram", ("amstramgram", {"precision": 1e-9})],
                         protocol=preset, steps=1, out=tmp_path)
    hparams = {json.loads(m)["user_hparams"].get("precision"): json.loads(m)["hparams"]["precision"]
               for m in load_runs(tmp_path)["manifest"]}
    assert hparams == {None: 1e-14, 1e-9: 1e-9}
    assert set(runs["problem"]) == {"laplace2d[net=2-6-6-1]"}


def test_table_lists_each_net_with_the_published_numbers_and_ratio(tmp_path):
    table = load_table_script()
    runs = pinnbench.run([("laplace2d", (2, 8, 8, 1))], ["amstramgram", "anagram"], seeds=[1, 2], steps=2,
                         out=tmp_path)
    lines = table.study_table(tmp_path).splitlines()
    assert len(lines) == 2 + 2  # header, rule, one row per optimizer
    row = next(line for line in lines if "| amstramgram" in line)
    assert "2-8-8-1" in row and "| laplace2d " in row and "2.24e-15" in row  # the paper's AMStraMGRAM L2
    mean_l2 = runs[runs.optimizer == "amstramgram"].groupby("seed").l2_abs.last().mean()
    assert f"{mean_l2:.2e}" in row and f"{mean_l2 / 2.24e-15:.2g}" in row


def test_report_comparison_rows_name_the_net(tmp_path):
    from pinnbench.report.frames import problem_labels
    from pinnbench.report.tables import PAPER_COMPARISONS, comparison_has_data, comparison_table, summarize
    pinnbench.run([("laplace2d", (2, 8, 1)), "laplace2d"], ["amstramgram", "anagram"], seeds=[1], steps=1,
                  protocol="paper", out=tmp_path)
    summary = summarize(load_runs(tmp_path))
    assert problem_labels(summary, "laplace2d") == ["laplace2d", "laplace2d[net=2-8-1]"]
    first = PAPER_COMPARISONS[0]
    assert comparison_has_data(summary, first)
    labels = [row[0].text for row in comparison_table(summary, first).rows]
    assert "laplace2d" in labels and "laplace2d[net=2-8-1]" in labels
    assert RunSpec("laplace2d", "anagram", 1).layers == (2, 32, 1)
