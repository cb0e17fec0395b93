"""Each layer kernel (trickrun.nn.kernels.layers) against the NumPy it replaced: float32 at
float32 tolerance, float64 tight, odd widths and size 1, NaN propagation, and dropout's masks
identical to the NumPy implementation's for the same seed."""

from __future__ import annotations

import math

import numpy as np
import pytest

from trickrun.nn.kernels import layers as K
from trickrun.nn.layers import Dropout

SHAPES = [(1, 1), (1, 7), (5, 1), (7, 13), (32, 33)]
DTYPES = [np.float32, np.float64]


def tol(dtype):
    return dict(rtol=2e-5, atol=2e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-13)


def data(shape, dtype, seed=0, **kw):
    return np.random.default_rng(seed).normal(size=shape, **kw).astype(dtype)


# --- NumPy references (the code the kernels replaced) ----------------------------------------
def ref_activation(z, kind, slope):
    if kind == K.RELU:
        return np.maximum(z, 0)
    if kind == K.LEAKY_RELU:
        return np.maximum(z, z * z.dtype.type(slope))
    if kind == K.TANH:
        return np.tanh(z)
    return 1 / (1 + np.exp(-z))


def ref_derivative(y, kind, slope):
    return {K.RELU: lambda: (y > 0).astype(y.dtype), K.LEAKY_RELU: lambda: np.where(y > 0, 1, slope).astype(y.dtype),
            K.TANH: lambda: 1 - y * y, K.SIGMOID: lambda: y * (1 - y)}[kind]()


def ref_batchnorm(x, gamma, beta, momentum, eps, rm, rv):
    mean, var = x.mean(0), x.var(0)
    inv = 1 / np.sqrt(var + eps)
    xhat = (x - mean) * inv
    return xhat, gamma * xhat + beta, momentum * rm + (1 - momentum) * mean, momentum * rv + (1 - momentum) * var, inv


def ref_batchnorm_backward(g, xhat, gamma, inv, train):
    n = g.shape[0]
    gb, gg = g.sum(0), (g * xhat).sum(0)
    d = g * gamma
    if train:
        d = d - gb * gamma / n - xhat * (gg * gamma / n)
    return d * inv, gg, gb


def ref_layernorm(x, gamma, beta, eps):
    mu, var = x.mean(1, keepdims=True), x.var(1, keepdims=True)
    inv = 1 / np.sqrt(var + eps)
    xhat = (x - mu) * inv
    return xhat, gamma * xhat + beta, inv[:, 0]


def ref_softmax_xent(logits, labels):
    n = logits.shape[0]
    rows = np.arange(n)
    shifted = logits - logits.max(1, keepdims=True)
    total = np.exp(shifted).sum(1)
    loss = float(np.mean(np.log(total, dtype=np.float64) - shifted[rows, labels]))
    grad = np.exp(shifted) / (total[:, None] * n)
    grad[rows, labels] -= logits.dtype.type(1.0 / n)
    return loss, int(np.sum(logits.argmax(1) == labels)), grad


# --- activations ------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("slope", [0.0, 0.01])
def test_relu_forward_adds_bias(shape, dtype, slope):
    x, b = data(shape, dtype), data(shape[1:], dtype, seed=1)
    out = np.empty_like(x)
    K.relu_forward(x, b, slope, out)
    np.testing.assert_allclose(out, ref_activation(x + b, K.LEAKY_RELU if slope else K.RELU, slope), **tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_relu_forward_propagates_nan_and_maps_minus_inf_to_zero(dtype):
    x = np.array([[np.nan, -np.inf, np.inf, -1.0]], dtype)
    out = np.empty_like(x)
    K.relu_forward(x, np.zeros(4, dtype), 0.0, out)
    np.testing.assert_array_equal(out, [[np.nan, 0, np.inf, 0]])
    K.relu_forward(x, np.zeros(4, dtype), 0.01, out)
    np.testing.assert_array_equal(out, ref_activation(x, K.LEAKY_RELU, 0.01))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("kind", [K.RELU, K.LEAKY_RELU, K.TANH, K.SIGMOID])
@pytest.mark.parametrize("masked", [False, True])
def test_activation_backward_with_mask_and_bias_gradient(shape, dtype, kind, masked):
    y = ref_activation(data(shape, dtype), kind, 0.01)
    g = data(shape, dtype, seed=2)
    mask = (data(shape, dtype, seed=3) > 0).astype(dtype) * 2 if masked else np.empty((0, 0), dtype)
    dx, gb = np.empty_like(g), np.empty(shape[1], dtype)
    K.activation_backward(g, y, mask, kind, 0.01, dx, gb)
    expected = (g * mask if masked else g) * ref_derivative(y, kind, dtype(0.01))
    np.testing.assert_allclose(dx, expected, **tol(dtype))
    np.testing.assert_allclose(gb, expected.sum(0), **tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [*SHAPES, (128, 10)])
def test_add_bias_is_numpys_x_plus_b_bit_for_bit(shape, dtype):
    x, b = data(shape, dtype), data(shape[1:], dtype, seed=1)
    x[0, 0] = np.nan
    got = x.copy()
    K.add_bias(got, b)
    np.testing.assert_array_equal(got, x + b)  # NaN where x was NaN, as NumPy


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [*SHAPES, (128, 10), (513, 3)])
def test_column_sums_are_numpys_axis_0_sums_bit_for_bit(shape, dtype):
    x = data(shape, dtype, scale=1e3)
    out = np.full(shape[1], np.nan, dtype)
    K.column_sums(x, out)
    np.testing.assert_array_equal(out, np.sum(x, axis=0))
    x[-1, 0] = np.nan
    K.column_sums(x, out)
    assert math.isnan(out[0]) and np.isfinite(out[1:]).all()


