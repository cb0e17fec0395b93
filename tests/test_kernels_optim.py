"""Every optimizer's fused kernel against its NumPy reference (nn/optim.py's rules), float32
and float64, for odd sizes and size 1; NaN propagates; the same steps give the same bits;
AdamW decays the weight matrices only."""

from __future__ import annotations

import math

import numba
import numpy as np
import pytest

from trickrun.nn import optim as O
from trickrun.nn.kernels import optim as K


def reference(name: str, size: int, dtype, n_weights: int, hyper: dict):
    """A stepper built from the NumPy rules alone, with the optimizer's own state layout."""
    state = {k: np.zeros(size, dtype) for k in O.OPTIMIZERS.get(name).state_names}
    tmp = np.empty(size, dtype)
    h = {**O.OPTIMIZERS.get(name).defaults, **hyper}
    t = [0]

    def step(p, g, lr):
        t[0] += 1
        if name == "sgd":
            O.sgd_update(p, g, lr, tmp)
        elif name == "momentum":
            O.momentum_update(p, g, state["velocity"], lr, h["momentum"], tmp)
        elif name == "nesterov":
            O.nesterov_update(p, g, state["velocity"], lr, h["momentum"], tmp)
        elif name == "adagrad":
            O.adagrad_update(p, g, state["sum_sq"], lr, h["eps"], tmp)
        elif name == "rmsprop":
            O.rmsprop_update(p, g, state["mean_sq"], lr, h["rho"], h["eps"], tmp)
        elif name in ("adam", "adamw"):
            if name == "adamw" and h["weight_decay"]:
                p[:n_weights] *= 1.0 - lr * h["weight_decay"]
            O.adam_update(p, g, state["m"], state["v"], t[0], lr, h["beta1"], h["beta2"], h["eps"], tmp)
        elif name == "normalized":
            O.normalized_update(p, g, lr, tmp)
        else:  # a rule registered without a reference here must get one
            raise AssertionError(f"no NumPy reference for {name}")

    return step


