"""The layers' kernels: bias + activation, activation backward (with dropout's mask and the
bias gradient), a bias gradient alone (column sums), dropout's mask, batch and layer norm
forward and backward, and softmax cross-entropy. The NumPy they replace stays in nn/layers.py
and nn/losses.py docstrings and in tests/test_kernels_layers.py as the reference.

Every kernel takes 2-D (batch, features) arrays of one float dtype (float32 or float64).
Column sums over the batch (bias, gamma and beta gradients, batch statistics) add the rows
in order, one row after another, exactly as NumPy's axis-0 reductions do: the same bits
every run whatever the thread count. Constants are made in the arrays' dtype
(`dtype.type(...)`) so float32 arithmetic stays float32, as in NumPy.
"""

from __future__ import annotations

import numpy as np

from . import kernel

# Activation codes (nn.layers' Activation.KIND): one backward kernel for all four keeps the
# compile count down.
RELU, LEAKY_RELU, TANH, SIGMOID = 0, 1, 2, 3


@kernel
def relu_forward(x, bias, slope, out):
    """out = leaky_relu(x + bias) with `slope` (0: ReLU), bias one value per column (zeros
    where there is none). Tanh and sigmoid stay in NumPy: without SVML numba calls libm's
    scalar tanh/exp, 2.5x (sigmoid) to 25x (tanh) slower than NumPy's SIMD loops."""
    n, m = x.shape
    zero, s = out.dtype.type(0), out.dtype.type(slope)
    for i in range(n):
        if s == zero:  # not v * 0, which makes -inf NaN
            for j in range(m):
                v = x[i, j] + bias[j]
                out[i, j] = zero if v <= zero else v  # NaN fails `<=`: it passes through
        else:
            for j in range(m):
                v = x[i, j] + bias[j]
                out[i, j] = v * s if v <= zero else v


@kernel
def activation_backward(grad, y, mask, kind, slope, dx, gbias):
    """dx = (grad * mask) * f'(y), f' from the cached output y; `mask` is dropout's (an empty
    array: none). When `gbias` is not empty it receives the column sums of dx (the bias
    gradient of a Dense whose bias the activation added)."""
    n, m = grad.shape
    zero, one, s = dx.dtype.type(0), dx.dtype.type(1), dx.dtype.type(slope)
    masked, sums = mask.shape[0] > 0, gbias.shape[0] > 0
    if sums:
        gbias[:] = zero
    for i in range(n):
        for j in range(m):
            g = grad[i, j] * mask[i, j] if masked else grad[i, j]
            v = y[i, j]
            if kind == RELU:
                d = g * (one if v > zero else zero)  # 0 * NaN stays NaN, as in NumPy
            elif kind == LEAKY_RELU:
                d = g if v > zero else g * s
            elif kind == TANH:
                d = (one - v * v) * g
            else:
                d = (one - v) * v * g
            dx[i, j] = d
            if sums:
                gbias[j] += d


@kernel
def add_bias(x, bias):
    """x[i, j] += bias[j] in place: a Dense's bias where no activation adds it (x + b in NumPy)."""
    n, m = x.shape
    for i in range(n):
        for j in range(m):
            x[i, j] += bias[j]


@kernel
def column_sums(x, out):
    """out[j] = the sum of column j of x, the rows added in order: np.sum(x, axis=0) bit for
    bit (a Dense's bias gradient where no activation fills it, as the output layer's), a
    fraction of NumPy's reduction overhead on a (batch, 10) array."""
    n, m = x.shape
    out[:] = out.dtype.type(0)
    for i in range(n):
        for j in range(m):
            out[j] += x[i, j]


@kernel
def dropout_forward(x, words, threshold, scale, mask, out):
    """mask = scale where the word is >= threshold else 0 (the unit is kept), out = x * mask."""
    n, m = x.shape
    zero, keep = mask.dtype.type(0), mask.dtype.type(scale)
    for i in range(n):
        for j in range(m):
            k = keep if words[i, j] >= threshold else zero
            mask[i, j] = k
            out[i, j] = x[i, j] * k  # a multiply, not a select: NaN * 0 stays NaN


