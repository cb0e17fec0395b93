"""The training loop's endings (early stop, Ctrl-C, divergence), best-weights restore,
recorded penalties and clipping, and the run directory's naming."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import signal
import threading
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from trickrun.api import train
from trickrun.cli import app
from trickrun.config import load_config
from trickrun.data.load import load_dataset
from trickrun.nn.model import load_model
from trickrun.rundir.writer import STAGING_PREFIX, create_run_dir
from helpers import InterruptAt
from trickrun.nn.losses import evaluate, predict_proba, softmax
from trickrun.rundir.format import Status
from trickrun.ending import Divergence
from trickrun.train import NullReporter, Trainer, flush_subnormals, norm_sums

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


def scripted_validation(val_losses):
    """A `validate` for the Trainer that reports scripted validation losses (accuracy 0.5)."""
    calls = iter(val_losses)
    return lambda model: (next(calls), 0.5)


def test_early_stopping_in_the_loop_restores_the_best_epoch(fake_data):
    cfg = {**BASE, "train": {"epochs": 10}, "early_stopping": {"patience": 2}}
    writer = RecordingWriter()
    result = make_trainer(cfg, validate=scripted_validation([0.5, 0.4, 0.45, 0.46, 0.47, 0.1])).run(writer)
    assert result["status"] is Status.EARLY_STOPPED
    assert (result["best_epoch"], result["stopped_epoch"], result["epochs_run"]) == (2, 4, 4)
    assert result["best"]["val_loss"] == 0.4 and result["test"]["weights_of_epoch"] == 2
    np.testing.assert_array_equal(writer.models[0]["hidden1.W"], weights_of(writer.checkpoints[1], "hidden1.W"))


def weights_of(checkpoint: dict, name: str) -> np.ndarray:
    """A parameter as it was when `checkpoint` was taken (its `model` is the flat state)."""
    model = make_trainer().model
    model.load_flat_state(checkpoint["model"])
    return model.param(name)


@pytest.mark.parametrize("restore_best", [True, False])
def test_saved_model_holds_the_best_or_the_last_weights(fake_data, restore_best):
    # Validation losses are scripted so that the best epoch (1) is not the last (3).
    cfg = {**BASE, "early_stopping": {"enabled": False, "restore_best": restore_best}}
    writer = RecordingWriter()
    result = make_trainer(cfg, validate=scripted_validation([0.1, 0.2, 0.3])).run(writer)
    assert result["best_epoch"] == 1 and result["epochs_run"] == 3
    (saved,) = writer.models
    expected = writer.checkpoints[0 if restore_best else -1]["model"]
    np.testing.assert_array_equal(np.concatenate([saved[n].ravel() for n in make_trainer().model.param_names()]),
                                  expected)
    assert result["test"]["weights_of_epoch"] == (1 if restore_best else 3)


class ExplodingSchedule:
    """A learning-rate schedule (LRSchedule's interface) that explodes in epoch 2."""

    def lr(self, epoch):
        return 1e-3 if epoch == 1 else 1e30

    def observe(self, epoch, improved):
        pass

    def state_dict(self):
        return {}


def test_diverging_after_a_good_epoch_evaluates_the_best_weights(fake_data):
    cfg = {**BASE, "optimizer": {"name": "sgd"}, "data": {"val_size": 100, "scale": "none"}}
    writer = RecordingWriter()
    s = make_trainer(cfg, schedule=ExplodingSchedule()).run(writer)
    assert s["status"] is Status.DIVERGED and s["divergence"]["epoch"] == 2 and s["divergence"]["lr"] == 1e30
    assert s["epochs_run"] == 1 and s["best_epoch"] == 1 and np.isfinite(s["test"]["loss"])
    assert len(writer.checkpoints) == 1  # the diverged epoch is neither recorded nor checkpointed
    np.testing.assert_array_equal(writer.models[0]["hidden1.W"], weights_of(writer.checkpoints[0], "hidden1.W"))


def cross_entropy(model, x, y) -> float:
    """The mean data loss of a one-hidden-layer ReLU model, in float64, from its arrays alone."""
    p = {name: model.param(name).astype(np.float64) for name in model.param_names()}
    hidden = np.maximum(x.astype(np.float64) @ p["hidden1.W"] + p["hidden1.b"], 0)
    logits = hidden @ p["output.W"] + p["output.b"]
    logits -= logits.max(axis=1, keepdims=True)
    logp = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    return float(-logp[np.arange(len(y)), y].mean())


def test_penalty_is_recorded_apart_from_the_data_loss(fake_data):
    l2, l1 = 0.1, 0.01
    # lr so small that the weights stay put: epoch 1's train_loss is the initial weights' data loss
    cfg = {**BASE, "optimizer": {"name": "sgd", "lr": 1e-9}, "regularization": {"l2": l2, "l1": l1},
           "train": {"epochs": 1}, "early_stopping": {"enabled": False, "restore_best": False}}
    trainer = make_trainer(cfg)
    data = trainer.data
    initial_loss = cross_entropy(trainer.model, np.asarray(data.x_train), data.y_train)
    writer = RecordingWriter()
    trainer.run(writer)
    (record,) = writer.records
    final = [W.astype(np.float64) for W in trainer.model.weight_matrices()]  # restore_best false: the last
    penalty = sum(0.5 * l2 * np.sum(W**2) + l1 * np.sum(np.abs(W)) for W in final)
    assert penalty > 1.0  # far above the tolerances below, so adding it anywhere would show
    assert record["penalty"] == pytest.approx(penalty, rel=1e-5)
    assert record["train_loss"] == pytest.approx(initial_loss, abs=1e-4)
    assert record["val_loss"] == pytest.approx(cross_entropy(trainer.model, data.x_val, data.y_val), abs=1e-5)


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


def _one_file(folder: Path) -> None:
    (folder / "config.yaml").write_text("x: 1\n")


def test_run_directories_never_collide(tmp_path):
    first, _ = create_run_dir(tmp_path, "x", _one_file, now=0.0)
    second, _ = create_run_dir(tmp_path, "x", _one_file, now=0.0)
    assert first != second and second.name == first.name + "-2"
    made: list[Path] = []
    threads = [threading.Thread(target=lambda: made.append(create_run_dir(tmp_path, "y", _one_file, now=0.0)[0]))
               for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(made)) == 8
    assert all((p / "config.yaml").is_file() for p in made)


def test_a_run_directory_appears_whole_or_not_at_all(tmp_path):
    """A creation that fails (or is killed) part-way leaves no run directory: the files are
    written in a hidden staging folder that only becomes the run when it is whole."""
    def half(folder: Path) -> None:
        _one_file(folder)
        raise KeyboardInterrupt  # e.g. Ctrl-C between two files

    with pytest.raises(KeyboardInterrupt):
        create_run_dir(tmp_path, "x", half, now=0.0)
    assert list(tmp_path.iterdir()) == []
    seen: list[list[str]] = []
    create_run_dir(tmp_path, "x", lambda folder: (_one_file(folder), seen.append(os.listdir(tmp_path))), now=0.0)
    assert all(name.startswith(STAGING_PREFIX) for name in seen[0])  # nothing visible while it is made


def test_an_abandoned_staging_folder_is_swept_away_but_a_fresh_one_is_left(tmp_path):
    old = tmp_path / f"{STAGING_PREFIX}x-1-dead"
    fresh = tmp_path / f"{STAGING_PREFIX}x-2-busy"
    for folder in (old, fresh):
        folder.mkdir()
        _one_file(folder)
    os.utime(old, (0, 0))  # as if its process was killed long ago
    create_run_dir(tmp_path, "x", _one_file)
    assert not old.exists() and fresh.exists()


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


def test_ctrl_c_with_restore_best_false_still_evaluates_a_finished_epoch(fake_data):
    cfg = {**BASE, "train": {"epochs": 5}, "early_stopping": {"restore_best": False}}
    writer = RecordingWriter()
    trainer = make_trainer(cfg, reporter=InterruptAt(3, 2))
    s = trainer.run(writer)
    assert s["status"] is Status.INTERRUPTED and s["test"]["weights_of_epoch"] == s["best_epoch"]
    assert trainer.stop_signal == signal.SIGINT and not trainer.out_of_memory
    np.testing.assert_array_equal(writer.models[0]["hidden1.W"],
                                  weights_of(writer.checkpoints[s["best_epoch"] - 1], "hidden1.W"))


class EpochLines(NullReporter):
    """The epochs whose progress line was shown."""

    def __init__(self):
        self.epochs = []

    def epoch(self, record):
        self.epochs.append(record["epoch"])


def test_ctrl_c_while_an_epoch_is_saved_still_reports_it_and_says_after(fake_data):
    class SignalOnSecondCheckpoint(RecordingWriter):
        """Ctrl-C to this process while epoch 2's checkpoint is written: a stop held back."""

        def save_checkpoint(self, arrays):
            super().save_checkpoint(arrays)
            if len(self.checkpoints) == 2:
                signal.raise_signal(signal.SIGINT)

    reporter = EpochLines()
    trainer = make_trainer({**BASE, "train": {"epochs": 5}}, reporter=reporter)
    s = trainer.run(SignalOnSecondCheckpoint())
    assert s["status"] is Status.INTERRUPTED and trainer.stop_signal == signal.SIGINT
    assert reporter.epochs == [1, 2]  # epoch 2's line came out before the stop
    assert (s["epochs_run"], s["stopped_epoch"]) == (2, 2)
    assert s["stop_reason"] == "interrupted (Ctrl-C) after epoch 2"


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


def make_trainer(cfg_data=BASE, *, reporter=None, schedule=None, validate=None, **replace):
    """A Trainer of `cfg_data` on the fake data (its arrays replaced by `replace`), with the
    given seams."""
    cfg = load_config(cfg_data)
    data = load_dataset(cfg.data)
    if replace:
        data = dataclasses.replace(data, **replace)
    return Trainer(cfg, data, reporter, schedule=schedule, validate=validate)


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


def norms_before_each_step(trainer) -> list[float]:
    """Wrap `trainer`'s optimizer step to note the global norm of every gradient it is
    given, read from the gradients themselves (float64)."""
    seen, step = [], trainer.optimizer.step

    def noting(p, g, lr, *squares):
        seen.append(float(np.sqrt(np.sum(g.astype(np.float64) ** 2))))
        return step(p, g, lr, *squares)

    trainer.optimizer.step = noting
    return seen


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw",
                                       "normalized"])
