"""`trickrun ensemble`: soft voting over trained runs, checked against hand-computed means of the
members' softmax outputs, on the small fake dataset. Members are run directories from
runfactory with a model.npz of a randomly initialised MLP (no training needed), plus one
test on runs trained by `trickrun train`."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from runfactory import config_dict, make_run
from trickrun.cli import app
from trickrun.config import DataConfig, ModelConfig
from trickrun.data.load import load_dataset
from trickrun.ensemble import PROB_FLOOR, average_proba, ensemble_scores, proba_score
from trickrun.nn.losses import evaluate
from trickrun.nn.model import MLP, model_arrays
from trickrun.rundir.writer import write_npz

runner = CliRunner()
DATA = {"data.val_size": 100}  # the fake dataset has 600 training examples


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args], env={"COLUMNS": "200"})


def random_mlp(seed: int, hidden=(16,)) -> MLP:
    rng = np.random.default_rng(seed)
    return MLP(784, 10, ModelConfig(hidden=list(hidden)), init_rng=rng, dropout_rng=rng)


def hand_softmax(model: MLP, x: np.ndarray) -> np.ndarray:
    """softmax in float64, written out independently of nn.losses."""
    logits = model.forward(x, train=False).astype(np.float64)
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def member(root: Path, name: str, seed: int, **options) -> Path:
    """A run directory (make_run `options`, completed by default) with a model.npz of a random
    MLP initialised with `seed`."""
    path = make_run(root, name, seed=seed, **{**DATA, "model.hidden": [16], **options})
    write_npz(path / "model.npz", model_arrays(random_mlp(seed)))
    return path


@pytest.fixture
def runs(fake_data, tmp_path) -> list[Path]:
    root = tmp_path / "runs"
    return [member(root, f"m{s}", s) for s in range(3)]


def fake_test_set():
    data = load_dataset(DataConfig(val_size=100))
    return data.x_test, data.y_test


# --- the maths ---------------------------------------------------------------------------


def test_average_proba_is_the_mean_of_the_members_softmax(fake_data):
    x, y = fake_test_set()
    models = [random_mlp(s) for s in range(3)]
    by_hand = sum(hand_softmax(m, x) for m in models) / 3
    from trickrun.nn.losses import predict_proba

    np.testing.assert_allclose(average_proba([predict_proba(m, x) for m in models]), by_hand, atol=1e-6)
    scores, ens = ensemble_scores(models, x, y)
    assert ens.acc == pytest.approx(np.mean(by_hand.argmax(axis=1) == y))
    assert ens.loss == pytest.approx(-np.mean(np.log(by_hand[np.arange(len(y)), y])), rel=1e-5)
    for model, score in zip(models, scores):
        p = hand_softmax(model, x)
        assert score.acc == pytest.approx(np.mean(p.argmax(axis=1) == y))
        assert score.loss == pytest.approx(-np.mean(np.log(p[np.arange(len(y)), y])), rel=1e-5)


def test_score_of_hand_built_probabilities():
    # Two members of three classes on three examples. The ensemble gets example 0 right
    # (member a is sure), example 1 right although member a is wrong, and puts zero
    # probability on the true class of example 2 (the floor applies).
    a = np.array([[0.9, 0.1, 0.0], [0.6, 0.4, 0.0], [1.0, 0.0, 0.0]])
    b = np.array([[0.3, 0.7, 0.0], [0.0, 1.0, 0.0], [0.0, 1.0, 0.0]])
    labels = np.array([0, 1, 2])
    mean = average_proba([a, b])
    np.testing.assert_allclose(mean, [[0.6, 0.4, 0.0], [0.3, 0.7, 0.0], [0.5, 0.5, 0.0]])
    score = proba_score(mean, labels)
    assert score.acc == pytest.approx(2 / 3)
    assert score.loss == pytest.approx(-(math.log(0.6) + math.log(0.7) + math.log(PROB_FLOOR)) / 3)
    assert proba_score(a, labels).acc == pytest.approx(1 / 3)


# --- the command -------------------------------------------------------------------------


def test_json_has_the_documented_fields_and_the_right_numbers(runs):
    result = invoke("ensemble", "m0", "m1", "m2", "--format", "json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert set(out) == {"members", "mean_of_members", "test", "seeds", "n_test", "saved"}
    assert [m["run"] for m in out["members"]] == [p.name for p in runs]
    assert out["seeds"] == [0, 1, 2] and out["n_test"] == 200 and out["saved"] is None
    x, y = fake_test_set()
    models = [random_mlp(s) for s in range(3)]
    for entry, model in zip(out["members"], models):
        loss, acc = evaluate(model, x, y)
        assert entry["test"] == pytest.approx({"loss": loss, "acc": acc})
        assert set(entry) == {"run", "path", "seed", "test"}
    means = [evaluate(m, x, y) for m in models]
    assert out["mean_of_members"] == pytest.approx({"loss": np.mean([l for l, _ in means]),
                                                    "acc": np.mean([a for _, a in means])})
    by_hand = sum(hand_softmax(m, x) for m in models) / 3
    assert out["test"]["acc"] == pytest.approx(np.mean(by_hand.argmax(axis=1) == y))
    assert out["test"]["loss"] == pytest.approx(-np.mean(np.log(by_hand[np.arange(len(y)), y])), rel=1e-5)


def test_a_glob_takes_every_member_and_the_table_shows_the_ensemble(runs, tmp_path):
    result = invoke("ensemble", str(tmp_path / "runs" / "m*"))
    assert result.exit_code == 0, result.output
    for path in runs:
        assert path.name in result.stdout
    assert "mean of members" in result.stdout and "ensemble" in result.stdout
    markdown = invoke("ensemble", "m0", "m1", "--format", "markdown")
    assert markdown.exit_code == 0 and "| ensemble |" in markdown.stdout


@pytest.mark.parametrize("key, value, scale", [
    ("dataset", "fashion-mnist", "unit"),
    ("scale", "standard", "unit"),
    ("val_size", 150, "unit"),
    ("split_seed", 7, "unit"),
    ("train_limit", 300, "standard"),  # standard scaling's mean and std come from the training part
])
def test_members_differing_in_a_shared_data_key_exit_2_naming_it(fake_data, tmp_path, key, value, scale):
    root = tmp_path / "runs"
    member(root, "a", 0, **{"data.scale": scale})
    member(root, "b", 1, **{"data.scale": scale, f"data.{key}": value})
    result = invoke("ensemble", "a", "b")
    assert result.exit_code == 2
    assert f"data.{key}" in result.stderr and "a-2024" in result.stderr and "b-2024" in result.stderr


def test_train_limit_may_differ_when_it_does_not_change_the_test_inputs(fake_data, tmp_path):
    root = tmp_path / "runs"
    member(root, "a", 0)
    member(root, "b", 1, **{"data.train_limit": 300})
    assert invoke("ensemble", "a", "b").exit_code == 0


def test_a_member_without_model_npz_exits_2_naming_it(runs):
    (runs[1] / "model.npz").unlink()
    result = invoke("ensemble", "m0", "m1", "m2")
    assert result.exit_code == 2
    assert f"{runs[1].name} has no model.npz" in result.stderr


def test_a_member_that_did_not_finish_is_averaged_with_a_warning(fake_data, tmp_path):
    root = tmp_path / "runs"
    member(root, "a", 0)
    cut = member(root, "b", 1, status="interrupted")
    result = invoke("ensemble", "a", "b")
    assert result.exit_code == 0, result.output
    assert f"{cut.name} has status interrupted" in result.stderr


def test_fewer_than_two_members_exit_2(runs):
    result = invoke("ensemble", "m0", str(runs[0]))  # the same run twice is one member
    assert result.exit_code == 2 and "at least 2" in result.stderr


def test_save_writes_a_run_directory_that_ls_and_compare_show(runs, tmp_path):
    result = invoke("ensemble", "m0", "m1", "m2", "--save", "ens", "--format", "json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    saved = Path(out["saved"])
    assert saved.parent == tmp_path / "runs" and saved.name.startswith("ens-")
    assert sorted(p.name for p in saved.iterdir()) == ["config.yaml", "summary.json"]
    config = yaml.safe_load((saved / "config.yaml").read_text())
    assert config["kind"] == "ensemble" and config["name"] == "ens"
    assert config["members"] == {p.name: str(p.resolve()) for p in runs} and config["seeds"] == [0, 1, 2]
    assert config["data"] == config_dict(**DATA)["data"] | {"val_size": 100}
    summary = json.loads((saved / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["seeds"] == [0, 1, 2]
    assert summary["test"] == out["test"] and summary["mean_of_members"] == out["mean_of_members"]
    assert [m["test"] for m in summary["members"]] == [m["test"] for m in out["members"]]

    ls = invoke("ls", "--format", "json")
    assert ls.exit_code == 0, ls.output
    row = next(r for r in json.loads(ls.stdout) if r["name"] == saved.name)
    assert row["status"] == "completed" and row["test_acc"] == pytest.approx(out["test"]["acc"])

    compare = invoke("compare", saved.name, "m0", "--format", "json")
    assert compare.exit_code == 0, compare.output
    records = json.loads(compare.stdout)
    ens_row = next(r for r in records if r.get("test_acc") == pytest.approx(out["test"]["acc"]))
    assert ens_row["test_loss"] == pytest.approx(out["test"]["loss"])
    table = invoke("compare", saved.name, "m0", "m1")
    assert table.exit_code == 0, table.output
    assert invoke("show", saved.name).exit_code == 0


def test_a_saved_ensemble_is_neither_a_member_nor_a_training_config(runs):
    saved = Path(json.loads(invoke("ensemble", "m0", "m1", "--save", "ens", "--format", "json").stdout)["saved"])
    again = invoke("ensemble", saved.name, "m2")
    assert again.exit_code == 2 and "is an ensemble" in again.stderr
    train = invoke("train", saved / "config.yaml", "--quiet")
    assert train.exit_code == 2 and "kind" in train.stderr


def test_a_bad_save_name_exits_2_before_writing_anything(runs, tmp_path):
    before = sorted((tmp_path / "runs").iterdir())
    result = invoke("ensemble", "m0", "m1", "--save", "a/b")
    assert result.exit_code == 2 and "--save" in result.stderr
    assert sorted((tmp_path / "runs").iterdir()) == before


def test_help_states_the_loss_and_its_floor():
    result = invoke("ensemble", "--help")
    assert result.exit_code == 0 and "Example:" in result.stdout
    text = " ".join(result.stdout.split())  # as help wraps it
    assert "cross-entropy of the averaged probabilities" in text and f"clipped at {PROB_FLOOR:g}" in text


def test_runs_trained_by_trickrun_train_ensemble(fake_data, tmp_path):
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text("data:\n  val_size: 100\nmodel:\n  hidden: [16]\ntrain:\n  epochs: 2\n")
    for seed in (0, 1):
        assert invoke("train", cfg, "--seed", seed, "--quiet").exit_code == 0
    result = invoke("ensemble", "tiny", "--format", "json")  # a name matching two runs: an error
    assert result.exit_code == 2
    result = invoke("ensemble", str(tmp_path / "runs" / "tiny-*"), "--format", "json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    summaries = [json.loads((tmp_path / "runs" / m["run"] / "summary.json").read_text()) for m in out["members"]]
    for entry, summary in zip(out["members"], summaries):  # model.npz holds the weights evaluated
        assert entry["test"] == pytest.approx({k: summary["test"][k] for k in ("loss", "acc")})


# --- damaged members, sweeps with failed cells, advice that works -------------------------


def _truncate(raw: bytes) -> bytes:
    return raw[: len(raw) // 2]


def _empty(raw: bytes) -> bytes:
    return b""


def _flip_a_bit(raw: bytes) -> bytes:
    middle = len(raw) // 2  # inside the first layer's weights: the zip's CRC no longer matches
    return raw[:middle] + bytes([raw[middle] ^ 0x10]) + raw[middle + 1:]


@pytest.mark.parametrize("damage", [_truncate, _empty, _flip_a_bit], ids=["truncated", "empty", "bit-flipped"])
def test_a_damaged_model_npz_is_a_one_line_error_naming_the_file(runs, damage):
    model = runs[1] / "model.npz"
    model.write_bytes(damage(model.read_bytes()))
    result = invoke("ensemble", "m0", "m1", "m2")
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in result.output
    assert str(model) in lines[0] and "cannot be part of an ensemble" in lines[0]
    assert f"trickrun train {runs[1] / 'config.yaml'}" in lines[0]


def test_the_advice_for_a_damaged_model_is_a_command_that_works(runs):
    (runs[0] / "model.npz").write_bytes(b"")
    advice = invoke("ensemble", "m0", "m1").stderr.split("train it again with: ")[1].split()
    assert advice[:2] == ["trickrun", "train"]
    trained = invoke(*advice[1:], "--quiet")
    assert trained.exit_code == 0, trained.output


def test_the_advice_for_a_missing_model_of_an_interrupted_run_resumes_it(fake_data, tmp_path):
    root = tmp_path / "runs"
    member(root, "a", 0)
    cut = member(root, "b", 1, status="interrupted")
    (cut / "model.npz").unlink()
    result = invoke("ensemble", "a", "b")
    assert result.exit_code == 2 and f"trickrun resume {cut}" in result.stderr
    assert "trickrun train" not in result.stderr  # a new training would not give this run a model


def test_a_saved_ensemble_given_as_a_member_names_its_members_not_a_train_command(runs):
    saved = json.loads(invoke("ensemble", "m0", "m1", "--save", "ens", "--format", "json").stdout)["saved"]
    result = invoke("ensemble", saved, "m2")
    assert result.exit_code == 2 and "trickrun train" not in result.stderr
    assert f"give its members instead: {runs[0].name} {runs[1].name}" in result.stderr
    assert invoke("ensemble", runs[0].name, runs[1].name, "m2").exit_code == 0  # which works


def write_sweep(root: Path, name: str, cells: list[tuple[Path, str]]) -> None:
    """A hand-written <root>/sweeps/<name>/sweep.json listing (run_dir, status) cells."""
    folder = root / "sweeps" / name
    folder.mkdir(parents=True)
    record = {"name": name, "cells": [{"index": i, "name": f"{name}_s{i}", "run_dir": str(path), "status": status}
                                      for i, (path, status) in enumerate(cells)]}
    (folder / "sweep.json").write_text(json.dumps(record))


def test_ensemble_of_a_sweep_uses_its_finished_runs_and_warns_about_the_rest(runs, tmp_path):
    root = tmp_path / "runs"
    crashed = make_run(root, "crashed", status="interrupted", **DATA)  # a failed cell: no model.npz
    no_model = make_run(root, "nomodel", **DATA)
    missing = root / "gone-20240501-120000"
    write_sweep(root, "grid", [(p, "completed") for p in runs] + [(crashed, "failed"), (no_model, "completed"),
                                                                    (missing, "failed")])
    result = invoke("ensemble", "--sweep", "grid", "--format", "json")
    assert result.exit_code == 0, result.output
    assert [m["run"] for m in json.loads(result.stdout)["members"]] == [p.name for p in runs]
    warnings = result.stderr.strip().splitlines()
    assert len(warnings) == 3 and all(w.startswith("warning: sweep grid: left out run ") for w in warnings)
    assert f"{crashed.name}: it has status interrupted" in result.stderr
    assert f"{no_model.name}: it has no model.npz" in result.stderr
    assert f"{missing.name}: its run directory is missing" in result.stderr


def test_ensemble_of_a_sweep_with_fewer_than_two_usable_runs_exits_2(runs, tmp_path):
    root = tmp_path / "runs"
    crashed = make_run(root, "crashed", status="interrupted", **DATA)
    write_sweep(root, "grid", [(runs[0], "completed"), (crashed, "failed")])
    result = invoke("ensemble", "--sweep", "grid")
    assert result.exit_code == 2 and "Traceback" not in result.output
    line = result.stderr.strip()
    assert line.startswith("error: sweep 'grid' has 1 finished run(s)") and "\n" not in line
    assert f"{crashed.name}: it has status interrupted" in line


def test_a_member_whose_model_does_not_take_the_data_exits_2_naming_it(runs):
    # a model.npz that loads (copied from a run of other inputs) failed deep in a matmul
    rng = np.random.default_rng(0)
    write_npz(runs[1] / "model.npz", model_arrays(MLP(100, 10, ModelConfig(hidden=[16]), init_rng=rng,
                                                      dropout_rng=rng)))
    result = invoke("ensemble", "m0", "m1", "m2")
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert f"{runs[1].name}: its model takes 100 inputs" in result.stderr


@pytest.mark.parametrize("where", ["weights", "batch-norm statistics"])
def test_a_member_with_values_that_are_not_finite_exits_2_naming_it(runs, where):
    rng = np.random.default_rng(1)
    model = MLP(784, 10, ModelConfig(hidden=[16], norm="batch"), init_rng=rng, dropout_rng=rng)
    if where == "weights":
        model.params[:5] = np.nan
    else:
        next(iter(model.buffers.values()))[:] = np.nan  # a running statistic, not a parameter
    write_npz(runs[1] / "model.npz", model_arrays(model))
    result = invoke("ensemble", "m0", "m1", "m2")
    assert result.exit_code == 2, result.output
    assert f"{runs[1].name}: its model.npz holds weights or batch-norm statistics that are not finite" in result.stderr


def test_saving_under_a_name_runs_already_have_warns_that_the_name_now_means_the_ensemble(runs):
    quiet = invoke("ensemble", "m0", "m1", "--save", "ens")
    assert quiet.exit_code == 0 and "warning" not in quiet.stderr
    result = invoke("ensemble", "m0", "m1", "--save", "m2")
    assert result.exit_code == 0, result.output
    assert "warning: 1 other run(s) are named m2: the name m2 now means this ensemble" in " ".join(result.stderr.split())