def run_both(name: str, size: int, dtype, steps: int = 5, seed: int = 0):
    rng = np.random.default_rng(seed)
    p0 = rng.standard_normal(size).astype(dtype)
    n_weights = max(1, size * 2 // 3)
    hyper = {"weight_decay": 0.1} if name == "adamw" else {}
    opt = O.OPTIMIZERS.get(name)(size, dtype, n_weights, **hyper)
    ref = reference(name, size, dtype, n_weights, hyper)
    a, b = p0.copy(), p0.copy()
    for _ in range(steps):
        g = rng.standard_normal(size).astype(dtype)
        opt.step(a, g, 0.01)
        ref(b, g, 0.01)
    return a, b, opt


@pytest.mark.parametrize("name", O.OPTIMIZERS.names())
@pytest.mark.parametrize("size", [1, 7, 100_003])
@pytest.mark.parametrize(("dtype", "rtol", "atol"), [(np.float32, 2e-5, 2e-6), (np.float64, 1e-12, 1e-13)])
def test_each_kernel_matches_its_numpy_rule(name, size, dtype, rtol, atol):
    kernel_result, numpy_result, _ = run_both(name, size, dtype)
    assert kernel_result.dtype == dtype
    np.testing.assert_allclose(kernel_result, numpy_result, rtol=rtol, atol=atol)


@pytest.mark.parametrize("name", O.OPTIMIZERS.names())
def test_a_nan_gradient_gives_nan_parameters_as_numpy_does(name):
    opt = O.OPTIMIZERS.get(name)(4, np.float32)
    p = np.ones(4, np.float32)
    g = np.array([0.5, np.nan, 1.0, np.inf], np.float32)
    opt.step(p, g, 0.1)
    ref = reference(name, 4, np.float32, 4, {})
    q = np.ones(4, np.float32)
    with np.errstate(invalid="ignore"):
        ref(q, g, 0.1)
    np.testing.assert_array_equal(np.isfinite(p), np.isfinite(q))


@pytest.mark.parametrize("name", O.OPTIMIZERS.names())
def test_the_same_steps_give_the_same_bits(name):
    first, second = run_both(name, 100_003, np.float32, seed=3)[0], run_both(name, 100_003, np.float32, seed=3)[0]
    np.testing.assert_array_equal(first, second)


@pytest.mark.parametrize("name", O.OPTIMIZERS.names())
@pytest.mark.parametrize("ends", [[1], [7], [0, 5, 5, 9], [100_003], [3 * K.CHUNK, 3 * K.CHUNK + 1, 100_003],
                                  [K.CHUNK - 1, K.CHUNK + 1, 2 * K.CHUNK + 5]])
@pytest.mark.parametrize(("dtype", "rtol"), [(np.float32, 2e-6), (np.float64, 1e-13)])
def test_each_step_sums_the_squares_of_its_gradient_segment_by_segment(name, ends, dtype, rtol):
    # The trainer's gradient norms come from here: every segment (empty ones, pieces that
    # end at and across CHUNK), against float64 sums of the gradient the step was given.
    size = ends[-1]
    rng = np.random.default_rng(5)
    opt = O.OPTIMIZERS.get(name)(size, dtype, size // 2, segment_ends=ends)
    plain = O.OPTIMIZERS.get(name)(size, dtype, size // 2)  # sums nothing
    assert plain.squares.size == 0
    p = rng.standard_normal(size).astype(dtype)
    q = p.copy()
    for scale in (1.0, 1e-3):
        g = (rng.standard_normal(size) * scale).astype(dtype)
        g64 = g.astype(np.float64)
        total = opt.step(p, g, 0.01)
        assert plain.step(q, g, 0.01) == 0.0
        np.testing.assert_array_equal(p, q)  # summing changes no update
        want = [np.sum(g64[a:b] ** 2) for a, b in zip([0, *ends], ends)]
        assert opt.squares.dtype == dtype
        np.testing.assert_allclose(opt.squares, want, rtol=rtol, atol=0)
        # the step returns the segments' sums added in float64, in order
        assert type(total) is float and total == sum(float(s) for s in opt.squares)
        standalone = np.empty(len(ends), dtype)
        K.sum_squares(g, K.chunk_table(ends), standalone)
        np.testing.assert_allclose(standalone, want, rtol=rtol, atol=0)


@pytest.mark.parametrize("name", O.OPTIMIZERS.names())
def test_a_step_given_its_own_squares_fills_them_and_leaves_the_optimizers_alone(name):
    # the trainer hands each batch's step a row of the epoch's table
    ends = [5, 12, 20]
    rng = np.random.default_rng(8)
    a = O.OPTIMIZERS.get(name)(20, np.float32, 10, segment_ends=ends)
    b = O.OPTIMIZERS.get(name)(20, np.float32, 10, segment_ends=ends)
    pa = rng.standard_normal(20).astype(np.float32)
    pb = pa.copy()
    rows = np.full((2, 3), -1.0, np.float32)
    for k in range(2):
        g = rng.standard_normal(20).astype(np.float32)
        a.squares[:] = -1.0
        total = a.step(pa, g, 0.01, rows[k])
        assert total == b.step(pb, g, 0.01)
        np.testing.assert_array_equal(rows[k], b.squares)  # the same sums, bit for bit
        assert a.squares.tolist() == [-1.0] * 3
    np.testing.assert_array_equal(pa, pb)
    assert rows[0].tolist() != rows[1].tolist()


def test_the_pieces_cut_every_segment_at_chunk_boundaries_and_nowhere_else():
    c = K.CHUNK
    table = K.chunk_table([0, 2 * c + 3, 2 * c + 3, 3 * c + 3])
    assert table.tolist() == [[0, c, 1], [c, 2 * c, 1], [2 * c, 2 * c + 3, 1], [2 * c + 3, 3 * c + 3, 3]]
    with pytest.raises(ValueError, match="do not cut a vector of 10 values"):
        O.OPTIMIZERS.get("sgd")(10, np.float32, segment_ends=[4, 3, 10])
    with pytest.raises(ValueError, match="do not cut"):
        O.OPTIMIZERS.get("sgd")(10, np.float32, segment_ends=[4, 9])


@pytest.mark.parametrize("name", O.OPTIMIZERS.names())
def test_squares_of_a_non_finite_gradient_are_not_finite(name):
    # how the trainer sees a gradient gone wrong, normalized's no-step case included
    opt = O.OPTIMIZERS.get(name)(9, np.float32, segment_ends=[3, 6, 9])
    g = np.ones(9, np.float32)
    g[4] = np.nan
    with np.errstate(invalid="ignore"):
        total = opt.step(np.ones(9, np.float32), g, 0.1)
    assert np.isfinite(opt.squares).tolist() == [True, False, True] and math.isnan(total)
    g[4], g[7] = 1.0, np.float32(2e19)  # finite, but its square is past float32's range
    total = opt.step(np.ones(9, np.float32), g, 0.1)
    assert np.isfinite(opt.squares).tolist() == [True, True, False] and total == math.inf
    g[7] = 2.0
    assert opt.step(np.ones(9, np.float32), g, 0.1) == 12.0  # 9 ones and a 2: 8 + 4


def test_adamw_decays_the_weight_matrices_only():
    size, n_weights = 6, 4
    opt = O.OPTIMIZERS.get("adamw")(size, np.float64, n_weights, weight_decay=0.5)
    p = np.ones(size)
    opt.step(p, np.zeros(size), 0.1)  # a zero gradient: only the decay moves anything
    np.testing.assert_allclose(p, [0.95] * n_weights + [1.0] * (size - n_weights), rtol=0, atol=1e-15)


def test_penalty_and_column_norm_kernels_match_numpy():
    rng = np.random.default_rng(1)
    w = rng.standard_normal(1001).astype(np.float32)
    w[::7] = 0.0
    g = rng.standard_normal(1001).astype(np.float32)
    expected = g + np.float32(0.01) * w + np.float32(0.001) * np.sign(w)
    K.add_penalty_grad(w, g, np.float32(0.01), np.float32(0.001))
    np.testing.assert_allclose(g, expected, rtol=1e-6, atol=1e-7)
    W = rng.standard_normal((13, 5)).astype(np.float32)
    out = np.empty(5, np.float32)
    K.column_norms(W, out)
    np.testing.assert_allclose(out, np.sqrt((W.astype(np.float64) ** 2).sum(axis=0)), rtol=1e-6)
    assert math.isfinite(float(out.sum()))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_clipping_by_value_matches_numpy_and_says_whether_it_clipped(dtype):
    g = np.array([0.5, -3.0, np.nan, 2.5, -0.1], dtype)
    expected = np.clip(g, -1.0, 1.0)
    assert K.clip_values(g, dtype(1.0)) is True
    np.testing.assert_array_equal(g, expected)
    assert K.clip_values(g, dtype(1.0)) is False  # nothing left to clip


def test_a_kernel_compiled_on_first_use_is_announced_once_and_a_cached_one_is_not():
    from trickrun.nn.kernels import COMPILING, compile_notice

    def fresh(x):  # a kernel of trickrun's that nothing has compiled yet
        return x + 1

    fresh.__module__ = "trickrun.nn.kernels.optim"
    said: list[str] = []
    with compile_notice(said.append):
        jitted = numba.njit(fresh)
        jitted(1)
        jitted(1.5)  # a second compile: still one notice
        K.sgd(np.ones(3, np.float32), np.ones(3, np.float32), np.float32(0.1), K.chunk_table([3]),
              np.zeros(1, np.float32))  # loaded, not compiled
    assert said == [COMPILING]

    def elsewhere(x):
        return x - 1

    with compile_notice(said.append):
        numba.njit(elsewhere)(1)  # someone else's function: not ours to announce
    assert said == [COMPILING]


DECAYING = {"momentum": ("velocity",), "nesterov": ("velocity",), "rmsprop": ("mean_sq",), "adam": ("m", "v")}


def unflushed(name: str, p, g, state: dict, lr, t: int, h: dict) -> None:
    """The kernel's own arithmetic, operation for operation, in NumPy and without the flush."""
    c = p.dtype.type
    if name in ("momentum", "nesterov"):
        v = state["velocity"]
        step = c(lr) * g
        v[...] = c(h["momentum"]) * v - step
        p += v if name == "momentum" else c(h["momentum"]) * v - step
    elif name == "rmsprop":
        E = state["mean_sq"]
        E[...] = E + c(1.0 - h["rho"]) * (g * g - E)
        p -= c(lr) * g / (np.sqrt(E) + c(h["eps"]))
    else:
        m, v = state["m"], state["v"]
        bc1, bc2 = 1.0 - h["beta1"] ** t, 1.0 - h["beta2"] ** t
        lr_t, eps_t = lr * math.sqrt(bc2) / bc1, h["eps"] * math.sqrt(bc2)
        m[...] = m + c(1.0 - h["beta1"]) * (g - m)
        v[...] = v + c(1.0 - h["beta2"]) * (g * g - v)
        p[...] = p - c(lr_t) * m / (np.sqrt(v) + c(eps_t))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(DECAYING))
def test_state_that_decays_into_the_subnormals_is_stored_as_zero_and_no_parameter_changes(name, dtype):
    """A gradient that stays 0 decays the state towards 0, where it would stick at a subnormal
    (0.9 times the smallest one rounds back to it) and slow every later step: it is stored as
    0 instead, and the parameters take the same bits as without the flush."""
    size, tiny = 64, np.finfo(dtype).tiny
    opt = O.OPTIMIZERS.get(name)(size, dtype, size // 2)
    h = O.OPTIMIZERS.get(name).defaults
    state = {k: np.zeros(size, dtype) for k in opt.state}
    rng = np.random.default_rng(1)
    a = rng.standard_normal(size).astype(dtype)
    b = a.copy()
    g = (rng.standard_normal(size) * 1e-3).astype(dtype)
    stuck = False
    for step in range(1, 8001):  # a gradient for 5 steps, then none: the state decays all the way
        grad = g if step <= 5 else np.zeros_like(g)
        opt.step(a, grad, 0.01)
        with np.errstate(under="ignore"):
            unflushed(name, b, grad, state, 0.01, step, h)
        for key in DECAYING[name]:
            assert not np.any((opt.state[key] != 0) & (np.abs(opt.state[key]) < tiny)), (step, key)
            stuck |= bool(np.any((state[key] != 0) & (np.abs(state[key]) < tiny)))
    assert stuck  # without the flush the state did reach the subnormals
    np.testing.assert_array_equal(a, b)