@pytest.mark.parametrize("clip", [{}, {"norm": 1e6}])
def test_the_recorded_gradient_norm_is_that_of_the_gradients_stepped_along(fake_data, optimizer, clip):
    # Without clipping the norms come from the optimizer's kernel, summed during the step;
    # with it, from dot products before the step: both must be the gradients' own norm.
    trainer = make_trainer({**BASE, "model": {"hidden": [16, 8], "norm": "batch"},
                            "optimizer": {"name": optimizer}, "clip": clip})
    seen = norms_before_each_step(trainer)
    trainer.epoch = 1
    stats = trainer._train_epoch(0.01)
    assert len(seen) > 3 and len(set(seen)) > 1
    assert stats["grad_norm"] == pytest.approx(np.mean(seen), rel=1e-5)
    (b1, b2, out) = stats["block_grad_norms"]  # each block's weight matrix apart
    assert min(b1, b2, out) > 0 and b1**2 + b2**2 + out**2 < np.mean(seen) ** 2 * 1.0001


def test_an_epochs_norms_are_added_batch_after_batch_from_each_batchs_squared_norms():
    # rows: squared norms of each block's weight gradient, then of the rest (biases)
    rows = np.array([[9, 16, 0, 1], [0, 0, 4, 0], [1, 1, 1, 1]], np.float32)
    blocks, total = norm_sums(rows)
    assert blocks.tolist() == [4.0, 5.0, 3.0]
    assert total == math.sqrt(26) + 2.0 + 2.0


