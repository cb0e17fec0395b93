"""The optimizers' kernels: each update rule in one pass over the parameters (nn/optim.py
states the formulas and keeps the NumPy reference of each). Scalars come in the arrays'
dtype, as NumPy treats Python floats beside float32 arrays (NEP 50), so a float32 model
computes in float32 here too.

Every rule's kernel also sums the squares of the gradient it steps along, segment by segment
(the trainer's per-layer gradient norms), in the same pass: taking the norm apart, by BLAS
dot products before the step, read the whole gradient from memory once more. The kernel
walks `chunks`, rows (start, end, segment) that cut each segment into pieces of CHUNK values
(`chunk_table`); each piece is updated, then its squares are summed while it is still in the
L1 cache, and the piece's sum is added to its segment's, piece after piece. Each returns the
segments' sums added in float64 (`_total`), which is not finite exactly when the gradient is
not: the trainer's divergence check, with no NumPy call after the step. Given `squares` of
size 0, a kernel sums nothing and returns 0.0. Only the piece sum may reassociate
(`_sum_squares`, so that it vectorizes): the updates stay plain IEEE arithmetic, bit for bit
what they were. Sums come out in the gradient's dtype, as NumPy's dot product of two float32
vectors does, so a norm past float32's range is inf, as it was. What it saves, measured in
the training loop (benchmarks/norms.py; the README's Performance section): 0.03-0.11 ms a
step at batch 128 on an AMD EPYC, 1-3% of an epoch.

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


CHUNK = 2048  # values per piece: p, g and two state vectors of a piece fit in a 32 KB L1


def chunk_table(segment_ends, chunk: int = CHUNK) -> np.ndarray:
    """Rows (start, end, segment) cutting [0, segment_ends[-1]) into pieces of at most `chunk`
    values, none crossing a segment's end; the segments are [0, e0), [e0, e1), ..."""
    rows, start = [], 0
    for k, end in enumerate(segment_ends):
        rows += [(lo, min(lo + chunk, end), k) for lo in range(start, end, chunk)]
        start = end
    return np.array(rows, dtype=np.int64).reshape(-1, 3)


@numba.njit(fastmath={"reassoc"}, error_model="numpy", nogil=True, cache=True)
def _sum_squares(g):
    """The sum of g^2 in g's dtype, reassociated so that it vectorizes: its order follows
    the CPU's vector width, so its last bits differ between machines (as OpenBLAS's dot
    product's did), never between runs on one. Not `inline="always"`: numba would compile
    it under the caller's flags; LLVM inlines it keeping its own."""
    s = g.dtype.type(0)
    for i in range(g.size):
        s += g[i] * g[i]
    return s


@numba.njit(inline="always")
def _tally(squares, segment, piece):
    """Add the piece's sum of squares to its segment's, unless `squares` is empty."""
    if squares.size:
        squares[segment] += _sum_squares(piece)


@numba.njit(inline="always")
def _total(squares):
    """The segments' sums added in float64, in order: non-finite exactly when one of them is."""
    total = 0.0
    for k in range(squares.size):
        total += np.float64(squares[k])
    return total


@kernel
def sum_squares(g, chunks, squares):
    """squares[k] = the sum of squares of segment k of g, summed as the rules' kernels do."""
    squares[:] = 0
    for c in range(chunks.shape[0]):
        squares[chunks[c, 2]] += _sum_squares(g[chunks[c, 0] : chunks[c, 1]])
    return _total(squares)


# Each rule loops over one piece's slices: indexing by `range(lo, hi)` with lo from an array
# made numba wrap negative indices and the loop stopped vectorizing (7x slower).
@kernel
def sgd(p, g, lr, chunks, squares):
    squares[:] = 0
    for c in range(chunks.shape[0]):
        lo, hi = chunks[c, 0], chunks[c, 1]
        pc, gc = p[lo:hi], g[lo:hi]
        for i in range(pc.size):
            pc[i] -= lr * gc[i]
        _tally(squares, chunks[c, 2], gc)
    return _total(squares)


