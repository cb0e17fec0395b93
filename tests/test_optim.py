"""Each optimizer's first steps against an independent float64 implementation of the rule in
optim.py's docstring, literal hand-computed steps, state round trips and clipping."""

from __future__ import annotations

import math

import numpy as np
import pytest

from trickrun.config import OptimizerConfig
from trickrun.nn.optim import OPTIMIZERS, clip_gradients, make_optimizer

SIZE, N_WEIGHTS = 6, 4  # the last two entries play biases: adamw must not decay them
HP = dict(lr=0.1, momentum=0.8, rho=0.7, beta1=0.8, beta2=0.9, eps=1e-3, weight_decay=0.1)
LRS = (0.1, 0.06, 0.08)  # lr is read at every step (a schedule changes it)

W0 = np.array([0.5, -1.2, 2.0, 0.3, -0.7, 1.1])
GRADS = (
    np.array([0.4, -0.3, 1.5, -2.0, 0.05, 0.9]),
    np.array([-0.2, 0.6, 1.1, -1.0, 0.3, -0.4]),
    np.array([0.7, 0.1, -0.8, 0.5, -0.6, 1.3]),
)


# --- reference rules: plain loops over Python floats, one entry at a time --------------------
def ref_sgd(w, grads, lrs, hp, n_weights):
    out = []
    for g, lr in zip(grads, lrs):
        w = [wi - lr * gi for wi, gi in zip(w, g)]
        out.append(w)
    return out


def ref_momentum(w, grads, lrs, hp, n_weights, nesterov=False):
    gamma, v, out = hp["momentum"], [0.0] * len(w), []
    for g, lr in zip(grads, lrs):
        v = [gamma * vi - lr * gi for vi, gi in zip(v, g)]
        if nesterov:
            w = [wi + gamma * vi - lr * gi for wi, vi, gi in zip(w, v, g)]
        else:
            w = [wi + vi for wi, vi in zip(w, v)]
        out.append(w)
    return out


def ref_nesterov(w, grads, lrs, hp, n_weights):
    return ref_momentum(w, grads, lrs, hp, n_weights, nesterov=True)


def ref_adagrad(w, grads, lrs, hp, n_weights):
    eps, G, out = hp["eps"], [0.0] * len(w), []
    for g, lr in zip(grads, lrs):
        G = [Gi + gi * gi for Gi, gi in zip(G, g)]
        w = [wi - lr * gi / (math.sqrt(Gi) + eps) for wi, gi, Gi in zip(w, g, G)]
        out.append(w)
    return out


def ref_rmsprop(w, grads, lrs, hp, n_weights):
    rho, eps, E, out = hp["rho"], hp["eps"], [0.0] * len(w), []
    for g, lr in zip(grads, lrs):
        E = [rho * Ei + (1 - rho) * gi * gi for Ei, gi in zip(E, g)]
        w = [wi - lr * gi / (math.sqrt(Ei) + eps) for wi, gi, Ei in zip(w, g, E)]
        out.append(w)
    return out


def ref_adam(w, grads, lrs, hp, n_weights, decay=0.0):
    b1, b2, eps = hp["beta1"], hp["beta2"], hp["eps"]
    m, v, out = [0.0] * len(w), [0.0] * len(w), []
    for t, (g, lr) in enumerate(zip(grads, lrs), start=1):
        w = [wi * (1 - lr * decay) if i < n_weights else wi for i, wi in enumerate(w)]
        m = [b1 * mi + (1 - b1) * gi for mi, gi in zip(m, g)]
        v = [b2 * vi + (1 - b2) * gi * gi for vi, gi in zip(v, g)]
        w = [wi - lr * (mi / (1 - b1**t)) / (math.sqrt(vi / (1 - b2**t)) + eps)
             for wi, mi, vi in zip(w, m, v)]
        out.append(w)
    return out


def ref_adamw(w, grads, lrs, hp, n_weights):
    return ref_adam(w, grads, lrs, hp, n_weights, decay=hp["weight_decay"])


def ref_normalized(w, grads, lrs, hp, n_weights):
    out = []
    for g, lr in zip(grads, lrs):
        norm = math.sqrt(sum(gi * gi for gi in g))
        w = [wi - lr * gi / norm for wi, gi in zip(w, g)]
        out.append(w)
    return out


REFERENCE = {"sgd": ref_sgd, "momentum": ref_momentum, "nesterov": ref_nesterov, "adagrad": ref_adagrad,
             "rmsprop": ref_rmsprop, "adam": ref_adam, "adamw": ref_adamw, "normalized": ref_normalized}