@kernel
def batchnorm_forward(x, gamma, beta, mean, var, train, momentum, eps,
                      running_mean, running_var, inv_std, xhat, out):
    """Training: batch mean and biased variance into `mean`/`var` (summed row by row, divided
    in float64 as NumPy's mean does), the running statistics updated; evaluation: `mean`/`var`
    are the running statistics. Then xhat = (x - mean) * inv_std, out = gamma * xhat + beta."""
    n, m = x.shape
    t = out.dtype.type
    if train:
        mean[:] = t(0)
        for i in range(n):
            for j in range(m):
                mean[j] += x[i, j]
        for j in range(m):
            mean[j] = mean[j] / n
    for i in range(n):
        for j in range(m):
            xhat[i, j] = x[i, j] - mean[j]
    if train:
        var[:] = t(0)
        for i in range(n):
            for j in range(m):
                var[j] += xhat[i, j] * xhat[i, j]
        mo, rest = t(momentum), t(1 - momentum)
        for j in range(m):
            var[j] = var[j] / n
            running_mean[j] = running_mean[j] * mo + rest * mean[j]
            running_var[j] = running_var[j] * mo + rest * var[j]
    for j in range(m):
        inv_std[j] = t(1) / np.sqrt(var[j] + t(eps))
    for i in range(n):
        for j in range(m):
            h = xhat[i, j] * inv_std[j]
            xhat[i, j] = h
            out[i, j] = h * gamma[j] + beta[j]


@kernel
def batchnorm_backward(grad, xhat, gamma, inv_std, train, g_gamma, g_beta, dx):
    """g_beta = sum g, g_gamma = sum g xhat (row by row); dx = g gamma inv_std, less in
    training (g_beta gamma + xhat g_gamma gamma) / N inside the parentheses."""
    n, m = grad.shape
    t = dx.dtype.type
    nf = t(n)
    g_beta[:] = t(0)
    g_gamma[:] = t(0)
    for i in range(n):
        for j in range(m):
            g_beta[j] += grad[i, j]
            g_gamma[j] += grad[i, j] * xhat[i, j]
    for i in range(n):
        for j in range(m):
            d = grad[i, j] * gamma[j]
            if train:
                d = d - g_beta[j] * gamma[j] / nf - xhat[i, j] * (g_gamma[j] * gamma[j] / nf)
            dx[i, j] = d * inv_std[j]


@kernel
def layernorm_forward(x, gamma, beta, eps, inv_std, xhat, out):
    """Per row: mean and biased variance over the features, xhat = (x - mean) * inv_std,
    out = gamma * xhat + beta; inv_std kept per row for backward."""
    n, m = x.shape
    t = out.dtype.type
    mf = t(m)
    for i in range(n):
        total = t(0)
        for j in range(m):
            total += x[i, j]
        mu = total / mf
        sq = t(0)
        for j in range(m):
            c = x[i, j] - mu
            xhat[i, j] = c
            sq += c * c
        r = t(1) / np.sqrt(sq / mf + t(eps))
        inv_std[i] = r
        for j in range(m):
            h = xhat[i, j] * r
            xhat[i, j] = h
            out[i, j] = h * gamma[j] + beta[j]


@kernel
def layernorm_backward(grad, xhat, gamma, inv_std, g_gamma, g_beta, dx):
    """g_beta, g_gamma: column sums (row by row); per row, with dxhat = g gamma:
    dx = (dxhat - mean(dxhat) - xhat mean(dxhat xhat)) * inv_std."""
    n, m = grad.shape
    t = dx.dtype.type
    mf = t(m)
    g_beta[:] = t(0)
    g_gamma[:] = t(0)
    for i in range(n):
        s1 = t(0)
        s2 = t(0)
        for j in range(m):
            g = grad[i, j]
            g_beta[j] += g
            g_gamma[j] += g * xhat[i, j]
            d = g * gamma[j]
            dx[i, j] = d
            s1 += d
            s2 += d * xhat[i, j]
        m1, m2 = s1 / mf, s2 / mf
        for j in range(m):
            dx[i, j] = (dx[i, j] - (m1 + xhat[i, j] * m2)) * inv_std[i]


@kernel
def softmax_cross_entropy(logits, labels, grad, want_grad):
    """(sum over rows of -log softmax(logits)[label] in float64, number of rows whose first
    maximum is the label); with `want_grad`, grad = (softmax - onehot) / N. The row maximum is
    subtracted before exp; a NaN row's maximum is its first NaN, as NumPy's argmax says."""
    n, k = logits.shape
    t = logits.dtype.type
    scale = t(1.0 / n)
    loss = 0.0
    correct = 0
    for i in range(n):
        best, top = 0, logits[i, 0]
        for c in range(1, k):
            v = logits[i, c]
            if top != top:
                break
            if v > top or v != v:
                best, top = c, v
        label = labels[i]
        correct += best == label
        total = t(0)
        if want_grad:  # the exponentials wait in grad's row for the sum they are divided by
            for c in range(k):
                e = np.exp(logits[i, c] - top)
                grad[i, c] = e
                total += e
            denom = total * t(n)
            for c in range(k):
                grad[i, c] = grad[i, c] / denom
            grad[i, label] -= scale
        else:
            for c in range(k):
                total += np.exp(logits[i, c] - top)
        loss += np.log(np.float64(total)) - np.float64(logits[i, label] - top)
    return loss, correct
