"""`--help` of the app and of every command reads cleanly with the Typer a fresh install gets:
no value after on/off flags, plain usage lines, an example in every command, whole sentences
in the command list, choices never wrapped mid-word, one meaning per short option."""

from __future__ import annotations

import re

import pytest
import typer.main
from typer.testing import CliRunner

from trickrun.cli import app
from trickrun.clihelp import Command, argument_label, first_sentence

runner = CliRunner()
GROUP = typer.main.get_command(app)
COMMANDS = sorted(GROUP.commands)


def help_of(*args: str) -> str:
    result = runner.invoke(app, [*args, "--help"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    return result.stdout


def section(text: str, title: str) -> list[str]:
    """The lines of the help section `title:` up to the next blank line."""
    lines = text.splitlines()
    start = lines.index(f"{title}:") + 1
    end = next((i for i in range(start, len(lines)) if not lines[i].strip()), len(lines))
    return lines[start:end]


@pytest.mark.parametrize("args", [[]] + [[c] for c in COMMANDS], ids=["app"] + COMMANDS)
def test_help_shows_no_value_after_flags_and_plain_usage(args):
    text = help_of(*args)
    assert "<bool>" not in text and "BOOLEAN" not in text
    usage = text.splitlines()[0]
    assert usage.startswith("Usage: trickrun") and "{" not in usage
    for line in text.splitlines():  # a choice list such as <table|markdown|csv|json> is never folded
        assert line.count("<") == line.count(">"), line


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_has_an_example_and_plain_argument_names(name):
    command = GROUP.commands[name]
    assert isinstance(command, Command)  # a command added without cls=Command gets Typer's panels
    text = help_of(name)
    assert f"Example: trickrun {name}" in text
    for param in command.params:
        if param.param_type_name == "argument":
            label = argument_label(param)
            assert re.fullmatch(r"\[?[A-Z]+\]?( [A-Z]+)?(\.\.\.)?", label), label
            assert label in text.splitlines()[0]


def test_usage_names_arguments_in_capitals():
    assert help_of("train").splitlines()[0] == "Usage: trickrun train [OPTIONS] CONFIG"
    assert help_of("resume").splitlines()[0] == "Usage: trickrun resume [OPTIONS] RUN"


def test_command_list_gives_each_first_sentence_whole():
    rows: dict[str, str] = {}
    name = None
    for line in section(help_of(), "Commands"):
        head = line[2:].split(" ", 1)
        if not line.startswith("   "):
            name = head[0]
            rows[name] = head[1] if len(head) > 1 else ""
        else:
            rows[name] += " " + line.strip()
    assert sorted(rows) == COMMANDS
    for name, text in rows.items():
        sentence = first_sentence(GROUP.commands[name].help)
        assert sentence.endswith(".") and not text.endswith("...")
        assert "".join(text.split()) == "".join(sentence.split()), name


def test_first_sentence():
    assert first_sentence("Continue a run (or one\n    that died), from here. More.\n\nExample: x") == \
        "Continue a run (or one that died), from here."
    assert first_sentence("No full stop") == "No full stop"
    assert first_sentence("Version 1.2 is out. Yes.") == "Version 1.2 is out."


def test_each_short_option_has_one_meaning_across_commands():
    meanings: dict[str, set[str]] = {}
    for command in [GROUP, *GROUP.commands.values()]:
        for param in command.params:
            shorts = [o for o in param.opts if re.fullmatch(r"-[A-Za-z]", o)]
            longs = [o for o in param.opts if o.startswith("--")]
            for short in shorts:
                meanings.setdefault(short, set()).update(longs)
    assert meanings["-s"] == {"--set"}
    assert {s: m for s, m in meanings.items() if len(m) != 1} == {}


def test_ls_sorts_with_the_long_option(tmp_path):
    result = runner.invoke(app, ["ls", "--sort", "test_acc", "--runs-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["ls", "-s", "test_acc", "--runs-dir", str(tmp_path)])
    assert result.exit_code == 2 and "-s" in result.output


@pytest.mark.parametrize("args", [[], ["train"], ["sweep"]], ids=["app", "train", "sweep"])
def test_on_a_terminal_narrower_than_clicks_least_width_help_fits_it(args):
    # click lays help out at 50 columns at least: at 36 every line was folded mid-word
    result = runner.invoke(app, [*args, "--help"], env={"COLUMNS": "36"})
    assert result.exit_code == 0, result.output
    too_wide = [line for line in result.stdout.splitlines() if len(line) > 36 and " " in line.strip()]
    assert not too_wide, too_wide  # a single word longer than the line may still stand alone