class PoisonedBackward:
    """model.backward that, at batch `at`, leaves `value` in one gradient of `block` (the
    loss stays finite: only the gradient goes wrong)."""

    def __init__(self, trainer, at: int, block: int, value: float):
        self.model, self.at, self.block, self.value, self.calls = trainer.model, at, block, value, 0
        self.backward = trainer.model.backward

    def __call__(self, grad):
        self.calls += 1
        self.backward(grad)
        if self.calls == self.at:
            self.model.grads[self.model.blocks[self.block].weight_slice][3] = self.value


@pytest.mark.parametrize("clip", [{}, {"norm": 1.0}, {"value": 0.5}])
@pytest.mark.parametrize(("block", "value"), [(0, np.nan), (1, np.inf), (2, -np.inf)])
def test_a_non_finite_gradient_ends_the_epoch_at_its_batch_and_names_its_layer(fake_data, clip, block, value):
    trainer = make_trainer({**BASE, "model": {"hidden": [16, 8]}, "optimizer": {"name": "adam"}, "clip": clip})
    trainer.model.backward = PoisonedBackward(trainer, at=3, block=block, value=value)
    trainer.epoch = 1
    d = trainer._train_epoch(0.01)
    assert isinstance(d, Divergence)
    assert (d.epoch, d.batch, d.layer, d.where) == (1, 3, trainer.model.blocks[block].name, "gradients")


def test_a_run_whose_first_epoch_meets_a_non_finite_gradient_saves_no_weights(fake_data):
    # The step along that gradient spoils the weights before its norm is read: no epoch
    # finished, so nothing may be evaluated or saved (ending.finish).
    trainer = make_trainer({**BASE, "model": {"hidden": [16, 8]}, "optimizer": {"name": "adam"}})
    trainer.model.backward = PoisonedBackward(trainer, at=2, block=0, value=np.nan)
    writer = RecordingWriter()
    s = trainer.run(writer)
    assert s["status"] is Status.DIVERGED and s["divergence"]["where"] == "gradients"
    assert s["best_epoch"] is None and s["test"] is None
    assert writer.models == [] and writer.checkpoints == [] and writer.records == []


