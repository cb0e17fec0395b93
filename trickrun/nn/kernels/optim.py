"""The optimizers' kernels: each update rule in one pass over the parameters (nn/optim.py
states the formulas and keeps the NumPy reference of each). Scalars come in the arrays'
dtype, as NumPy treats Python floats beside float32 arrays (NEP 50), so a float32 model
computes in float32 here too. Sums of squares (the gradient norm) stay with the BLAS dot
product, which streams a vector faster than a kernel that accumulates in float64.

State that decays (momentum's velocity, Adam's moments, RMSProp's mean square) is stored
flushed: a subnormal value becomes 0. A moment whose gradient stays 0 (a pixel seldom lit,
a dead unit) decays into the subnormals and sticks there (0.9 times the smallest one rounds
back to it), and every step then does arithmetic on subnormals, many times slower on x86:
Adam at batch 32 spent 2.7 s of a 4.7 s epoch so. Flushing changes no parameter: a step
built from a subnormal value is far below a weight's rounding step, and a normal gradient
added to it gives the same bits as added to 0.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from . import kernel


@numba.njit(inline="always")
def _flushed(x, tiny, zero):
    return zero if abs(x) < tiny else x  # NaN compares false, and stays NaN (divergence)


@kernel
def sgd(p, g, lr):
    for i in range(p.size):
        p[i] -= lr * g[i]


@kernel
def momentum(p, g, v, lr, gamma):
    tiny, zero = np.finfo(v.dtype).tiny, v.dtype.type(0)
    for i in range(p.size):
        vi = _flushed(gamma * _flushed(v[i], tiny, zero) - lr * g[i], tiny, zero)
        v[i] = vi
        p[i] += vi


@kernel
def nesterov(p, g, v, lr, gamma):
    tiny, zero = np.finfo(v.dtype).tiny, v.dtype.type(0)
    for i in range(p.size):
        step = lr * g[i]
        vi = _flushed(gamma * _flushed(v[i], tiny, zero) - step, tiny, zero)
        v[i] = vi
        p[i] += gamma * vi - step


@kernel
def adagrad(p, g, G, lr, eps):
    for i in range(p.size):
        gi = g[i]
        Gi = G[i] + gi * gi
        G[i] = Gi
        p[i] -= lr * gi / (math.sqrt(Gi) + eps)


@kernel
def rmsprop(p, g, E, lr, one_minus_rho, eps):
    tiny, zero = np.finfo(E.dtype).tiny, E.dtype.type(0)
    for i in range(p.size):
        gi = g[i]
        Eo = _flushed(E[i], tiny, zero)
        Ei = _flushed(Eo + one_minus_rho * (gi * gi - Eo), tiny, zero)
        E[i] = Ei
        p[i] -= lr * gi / (math.sqrt(Ei) + eps)


@kernel
def adam(p, g, m, v, lr_t, one_minus_b1, one_minus_b2, eps_t, decay, n_decay):
    """The bias corrections are folded into lr_t and eps_t (see optim.adam_update); the first
    `n_decay` values (the weight matrices) are first scaled by `decay` (AdamW's decoupled
    weight decay; n_decay = 0 for Adam)."""
    tiny, zero = np.finfo(m.dtype).tiny, m.dtype.type(0)
    for i in range(p.size):
        gi = g[i]
        mo, vo = _flushed(m[i], tiny, zero), _flushed(v[i], tiny, zero)
        mi = _flushed(mo + one_minus_b1 * (gi - mo), tiny, zero)
        vi = _flushed(vo + one_minus_b2 * (gi * gi - vo), tiny, zero)
        m[i] = mi
        v[i] = vi
        pi = p[i] * decay if i < n_decay else p[i]
        p[i] = pi - lr_t * mi / (math.sqrt(vi) + eps_t)


@kernel
def add_penalty_grad(w, g, l2, l1):
    """g += l2 w + l1 sign(w), sign(0) = 0."""
    for i in range(w.size):
        wi = w[i]
        sign = (wi > 0) - (wi < 0)
        g[i] += l2 * wi + l1 * sign


@kernel
def column_norms(W, out):
    """out[j] = sqrt(sum_i W[i, j]^2), each column summed row by row (the rows are contiguous)."""
    out[:] = 0.0
    for i in range(W.shape[0]):
        for j in range(W.shape[1]):
            out[j] += W[i, j] * W[i, j]
    for j in range(W.shape[1]):
        out[j] = math.sqrt(out[j])


@kernel
def clip_values(g, limit):
    """Clip g to [-limit, limit] in place; whether any value changed. (NaN stays NaN.)"""
    changed = False
    for i in range(g.size):
        gi = g[i]
        if gi > limit:
            g[i] = limit
            changed = True
        elif gi < -limit:
            g[i] = -limit
            changed = True
    return changed