@kernel
def momentum(p, g, v, lr, gamma, chunks, squares):
    tiny, zero = np.finfo(v.dtype).tiny, v.dtype.type(0)
    squares[:] = 0
    for c in range(chunks.shape[0]):
        lo, hi = chunks[c, 0], chunks[c, 1]
        pc, gc, vc = p[lo:hi], g[lo:hi], v[lo:hi]
        for i in range(pc.size):
            vi = _flushed(gamma * _flushed(vc[i], tiny, zero) - lr * gc[i], tiny, zero)
            vc[i] = vi
            pc[i] += vi
        _tally(squares, chunks[c, 2], gc)
    return _total(squares)


@kernel
def nesterov(p, g, v, lr, gamma, chunks, squares):
    tiny, zero = np.finfo(v.dtype).tiny, v.dtype.type(0)
    squares[:] = 0
    for c in range(chunks.shape[0]):
        lo, hi = chunks[c, 0], chunks[c, 1]
        pc, gc, vc = p[lo:hi], g[lo:hi], v[lo:hi]
        for i in range(pc.size):
            step = lr * gc[i]
            vi = _flushed(gamma * _flushed(vc[i], tiny, zero) - step, tiny, zero)
            vc[i] = vi
            pc[i] += gamma * vi - step
        _tally(squares, chunks[c, 2], gc)
    return _total(squares)


@kernel
def adagrad(p, g, G, lr, eps, chunks, squares):
    squares[:] = 0
    for c in range(chunks.shape[0]):
        lo, hi = chunks[c, 0], chunks[c, 1]
        pc, gc, Gc = p[lo:hi], g[lo:hi], G[lo:hi]
        for i in range(pc.size):
            gi = gc[i]
            Gi = Gc[i] + gi * gi
            Gc[i] = Gi
            pc[i] -= lr * gi / (math.sqrt(Gi) + eps)
        _tally(squares, chunks[c, 2], gc)
    return _total(squares)


@kernel
def rmsprop(p, g, E, lr, one_minus_rho, eps, chunks, squares):
    tiny, zero = np.finfo(E.dtype).tiny, E.dtype.type(0)
    squares[:] = 0
    for c in range(chunks.shape[0]):
        lo, hi = chunks[c, 0], chunks[c, 1]
        pc, gc, Ec = p[lo:hi], g[lo:hi], E[lo:hi]
        for i in range(pc.size):
            gi = gc[i]
            Eo = _flushed(Ec[i], tiny, zero)
            Ei = _flushed(Eo + one_minus_rho * (gi * gi - Eo), tiny, zero)
            Ec[i] = Ei
            pc[i] -= lr * gi / (math.sqrt(Ei) + eps)
        _tally(squares, chunks[c, 2], gc)
    return _total(squares)


@kernel
def adam(p, g, m, v, lr_t, one_minus_b1, one_minus_b2, eps_t, decay, n_decay, chunks, squares):
    """The bias corrections are folded into lr_t and eps_t (see optim.adam_update); the first
    `n_decay` values (the weight matrices) are first scaled by `decay` (AdamW's decoupled
    weight decay; n_decay = 0 for Adam)."""
    tiny, zero = np.finfo(m.dtype).tiny, m.dtype.type(0)
    squares[:] = 0
    for c in range(chunks.shape[0]):
        lo, hi = chunks[c, 0], chunks[c, 1]
        pc, gc, mc, vc = p[lo:hi], g[lo:hi], m[lo:hi], v[lo:hi]
        decayed = n_decay - lo
        for i in range(pc.size):
            gi = gc[i]
            mo, vo = _flushed(mc[i], tiny, zero), _flushed(vc[i], tiny, zero)
            mi = _flushed(mo + one_minus_b1 * (gi - mo), tiny, zero)
            vi = _flushed(vo + one_minus_b2 * (gi * gi - vo), tiny, zero)
            mc[i] = mi
            vc[i] = vi
            pi = pc[i] * decay if i < decayed else pc[i]
            pc[i] = pi - lr_t * mi / (math.sqrt(vi) + eps_t)
        _tally(squares, chunks[c, 2], gc)
    return _total(squares)


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
