"""``hladr --help`` is for a technician: what hladr does, the daily command, examples, and a help
line for every option and argument of every command (the whole argparse tree is walked)."""

from __future__ import annotations

import argparse

import pytest

from hladr._cli_args import build_parser
from hladr.cli import main


def _walk(parser: argparse.ArgumentParser, path: tuple[str, ...] = ("hladr",)):
    """(command path, action) for every action of every (sub)command, and every command's own entry."""
    for action in parser._actions:
        yield path, action
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:  # the command's line in its parent's help
                yield path, choice
            for name, sub in action.choices.items():
                yield from _walk(sub, (*path, name))


def test_every_option_argument_and_command_has_help():
    seen, missing = 0, []
    for path, action in _walk(build_parser()):
        if isinstance(action, argparse._HelpAction):
            continue
        seen += 1
        if not (action.help or "").strip() or action.help == argparse.SUPPRESS:
            missing.append(f"{' '.join(path)} {'/'.join(action.option_strings) or action.dest}")
    assert not missing, f"without help: {missing}"
    assert seen > 60  # the walk reached the subcommands' options, not only the top level


@pytest.mark.parametrize("option", ["--out", "--worklist", "--lot", "--lot-file", "--calibration", "--gates",
                                    "--workers", "--scheduler", "--db", "--quiet"])
def test_run_keeps_the_spec_option_names(option):
    run = build_parser()._subparsers._group_actions[0].choices["run"]
    assert option in run._option_string_actions


def test_top_level_help_says_what_hladr_does_and_how_to_run_a_day(capsys):
    assert main(["--help"]) == 0
    text = capsys.readouterr().out
    for words in ("HLA-DR", "monocytes", "ferritin", "ImmunoSep", "hladr run", "worklist.csv", "report.html",
                  "common examples:", "--calibration", "exit status", "hladr COMMAND --help", "README.md"):
        assert words in text, words
    assert "Command line: parse, delegate" not in text  # no longer the developer's docstring
    examples = text[text.index("common examples:"):]
    assert examples.count("hladr ") >= 6


def test_each_command_help_prints_its_options_help(capsys):
    assert main(["run", "--help"]) == 0
    text = capsys.readouterr().out
    assert "folder of the day's FCS files" in text and "bead lot number" in text and "one per CPU core" in text
