"""The MLP's flat parameter layout, its state round trips, and float32 against float64."""

from __future__ import annotations

import numpy as np
import pytest

from trickrun.config import ModelConfig
from trickrun.nn.model import MLP, load_model, model_arrays

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
    ],
)
def test_parameter_names_and_bias_absent_with_batch_norm(norm, expected):
    model = make(ModelConfig(hidden=[5, 4], norm=norm))
    assert model.param_names() == expected
    sizes = {"hidden1": 5, "hidden2": 4, "output": 3}
    assert model.params.size == model.n_weights + sum(sizes[n.split(".")[0]] for n in expected if not n.endswith(".W"))
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


@pytest.mark.parametrize("norm", ["none", "batch", "layer"])
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


@pytest.mark.parametrize("norm", ["none", "batch", "layer"])
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
@pytest.mark.parametrize("norm", ["none", "batch", "layer"])
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
