"""The optimizers' kernels: each update rule in one pass over the parameters (nn/optim.py
states the formulas and keeps the NumPy reference of each). Scalars come in the arrays'
dtype, as NumPy treats Python floats beside float32 arrays (NEP 50), so a float32 model
computes in float32 here too. Sums of squares (the gradient norm) stay with the BLAS dot
product, which streams a vector faster than a kernel that accumulates in float64.
"""

from __future__ import annotations

import math

from . import kernel


@kernel
def sgd(p, g, lr):
    for i in range(p.size):
        p[i] -= lr * g[i]


@kernel
def momentum(p, g, v, lr, gamma):
    for i in range(p.size):
        vi = gamma * v[i] - lr * g[i]
        v[i] = vi
        p[i] += vi


@kernel
def nesterov(p, g, v, lr, gamma):
    for i in range(p.size):
        step = lr * g[i]
        vi = gamma * v[i] - step
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
    for i in range(p.size):
        gi = g[i]
        Ei = E[i] + one_minus_rho * (gi * gi - E[i])
        E[i] = Ei
        p[i] -= lr * gi / (math.sqrt(Ei) + eps)


@kernel
def adam(p, g, m, v, lr_t, one_minus_b1, one_minus_b2, eps_t, decay, n_decay):
    """The bias corrections are folded into lr_t and eps_t (see optim.adam_update); the first
    `n_decay` values (the weight matrices) are first scaled by `decay` (AdamW's decoupled
    weight decay; n_decay = 0 for Adam)."""
    for i in range(p.size):
        gi = g[i]
        mi = m[i] + one_minus_b1 * (gi - m[i])
        vi = v[i] + one_minus_b2 * (gi * gi - v[i])
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
