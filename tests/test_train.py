"""The training loop's endings (early stop, Ctrl-C, divergence), best-weights restore,
recorded penalties and clipping, and the run directory's naming."""

from __future__ import annotations

import dataclasses
import json
import threading
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import trickrun.train
from trickrun.api import train
from trickrun.cli import app
from trickrun.config import load_config
from trickrun.data.load import load_dataset
from trickrun.nn.model import load_model
from trickrun.rundir.writer import create_run_dir
from helpers import InterruptAt
from trickrun.nn.losses import evaluate, predict_proba, softmax
from trickrun.rundir.format import Status
from trickrun.train import Divergence, flush_subnormals

BASE = {"data": {"val_size": 100}, "model": {"hidden": [16]}, "train": {"epochs": 3}}


def records(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_ctrl_c_ends_with_status_interrupted_and_keeps_what_finished(fake_data, monkeypatch):
    monkeypatch.setattr("trickrun.progress.make_reporter", lambda mode: InterruptAt(2, 2))
    result = train(BASE, progress="quiet")
    s = result.summary
    assert s["status"] == "interrupted" and s["epochs_run"] == 1 and s["stopped_epoch"] == 2
    assert len(records(result.run_dir)) == 1
    assert s["best_epoch"] == 1 and s["test"] is not None
    assert (result.run_dir / "model.npz").exists()


def test_ctrl_c_exit_code_is_130(fake_data, monkeypatch, tmp_path):
    monkeypatch.setattr("trickrun.progress.make_reporter", lambda mode: InterruptAt(1, 3))
    cfg = tmp_path / "c.yaml"
    cfg.write_text("data:\n  val_size: 100\nmodel:\n  hidden: [8]\n")
    result = CliRunner().invoke(app, ["train", str(cfg), "--quiet"])
    assert result.exit_code == 130
    summary = json.loads((Path(result.stdout.strip()) / "summary.json").read_text())
    assert summary["status"] == "interrupted" and summary["test"] is None  # no epoch finished


def scripted_evaluate(val_losses):
    """Replace validation results with a script; test-set calls pass through."""
    real = trickrun.train.evaluate
    calls = iter(val_losses)

    def fake(model, x, y):
        if x.shape[0] == 100:  # the validation set of BASE
            return next(calls), 0.5
        return real(model, x, y)

    return fake


def test_early_stopping_in_the_loop_restores_the_best_epoch(fake_data, monkeypatch):
    monkeypatch.setattr(trickrun.train, "evaluate", scripted_evaluate([0.5, 0.4, 0.45, 0.46, 0.47, 0.1]))
    cfg = {**BASE, "train": {"epochs": 10}, "early_stopping": {"patience": 2}}
    result = train(cfg, progress="quiet")
    s = result.summary
    assert s["status"] == "early_stopped"
    assert (s["best_epoch"], s["stopped_epoch"], s["epochs_run"]) == (2, 4, 4)
    assert s["best"]["val_loss"] == 0.4 and s["test"]["weights_of_epoch"] == 2


def weights_after_each_epoch(monkeypatch) -> list[np.ndarray]:
    """Record the model's parameters as every epoch ends (through the metrics hand-off)."""
    snapshots: list[np.ndarray] = []
    original = trickrun.train.Trainer.run

    def run(self, writer):
        append = writer.append_metrics

        def spy(record):
            snapshots.append(self.model.params.copy())
            append(record)

        writer.append_metrics = spy
        return original(self, writer)

    monkeypatch.setattr(trickrun.train.Trainer, "run", run)
    return snapshots


@pytest.mark.parametrize("restore_best", [True, False])
def test_saved_model_holds_the_best_or_the_last_weights(fake_data, monkeypatch, restore_best):
    snapshots = weights_after_each_epoch(monkeypatch)
    # Validation losses are scripted so that the best epoch (1) is not the last (3).
    monkeypatch.setattr(trickrun.train, "evaluate", scripted_evaluate([0.1, 0.2, 0.3]))
    cfg = {**BASE, "early_stopping": {"enabled": False, "restore_best": restore_best}}
    result = train(cfg, progress="quiet")
    assert result.summary["best_epoch"] == 1 and result.summary["epochs_run"] == 3
    model, _ = load_model(result.run_dir / "model.npz")
    expected = snapshots[0] if restore_best else snapshots[-1]
    np.testing.assert_array_equal(model.params, expected)
    assert result.summary["test"]["weights_of_epoch"] == (1 if restore_best else 3)


def test_diverging_after_a_good_epoch_evaluates_the_best_weights(fake_data, monkeypatch):
    snapshots = weights_after_each_epoch(monkeypatch)

    def lr(self, epoch):  # a schedule that explodes in epoch 2
        return 1e-3 if epoch == 1 else 1e30

    monkeypatch.setattr("trickrun.nn.schedules.LRSchedule.lr", lr)
    cfg = {**BASE, "optimizer": {"name": "sgd"}, "data": {"val_size": 100, "scale": "none"}}
    result = train(cfg, progress="quiet")
    s = result.summary
    assert s["status"] == "diverged" and s["divergence"]["epoch"] == 2 and s["divergence"]["lr"] == 1e30
    assert s["epochs_run"] == 1 and s["best_epoch"] == 1 and np.isfinite(s["test"]["loss"])
    model, _ = load_model(result.run_dir / "model.npz")
    np.testing.assert_array_equal(model.params, snapshots[0])


def test_penalty_is_recorded_apart_from_the_data_loss(fake_data):
    cfg = {**BASE, "regularization": {"l2": 0.01, "l1": 0.001},
           "early_stopping": {"enabled": False, "restore_best": False}}
    result = train(cfg, progress="quiet")
    model, _ = load_model(result.run_dir / "model.npz")
    w = model.params[: model.n_weights].astype(np.float64)
    expected = 0.5 * 0.01 * np.sum(w**2) + 0.001 * np.sum(np.abs(w))
    last = records(result.run_dir)[-1]
    assert last["penalty"] == pytest.approx(expected, rel=1e-5)
    # train_loss is the data loss alone: far below the penalty-inclusive total here.
    assert last["train_loss"] < last["train_loss"] + last["penalty"]


def test_clip_fraction_and_grad_norm(fake_data):
    tight = train({**BASE, "clip": {"norm": 1e-4}}, progress="quiet")
    loose = train({**BASE, "clip": {"norm": 1e6}}, progress="quiet")
    assert all(r["clip_fraction"] == 1.0 for r in records(tight.run_dir))
    assert all(r["clip_fraction"] == 0.0 for r in records(loose.run_dir))
    assert all(r["grad_norm"] > 1e-4 for r in records(tight.run_dir))  # logged before clipping


def test_per_layer_diagnostics_see_saturation(fake_data):
    saturating = train({**BASE, "model": {"hidden": [16], "activation": "sigmoid", "init": "normal"},
                        "data": {"val_size": 100, "scale": "none"}}, progress="quiet")
    layer = records(saturating.run_dir)[0]["layers"][0]
    assert layer["saturated_frac"] > 0.9 and layer["dead_frac"] is None
    calm = train({**BASE, "model": {"hidden": [16], "activation": "sigmoid", "init": "lecun"}}, progress="quiet")
    assert records(calm.run_dir)[0]["layers"][0]["saturated_frac"] < 0.5


def test_run_directories_never_collide(tmp_path):
    first = create_run_dir(tmp_path, "x", now=0.0)
    second = create_run_dir(tmp_path, "x", now=0.0)
    assert first != second and second.name == first.name + "-2"
    made: list[Path] = []
    threads = [threading.Thread(target=lambda: made.append(create_run_dir(tmp_path, "y", now=0.0)))
               for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(made)) == 8


def test_flush_subnormals_zeroes_only_subnormals():
    a = np.array([1e-39, -1e-40, 1e-30, 0.5, -2.0], dtype=np.float32)
    flush_subnormals(a)
    np.testing.assert_array_equal(a, np.array([0, 0, 1e-30, 0.5, -2.0], dtype=np.float32))


def test_evaluate_matches_a_direct_computation(fake_data):
    cfg = load_config(BASE)
    data = load_dataset(cfg.data)
    result = train(BASE, progress="quiet")
    model, _ = load_model(result.run_dir / "model.npz")
    logits = model.forward(data.x_test, train=False).astype(np.float64)
    logp = logits - logits.max(1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(1, keepdims=True))
    loss = -logp[np.arange(len(logp)), data.y_test].mean()
    acc = np.mean(logits.argmax(1) == data.y_test)
    assert evaluate(model, data.x_test, data.y_test) == pytest.approx((loss, acc), rel=1e-5)


def test_ctrl_c_with_restore_best_false_still_evaluates_a_finished_epoch(fake_data, monkeypatch):
    snapshots = weights_after_each_epoch(monkeypatch)
    monkeypatch.setattr("trickrun.progress.make_reporter", lambda mode: InterruptAt(3, 2))
    cfg = {**BASE, "train": {"epochs": 5}, "early_stopping": {"restore_best": False}}
    result = train(cfg, progress="quiet")
    s = result.summary
    assert s["status"] == "interrupted" and s["test"]["weights_of_epoch"] == s["best_epoch"]
    model, _ = load_model(result.run_dir / "model.npz")
    np.testing.assert_array_equal(model.params, snapshots[s["best_epoch"] - 1])


# --- the trainer's interface ------------------------------------------------------------------
class RecordingWriter:
    """Everything Trainer.run hands to its writer, kept in memory."""

    path = "memory"

    def __init__(self):
        self.records, self.checkpoints, self.models = [], [], []

    def append_metrics(self, record):
        self.records.append(record)

    def save_checkpoint(self, arrays):
        self.checkpoints.append(arrays)

    def save_model(self, arrays):
        self.models.append(arrays)


def make_trainer(cfg_data=BASE, **replace):
    cfg = load_config(cfg_data)
    data = load_dataset(cfg.data)
    if replace:
        data = dataclasses.replace(data, **replace)
    return trickrun.train.Trainer(cfg, data)


def test_run_writes_only_through_the_writer_it_is_given(fake_data):
    writer = RecordingWriter()
    result = make_trainer({**BASE, "early_stopping": {"enabled": False}}).run(writer)
    assert result["status"] is Status.COMPLETED and result["divergence"] is None
    assert [r["epoch"] for r in writer.records] == [1, 2, 3]
    assert len(writer.checkpoints) == 3 and len(writer.models) == 1


def test_a_diverging_epoch_returns_where_it_diverged(fake_data):
    trainer = make_trainer({**BASE, "optimizer": {"name": "sgd"}, "data": {"val_size": 100, "scale": "none"}})
    trainer.epoch = 1
    stats = trainer._train_epoch(1e-3)
    assert isinstance(stats, dict) and np.isfinite(stats["train_loss"])
    trainer.epoch = 2
    d = trainer._train_epoch(1e30)
    assert isinstance(d, Divergence)
    assert d.epoch == 2 and d.batch is not None and d.batch >= 2 and d.lr == 1e30
    assert d.reason().startswith(f"non-finite value in epoch 2, batch {d.batch}, {d.where} of {d.layer}")


def test_the_output_width_is_the_class_count_of_the_data(fake_data):
    cfg = load_config(BASE)
    data = load_dataset(cfg.data)
    three = make_trainer(y_train=data.y_train % 3, y_val=data.y_val % 3, y_test=data.y_test % 3)
    assert three.n_classes == 3 and three.model.forward(data.x_val[:2], train=False).shape == (2, 3)
    # a class seen only in the test set still gets an output
    five = make_trainer(y_train=data.y_train % 3, y_val=data.y_val % 3, y_test=np.full_like(data.y_test, 4))
    assert five.model.forward(data.x_val[:2], train=False).shape == (2, 5)
    assert five.run(RecordingWriter())["test"]["acc"] >= 0.0


# --- prediction without the training loop -----------------------------------------------------
def test_softmax_is_stable_and_normalized():
    logits = np.array([[1000.0, 1000.0, -1000.0], [1.0, 2.0, 3.0]])
    p = softmax(logits)
    np.testing.assert_allclose(p[0], [0.5, 0.5, 0.0])
    np.testing.assert_allclose(p[1], np.exp([1.0, 2.0, 3.0]) / np.exp([1.0, 2.0, 3.0]).sum())
    np.testing.assert_allclose(logits, [[1000.0, 1000.0, -1000.0], [1.0, 2.0, 3.0]])  # input untouched


def test_predict_proba_agrees_with_evaluate_across_chunks(fake_data, monkeypatch):
    monkeypatch.setattr("trickrun.nn.losses.EVAL_CHUNK", 64)  # 200 test examples: 4 chunks
    cfg = load_config(BASE)
    data = load_dataset(cfg.data)
    model, _ = load_model(train(BASE, progress="quiet").run_dir / "model.npz")
    p = predict_proba(model, data.x_test).astype(np.float64)
    assert p.shape == (len(data.x_test), 10)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-5)
    loss, acc = evaluate(model, data.x_test, data.y_test)
    assert acc == np.mean(p.argmax(axis=1) == data.y_test)
    assert loss == pytest.approx(-np.log(p[np.arange(len(p)), data.y_test]).mean(), rel=1e-4)
