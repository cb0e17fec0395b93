"""The MLP's flat parameter layout, its state round trips, float32 against float64, its
blocks, and the per-layer diagnostics."""

from __future__ import annotations

import numpy as np
import pytest

from trickrun.config import ModelConfig
from trickrun.nn.diagnostics import first_nonfinite_layer, layer_stats
from trickrun.nn.model import MLP, load_model, model_arrays
from trickrun.rundir.format import layer_names

N_IN, N_OUT = 6, 3


def make(cfg: ModelConfig, seed: int = 0, dtype=np.float32) -> MLP:
    return MLP(N_IN, N_OUT, cfg, init_rng=np.random.default_rng(seed),
               dropout_rng=np.random.default_rng(seed + 1000), dtype=dtype)


def batch(n: int = 7, seed: int = 1, dtype=np.float32) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, N_IN)).astype(dtype)


@pytest.mark.parametrize("norm", ["none", "batch", "layer"])
def test_weights_come_first_and_are_the_dense_matrices(norm):
    model = make(ModelConfig(hidden=[5, 4], norm=norm))
    shapes = [(6, 5), (5, 4), (4, 3)]
    assert model.n_weights == sum(a * b for a, b in shapes)
    weights = [b.dense.W for b in model.blocks]
    assert [w.shape for w in weights] == shapes
    np.testing.assert_array_equal(model.params[: model.n_weights], np.concatenate([w.ravel() for w in weights]))
    for block in model.blocks:  # each layer holds a view of the flat buffers, not a copy
        assert np.shares_memory(block.dense.W, model.params)
        assert np.shares_memory(block.dense.gW, model.grads)
        np.testing.assert_array_equal(model.params[block.weight_slice], block.dense.W.ravel())
    after = model.param_names()[len(shapes):]
    assert all(not n.endswith(".W") for n in after)
    assert model.param_names()[: len(shapes)] == ["hidden1.W", "hidden2.W", "output.W"]


def test_writing_the_flat_buffer_changes_the_forward_pass():
    model = make(ModelConfig(hidden=[5, 4]))
    x = batch()
    before = model.forward(x, False).copy()
    model.params[model.blocks[-1].weight_slice] = 0.0
    after = model.forward(x, False)
    np.testing.assert_allclose(after, np.broadcast_to(model.param("output.b"), after.shape))
    assert not np.allclose(before, after)


@pytest.mark.parametrize(
    "norm, expected",
    [
        ("none", ["hidden1.W", "hidden2.W", "output.W", "hidden1.b", "hidden2.b", "output.b"]),
        ("batch", ["hidden1.W", "hidden2.W", "output.W", "hidden1.gamma", "hidden1.beta",
                   "hidden2.gamma", "hidden2.beta", "output.b"]),
        ("layer", ["hidden1.W", "hidden2.W", "output.W", "hidden1.b", "hidden1.gamma", "hidden1.beta",
                   "hidden2.b", "hidden2.gamma", "hidden2.beta", "output.b"]),
        ("weight", ["hidden1.v", "hidden2.v", "output.v", "hidden1.g", "hidden1.b", "hidden2.g", "hidden2.b",
                    "output.g", "output.b"]),
    ],
)
def test_parameter_names_and_bias_absent_with_batch_norm(norm, expected):
    model = make(ModelConfig(hidden=[5, 4], norm=norm))
    assert model.param_names() == expected
    sizes = {"hidden1": 5, "hidden2": 4, "output": 3}
    weights = [n for n in expected if n.endswith((".W", ".v"))]
    assert model.params.size == model.n_weights + sum(sizes[n.split(".")[0]] for n in expected if n not in weights)
    hidden_bias = [b.dense.b is not None for b in model.blocks[:-1]]
    assert hidden_bias == [norm != "batch"] * 2
    assert model.blocks[-1].dense.b is not None  # the output layer always has its bias
    if norm == "batch":
        assert sorted(model.buffers) == ["hidden1.running_mean", "hidden1.running_var",
                                         "hidden2.running_mean", "hidden2.running_var"]
    else:
        assert model.buffers == {}


def test_gamma_starts_at_one_and_biases_at_zero():
    model = make(ModelConfig(hidden=[5, 4], norm="layer"))
    for name in model.param_names():
        if name.endswith(".gamma"):
            np.testing.assert_array_equal(model.param(name), 1.0)
        elif not name.endswith(".W"):
            np.testing.assert_array_equal(model.param(name), 0.0)


def _trained_a_bit(cfg: ModelConfig, seed: int) -> MLP:
    """A model whose parameters and running statistics are away from their initial values."""
    model = make(cfg, seed)
    rng = np.random.default_rng(seed + 7)
    model.params += rng.normal(scale=0.1, size=model.params.size).astype(model.dtype)
    for i in range(3):
        model.forward(batch(seed=10 + i) * 3 + 1, True)  # moves the running statistics
    return model


@pytest.mark.parametrize("norm", ["none", "batch", "layer", "weight"])
def test_state_load_state_round_trip(norm):
    cfg = ModelConfig(hidden=[5, 4], norm=norm, dropout=0.3)
    a, b = _trained_a_bit(cfg, 0), make(cfg, seed=5)
    x = batch()
    assert not np.allclose(a.forward(x, False), b.forward(x, False))
    state = a.state()
    b.load_state(state)
    np.testing.assert_array_equal(b.params, a.params)
    for name, buf in a.buffers.items():
        np.testing.assert_array_equal(b.buffers[name], buf)
    np.testing.assert_array_equal(b.forward(x, False), a.forward(x, False))

    state[next(iter(state))][...] = 123.0  # state() hands out copies
    assert not np.any(a.params == 123.0)