def test_activation_backward_propagates_nan_and_skips_empty_sums():
    g = np.array([[np.nan, 1.0, np.inf]])
    y = np.array([[0.5, 0.0, 0.0]])  # inf * 0 (a dead unit) is NaN in NumPy too
    dx = np.empty_like(g)
    K.activation_backward(g, y, np.empty((0, 0)), K.RELU, 0.0, dx, np.empty(0))
    with np.errstate(invalid="ignore"):
        np.testing.assert_array_equal(dx, g * (y > 0))


# --- dropout ----------------------------------------------------------------------------------
def numpy_dropout(x, rate, rng):
    """HEAD's Dropout.forward before the kernels, drawing from `rng` exactly as it did:
    NumPy's raw 64-bit draws split in two, or 32-bit integers from a 32-bit generator."""
    n = x.size
    if isinstance(rng.bit_generator, np.random.PCG64):
        words = rng.bit_generator.random_raw(-(-n // 2)).view(np.uint32)[:n]
    else:
        words = rng.integers(0, 2**32, size=n, dtype=np.uint32)
    mask = np.empty(x.shape, x.dtype)
    threshold = np.uint32(min(math.ceil(rate * 2.0**32), 2**32 - 1))
    np.greater_equal(words.reshape(x.shape), threshold, out=mask)
    mask *= 1.0 / (1.0 - rate)
    return mask, x * mask


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (7, 13), (33, 65), (2, 4), (16, 130)])
@pytest.mark.parametrize("bits", [np.random.PCG64, np.random.MT19937])
def test_dropout_masks_and_outputs_identical_to_numpy_for_the_same_seed(shape, dtype, bits):
    x = data(shape, dtype)
    x.flat[0] = np.nan
    layer = Dropout(0.3, np.random.Generator(bits(5)))
    reference_rng = np.random.Generator(bits(5))
    for _ in range(3):  # the stream goes on identically, batch after batch
        out = layer.forward(x, True)
        mask, expected = numpy_dropout(x, 0.3, reference_rng)
        np.testing.assert_array_equal(layer.mask, mask)
        np.testing.assert_array_equal(out, expected)


# --- normalization ----------------------------------------------------------------------------
def _affine(m, dtype):
    return data((m,), dtype, seed=4, loc=1.0, scale=0.3), data((m,), dtype, seed=5)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(2, 1), (7, 13), (32, 33), (1, 5)])
@pytest.mark.parametrize("train", [True, False])
def test_batchnorm_forward_and_backward(shape, dtype, train):
    n, m = shape
    x, g = data(shape, dtype, loc=2.0, scale=3.0), data(shape, dtype, seed=6)
    gamma, beta = _affine(m, dtype)
    rm, rv = data((m,), dtype, seed=7), np.abs(data((m,), dtype, seed=8)) + 0.5
    rm0, rv0 = rm.copy(), rv.copy()
    mean, var = (np.empty(m, dtype), np.empty(m, dtype)) if train else (rm, rv)
    inv, xhat, out = np.empty(m, dtype), np.empty_like(x), np.empty_like(x)
    K.batchnorm_forward(x, gamma, beta, mean, var, train, 0.9, 1e-5, rm, rv, inv, xhat, out)
    if train:
        xh, y, erm, erv, einv = ref_batchnorm(x, gamma, beta, 0.9, 1e-5, rm0, rv0)
        np.testing.assert_allclose(rm, erm, **tol(dtype))
        np.testing.assert_allclose(rv, erv, **tol(dtype))
    else:
        einv = 1 / np.sqrt(rv0 + 1e-5)
        xh = (x - rm0) * einv
        y = gamma * xh + beta
        np.testing.assert_array_equal(rm, rm0)
    loose = dict(rtol=1e-3, atol=1e-4) if dtype == np.float32 and train and n == 2 else tol(dtype)
    np.testing.assert_allclose(out, y, **loose)  # n = 2: xhat = +-1 from a tiny variance
    dx, gg, gb = np.empty_like(g), np.empty(m, dtype), np.empty(m, dtype)
    K.batchnorm_backward(g, xhat, gamma, inv, train, gg, gb, dx)
    edx, egg, egb = ref_batchnorm_backward(g, xhat, gamma, inv, train)
    for got, want in ((dx, edx), (gg, egg), (gb, egb)):
        np.testing.assert_allclose(got, want, **tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 2), (7, 13), (33, 32), (5, 1)])