def build(name: str, dtype=np.float64, size: int = SIZE, n_weights: int = N_WEIGHTS, **hp):
    cfg = OptimizerConfig(name=name, **{**HP, "weight_decay": HP["weight_decay"] if name == "adamw" else 0.0, **hp})
    return make_optimizer(cfg, size, dtype, n_weights)


@pytest.mark.parametrize("name", OPTIMIZERS.names())
def test_first_three_steps_match_the_documented_rule(name):
    assert name in REFERENCE, f"write a reference implementation for the new optimizer {name!r}"
    expected = REFERENCE[name](list(W0), [list(g) for g in GRADS], LRS, HP, N_WEIGHTS)
    opt = build(name)
    p = W0.copy()
    for step, (g, lr) in enumerate(zip(GRADS, LRS)):
        g_before = g.copy()
        opt.step(p, g, lr)
        np.testing.assert_array_equal(g, g_before)  # the gradient is not modified
        np.testing.assert_allclose(p, expected[step], rtol=1e-12, atol=1e-14, err_msg=f"step {step + 1}")
    assert opt.t == 3
    assert not np.allclose(p, W0)


@pytest.mark.parametrize("name", OPTIMIZERS.names())
def test_float32_steps_follow_the_float64_rule(name):
    expected = REFERENCE[name](list(W0), [list(g) for g in GRADS], LRS, HP, N_WEIGHTS)[-1]
    opt = build(name, dtype=np.float32)
    p = W0.astype(np.float32)
    for g, lr in zip(GRADS, LRS):
        opt.step(p, g.astype(np.float32), lr)
    assert p.dtype == np.float32
    assert all(s.dtype == np.float32 for s in opt.state.values())
    np.testing.assert_allclose(p, expected, rtol=1e-5, atol=1e-6)


def test_adamw_decays_only_the_weight_matrices():
    """With a zero gradient Adam's step is 0, so only the decoupled decay moves p."""
    opt = build("adamw")
    p = W0.copy()
    opt.step(p, np.zeros(SIZE), 0.1)
    np.testing.assert_allclose(p[:N_WEIGHTS], W0[:N_WEIGHTS] * (1 - 0.1 * 0.1), rtol=1e-15)
    np.testing.assert_array_equal(p[N_WEIGHTS:], W0[N_WEIGHTS:])


def test_momentum_by_hand():
    # v1 = -0.1 * [0.5, 1] = [-0.05, -0.1];                 w1 = [0.95, -2.1]
    # v2 = 0.9 * v1 - 0.1 * [1, -1] = [-0.145, 0.01];       w2 = [0.805, -2.09]
    opt = OPTIMIZERS.get("momentum")(2, np.float64, momentum=0.9)
    w = np.array([1.0, -2.0])
    opt.step(w, np.array([0.5, 1.0]), 0.1)
    np.testing.assert_allclose(w, [0.95, -2.1], rtol=1e-14)
    np.testing.assert_allclose(opt.state["velocity"], [-0.05, -0.1], rtol=1e-14)
    opt.step(w, np.array([1.0, -1.0]), 0.1)
    np.testing.assert_allclose(opt.state["velocity"], [-0.145, 0.01], rtol=1e-13)
    np.testing.assert_allclose(w, [0.805, -2.09], rtol=1e-14)


def test_nesterov_by_hand():
    # v1 = [-0.05, -0.1]; w1 = w0 + 0.9 v1 - 0.1 g = [1 - 0.045 - 0.05, -2 - 0.09 - 0.1]
    opt = OPTIMIZERS.get("nesterov")(2, np.float64, momentum=0.9)
    w = np.array([1.0, -2.0])
    opt.step(w, np.array([0.5, 1.0]), 0.1)
    np.testing.assert_allclose(w, [0.905, -2.19], rtol=1e-14)


def test_adam_first_step_is_lr_times_sign():
    # bias correction makes m_hat = g and v_hat = g^2 on step 1: w -= lr g / (|g| + eps)
    opt = OPTIMIZERS.get("adam")(2, np.float64, beta1=0.9, beta2=0.999, eps=1e-8)
    w = np.array([1.0, -2.0])
    opt.step(w, np.array([0.5, -4.0]), 0.1)
    np.testing.assert_allclose(w, [0.9, -1.9], rtol=1e-7)


def test_adagrad_by_hand():
    # G = 4, w = 1 - 0.5 * 2 / sqrt(4) = 0.5; then G = 4 + 1 = 5, w = 0.5 - 0.5 * 1 / sqrt(5)
    opt = OPTIMIZERS.get("adagrad")(1, np.float64, eps=0.0)
    w = np.array([1.0])
    opt.step(w, np.array([2.0]), 0.5)
    np.testing.assert_allclose(w, [0.5], rtol=1e-15)
    opt.step(w, np.array([1.0]), 0.5)
    np.testing.assert_allclose(w, [0.5 - 0.5 / math.sqrt(5.0)], rtol=1e-14)


