"""regularization.max_norm: the constraint on a hand-built matrix, its validation, and its
place in the training loop (right after the optimizer step, weight matrices only)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from trickrun.config import ConfigError, load_config
from trickrun.data.load import load_dataset
from trickrun.nn.optim import apply_max_norm
from trickrun.train import Trainer


def column_norms(W: np.ndarray) -> np.ndarray:
    return np.linalg.norm(W, axis=0)


def test_max_norm_rescales_only_the_columns_above_it():
    # columns: (3, 4) norm 5 -> (0.6, 0.8); (0.3, 0.4) norm 0.5 stays; (0, 1) exactly 1 stays
    W = np.array([[3.0, 0.3, 0.0], [4.0, 0.4, 1.0]])
    V = np.array([[2.0], [0.0], [0.0]])  # a second matrix, (3, 1): norm 2 -> 1
    assert apply_max_norm([W, V], 1.0) == 2
    np.testing.assert_allclose(W, [[0.6, 0.3, 0.0], [0.8, 0.4, 1.0]], rtol=1e-15)
    np.testing.assert_allclose(V, [[1.0], [0.0], [0.0]], rtol=1e-15)


def test_max_norm_works_on_views_of_a_flat_buffer_and_keeps_float32():
    flat = np.arange(1, 13, dtype=np.float32)
    W = flat[:6].reshape(2, 3)  # columns are strided in the flat buffer
    assert apply_max_norm([W], 2.0) == 3
    assert flat.dtype == np.float32
    np.testing.assert_allclose(column_norms(flat[:6].reshape(2, 3)), 2.0, rtol=1e-6)
    np.testing.assert_array_equal(flat[6:], np.arange(7, 13))  # the rest of the buffer untouched


def test_max_norm_below_every_column_changes_nothing():
    W = np.random.default_rng(0).normal(size=(4, 3))
    before = W.copy()
    assert apply_max_norm([W], 1e6) == 0
    np.testing.assert_array_equal(W, before)


def test_max_norm_is_off_by_default_and_validated():
    assert load_config({}).regularization.max_norm is None
    assert load_config({"regularization": {"max_norm": 3}}).regularization.max_norm == 3.0
    for bad, message in [(0, "out of range"), (-1.5, "out of range"), (".inf", "finite"),
                         ("'3'", "expected a number")]:
        with pytest.raises(ConfigError, match=f"regularization.max_norm: .*{message}") as err:
            load_config({}, [f"regularization.max_norm={bad}"])
        assert err.value.exit_code == 2


def one_step_trainer(max_norm):
    """A trainer whose epoch is a single step of plain SGD (32 examples, batch 32)."""
    cfg = load_config({"data": {"val_size": 100, "train_limit": 32}, "model": {"hidden": [16]},
                       "optimizer": {"name": "sgd", "lr": 0.5}, "train": {"batch_size": 32},
                       "regularization": {"max_norm": max_norm}})
    return Trainer(cfg, load_dataset(cfg.data))


def test_one_training_step_applies_max_norm_after_the_optimizer_step(fake_data):
    free = one_step_trainer(None)
    free._train_epoch(0.5)
    norms = [column_norms(W) for W in free.model.weight_matrices()]
    c = float(np.median(np.concatenate(norms)))  # half the units above the cap, half below
    capped = one_step_trainer(c)
    capped._train_epoch(0.5)
    # the same gradient step; then each column above c is scaled back to c, the rest kept
    for W_free, W_capped, n in zip(free.model.weight_matrices(), capped.model.weight_matrices(), norms):
        np.testing.assert_allclose(W_capped, W_free * np.minimum(1.0, c / n), rtol=1e-6)
        assert np.all(column_norms(W_capped) <= c * (1 + 1e-6))
    assert not np.allclose(capped.model.param("hidden1.W"), free.model.param("hidden1.W"))
    nw = free.model.n_weights
    np.testing.assert_array_equal(capped.model.params[nw:], free.model.params[nw:])  # biases untouched


def test_max_norm_off_leaves_the_training_step_alone(fake_data):
    # a cap no column reaches gives the plain step; off gives the same step, bit for bit
    off, unreachable = one_step_trainer(None), one_step_trainer(1e30)
    off._train_epoch(0.5)
    unreachable._train_epoch(0.5)
    np.testing.assert_array_equal(off.model.params, unreachable.model.params)
    assert max(column_norms(W).max() for W in off.model.weight_matrices()) > 1.0  # nothing capped it
    capped = one_step_trainer(1.0)
    capped._train_epoch(0.5)
    assert max(column_norms(W).max() for W in capped.model.weight_matrices()) <= 1.0 * (1 + 1e-6)


def test_resolved_config_round_trips_the_new_keys(tmp_path):
    from trickrun.config import dump_yaml

    cfg = load_config({"model": {"hidden": [8, 8], "residual": True}, "regularization": {"max_norm": 2.5},
                       "optimizer": {"name": "normalized"}})
    path = tmp_path / "config.yaml"
    path.write_text(dump_yaml(cfg.to_dict()))
    again = load_config(path)
    assert dataclasses.replace(again, name=cfg.name) == cfg