def test_layernorm_forward_and_backward(shape, dtype):
    n, m = shape
    x, g = data(shape, dtype, loc=-1.0, scale=2.0), data(shape, dtype, seed=6)
    gamma, beta = _affine(m, dtype)
    inv, xhat, out = np.empty(n, dtype), np.empty_like(x), np.empty_like(x)
    K.layernorm_forward(x, gamma, beta, 1e-5, inv, xhat, out)
    exh, ey, einv = ref_layernorm(x, gamma, beta, 1e-5)
    loose = dict(rtol=1e-3, atol=1e-4) if dtype == np.float32 and m <= 2 else tol(dtype)
    np.testing.assert_allclose(out, ey, **loose)
    np.testing.assert_allclose(inv, einv, **tol(dtype))
    dx, gg, gb = np.empty_like(g), np.empty(m, dtype), np.empty(m, dtype)
    K.layernorm_backward(g, xhat, gamma, inv, gg, gb, dx)
    d = g * gamma
    edx = (d - d.mean(1, keepdims=True) - xhat * (d * xhat).mean(1, keepdims=True)) * inv[:, None]
    np.testing.assert_allclose(dx, edx, **dict(tol(dtype), atol=1e-5 if dtype == np.float32 else 1e-12))
    np.testing.assert_allclose(gb, g.sum(0), **tol(dtype))
    np.testing.assert_allclose(gg, (g * xhat).sum(0), **tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_norms_propagate_nan_in_their_column_or_row(dtype):
    x = data((4, 3), dtype)
    x[1, 2] = np.nan
    m, inv, xhat, out = np.empty(3, dtype), np.empty(3, dtype), np.empty_like(x), np.empty_like(x)
    ones, zeros = np.ones(3, dtype), np.zeros(3, dtype)
    K.batchnorm_forward(x, ones, zeros, m, m.copy(), True, 0.9, 1e-5, zeros.copy(), ones.copy(), inv, xhat, out)
    assert np.all(np.isnan(out[:, 2])) and np.all(np.isfinite(out[:, :2]))
    K.layernorm_forward(x, ones, zeros, 1e-5, np.empty(4, dtype), xhat, out)
    assert np.all(np.isnan(out[1])) and np.all(np.isfinite(np.delete(out, 1, axis=0)))


# --- softmax cross-entropy --------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 1), (1, 10), (7, 3), (33, 10)])
def test_softmax_cross_entropy_loss_count_and_gradient(shape, dtype):
    logits = data(shape, dtype, scale=3.0)
    labels = np.random.default_rng(9).integers(0, shape[1], size=shape[0]).astype(np.intp)
    grad = np.empty_like(logits)
    total, correct = K.softmax_cross_entropy(logits, labels, grad, True)
    loss, ecorrect, egrad = ref_softmax_xent(logits, labels)
    assert total / shape[0] == pytest.approx(loss, rel=1e-6 if dtype == np.float32 else 1e-13, abs=1e-12)
    assert correct == ecorrect
    np.testing.assert_allclose(grad, egrad, **tol(dtype))
    assert K.softmax_cross_entropy(logits, labels, np.empty((0, 0), dtype), False) == (total, correct)


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_cross_entropy_nan_and_inf_rows_give_nan_loss_and_argmax_count(dtype):
    logits = np.array([[0.0, np.nan, 5.0], [1.0, 2.0, 0.0], [np.inf, 0.0, 0.0]], dtype)
    labels = np.array([1, 1, 0], np.intp)
    grad = np.empty_like(logits)
    total, correct = K.softmax_cross_entropy(logits, labels, grad, True)
    assert math.isnan(total)
    assert correct == int(np.sum(logits.argmax(1) == labels)) == 3  # NaN's index counts, as argmax says
    assert np.all(np.isfinite(grad[1])) and np.all(np.isnan(grad[0])) and np.all(np.isnan(grad[2]))


def test_kernels_are_deterministic_bit_for_bit():
    x, g = data((64, 37), np.float32), data((64, 37), np.float32, seed=1)
    runs = []
    for _ in range(2):
        gb, dx = np.empty(37, np.float32), np.empty_like(g)
        K.activation_backward(g, np.abs(x), np.empty((0, 0), np.float32), K.TANH, 0.0, dx, gb)
        runs.append((gb.copy(), dx.copy()))
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    np.testing.assert_array_equal(runs[0][1], runs[1][1])