def test_normalized_by_hand_and_not_adagrad():
    # ||g|| = ||(3, 4)|| = 5: w = (1, -2) - 0.5 (3, 4) / 5 = (0.7, -2.4); then g = (0, 0.01),
    # a tiny gradient, still gives a step of length 0.5: w = (0.7, -2.9).
    opt = OPTIMIZERS.get("normalized")(2, np.float64)
    w = np.array([1.0, -2.0])
    opt.step(w, np.array([3.0, 4.0]), 0.5)
    np.testing.assert_allclose(w, [0.7, -2.4], rtol=1e-15)
    opt.step(w, np.array([0.0, 0.01]), 0.5)
    np.testing.assert_allclose(w, [0.7, -2.9], rtol=1e-15)
    # Adagrad's first step from the same point moves each coordinate by lr: (0.5, -2.5)
    adagrad, w_ada = OPTIMIZERS.get("adagrad")(2, np.float64, eps=0.0), np.array([1.0, -2.0])
    adagrad.step(w_ada, np.array([3.0, 4.0]), 0.5)
    np.testing.assert_allclose(w_ada, [0.5, -2.5], rtol=1e-15)


def test_normalized_takes_no_step_on_a_zero_gradient():
    opt = OPTIMIZERS.get("normalized")(3, np.float32)
    w = np.array([1.0, -2.0, 0.5], np.float32)
    opt.step(w, np.zeros(3, np.float32), 0.1)
    np.testing.assert_array_equal(w, [1.0, -2.0, 0.5])


def test_normalized_steps_have_length_lr_over_all_parameters():
    rng = np.random.default_rng(3)
    opt = OPTIMIZERS.get("normalized")(50, np.float64, n_weights=30)
    w = rng.normal(size=50)
    for scale in (1e-4, 1.0, 1e4):
        before = w.copy()
        opt.step(w, rng.normal(scale=scale, size=50), 0.03)
        assert np.linalg.norm(w - before) == pytest.approx(0.03, rel=1e-12)


def test_normalized_default_learning_rate_reaches_the_config():
    from trickrun.config import load_config
    from trickrun.nn.optim import Normalized

    assert Normalized.default_lr == 0.1 and Normalized.defaults == {}
    assert load_config({"optimizer": {"name": "normalized"}}).optimizer.lr == 0.1


@pytest.mark.parametrize("name", OPTIMIZERS.names())
def test_state_dict_round_trip_continues_identically(name):
    rng = np.random.default_rng(0)
    grads = [rng.normal(size=SIZE) for _ in range(5)]
    whole, p_whole = build(name), W0.copy()
    for g in grads:
        whole.step(p_whole, g, 0.05)

    first, p = build(name), W0.copy()
    for g in grads[:2]:
        first.step(p, g, 0.05)
    saved = first.state_dict()
    first.step(p.copy(), grads[2], 0.05)  # stepping on must not change what was saved
    resumed = build(name)
    resumed.load_state_dict(saved)
    assert resumed.t == 2
    for g in grads[2:]:
        resumed.step(p, g, 0.05)
    np.testing.assert_array_equal(p, p_whole)
    for key, value in whole.state.items():
        np.testing.assert_array_equal(resumed.state[key], value)


EXPECTED_CONFIG = {
    "sgd": {},
    "momentum": {"momentum": 0.8},
    "nesterov": {"momentum": 0.8},
    "adagrad": {"eps": 1e-3},
    "rmsprop": {"rho": 0.7, "eps": 1e-3},
    "adam": {"beta1": 0.8, "beta2": 0.9, "eps": 1e-3},
    "adamw": {"beta1": 0.8, "beta2": 0.9, "eps": 1e-3, "weight_decay": 0.1},
    "normalized": {},
}


@pytest.mark.parametrize("name", OPTIMIZERS.names())
def test_make_optimizer_passes_the_config_keys(name):
    opt = build(name, dtype=np.float32, size=10, n_weights=7)
    assert type(opt) is OPTIMIZERS.get(name)
    assert opt.get_config() == EXPECTED_CONFIG[name]
    assert (opt.size, opt.n_weights, opt.dtype) == (10, 7, np.float32)


