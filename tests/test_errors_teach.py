"""Mistakes a learner makes in the first hour, each answered with a message that names the fix,
in trickrun's words, exit 2, no traceback, and nothing left behind."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from runfactory import make_run
from trickrun.cli import app
from trickrun.config import load_config
from trickrun.errors import ConfigError

runner = CliRunner()
CHECKOUT = Path(__file__).resolve().parents[1]
BASELINE = CHECKOUT / "configs" / "baseline.yaml"


def refused(*args: str) -> str:
    """stderr of a command that must exit 2 with one `error:` line and no traceback."""
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and "Value error" not in result.output
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    return result.stderr


def no_runs(tmp_path: Path) -> bool:
    runs = tmp_path / "runs"
    return not runs.exists() or not any(runs.iterdir())


def test_an_unquoted_set_list_says_to_quote_it(tmp_path):
    # what bash hands over for: --set model.hidden=[512, 256]
    message = refused("train", BASELINE, "--set", "model.hidden=[512,", "256]")
    assert "the shell cut this value at its spaces" in message
    assert "--set 'model.hidden=[512, 256]'" in message
    assert "unexpected extra argument" not in message
    # before the config too, where `256]` would pass for the CONFIG argument
    assert "--set 'model.hidden=[512, 256]'" in refused("validate", "-s", "model.hidden=[512,", "256]", BASELINE)
    assert no_runs(tmp_path)


def test_a_set_value_whose_brackets_do_not_close_says_to_quote():
    with pytest.raises(ConfigError, match=r"brackets do not close: from a shell, quote the whole KEY=VALUE"):
        load_config({}, ["model.hidden=[512,"])


def test_a_grid_of_unbracketed_lists_shows_the_one_list_quoted(tmp_path):
    message = refused("sweep", BASELINE, "--grid", "model.hidden=[256],[512]", "--dry-run")
    assert "--grid 'model.hidden=[[256], [512]]'" in message and "malformed YAML" not in message
    split = refused("sweep", BASELINE, "--grid", "model.hidden=[[256],", "[512]]", "--dry-run")
    assert "--grid 'model.hidden=[[256], [512]]'" in split
    assert no_runs(tmp_path)


def test_xavier_and_kaiming_are_accepted_and_saved_as_glorot_and_he(fake_data, tmp_path):
    assert load_config({"model": {"init": "xavier"}}).model.init == "glorot"
    assert load_config({}, ["model.init=kaiming"]).model.init == "he"
    cfg = tmp_path / "c.yaml"
    cfg.write_text("model: {hidden: [8], init: xavier}\ndata: {val_size: 100}\ntrain: {epochs: 1}\n")
    result = runner.invoke(app, ["train", str(cfg), "--quiet"])
    assert result.exit_code == 0, result.output
    saved = Path(result.stdout.strip()) / "config.yaml"
    assert "init: glorot" in saved.read_text() and "xavier" not in saved.read_text()


def test_an_unknown_init_lists_the_aliases_too():
    aliases = r"glorot, he, xavier \(= glorot\), kaiming \(= he\)"
    with pytest.raises(ConfigError, match=r"did you mean 'xavier'\?.*" + aliases):
        load_config({"model": {"init": "xavir"}})


def test_compare_and_ls_take_the_same_metric_names(tmp_path):
    root = tmp_path / "runs"
    make_run(root, "adam", stamp="20240501-120000", test_acc=0.973)
    make_run(root, "sgd", stamp="20240501-130000", test_acc=0.960, **{"optimizer.name": "sgd"})
    for name in ("test_acc", "val_acc"):
        listed = runner.invoke(app, ["ls", "--sort", name])
        compared = runner.invoke(app, ["compare", "adam", "sgd", "--metric", name])
        assert listed.exit_code == 0 and compared.exit_code == 0, (listed.output, compared.output)
    shown = runner.invoke(app, ["compare", "adam", "sgd", "--metric", "test_acc", "-f", "markdown"]).stdout
    assert "test acc" in shown and "test_acc curve" not in shown  # its row emphasised; no curve of it
    records = json.loads(runner.invoke(app, ["compare", "adam", "sgd", "-m", "test_loss", "-f", "json"]).stdout)
    assert "best_test_loss" not in records[0] and "test_loss" in records[0]  # its own field, no copy


def test_ls_sort_by_an_unknown_column_names_the_columns(tmp_path):
    message = refused("ls", "--sort", "accuracy")
    assert message.startswith("error: --sort 'accuracy': ls sorts by one of its columns: name (run name), ")
    assert "test_acc (test accuracy)" in message and "did you mean val_acc or test_acc?" in message


def test_training_a_file_that_is_no_config_says_so(tmp_path):
    message = refused("train", CHECKOUT / "README.md")
    assert "README.md' is not a trickrun config: it does not read as YAML" in message
    assert "start from configs/baseline.yaml" in message
    prose = tmp_path / "notes.yaml"
    prose.write_text("Train the baseline first, then compare it with dropout.\n")
    assert "is not a trickrun config: it holds plain text" in refused("train", prose)
    assert no_runs(tmp_path)


def test_a_typo_in_a_yaml_config_still_says_where(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("model:\n  hidden: [1, 2\n")
    assert "malformed YAML at line" in refused("validate", cfg)


def test_comparing_a_run_with_itself_says_how_to_name_two_runs(tmp_path):
    root = tmp_path / "runs"
    make_run(root, "normal-init", stamp="20240501-120000")
    message = refused("compare", "normal-init", "normal-init")
    assert "'normal-init' and 'normal-init' both name the same run, normal-init-20240501-120000" in message
    assert "name each by its directory, as 'trickrun ls' lists them" in message
