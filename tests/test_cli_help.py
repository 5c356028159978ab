"""The command line's own documentation: --version, the usage on a bare ``pinnbench``, and every command's --help
with a description and 2-4 examples that parse."""
import argparse
import shlex

import pytest

from pinnbench import __version__
from pinnbench.cli import _parser, main


def _commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    """(command words, parser) of the top parser and of every subcommand, nested ones included."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from _commands(child, (*path, name))


COMMANDS = [path for path, _ in _commands(_parser())]


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"pinnbench {__version__}\n"


def test_bare_pinnbench_prints_the_usage_and_the_commands(capsys):
    assert main([]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("usage: pinnbench") and not captured.err
    listed = captured.out.split("commands:")[1]
    for (name,) in (path for path in COMMANDS if len(path) == 1):
        assert f"\n    {name} " in listed
    assert main(["run"]) == 2  # a command with nothing to do keeps its one-line error
    assert "choose what to run" in capsys.readouterr().err


def test_every_command_is_covered():
    assert {"list", "run", "compare", "check", "bench", "plot", "report"} <= {path[0] for path in COMMANDS if path}
    assert ("plot", "spectrum") in COMMANDS


@pytest.mark.parametrize("path", COMMANDS, ids=lambda path: " ".join(path) or "pinnbench")
def test_help_has_a_description_and_examples_that_parse(path, capsys):
    assert main([*path, "--help"]) == 0
    text = capsys.readouterr().out
    parser = dict(_commands(_parser()))[path]
    assert len(parser.description) > 30 and parser.description in text
    examples = text.split("\nexamples:\n")[1].splitlines()
    assert 2 <= len(examples) <= 4
    for example in examples:
        words = shlex.split(example)
        assert words[:1 + len(path)] == ["pinnbench", *path]
        _parser().parse_args(words[1:])  # a real command line: it parses (a PinnbenchError otherwise)