def test_flat_state_round_trip_includes_buffers():
    cfg = ModelConfig(hidden=[5, 4], norm="batch")
    a, b = _trained_a_bit(cfg, 0), make(cfg, seed=5)
    b.load_flat_state(a.flat_state())
    np.testing.assert_array_equal(b.params, a.params)
    for name, buf in a.buffers.items():
        np.testing.assert_array_equal(b.buffers[name], buf)


@pytest.mark.parametrize("norm", ["none", "batch", "layer", "weight"])
def test_model_arrays_and_load_model_give_identical_outputs(tmp_path, norm):
    cfg = ModelConfig(hidden=[5, 4], activation="tanh", init="lecun", norm=norm, dropout=0.25)
    model = _trained_a_bit(cfg, 3)
    path = tmp_path / "model.npz"
    np.savez(path, **model_arrays(model))
    loaded, meta = load_model(path)
    assert meta["n_in"] == N_IN and meta["n_out"] == N_OUT
    assert loaded.cfg == cfg
    assert loaded.param_names() == model.param_names()
    x = batch(20)
    np.testing.assert_array_equal(loaded.forward(x, False), model.forward(x, False))


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid"])
@pytest.mark.parametrize("norm", ["none", "batch", "layer", "weight"])
def test_float32_forward_matches_float64_copy(norm, activation):
    cfg = ModelConfig(hidden=[32, 16], activation=activation, norm=norm)
    m32 = _trained_a_bit(cfg, 2)
    m64 = make(cfg, seed=9, dtype=np.float64)
    m64.load_state(m32.state())
    assert m32.params.dtype == np.float32 and m64.params.dtype == np.float64
    x32 = batch(50, seed=4)
    for train in (False, True):
        out32 = m32.forward(x32, train)
        out64 = m64.forward(x32.astype(np.float64), train)
        assert out32.dtype == np.float32  # no silent upcast in the float32 model
        np.testing.assert_allclose(out32, out64, rtol=1e-4, atol=1e-5)


# --- blocks and diagnostics -------------------------------------------------------------------
@pytest.mark.parametrize("norm", ["none", "batch", "layer", "weight"])
def test_blocks_are_named_by_the_format_and_own_their_parameters_in_order(norm):
    model = make(ModelConfig(hidden=[5, 4, 3], norm=norm))
    assert [b.name for b in model.blocks] == layer_names(3)
    weights = [b.param_names[0] for b in model.blocks]
    rest = [n for b in model.blocks for n in b.param_names[1:]]
    assert model.param_names() == weights + rest  # weight matrices first, then block by block
    assert sorted(model.buffers) == sorted(n for b in model.blocks for n in (s.name for s in b.buffer_slots))


@pytest.mark.parametrize("norm", ["none", "batch", "weight"])
def test_mlp_forward_and_backward_are_its_blocks_in_turn(norm):
    model = make(ModelConfig(hidden=[5, 4], norm=norm), dtype=np.float64)
    x = batch(dtype=np.float64)
    h = x
    for block in model.blocks:
        h = block.forward(h, False).copy()
    np.testing.assert_array_equal(model.forward(x, False), h)
    assert model.blocks[0].backward(np.ones((7, 5))) is None  # nothing upstream of the first block


def test_first_nonfinite_layer_names_weights_then_activations():
    model = make(ModelConfig(hidden=[5, 4], norm="batch"))
    x = batch()
    assert first_nonfinite_layer(model, x) == ("output", "loss")  # all finite: the loss is to blame
    model.param("output.W")[:, 0] = 3e38  # finite weights, overflowing logits
    model.param("output.b")[0] = 3e38
    assert first_nonfinite_layer(model, x) == ("output", "activations")
    model.param("hidden2.gamma")[1] = np.nan
    model.param("output.b")[0] = np.inf
    assert first_nonfinite_layer(model, x) == ("hidden2", "weights")
    model.param("hidden2.gamma")[1] = 1.0
    model.param("output.b")[0] = 0.0
    model.param("output.W")[:, 0] = 0.0
    bad = x.copy()
    bad[2, 3] = np.nan
    assert first_nonfinite_layer(model, bad) == ("hidden1", "activations")


def test_layer_stats_report_each_blocks_activation_output_in_eval_mode():
    model = _trained_a_bit(ModelConfig(hidden=[5, 4], activation="relu", norm="batch", dropout=0.5), 1)
    probe = batch(30, seed=3)
    hidden1 = np.maximum(model.blocks[0].norm.gamma * (probe @ model.param("hidden1.W")
                         - model.buffers["hidden1.running_mean"])
                         / np.sqrt(model.buffers["hidden1.running_var"] + 1e-5) + model.param("hidden1.beta"), 0)
    logits = model.forward(probe, False).copy()
    stats = layer_stats(model, probe, [1.0, 2.0, 3.0], None)
    assert [s["name"] for s in stats] == ["hidden1", "hidden2", "output"]
    assert stats[0]["act_mean"] == pytest.approx(hidden1.mean(), rel=1e-5)
    assert stats[0]["dead_frac"] == pytest.approx(np.mean(~np.any(hidden1 > 0, axis=0)))
    assert stats[0]["saturated_frac"] is None and stats[2]["dead_frac"] is None
    assert stats[2]["act_std"] == pytest.approx(logits.std(), rel=1e-5)
    assert [s["grad_norm"] for s in stats] == [1.0, 2.0, 3.0]
    assert stats[1]["weight_norm"] == pytest.approx(np.linalg.norm(model.param("hidden2.W")), rel=1e-5)