def test_a_non_finite_gradient_after_a_good_epoch_saves_that_epochs_weights(fake_data):
    cfg = {**BASE, "model": {"hidden": [16, 8]}, "optimizer": {"name": "adam"}}
    trainer = make_trainer(cfg)
    per_epoch = -(-len(trainer.data.x_train) // trainer.cfg.train.batch_size)
    trainer.model.backward = PoisonedBackward(trainer, at=per_epoch + 2, block=1, value=np.inf)
    writer = RecordingWriter()
    s = trainer.run(writer)
    assert s["status"] is Status.DIVERGED and (s["divergence"]["epoch"], s["divergence"]["batch"]) == (2, 2)
    assert s["best_epoch"] == 1 and np.isfinite(s["test"]["loss"]) and len(writer.checkpoints) == 1
    epoch_1 = make_trainer(cfg).model
    epoch_1.load_flat_state(writer.checkpoints[0]["model"])
    for name in ("hidden1.W", "hidden2.W", "output.W"):
        np.testing.assert_array_equal(writer.models[0][name], epoch_1.param(name))


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


@pytest.mark.parametrize("where", ["layer_stats", "stopper"])
def test_a_stop_between_the_verdict_and_the_save_never_names_an_unsaved_best_epoch(fake_data, monkeypatch, where):
    """Ctrl-C in epoch 3 just before (layer_stats) or just after (the stopper's update) the early
    stopper judges it: the best epoch is always one whose record and checkpoint were written."""
    import trickrun.train as train_module
    from trickrun.early_stopping import EarlyStopping

    calls = []
    if where == "layer_stats":
        real = train_module.layer_stats

        def layer_stats(*args):
            calls.append(1)
            if len(calls) == 3:
                signal.raise_signal(signal.SIGINT)
            return real(*args)

        monkeypatch.setattr(train_module, "layer_stats", layer_stats)
    else:
        real_update = EarlyStopping.update

        def update(self, epoch, value):
            improved = real_update(self, epoch, value)
            if epoch == 3:
                signal.raise_signal(signal.SIGINT)
            return improved

        monkeypatch.setattr(EarlyStopping, "update", update)
    writer = RecordingWriter()
    s = make_trainer({**BASE, "train": {"epochs": 6}}, validate=scripted_validation([0.5, 0.4, 0.3, 0.2, 0.1, 0.05])).run(writer)
    assert s["status"] is Status.INTERRUPTED
    saved = 2 if where == "layer_stats" else 3  # the verdict held the stop until epoch 3 was written
    assert s["epochs_run"] == saved == s["best_epoch"] == len(writer.records)


@pytest.mark.parametrize("norm", ["none", "batch"])
def test_under_batch_norm_a_last_batch_of_one_example_sits_out(fake_data, norm):
    # 257 = 2 x 128 + 1: the last batch would hold one example, whose batch variance is 0
    cfg = {**BASE, "data": {"val_size": 100, "train_limit": 257}, "model": {"hidden": [16], "norm": norm},
           "train": {"epochs": 1}}
    trainer = make_trainer(cfg)
    sizes, forward = [], trainer.model.forward
    trainer.model.forward = lambda x, train=False: (sizes.append(len(x)) if train else None, forward(x, train))[1]
    trainer.run(RecordingWriter())
    assert sizes == ([128, 128] if norm == "batch" else [128, 128, 1])


def test_a_plateau_schedule_cuts_the_rate_after_patience_epochs_without_improvement(fake_data):
    cfg = {**BASE, "optimizer": {"name": "sgd", "lr": 0.1}, "train": {"epochs": 5},
           "schedule": {"name": "plateau", "patience": 1, "factor": 0.5},
           "early_stopping": {"enabled": False}}
    flat = RecordingWriter()
    make_trainer(cfg, validate=scripted_validation([1.0] * 5)).run(flat)
    assert [r["lr"] for r in flat.records] == pytest.approx([0.1, 0.1, 0.05, 0.025, 0.0125])
    better = RecordingWriter()
    make_trainer(cfg, validate=scripted_validation([5.0, 4.0, 3.0, 2.0, 1.0])).run(better)
    assert [r["lr"] for r in better.records] == pytest.approx([0.1] * 5)


def test_the_penalty_gradient_is_added_before_clipping(fake_data):
    # A penalty added after clipping would push the stepped gradient past the clip norm.
    trainer = make_trainer({**BASE, "regularization": {"l2": 1.0}, "clip": {"norm": 1e-3}})
    seen = norms_before_each_step(trainer)
    trainer.epoch = 1
    trainer._train_epoch(0.01)
    assert len(seen) > 3 and max(seen) <= 1e-3 * (1 + 1e-5)