# --- torch agreement (optional) -------------------------------------------------------------
# `normalized` has no torch counterpart: it is checked by hand above.
TORCH_CASES = {
    "sgd": lambda torch, ps: torch.optim.SGD(ps, lr=0.1),
    "momentum": lambda torch, ps: torch.optim.SGD(ps, lr=0.1, momentum=0.8),
    "nesterov": lambda torch, ps: torch.optim.SGD(ps, lr=0.1, momentum=0.8, nesterov=True),
    "adagrad": lambda torch, ps: torch.optim.Adagrad(ps, lr=0.1, eps=1e-3, initial_accumulator_value=0.0),
    "rmsprop": lambda torch, ps: torch.optim.RMSprop(ps, lr=0.1, alpha=0.7, eps=1e-3),
    "adam": lambda torch, ps: torch.optim.Adam(ps, lr=0.1, betas=(0.8, 0.9), eps=1e-3),
    "adamw": lambda torch, ps: torch.optim.AdamW(ps, lr=0.1, betas=(0.8, 0.9), eps=1e-3, weight_decay=0.1),
}


@pytest.mark.parametrize("name", sorted(TORCH_CASES))
def test_agrees_with_torch(name):
    torch = pytest.importorskip("torch")
    param = torch.nn.Parameter(torch.tensor(W0, dtype=torch.float64))
    topt = TORCH_CASES[name](torch, [param])
    opt = build(name, n_weights=SIZE)  # torch's AdamW decays every parameter
    p = W0.copy()
    for g in GRADS:
        param.grad = torch.tensor(g, dtype=torch.float64)
        topt.step()
        opt.step(p, g, 0.1)
        np.testing.assert_allclose(p, param.detach().numpy(), rtol=1e-10, atol=1e-12)


# --- clipping -------------------------------------------------------------------------------
def norm(g):
    return math.sqrt(float(np.dot(g, g)))


def test_norm_clipping_rescales_to_exactly_max_norm():
    g = np.array([3.0, 4.0])
    assert clip_gradients(g, 5.0, max_norm=2.0, max_value=None) is True
    np.testing.assert_allclose(g, [1.2, 1.6], rtol=1e-15)
    assert norm(g) == pytest.approx(2.0, rel=1e-15)


@pytest.mark.parametrize("values", [[0.3, 0.4], [1.2, 1.6]])  # norms 0.5 and exactly 2
def test_norm_clipping_leaves_gradients_at_or_below_max_norm(values):
    g = np.array(values)
    assert clip_gradients(g, norm(g), max_norm=2.0, max_value=None) is False
    np.testing.assert_array_equal(g, values)


def test_value_clipping_clamps_each_element():
    g = np.array([0.5, -3.0, 2.0, -0.2])
    assert clip_gradients(g, norm(g), max_norm=None, max_value=1.0) is True
    np.testing.assert_array_equal(g, [0.5, -1.0, 1.0, -0.2])


def test_value_clipping_within_bounds_changes_nothing():
    g = np.array([0.5, -1.0, 1.0])
    assert clip_gradients(g, norm(g), max_norm=None, max_value=1.0) is False
    np.testing.assert_array_equal(g, [0.5, -1.0, 1.0])


def test_value_then_norm_clipping_uses_the_norm_after_clamping():
    g = np.array([3.0, 4.0, 0.0])
    assert clip_gradients(g, 5.0, max_norm=1.0, max_value=3.5) is True
    assert g[1] / g[0] == pytest.approx(3.5 / 3.0, rel=1e-14)  # clamped first
    assert norm(g) == pytest.approx(1.0, rel=1e-14)  # then rescaled with the new norm


def test_no_clipping_configured_is_a_no_op():
    g = np.array([30.0, -40.0])
    assert clip_gradients(g, 50.0, max_norm=None, max_value=None) is False
    np.testing.assert_array_equal(g, [30.0, -40.0])


def test_two_rules_may_give_one_hyper_parameter_different_defaults(monkeypatch):
    from trickrun.config import Config, OptimizerConfig, resolve
    from trickrun.nn.optim import Adagrad, hyper_defaults

    # a rule sharing adam's key names with other defaults: each run gets its own rule's
    loose = type("Loose", (Adagrad,), {"defaults": {"eps": 1e-3, "rho": 0.5}})
    monkeypatch.setitem(OPTIMIZERS._items, "loose", loose)
    table = hyper_defaults()
    assert table[("loose", "eps")] == 1e-3 and table[("adam", "eps")] == 1e-8
    assert table[("rmsprop", "rho")] == 0.9 and table[("loose", "rho")] == 0.5
    assert ("sgd", "eps") not in table  # sgd takes no eps

    def resolved(**optimizer):
        return resolve(Config(optimizer=OptimizerConfig(**optimizer))).optimizer

    assert (resolved(name="loose").eps, resolved(name="loose").rho) == (1e-3, 0.5)
    assert (resolved(name="adam").eps, resolved(name="rmsprop").rho) == (1e-8, 0.9)
    assert resolved(name="loose", eps=1e-6).eps == 1e-6  # a key given in the config wins
    # a key the rule does not take still gets a value in the saved config, as before
    assert resolved(name="sgd").eps == 1e-8 and resolved(name="sgd").momentum == 0.9
