"""`trickrun train` and `trickrun validate` end to end, through Typer's CliRunner, on the
small fake dataset (always) and on a slice of real MNIST (when TRICKRUN_DATA_DIR has it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from runfactory import make_run
from trickrun import __version__
from trickrun.cli import app
from trickrun.config import CHOICES, get_key
from trickrun.data.load import load_dataset
from trickrun.config import load_config
from trickrun.nn.model import load_model
from trickrun.train import evaluate

runner = CliRunner()
QUICK = ["--set", "data.val_size=100", "--set", "train.epochs=2", "--set", "model.hidden=[32]"]


def write_config(tmp_path: Path, text: str = "", name: str = "exp.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def run_dirs(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir()) if root.exists() else []


def test_train_writes_a_complete_run_directory(fake_data, tmp_path):
    cfg = write_config(tmp_path, "train:\n  epochs: 3\nmodel:\n  hidden: [32, 16]\ndata:\n  val_size: 100\n")
    result = runner.invoke(app, ["train", str(cfg), "--quiet"])
    assert result.exit_code == 0, result.output
    run_dir = Path(result.stdout.strip().splitlines()[-1])
    assert run_dir.parent == tmp_path / "runs" and run_dir.name.startswith("exp-")
    assert {p.name for p in run_dir.iterdir()} == {"config.yaml", "metrics.jsonl", "summary.json", "model.npz", ".lock"}

    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2, 3]
    keys = {"epoch", "lr", "train_loss", "train_acc", "val_loss", "val_acc", "penalty", "grad_norm",
            "clip_fraction", "epoch_s", "layers"}
    assert set(records[0]) == keys
    assert [layer["name"] for layer in records[0]["layers"]] == ["hidden1", "hidden2", "output"]
    assert set(records[0]["layers"][0]) == {"name", "act_mean", "act_std", "dead_frac", "saturated_frac",
                                           "weight_norm", "grad_norm", "update_ratio"}
    assert records[0]["layers"][0]["dead_frac"] is not None and records[0]["layers"][0]["saturated_frac"] is None

    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["epochs_run"] == 3 and summary["stopped_epoch"] == 3
    for key in ("stop_reason", "best_epoch", "best", "test", "wall_s", "seed", "versions"):
        assert key in summary
    assert set(summary["versions"]) == {"trickrun", "python", "numpy", "blas"}
    best = records[summary["best_epoch"] - 1]
    assert summary["best"] == {"monitor": "val_loss", "val_loss": best["val_loss"], "val_acc": best["val_acc"]}
    assert best["val_loss"] == min(r["val_loss"] for r in records)

    # model.npz holds the evaluated (best) weights: reloaded, they give the summary's numbers.
    cfg_loaded = load_config(run_dir / "config.yaml")
    data = load_dataset(cfg_loaded.data)
    model, _ = load_model(run_dir / "model.npz")
    val_loss, val_acc = evaluate(model, data.x_val, data.y_val)
    assert val_loss == pytest.approx(best["val_loss"], rel=1e-6)
    test_loss, test_acc = evaluate(model, data.x_test, data.y_test)
    assert (test_loss, test_acc) == pytest.approx((summary["test"]["loss"], summary["test"]["acc"]), rel=1e-6)


def test_saved_config_reruns_the_same_experiment(fake_data, tmp_path):
    cfg = write_config(tmp_path, "seed: 3\n")
    first = runner.invoke(app, ["train", str(cfg), "--quiet", *QUICK])
    assert first.exit_code == 0, first.output
    run1 = Path(first.stdout.strip())
    saved = yaml.safe_load((run1 / "config.yaml").read_text())
    assert saved["seed"] == 3 and saved["name"] == "exp" and saved["optimizer"]["lr"] == 0.001
    second = runner.invoke(app, ["train", str(run1 / "config.yaml"), "--quiet"])
    assert second.exit_code == 0, second.output
    run2 = Path(second.stdout.strip())
    assert run2 != run1
    assert strip_times(run1) == strip_times(run2)


def strip_times(run_dir: Path) -> list[dict]:
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    for r in records:
        r.pop("epoch_s")
    return records


def test_same_seed_same_metrics_and_seed_changes_them(fake_data, tmp_path):
    cfg = write_config(tmp_path, "model:\n  dropout: 0.3\n  norm: batch\n")
    dirs = []
    for seed in ("1", "1", "2"):
        result = runner.invoke(app, ["train", str(cfg), "--quiet", "--seed", seed, *QUICK])
        assert result.exit_code == 0, result.output
        dirs.append(Path(result.stdout.strip()))
    assert strip_times(dirs[0]) == strip_times(dirs[1])
    assert strip_times(dirs[0]) != strip_times(dirs[2])
    assert json.loads((dirs[2] / "summary.json").read_text())["seed"] == 2


def test_json_prints_only_the_summary_and_run_dir(fake_data, tmp_path):
    result = runner.invoke(app, ["train", str(write_config(tmp_path)), "--json", "--quiet", *QUICK])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert Path(out.pop("run_dir")).is_dir()
    assert out["status"] == "completed" and out["epochs_run"] == 2


def test_name_and_runs_dir_options(fake_data, tmp_path):
    result = runner.invoke(app, ["train", str(write_config(tmp_path)), "--quiet", "--name", "mine",
                                 "--runs-dir", str(tmp_path / "elsewhere"), *QUICK])
    assert result.exit_code == 0, result.output
    run_dir = Path(result.stdout.strip())
    assert run_dir.parent == tmp_path / "elsewhere" and run_dir.name.startswith("mine-")


def test_plain_progress_prints_one_line_per_epoch(fake_data, tmp_path):
    result = runner.invoke(app, ["train", str(write_config(tmp_path)), *QUICK])
    assert result.exit_code == 0, result.output
    epoch_lines = [line for line in result.stderr.splitlines() if line.startswith("epoch")]
    assert len(epoch_lines) == 2 and "val loss" in epoch_lines[0]


BAD_INPUTS = [
    ("optimzer:\n  lr: 0.1\n", [], "did you mean 'optimizer'"),
    ("model:\n  dropout: 1.5\n", [], "model.dropout"),
    ("optimizer:\n  lr: -0.1\n", [], "optimizer.lr"),
    ("train:\n  batch_size: 0\n", [], "train.batch_size"),
    ("model:\n  hidden: []\n", [], "model.hidden"),
    ("model:\n  hidden: 256\n", [], "model.hidden: expected a list"),
    ("optimizer:\n  lr: fast\n", [], "optimizer.lr: expected a number"),
    ("optimizer:\n  name: adamm\n", [], "choose one of: sgd, momentum"),
    ("model:\n  hidden: [1, 2\n  dropout: 0.1\n", [], "malformed YAML at line 3, column"),
    ("", ["--set", "optimizer.lr"], "KEY=VALUE"),
    ("", ["--set", "model.hidden=[1,"], "--set model.hidden"),
    ("", ["--set", "optimizer.lr=0"], "optimizer.lr"),
]


@pytest.mark.parametrize("text,extra,expected", BAD_INPUTS)
def test_bad_input_exits_2_with_a_message_and_no_run_dir(fake_data, tmp_path, text, extra, expected):
    cfg = write_config(tmp_path, text)
    result = runner.invoke(app, ["train", str(cfg), *extra])
    assert result.exit_code == 2, result.output
    assert expected in result.stderr
    assert "Traceback" not in result.output
    assert run_dirs(tmp_path / "runs") == []
    check = runner.invoke(app, ["validate", str(cfg), *extra])
    assert check.exit_code == 2 and expected in check.stderr


def test_missing_config_file_exits_2(tmp_path):
    result = runner.invoke(app, ["train", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2
    assert "nope.yaml" in result.stderr and "not found" in result.stderr


def test_no_data_exits_3_listing_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.setenv("TRICKRUN_DATA_DIR", str(tmp_path / "empty"))
    result = runner.invoke(app, ["train", str(write_config(tmp_path))])
    assert result.exit_code == 3, result.output
    assert str(tmp_path / "empty" / "mnist") in result.stderr
    assert str(tmp_path / "cache") in result.stderr
    assert "Traceback" not in result.output
    assert run_dirs(tmp_path / "runs") == []


def test_val_size_larger_than_the_training_set_is_a_config_error(fake_data, tmp_path):
    result = runner.invoke(app, ["train", str(write_config(tmp_path)), "--set", "data.val_size=5000"])
    assert result.exit_code == 2
    assert "data.val_size" in result.stderr


def test_divergence_is_a_result_with_where_and_when(fake_data, tmp_path):
    result = runner.invoke(app, ["train", str(write_config(tmp_path)), "--quiet", *QUICK,
                                 "--set", "optimizer.name=sgd", "--set", "optimizer.lr=1e6",
                                 "--set", "model.init=normal", "--set", "data.scale=none"])
    assert result.exit_code == 0, result.output
    summary = json.loads((Path(result.stdout.strip()) / "summary.json").read_text())
    assert summary["status"] == "diverged"
    d = summary["divergence"]
    assert d["epoch"] == 1 and d["batch"] >= 1 and d["layer"] in ("hidden1", "output") and d["lr"] == 1e6
    assert "non-finite" in summary["stop_reason"]


def test_validate_prints_the_resolved_config(tmp_path):
    result = runner.invoke(app, ["validate", str(write_config(tmp_path, "optimizer:\n  name: sgd\n")),
                                 "--set", "schedule.name=exponential"])
    assert result.exit_code == 0, result.output
    resolved = yaml.safe_load(result.stdout)
    assert resolved["optimizer"]["lr"] == 0.1  # sgd's default
    assert resolved["schedule"]["gamma"] == 0.98
    assert resolved["name"] == "exp"


def test_version_and_module_entry_point():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and __version__ in result.stdout
    proc = subprocess.run([sys.executable, "-m", "trickrun", "train", "--help"],
                          capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"})
    assert proc.returncode == 0 and "Example: trickrun train" in proc.stdout


@pytest.mark.parametrize("command", ["train", "validate"])
def test_every_command_help_has_an_example(command):
    result = runner.invoke(app, [command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0 and "Example:" in result.stdout


OPTION_VALUES = [f"{path}={value}" for path, values in CHOICES.items() if path != "data.dataset" for value in values]
OPTION_VALUES += [
    "model.dropout=0.5", "regularization.l2=0.001", "regularization.l1=0.0001", "clip.norm=0.5",
    "clip.value=0.01", "schedule.warmup_epochs=1", "early_stopping.enabled=false",
    "early_stopping.restore_best=false", "data.train_limit=50", "model.bn_momentum=0.5",
    "train.batch_size=1000",
]


# In a one-epoch run these cannot change the result: the schedules start at lr, and early
# stopping's settings matter from a second epoch on (their own tests show what they do).
NO_EFFECT_IN_ONE_EPOCH = ("schedule.name=", "early_stopping.")


@pytest.mark.parametrize("override", OPTION_VALUES)
def test_every_option_value_trains_an_epoch_and_changes_what_it_should(fake_data, tmp_path, override):
    extra = ["--set", "model.norm=batch"] if override.startswith("model.bn_momentum") else []

    def one_epoch(*sets: str) -> dict:
        result = runner.invoke(app, ["train", str(write_config(tmp_path)), "--quiet", "--json",
                                     "--set", "data.val_size=100", "--set", "train.epochs=1",
                                     "--set", "model.hidden=[16]", *extra, *sets])
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    summary, default = one_epoch("--set", override), one_epoch()
    assert summary["status"] in ("completed", "early_stopped") and summary["epochs_run"] == 1
    assert 0.0 <= summary["test"]["acc"] <= 1.0
    key, value = override.split("=")
    if str(get_key(load_config({}), key)) == value or override.startswith(NO_EFFECT_IN_ONE_EPOCH):
        assert summary["test"]["loss"] == default["test"]["loss"]
    else:  # the option reached the training: an ignored one would leave the run as the default's
        assert summary["test"]["loss"] != default["test"]["loss"]


def test_training_learns_the_fake_data(fake_data, tmp_path):
    result = runner.invoke(app, ["train", str(write_config(tmp_path)), "--quiet", "--json",
                                 "--set", "data.val_size=100", "--set", "train.epochs=5"])
    summary = json.loads(result.stdout)
    assert summary["test"]["acc"] > 0.9  # ten classes: chance is 0.1


@pytest.mark.slow
def test_real_mnist_slice_end_to_end(real_mnist, tmp_path):
    result = runner.invoke(app, ["train", str(Path(__file__).parents[1] / "configs" / "baseline.yaml"), "--quiet", "--json",
                                 "--set", "data.train_limit=5000", "--set", "train.epochs=2"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["epochs_run"] == 2 and summary["test"]["acc"] > 0.9


CONFIGS = sorted((Path(__file__).parents[1] / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_every_shipped_config_validates_and_starts_with_a_comment(path):
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    assert path.read_text().startswith(f"# {path.stem}:")


def test_paths_and_names_with_brackets_are_printed_as_they_are_not_read_as_markup(tmp_path):
    root = tmp_path / "r[/x]"  # rich markup would take "[/x]" for a closing tag and "[old]" for a style
    run = make_run(root, "a")
    make_run(root, "b")
    with open(run / "metrics.jsonl", "a", encoding="utf-8") as f:
        f.write('{"epoch": "x"}\n')  # a warning naming the file, so the runs folder
    (root / "notrun[old]").mkdir()
    (tmp_path / "p[old]").mkdir()
    plot, table = tmp_path / "p[old]" / "p.png", tmp_path / "p[old]" / "e.csv"

    def stderr_of(*args: str) -> str:
        result = runner.invoke(app, [*args, "--runs-dir", str(root)])
        assert result.exit_code == 0, (result.output, result.exception)
        return result.stderr.replace("\n", "")  # rich wraps long paths

    shown = stderr_of("show", "a", "--plot", str(plot))
    assert f"warning: {run / 'metrics.jsonl'}" in shown and f"wrote {plot}" in shown
    assert "notrun[old]" in stderr_of("ls")
    assert f"to {table}" in stderr_of("export", "a", "-o", str(table))
    assert f"wrote {tmp_path / 'p[old]' / 'c.png'}" in stderr_of("compare", "a", "b", "--plot",
                                                                 str(tmp_path / "p[old]" / "c.png"))
