"""Central-difference gradient checks (float64) for every layer, block, the loss, the
penalties and the assembled MLP, in training and evaluation mode, plus the mode-dependent
behaviour of batch norm and dropout."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import trickrun.nn.blocks
from trickrun.config import ModelConfig
from trickrun.nn.blocks import Arrays, Block, HiddenBlock, ResidualBlock
from trickrun.nn.layers import (ACTIVATIONS, NORMS, BatchNorm, Dense, Dropout, LayerNorm, LeakyReLU, NoNorm,
                                ReLU, Sigmoid, Tanh, WeightNorm, WeightNormDense)
from trickrun.nn.losses import add_penalty_grad, softmax_cross_entropy, weight_penalty
from trickrun.nn.model import MLP

EPS = 1e-6
N, F_IN, F_OUT = 7, 6, 5


def numeric_grad(f, x: np.ndarray, eps: float = EPS) -> np.ndarray:
    """dF/dx by central differences, perturbing `x` in place one entry at a time."""
    grad = np.zeros_like(x, dtype=np.float64)
    flat, gflat = x.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        up = f()
        flat[i] = old - eps
        down = f()
        flat[i] = old
        gflat[i] = (up - down) / (2 * eps)
    return grad


def assert_grad_close(analytic: np.ndarray, numeric: np.ndarray, rel: float = 1e-6) -> None:
    analytic, numeric = np.asarray(analytic, np.float64), np.asarray(numeric, np.float64)
    assert analytic.shape == numeric.shape
    assert np.all(np.isfinite(analytic))
    scale = np.linalg.norm(analytic) + np.linalg.norm(numeric)
    assert scale > 0, "all-zero gradients prove nothing"
    assert np.linalg.norm(analytic - numeric) / scale < rel
    np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-8)


def projection_loss(layer, x: np.ndarray, R: np.ndarray, train: bool = True):
    """L = sum(layer(x) * R), so dL/doutput = R; returns a closure for numeric_grad."""
    return lambda: float(np.sum(layer.forward(x, train) * R))


# --- Dense ------------------------------------------------------------------------------
@pytest.mark.parametrize("bias", [True, False])
def test_dense_gradients(bias):
    rng = np.random.default_rng(0)
    W = rng.normal(size=(F_IN, F_OUT))
    gW = np.zeros_like(W)
    b = rng.normal(size=F_OUT) if bias else None
    gb = np.zeros(F_OUT) if bias else None
    x = rng.normal(size=(N, F_IN))
    R = rng.normal(size=(N, F_OUT))
    layer = Dense(W, gW, b, gb)

    out = layer.forward(x, True)
    expected = x @ W + (b if bias else 0.0)
    np.testing.assert_allclose(out, expected, rtol=1e-12)
    dx = layer.backward(R).copy()
    gW_a = gW.copy()
    gb_a = gb.copy() if bias else None

    f = projection_loss(layer, x, R)
    assert_grad_close(gW_a, numeric_grad(f, W))
    assert_grad_close(dx, numeric_grad(f, x))
    if bias:
        assert_grad_close(gb_a, numeric_grad(f, b))


def test_dense_first_layer_skips_input_gradient_but_fills_weight_gradients():
    rng = np.random.default_rng(1)
    W, gW = rng.normal(size=(F_IN, F_OUT)), np.zeros((F_IN, F_OUT))
    b, gb = np.zeros(F_OUT), np.zeros(F_OUT)
    x, R = rng.normal(size=(N, F_IN)), rng.normal(size=(N, F_OUT))
    layer = Dense(W, gW, b, gb, input_grad=False)
    layer.forward(x, True)
    assert layer.backward(R) is None
    np.testing.assert_allclose(gW, x.T @ R, rtol=1e-12)
    np.testing.assert_allclose(gb, R.sum(axis=0), rtol=1e-12)


# --- activations --------------------------------------------------------------------------
def _activation_input(name: str, rng: np.random.Generator) -> np.ndarray:
    if name in ("relu", "leaky_relu"):  # stay away from the kink at 0
        return rng.uniform(0.1, 2.0, size=(N, F_OUT)) * rng.choice([-1.0, 1.0], size=(N, F_OUT))
    return rng.normal(scale=1.5, size=(N, F_OUT))


@pytest.mark.parametrize("name", ACTIVATIONS.names())
def test_activation_gradient(name):
    rng = np.random.default_rng(2)
    x = _activation_input(name, rng)
    R = rng.normal(size=x.shape)
    layer = ACTIVATIONS.get(name)()
    layer.forward(x, True)
    dx = layer.backward(R).copy()
    assert_grad_close(dx, numeric_grad(projection_loss(layer, x, R), x))


def test_activation_forward_values():
    x = np.array([[-2.0, -0.5, 0.5, 3.0]])
    np.testing.assert_allclose(ReLU().forward(x, True), [[0.0, 0.0, 0.5, 3.0]])
    np.testing.assert_allclose(LeakyReLU().forward(x, True), [[-0.02, -0.005, 0.5, 3.0]])
    np.testing.assert_allclose(Tanh().forward(x, True), np.tanh(x), rtol=1e-12)
    np.testing.assert_allclose(Sigmoid().forward(x, True), 1 / (1 + np.exp(-x)), rtol=1e-12)


@pytest.mark.parametrize("cls", [Sigmoid, Tanh])
def test_saturating_activations_are_stable_at_large_inputs(cls):
    x = np.array([[-1000.0, 1000.0, -50.0, 50.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an overflow RuntimeWarning fails the test
        layer = cls()
        y = layer.forward(x, True).copy()
        dx = layer.backward(np.ones_like(x))
    assert np.all(np.isfinite(y)) and np.all(np.isfinite(dx))
    low = 0.0 if cls is Sigmoid else -1.0
    np.testing.assert_allclose(y[0, :2], [low, 1.0], atol=1e-15)
    np.testing.assert_allclose(dx[0, :2], [0.0, 0.0], atol=1e-15)


# --- normalization -----------------------------------------------------------------------
def _affine(rng, width):
    gamma = rng.uniform(0.5, 1.5, size=width)  # not 1: a missing gamma factor must show
    beta = rng.normal(size=width)
    return gamma, np.zeros(width), beta, np.zeros(width)


def test_batchnorm_training_gradients():
    rng = np.random.default_rng(3)
    gamma, g_gamma, beta, g_beta = _affine(rng, F_OUT)
    layer = BatchNorm(gamma, g_gamma, beta, g_beta, np.zeros(F_OUT), np.ones(F_OUT), momentum=0.9)
    x = rng.normal(loc=2.0, scale=3.0, size=(N, F_OUT))
    R = rng.normal(size=x.shape)
    layer.forward(x, True)
    dx = layer.backward(R).copy()
    gg, gb = g_gamma.copy(), g_beta.copy()
    f = projection_loss(layer, x, R, train=True)
    assert_grad_close(dx, numeric_grad(f, x))
    assert_grad_close(gg, numeric_grad(f, gamma))
    assert_grad_close(gb, numeric_grad(f, beta))


def test_batchnorm_running_statistics_update_and_eval_mode():
    rng = np.random.default_rng(4)
    m, eps = 0.8, 1e-5
    gamma, g_gamma, beta, g_beta = _affine(rng, 3)
    rm0, rv0 = rng.normal(size=3), rng.uniform(0.5, 2.0, size=3)
    running_mean, running_var = rm0.copy(), rv0.copy()
    layer = BatchNorm(gamma, g_gamma, beta, g_beta, running_mean, running_var, momentum=m, eps=eps)

    x = rng.normal(loc=1.0, scale=2.0, size=(4, 3))  # N = 4: biased and unbiased var differ by 4/3
    out = layer.forward(x, True)
    batch_mean = x.sum(axis=0) / 4
    batch_var = ((x - batch_mean) ** 2).sum(axis=0) / 4
    np.testing.assert_allclose(out, gamma * (x - batch_mean) / np.sqrt(batch_var + eps) + beta, rtol=1e-12)
    np.testing.assert_allclose(running_mean, m * rm0 + (1 - m) * batch_mean, rtol=1e-12)
    np.testing.assert_allclose(running_var, m * rv0 + (1 - m) * batch_var, rtol=1e-12)

    rm1, rv1 = running_mean.copy(), running_var.copy()
    x_eval = rng.normal(size=(5, 3))
    out_eval = layer.forward(x_eval, False)
    np.testing.assert_allclose(out_eval, gamma * (x_eval - rm1) / np.sqrt(rv1 + eps) + beta, rtol=1e-12)
    np.testing.assert_array_equal(running_mean, rm1)  # evaluation leaves the buffers alone
    np.testing.assert_array_equal(running_var, rv1)


def test_layernorm_gradients_and_train_eval_equal():
    rng = np.random.default_rng(5)
    gamma, g_gamma, beta, g_beta = _affine(rng, F_OUT)
    layer = LayerNorm(gamma, g_gamma, beta, g_beta)
    x = rng.normal(loc=-1.0, scale=2.0, size=(N, F_OUT))
    R = rng.normal(size=x.shape)
    out = layer.forward(x, True).copy()
    mu, var = x.mean(axis=1, keepdims=True), x.var(axis=1, keepdims=True)
    np.testing.assert_allclose(out, gamma * (x - mu) / np.sqrt(var + 1e-5) + beta, rtol=1e-12)
    np.testing.assert_allclose(layer.forward(x, False), out, rtol=1e-15)

    layer.forward(x, True)
    dx = layer.backward(R).copy()
    gg, gb = g_gamma.copy(), g_beta.copy()
    f = projection_loss(layer, x, R)
    assert_grad_close(dx, numeric_grad(f, x))
    assert_grad_close(gg, numeric_grad(f, gamma))
    assert_grad_close(gb, numeric_grad(f, beta))


# --- dropout --------------------------------------------------------------------------------
def test_dropout_gradient_with_fixed_mask():
    rng = np.random.default_rng(6)
    x, R = rng.normal(size=(N, F_OUT)), rng.normal(size=(N, F_OUT))
    layer = Dropout(0.5, np.random.default_rng(123))

    def f():
        layer.rng = np.random.default_rng(123)  # same mask on every evaluation
        return float(np.sum(layer.forward(x, True) * R))

    f()
    dx = layer.backward(R).copy()
    mask = layer._mask.copy()
    assert np.any(mask == 0) and np.any(mask == 2.0), "the mask should drop some units and keep some"
    assert_grad_close(dx, numeric_grad(f, x))
    np.testing.assert_allclose(dx, R * mask, rtol=1e-15)


def test_dropout_eval_is_identity():
    x = np.random.default_rng(7).normal(size=(N, F_OUT))
    layer = Dropout(0.5, np.random.default_rng(0))
    np.testing.assert_array_equal(layer.forward(x, False), x)
    g = np.ones_like(x)
    np.testing.assert_array_equal(layer.backward(g), g)


@pytest.mark.parametrize("rate", [0.2, 0.5])
def test_dropout_training_mask_keeps_one_minus_rate_scaled(rate):
    x = np.ones((400, 500))
    out = Dropout(rate, np.random.default_rng(8)).forward(x, True)
    kept = out != 0
    assert abs(kept.mean() - (1 - rate)) < 0.01  # 200,000 draws: std ~0.001
    np.testing.assert_allclose(out[kept], 1.0 / (1.0 - rate), rtol=1e-12)
    assert abs(out.mean() - 1.0) < 0.02  # inverted dropout keeps the expectation


def test_dropout_masks_differ_between_batches():
    layer = Dropout(0.5, np.random.default_rng(9))
    x = np.ones((20, 30))
    first = layer.forward(x, True).copy()
    second = layer.forward(x, True)
    assert not np.array_equal(first, second)


# --- every layer and block in both modes ---------------------------------------------------
# Each case builds (layer, x, [(parameter, its gradient view)]) in float64. The check: after
# forward(x, train), backward(R) must be the gradient of x -> sum(forward(x, train) * R),
# the evaluation-mode function included (batch norm then uses its running statistics).
def _dense_case(rng):
    W, b = rng.normal(size=(F_IN, F_OUT)), rng.normal(size=F_OUT)
    gW, gb = np.zeros_like(W), np.zeros_like(b)
    return Dense(W, gW, b, gb), rng.normal(size=(N, F_IN)), [(W, gW), (b, gb)]


def _weightnorm_dense_case(rng):
    v, b = rng.normal(size=(F_IN, F_OUT)), rng.normal(size=F_OUT)
    g = rng.uniform(0.5, 1.5, size=F_OUT) * np.array([1, -1, 1, 1, -1])  # not ||v||, some negative
    gv, gg, gb = np.zeros_like(v), np.zeros_like(g), np.zeros_like(b)
    return WeightNormDense(v, gv, g, gg, b, gb), rng.normal(size=(N, F_IN)), [(v, gv), (g, gg), (b, gb)]


def _activation_case(name):
    def make(rng):
        return ACTIVATIONS.get(name)(), _activation_input(name, rng), []
    return make


def _norm_case(name):
    def make(rng):
        cls = NORMS.get(name)
        params = {k: rng.uniform(0.5, 1.5, size=F_OUT) if k == "gamma" else rng.normal(size=F_OUT)
                  for k in cls.PARAMS}
        grads = {k: np.zeros(F_OUT) for k in cls.PARAMS}
        buffers = {"running_mean": rng.normal(size=F_OUT), "running_var": rng.uniform(0.2, 3.0, size=F_OUT)}
        layer = cls.build(params, grads, {k: buffers[k] for k in cls.BUFFERS}, ModelConfig(bn_momentum=0.8))
        x = rng.normal(loc=1.0, scale=2.0, size=(N, F_OUT))
        return layer, x, [(params[k], grads[k]) for k in cls.PARAMS]
    return make


def _dropout_case(rng):
    return Dropout(0.5, np.random.default_rng(123)), rng.normal(size=(N, F_OUT)), []


def _block_case(cls, **model):
    """A block on its own Arrays, every parameter and buffer away from its initial value.
    A residual block keeps its width (F_OUT in, F_OUT out)."""
    n_in = F_OUT if cls is ResidualBlock else F_IN

    def make(rng):
        if cls is Block:
            block = Block("output", n_in, F_OUT, dense=NORMS.get(model.get("norm", "none")).DENSE)
        else:
            cfg = ModelConfig(hidden=[F_OUT], init="glorot", **model)
            block = cls("hidden2", n_in, F_OUT, cfg, dropout_rng=np.random.default_rng(123))
        arrays = _bind_randomized(block, rng)
        return block, rng.normal(size=(N, n_in)), [(arrays.params, arrays.grads)]
    return make


def _bind_randomized(block, rng, *also) -> Arrays:
    """Bind `block` (and the blocks `also`, of the same layout) to one float64 Arrays."""
    arrays = Arrays([block.weight], block.param_slots, block.buffer_slots, np.float64)
    arrays.params[...] = rng.normal(size=arrays.params.size)
    for name in block.param_names:
        if name.endswith(".gamma"):
            arrays.param(name)[...] = rng.uniform(0.5, 1.5, size=arrays.param(name).shape)
    for buf in arrays.buffers.values():
        buf[...] = rng.uniform(0.2, 3.0, size=buf.shape)
    for each in (block, *also):
        each.bind(arrays)
    return arrays


def _builds_a_layer(norm: str) -> bool:
    """Whether the norm puts a layer between the Dense and the activation (none and weight
    norm do not: weight norm is a Dense of its own, checked as "dense-weightnorm")."""
    cls = NORMS.get(norm)
    ones = {k: np.ones(F_OUT) for k in (*cls.PARAMS, *cls.BUFFERS)}
    return cls.build(ones, ones, ones, ModelConfig()) is not None


LAYER_CASES = {
    "dense": _dense_case,
    "dense-weightnorm": _weightnorm_dense_case,
    **{name: _activation_case(name) for name in ACTIVATIONS.names()},
    **{f"norm-{name}": _norm_case(name) for name in NORMS.names() if _builds_a_layer(name)},
    "dropout": _dropout_case,
    "block-output": _block_case(Block),
    "block-output-weight": _block_case(Block, norm="weight"),
    **{f"block-hidden-{norm}": _block_case(HiddenBlock, norm=norm, activation="tanh", dropout=0.5)
       for norm in NORMS.names()},
    **{f"block-hidden-{act}": _block_case(HiddenBlock, norm="batch", activation=act)
       for act in ACTIVATIONS.names()},
    **{f"block-residual-{norm}": _block_case(ResidualBlock, norm=norm, activation="tanh", dropout=0.5)
       for norm in NORMS.names()},
    "block-residual-relu": _block_case(ResidualBlock, norm="layer", activation="relu"),
}


def _reset_rngs(layer) -> None:
    """Dropout draws the same mask on every forward, so the loss is a function of x."""
    for each in [layer.dropout] if isinstance(layer, Block) else [layer]:
        if isinstance(each, Dropout):
            each.rng = np.random.default_rng(123)


@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("case", sorted(LAYER_CASES))
def test_backward_is_the_gradient_of_forward_in_both_modes(case, train):
    rng = np.random.default_rng(20)
    layer, x, params = LAYER_CASES[case](rng)
    R = rng.normal(size=layer.forward(x, train).shape)

    def f() -> float:
        _reset_rngs(layer)
        return float(np.sum(layer.forward(x, train) * R))

    f()
    for _, grad in params:
        grad[...] = np.nan  # backward must overwrite every entry
    dx = layer.backward(R).copy()
    analytic = [grad.copy() for _, grad in params]
    assert_grad_close(dx, numeric_grad(f, x))
    for (param, _), grad in zip(params, analytic):
        assert_grad_close(grad, numeric_grad(f, param))


def test_every_block_class_has_a_gradient_case():
    classes = {obj for obj in vars(trickrun.nn.blocks).values()
               if isinstance(obj, type) and issubclass(obj, Block)}
    assert classes == {Block, HiddenBlock, ResidualBlock}, "add a LAYER_CASES entry for the new block class"


def test_dropout_inside_a_training_block_drops_units():
    block, x, _ = LAYER_CASES["block-hidden-none"](np.random.default_rng(21))
    block.forward(x, True)
    assert np.any(block.dropout._mask == 0)
    np.testing.assert_array_equal(block.forward(x, False), block.activation.output)


def test_batchnorm_eval_backward_is_affine():
    """In evaluation mode y = gamma (x - running_mean) / sqrt(running_var + eps) + beta."""
    rng = np.random.default_rng(22)
    gamma, g_gamma, beta, g_beta = _affine(rng, 3)
    rm, rv = rng.normal(size=3), rng.uniform(0.01, 0.1, size=3)  # far from the batch variance
    layer = BatchNorm(gamma, g_gamma, beta, g_beta, rm, rv)
    x, g = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    layer.forward(x, False)
    dx = layer.backward(g)
    inv_std = 1 / np.sqrt(rv + 1e-5)
    np.testing.assert_allclose(dx, g * gamma * inv_std, rtol=1e-12)
    np.testing.assert_allclose(g_gamma, np.sum(g * (x - rm) * inv_std, axis=0), rtol=1e-12)
    np.testing.assert_allclose(g_beta, g.sum(axis=0), rtol=1e-12)


def test_norm_registry_declares_arrays_and_none_builds_no_layer():
    assert NORMS.names() == ("none", "batch", "layer", "weight")
    assert NORMS.get("none") is NoNorm and NoNorm.build({}, {}, {}, ModelConfig()) is None
    assert (NoNorm.PARAMS, NoNorm.BUFFERS, NoNorm.REPLACES_BIAS) == ({}, {}, False)
    assert BatchNorm.REPLACES_BIAS and not LayerNorm.REPLACES_BIAS
    assert BatchNorm.BUFFERS == {"running_mean": 0.0, "running_var": 1.0} and LayerNorm.BUFFERS == {}
    # weight norm adds no layer after the Dense: it swaps the Dense itself, and keeps the bias
    assert NORMS.get("weight") is WeightNorm and WeightNorm.build({}, {}, {}, ModelConfig()) is None
    assert (WeightNorm.PARAMS, WeightNorm.BUFFERS, WeightNorm.REPLACES_BIAS) == ({}, {}, False)
    assert WeightNorm.DENSE is WeightNormDense and WeightNormDense.UNIT_PARAMS == {"g": 1.0}
    assert all(NORMS.get(n).DENSE is Dense for n in NORMS.names() if n != "weight")
    assert ACTIVATIONS.names() == ("relu", "leaky_relu", "tanh", "sigmoid")


# --- loss and penalties --------------------------------------------------------------------
def test_softmax_cross_entropy_value_gradient_and_count():
    rng = np.random.default_rng(10)
    logits = rng.normal(scale=2.0, size=(N, 4))
    labels = rng.integers(0, 4, size=N)
    loss, correct, grad = softmax_cross_entropy(logits, labels, np.empty_like(logits))

    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    assert loss == pytest.approx(-np.mean(np.log(p[np.arange(N), labels])), rel=1e-12)
    assert correct == int(np.sum(logits.argmax(axis=1) == labels))
    grad = grad.copy()
    f = lambda: softmax_cross_entropy(logits, labels)[0]  # noqa: E731
    assert_grad_close(grad, numeric_grad(f, logits))


def test_softmax_cross_entropy_is_stable_for_huge_logits():
    logits = np.array([[1e4, 0.0, -1e4], [0.0, 1e4, 1e4 - 2.0]])
    labels = np.array([1, 1])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss, correct, grad = softmax_cross_entropy(logits, labels, np.empty_like(logits))
    # row 0: -log softmax = 1e4; row 1: log(1 + e^-2)
    assert loss == pytest.approx((1e4 + np.log1p(np.exp(-2.0))) / 2, rel=1e-12)
    assert correct == 1
    assert np.all(np.isfinite(grad))
    np.testing.assert_allclose(grad.sum(axis=1), 0.0, atol=1e-15)


def test_weight_penalty_values():
    w = np.array([1.0, -2.0, 3.0])
    assert weight_penalty(w, l2=0.1, l1=0.0) == pytest.approx(0.05 * 14)
    assert weight_penalty(w, l2=0.0, l1=0.01) == pytest.approx(0.01 * 6)
    assert weight_penalty(w, l2=0.1, l1=0.01) == pytest.approx(0.76)
    assert weight_penalty(w, l2=0.0, l1=0.0) == 0.0


@pytest.mark.parametrize("l2, l1", [(0.3, 0.0), (0.0, 0.2), (0.3, 0.2)])
def test_penalty_gradient_matches_penalty(l2, l1):
    rng = np.random.default_rng(11)
    w = rng.uniform(0.1, 2.0, size=12) * rng.choice([-1.0, 1.0], size=12)  # |w| >= 0.1: no L1 kink
    base = rng.normal(size=12)
    grads = base.copy()
    add_penalty_grad(w, grads, l2, l1, np.empty_like(w))
    analytic = grads - base  # it adds to the existing gradient
    assert_grad_close(analytic, numeric_grad(lambda: weight_penalty(w, l2, l1), w))


def test_add_penalty_grad_does_not_touch_weights_and_l1_subgradient_at_zero_is_zero():
    w = np.array([0.0, 1.5, -0.5])
    w0 = w.copy()
    grads = np.zeros(3)
    add_penalty_grad(w, grads, 0.0, 0.7, np.empty(3))
    np.testing.assert_array_equal(w, w0)
    np.testing.assert_allclose(grads, [0.0, 0.7, -0.7])


# --- the assembled float64 MLP ------------------------------------------------------------
def _randomize_non_weights(model: MLP, rng: np.random.Generator) -> None:
    for name in model.param_names():
        if name.endswith(".gamma"):
            model.param(name)[...] = rng.uniform(0.5, 1.5, size=model.param(name).shape)
        elif not name.endswith(".W"):
            model.param(name)[...] = rng.normal(scale=0.5, size=model.param(name).shape)


@pytest.mark.parametrize("dropout", [0.0, 0.5])
@pytest.mark.parametrize("activation", ACTIVATIONS.names())
@pytest.mark.parametrize("norm", NORMS.names())
def test_mlp_gradients_match_finite_differences(norm, activation, dropout):
    _check_mlp_gradients(ModelConfig(hidden=[5, 4], activation=activation, init="glorot", norm=norm,
                                     dropout=dropout))


@pytest.mark.parametrize("dropout", [0.0, 0.5])
def test_mlp_with_input_dropout_gradients_match_finite_differences(dropout):
    model = _check_mlp_gradients(ModelConfig(hidden=[5, 4], init="glorot", dropout=dropout, input_dropout=0.4))
    assert np.any(model.input_dropout._mask == 0)


def test_input_dropout_drops_pixels_in_training_only():
    cfg = ModelConfig(hidden=[6], input_dropout=0.5)
    model = MLP(F_IN, 3, cfg, init_rng=np.random.default_rng(1), dropout_rng=np.random.default_rng(2),
                dtype=np.float64)
    x = np.random.default_rng(3).normal(size=(N, F_IN))
    model.forward(x, True)
    mask = model.input_dropout._mask
    assert set(np.unique(mask)) == {0.0, 2.0}  # dropped, or kept and scaled by 1/(1 - 0.5)
    np.testing.assert_array_equal(model.blocks[0].dense._x, x * mask)  # what the first layer saw
    plain = MLP(F_IN, 3, ModelConfig(hidden=[6]), init_rng=np.random.default_rng(1),
                dropout_rng=np.random.default_rng(2), dtype=np.float64)
    np.testing.assert_array_equal(model.forward(x, False), plain.forward(x, False))


def _check_mlp_gradients(cfg: ModelConfig) -> MLP:
    dropout = cfg.dropout
    model = MLP(F_IN, 3, cfg, init_rng=np.random.default_rng(12),
                dropout_rng=np.random.default_rng(13), dtype=np.float64)
    assert model.params.dtype == np.float64
    rng = np.random.default_rng(14)
    _randomize_non_weights(model, rng)
    x = rng.normal(size=(N, F_IN))
    y = rng.integers(0, 3, size=N)
    dropouts = [b.dropout for b in model.blocks if b.dropout is not None]
    assert len(dropouts) == (len(cfg.hidden) if dropout else 0)
    if cfg.input_dropout:
        dropouts.insert(0, model.input_dropout)  # drawn first, as in the model

    def loss() -> float:
        shared = np.random.default_rng(99)  # the layers share one stream, as in the model
        for layer in dropouts:
            layer.rng = shared
        return softmax_cross_entropy(model.forward(x, True), y)[0]

    shared = np.random.default_rng(99)
    for layer in dropouts:
        layer.rng = shared
    logits = model.forward(x, True)
    _, _, g_logits = softmax_cross_entropy(logits, y, np.empty_like(logits))
    model.grads[...] = np.nan  # backward must overwrite every entry
    model.backward(g_logits)
    analytic = model.grads.copy()
    if dropout:
        assert any(np.any(layer._mask == 0) for layer in dropouts)

    assert_grad_close(analytic, numeric_grad(loss, model.params))
    return model
