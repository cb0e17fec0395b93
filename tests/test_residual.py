"""model.residual: the config key and its validation, the residual MLP's layout, forward pass,
saving and loading, diagnostics, and gradients (beside the LAYER_CASES check in test_layers.py)."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from trickrun.cli import app
from trickrun.config import ConfigError, ModelConfig, load_config
from trickrun.nn.blocks import Block, HiddenBlock, ResidualBlock
from trickrun.nn.diagnostics import layer_stats
from trickrun.nn.layers import NORMS
from trickrun.nn.model import MLP, load_model, model_arrays
from test_layers import F_IN, F_OUT, N, _bind_randomized, _check_mlp_gradients

N_IN, N_OUT = 6, 3


def make(cfg: ModelConfig, seed: int = 0) -> MLP:
    model = MLP(N_IN, N_OUT, cfg, init_rng=np.random.default_rng(seed),
                dropout_rng=np.random.default_rng(seed + 1000), dtype=np.float64)
    rng = np.random.default_rng(seed + 7)  # biases and norm parameters away from 0 and 1
    model.params += rng.normal(scale=0.1, size=model.params.size)
    return model


def x_batch(n: int = 9) -> np.ndarray:
    return np.random.default_rng(1).normal(size=(n, N_IN))


# --- config --------------------------------------------------------------------------------
def test_residual_is_off_by_default_and_read_from_the_config():
    assert load_config({}).model.residual is False
    cfg = load_config({"model": {"hidden": [8, 8, 8], "residual": True}})
    assert cfg.model.residual is True and cfg.to_dict()["model"]["residual"] is True


def test_residual_needs_equal_hidden_widths():
    with pytest.raises(ConfigError) as err:
        load_config({"model": {"hidden": [256, 128], "residual": True}})
    assert str(err.value) == ("model.residual: needs equal hidden widths, got [256, 128]; "
                              "e.g. model.hidden: [256, 256]")
    assert err.value.exit_code == 2
    load_config({"model": {"hidden": [256, 128], "residual": False}})  # unequal widths are fine without


def test_residual_must_be_a_boolean():
    with pytest.raises(ConfigError, match="model.residual: expected true or false"):
        load_config({"model": {"residual": "yes"}})


def test_residual_with_unequal_widths_exits_2_on_the_command_line(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model:\n  hidden: [16, 8, 8]\n  residual: true\n")
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 2
    assert "model.residual: needs equal hidden widths, got [16, 8, 8]" in result.output


def test_validate_prints_the_new_keys_with_their_defaults():
    result = CliRunner().invoke(app, ["validate", "configs/baseline.yaml"])
    assert result.exit_code == 0, result.output
    assert "residual: false" in result.output and "max_norm: null" in result.output


# --- the model -------------------------------------------------------------------------------
def test_a_residual_model_has_the_plain_models_parameters_and_names():
    plain, residual = make(ModelConfig(hidden=[5, 5, 5])), make(ModelConfig(hidden=[5, 5, 5], residual=True))
    assert residual.param_names() == plain.param_names()
    assert residual.n_weights == plain.n_weights
    np.testing.assert_array_equal(residual.params, plain.params)  # same seed, same initial values
    assert [type(b) for b in residual.blocks[:-1]] == [HiddenBlock, ResidualBlock, ResidualBlock]
    assert not np.allclose(residual.forward(x_batch(), False), plain.forward(x_batch(), False))


@pytest.mark.parametrize("norm", ["none", "batch", "layer", "weight"])
def test_residual_forward_is_h_plus_block_of_h_after_the_first_block(norm):
    model = make(ModelConfig(hidden=[5, 5, 5], norm=norm, activation="tanh", residual=True))
    x = x_batch()
    h = model.blocks[0].forward(x, False).copy()
    for block in model.blocks[1:-1]:
        h = h + HiddenBlock.forward(block, h, False)  # the block without its skip
    logits = model.blocks[-1].forward(h, False).copy()
    np.testing.assert_allclose(model.forward(x, False), logits, rtol=1e-12)


def test_one_hidden_layer_has_nothing_to_skip_and_is_the_plain_model():
    """Allowed: the one hidden block changes the width, so residual: true builds the plain MLP."""
    cfg = load_config({"model": {"hidden": [5], "residual": True}}).model
    residual = make(cfg)
    plain = make(ModelConfig(hidden=[5]))
    assert [type(b) for b in residual.blocks[:-1]] == [HiddenBlock]
    np.testing.assert_array_equal(residual.forward(x_batch(), False), plain.forward(x_batch(), False))


@pytest.mark.parametrize("norm", ["none", "batch", "weight"])
def test_load_model_rebuilds_a_residual_model(tmp_path, norm):
    cfg = ModelConfig(hidden=[5, 5], norm=norm, residual=True)
    model = make(cfg, seed=3)
    model.forward(x_batch() * 2 + 1, True)  # moves batch norm's running statistics
    np.savez(tmp_path / "model.npz", **model_arrays(model))
    loaded, meta = load_model(tmp_path / "model.npz")
    assert meta["model"]["residual"] is True and loaded.cfg == cfg
    assert set(np.load(tmp_path / "model.npz").files) == set(model.param_names()) | set(model.buffers) | {"__meta__"}
    np.testing.assert_array_equal(loaded.forward(x_batch(), False), model.forward(x_batch(), False))


def test_load_model_reads_a_model_saved_before_residual_existed(tmp_path):
    model = make(ModelConfig(hidden=[5, 4]))
    arrays = model_arrays(model)
    meta = arrays["__meta__"].item().replace(', "residual": false', "")
    assert "residual" not in meta
    arrays["__meta__"] = np.array(meta)
    np.savez(tmp_path / "old.npz", **arrays)
    loaded, _ = load_model(tmp_path / "old.npz")
    assert loaded.cfg.residual is False
    np.testing.assert_array_equal(loaded.forward(x_batch(), False), model.forward(x_batch(), False))


def test_layer_stats_of_a_residual_block_describe_its_activation_not_the_sum():
    model = make(ModelConfig(hidden=[5, 5], activation="relu", residual=True))
    probe = x_batch(30)
    stats = layer_stats(model, probe, [1.0, 1.0, 1.0], None)
    h1 = model.blocks[0].forward(probe, False).copy()
    branch = np.maximum(h1 @ model.param("hidden2.W") + model.param("hidden2.b"), 0)
    assert stats[1]["act_mean"] == pytest.approx(branch.mean(), rel=1e-12)
    assert stats[1]["act_mean"] != pytest.approx((h1 + branch).mean(), rel=1e-3)


# --- gradients (the block's own check is LAYER_CASES in test_layers.py) ---------------------
@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("norm", NORMS.names())
def test_residual_block_adds_its_input_to_the_hidden_block_on_the_same_arrays(norm, train):
    """y = x + f(x) and dx = g + df/dx^T g, f being a HiddenBlock bound to the same arrays
    (the gradient check alone would pass for a plain HiddenBlock too)."""
    rng = np.random.default_rng(23)
    cfg = ModelConfig(hidden=[F_OUT], norm=norm, activation="tanh", dropout=0.5)
    residual, plain = (cls("hidden2", F_OUT, F_OUT, cfg, dropout_rng=np.random.default_rng(123))
                       for cls in (ResidualBlock, HiddenBlock))
    _bind_randomized(residual, rng, plain)
    x, g = rng.normal(size=(N, F_OUT)), rng.normal(size=(N, F_OUT))
    y = residual.forward(x, train).copy()
    dx = residual.backward(g).copy()
    np.testing.assert_allclose(y, x + plain.forward(x, train), rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(residual.output, y)
    np.testing.assert_allclose(dx, g + plain.backward(g), rtol=1e-12, atol=1e-12)
    residual.forward(x, False)
    np.testing.assert_array_equal(residual.activation_output, plain.forward(x, False))  # f's, not the sum


def test_residual_block_refuses_a_change_of_width():
    with pytest.raises(ValueError, match="n_in == n_out"):
        ResidualBlock("hidden2", F_IN, F_OUT, ModelConfig(), dropout_rng=np.random.default_rng(0))


@pytest.mark.parametrize("dropout", [0.0, 0.5])
@pytest.mark.parametrize("activation", ["relu", "tanh"])
@pytest.mark.parametrize("norm", NORMS.names())
def test_residual_mlp_gradients_match_finite_differences(norm, activation, dropout):
    cfg = ModelConfig(hidden=[5, 5, 5], activation=activation, init="glorot", norm=norm, dropout=dropout,
                      residual=True)
    model = _check_mlp_gradients(cfg)
    assert [type(b) for b in model.blocks] == [HiddenBlock, ResidualBlock, ResidualBlock, Block]
