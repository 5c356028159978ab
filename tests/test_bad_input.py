"""Every category of bad input, table-driven: one line on stderr, exit code 2, nothing written anywhere."""
import os

import pytest
import torch

from pinnbench import registry
from pinnbench.cli import main

from conftest import REPO

PLUGINS = REPO / "tests" / "plugins"
RUN = ["run", "-p", "laplace2d", "-o", "adam", "--steps", "2", "--no-report"]
BAD_NAME_PROBLEM = '''
from pinnbench import Problem, register_problem
register_problem({name!r})(type("P", (Problem,), {{}}))
'''
NO_OPTIMIZER = "import pinnbench\n"
EXITS = "import sys\nsys.exit(4)\n"
LONG = "x" * 300

# (id, arguments with {tmp} for the test's folder, part of the message, files to create first {name: text})
CASES = [
    ("unknown problem", ["run", "-p", "nope", "-o", "adam"], "unknown problem 'nope'; accepted: ", {}),
    ("unknown optimizer", ["run", "-p", "laplace2d", "-o", "nope"], "unknown optimizer 'nope'; accepted: ", {}),
    ("nothing chosen", ["run"], "choose what to run", {}),
    ("unknown hyperparameter", ["run", "-p", "laplace2d", "-o", "anagram:cutof=1e-7"],
     "has no hyperparameter 'cutof'; accepted: cutoff", {}),
    ("string for a number", ["run", "-p", "laplace2d", "-o", "anagram:cutoff=abc"],
     "invalid cutoff='abc'; expected a number or None", {}),
    ("negative learning rate", ["run", "-p", "laplace2d", "-o", "adam:lr=-1"], "lr, eps and decay must be > 0", {}),
    ("list for a number", ["run", "-p", "laplace2d", "-o", "adam:lr=[1]"], "invalid lr=[1]; expected a number", {}),
    ("NaN for a number", ["run", "-p", "laplace2d", "-o", "adam:lr=nan"], "invalid lr='nan'", {}),
    ("zero line-search steps", ["run", "-p", "laplace2d", "-o", "anagram:line_search_steps=0"],
     "line_search_steps must be >= 1", {}),
    ("float for an integer", ["run", "-p", "laplace2d", "-o", "anagram:line_search_steps=2.5"],
     "expected an integer", {}),
    ("bool for an integer", ["run", "-p", "laplace2d", "-o", "anagram:line_search_steps=true"],
     "expected an integer", {}),
    ("hyperparameter twice", ["run", "-p", "laplace2d", "-o", "adam:lr=1e-3,lr=2e-3"], "'lr' is set twice", {}),
    ("hyperparameter without value", ["run", "-p", "laplace2d", "-o", "adam:lr"], "invalid optimizer setting", {}),
    ("bad net", ["run", "-p", "laplace2d:net=3,8,1", "-o", "adam"], "invalid net [3, 8, 1]", {}),
    ("bad problem setting", ["run", "-p", "laplace2d:width=3", "-o", "adam"], "invalid problem setting", {}),
    ("seed too large", [*RUN, "--seeds", "9223372036854775808"], "invalid seeds", {}),
    ("negative seed", [*RUN, "--seeds", "-1"], "invalid seeds", {}),
    ("zero steps", ["run", "-p", "laplace2d", "-o", "adam", "--steps", "0"], "invalid --steps 0", {}),
    ("steps not an integer", ["run", "-p", "laplace2d", "-o", "adam", "--steps", "true"], "invalid int value", {}),
    ("malformed budget", [*RUN, "--budget", "3x"], "invalid budget '3x'", {}),
    ("negative budget", [*RUN, "--budget=-1s"], "invalid budget '-1s'", {}),
    ("zero budget", [*RUN, "--budget", "0s"], "invalid budget '0s'", {}),
    ("malformed grace", [*RUN, "--grace", "abc"], "invalid --grace 'abc'", {}),
    ("zero jobs", [*RUN, "--jobs", "0"], "invalid --jobs 0", {}),
    ("negative retries", [*RUN, "--retries", "-1"], "invalid --retries -1", {}),
    ("grace in process", [*RUN, "--in-process", "--grace", "5s"], "--grace and --retries apply to isolated runs", {}),
    ("jobs and scheduler", [*RUN, "--jobs", "2", "--scheduler", "tcp://127.0.0.1:1"], "exclude each other", {}),
    ("scheduler not a URL", [*RUN, "--scheduler", "notaurl"], "invalid --scheduler 'notaurl'", {}),
    ("scheduler file missing", [*RUN, "--scheduler-file", "{tmp}/missing.json"], "scheduler file", {}),
    ("scheduler file malformed", [*RUN, "--scheduler-file", "{tmp}/s.json"], "names no scheduler address",
     {"s.json": "[1]"}),
    ("unknown device", [*RUN, "--device", "tpu"], "invalid device 'tpu'", {}),
    ("unknown protocol", [*RUN, "--protocol", "nope"], "unknown protocol 'nope'; accepted: quick", {}),
    ("protocol key misspelt", [*RUN, "--protocol", "{tmp}/p.toml"], "unknown key 'budgett'", {"p.toml": "budgett = 1\n"}),
    ("protocol malformed", [*RUN, "--protocol", "{tmp}/p.toml"], "is malformed", {"p.toml": "budget = = 3\n"}),
    ("protocol steps true", ["run", "-p", "laplace2d", "-o", "adam", "--protocol", "{tmp}/p.toml"],
     "invalid steps True", {"p.toml": "steps = true\n"}),
    ("protocol threads true", [*RUN, "--protocol", "{tmp}/p.toml"], "invalid threads True",
     {"p.toml": "threads = true\n"}),
    ("protocol seeds of bools", ["run", "-p", "laplace2d", "-o", "adam", "--protocol", "{tmp}/p.toml"],
     "invalid seeds", {"p.toml": "seeds = [true]\n"}),
    ("protocol budget true", [*RUN, "--protocol", "{tmp}/p.toml"], "invalid budget True", {"p.toml": "budget = true\n"}),
    ("protocol diagnostics true", [*RUN, "--protocol", "{tmp}/p.toml"], "invalid diagnostics_every True",
     {"p.toml": "diagnostics_every = true\n"}),
    ("protocol net not a list", [*RUN, "--protocol", "{tmp}/p.toml"], "invalid nets.laplace2d 5",
     {"p.toml": "nets = {laplace2d = 5}\n"}),
    ("protocol optimizers not names", ["run", "--all", "--protocol", "{tmp}/p.toml"], "invalid optimizers (1,)",
     {"p.toml": "optimizers = [1]\n"}),
    ("protocol device cuda:x", [*RUN, "--protocol", "{tmp}/p.toml"], "invalid device 'cuda:x'",
     {"p.toml": 'device = "cuda:x"\n'}),
    ("protocol name a path", [*RUN, "--protocol", "{tmp}/p.toml"], "invalid name '../x'", {"p.toml": 'name = "../x"\n'}),
    ("protocol pins a bad value", [*RUN, "--protocol", "{tmp}/p.toml"], "lr, eps and decay must be > 0",
     {"p.toml": "[hyperparameters.adam.laplace2d]\nlr = -1\n"}),
    ("plugin missing", [*RUN, "--plugin", "{tmp}/missing.py"], "not found: expected a .py file", {}),
    ("plugin fails to import", [*RUN, "--plugin", str(PLUGINS / "broken_import.py")],
     "failed to import: ModuleNotFoundError", {}),
    ("plugin exits at import", [*RUN, "--plugin", "{tmp}/exits.py"], "failed to import: SystemExit", {"exits.py": EXITS}),
    ("plugin name with a path", [*RUN, "--plugin", "{tmp}/bad.py"], "invalid problem name '../../x'",
     {"bad.py": BAD_NAME_PROBLEM.format(name="../../x")}),
    ("plugin name absolute", [*RUN, "--plugin", "{tmp}/bad.py"], "invalid problem name '/tmp/x'",
     {"bad.py": BAD_NAME_PROBLEM.format(name="/tmp/x")}),
    ("plugin name hidden", [*RUN, "--plugin", "{tmp}/bad.py"], "invalid problem name '.hidden'",
     {"bad.py": BAD_NAME_PROBLEM.format(name=".hidden")}),
    ("out is a file", [*RUN, "--out", "{tmp}/file"], "is a file, not a folder", {"file": "x"}),
    ("out under a file", [*RUN, "--out", "{tmp}/file/sub"], "is a file, not a folder", {"file": "x"}),
    ("out name too long", [*RUN, "--out", "{tmp}/a/" + LONG], "characters long, over the limit", {}),
    ("compare plugin missing", ["compare", "{tmp}/missing.py"], "not found", {}),
    ("compare plugin without optimizer", ["compare", "{tmp}/none.py"], "registers no optimizer",
     {"none.py": NO_OPTIMIZER}),
    ("report folder missing", ["report", "{tmp}/missing"], "results folder", {}),
    ("plot run missing", ["plot", "spectrum", "{tmp}/missing.npz"], "run file", {}),
    ("plot run corrupt", ["plot", "spectrum", "{tmp}/bad.npz"], "is unreadable", {"bad.npz": "not a zip"}),
]
if not torch.cuda.is_available():
    CASES.append(("cuda without a GPU", [*RUN, "--device", "cuda"], "CUDA is not available", {}))
if os.geteuid() == 0:  # root writes into read-only folders: take a read-only file system instead
    CASES.append(("out read-only", [*RUN, "--out", "/sys/pinnbench-test-out"], "cannot be used", {}))
else:
    CASES.append(("out read-only", [*RUN, "--out", "{tmp}/ro/out"], "Permission denied", {"ro/keep": ""}))


def _tree(folder):
    return {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")}


@pytest.mark.parametrize("args, message, files", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_one_line_exit_2_nothing_written(tmp_path, capsys, monkeypatch, args, message, files):
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    if "ro/keep" in files:
        (tmp_path / "ro").chmod(0o555)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)  # the default results folder would land here
    before = _tree(tmp_path)
    argv = [a.replace("{tmp}", str(tmp_path)) for a in args]
    if argv[0] == "run" and "--out" not in argv:
        argv += ["--out", str(tmp_path / "out")]
    with registry.scoped():
        code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("pinnbench: error: ") and message in err, err
    assert _tree(tmp_path) == before
    assert not os.path.exists("/sys/pinnbench-test-out")
