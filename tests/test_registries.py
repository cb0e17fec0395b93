"""Every registry against the config's CHOICES, config round trips of every optimizer,
each initializer's spread against its documented formula, and loud lookups."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from trickrun.config import CHOICES, OptimizerConfig
from trickrun.errors import ConfigError
from trickrun.nn.initializers import INITIALIZERS
from trickrun.nn.layers import ACTIVATIONS
from trickrun.nn.optim import OPTIMIZERS, make_optimizer
from trickrun.registry import Registry
from trickrun.nn.schedules import SCHEDULES

FAMILIES = {
    "model.init": INITIALIZERS,
    "optimizer.name": OPTIMIZERS,
    "schedule.name": SCHEDULES,
}


@pytest.mark.parametrize("path", sorted(FAMILIES))
def test_registry_names_equal_config_choices(path):
    names = FAMILIES[path].names()
    assert len(set(names)) == len(names)
    assert set(names) == set(CHOICES[path])


def test_activations_equal_config_choices():
    assert set(ACTIVATIONS) == set(CHOICES["model.activation"])


# --- optimizer config round trip ---------------------------------------------------------------
NON_DEFAULT = OptimizerConfig(lr=0.05, momentum=0.7, beta1=0.85, beta2=0.95, eps=1e-4, rho=0.8, weight_decay=0.2)


@pytest.mark.parametrize("name", OPTIMIZERS.names())
def test_optimizer_round_trips_its_config(name):
    cfg = dataclasses.replace(NON_DEFAULT, name=name, weight_decay=0.2 if name == "adamw" else 0.0)
    opt = make_optimizer(cfg, 8, np.float64, 5)
    cls = OPTIMIZERS.get(name)
    config = opt.get_config()
    assert all(isinstance(v, (int, float, str, bool)) for v in config.values())  # plain data
    clone = cls(8, np.float64, 5, **config)
    assert clone.get_config() == config

    # the clone must behave identically: a dropped key would fall back to its default
    rng = np.random.default_rng(0)
    p1 = rng.normal(size=8)
    p2 = p1.copy()
    for _ in range(3):
        g = rng.normal(size=8)
        opt.step(p1, g, 0.05)
        clone.step(p2, g, 0.05)
    np.testing.assert_array_equal(p1, p2)


@pytest.mark.parametrize("name", OPTIMIZERS.names())
def test_optimizer_config_differs_from_defaults_when_hyper_parameters_do(name):
    """Guards the round trip above: with non-default values the default build must differ."""
    cfg = dataclasses.replace(NON_DEFAULT, name=name, weight_decay=0.2 if name == "adamw" else 0.0)
    opt = make_optimizer(cfg, 8, np.float64, 5)
    default = OPTIMIZERS.get(name)(8, np.float64, 5)
    if name == "sgd":
        assert opt.get_config() == default.get_config() == {}
    else:
        assert opt.get_config() != default.get_config()


# --- initializers ------------------------------------------------------------------------------
N_IN, N_OUT = 400, 300  # not square: n_in and n_out must not be confused

EXPECTED_STD = {
    "normal": 1.0,
    "uniform": 1.0 / math.sqrt(3 * N_IN),
    "gaussian": 1.0 / N_IN,
    "lecun": 1.0 / math.sqrt(N_IN),
    "glorot": math.sqrt(2.0 / (N_IN + N_OUT)),
    "he": math.sqrt(2.0 / N_IN),
}


@pytest.mark.parametrize("name", INITIALIZERS.names())
def test_initializer_std_matches_documented_formula(name):
    assert name in EXPECTED_STD, f"write the expected std of the new initializer {name!r}"
    w = INITIALIZERS.get(name)((N_IN, N_OUT), np.random.default_rng(0))
    assert w.shape == (N_IN, N_OUT) and w.dtype == np.float64
    expected = EXPECTED_STD[name]
    # 120,000 draws: the sample std is within ~0.2% of the truth; 2% separates lecun from glorot
    assert w.std() == pytest.approx(expected, rel=0.02)
    assert abs(w.mean()) < 4 * expected / math.sqrt(w.size)


@pytest.mark.parametrize("name", INITIALIZERS.names())
def test_initializer_uses_only_the_given_rng(name):
    init = INITIALIZERS.get(name)
    a = init((20, 10), np.random.default_rng(5))
    b = init((20, 10), np.random.default_rng(5))
    c = init((20, 10), np.random.default_rng(6))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_uniform_bounds():
    w = INITIALIZERS.get("uniform")((N_IN, N_OUT), np.random.default_rng(1))
    limit = 1.0 / math.sqrt(N_IN)
    assert w.max() <= limit and w.min() >= -limit
    assert w.max() > 0.99 * limit and w.min() < -0.99 * limit


# --- lookups -----------------------------------------------------------------------------------
@pytest.mark.parametrize("registry", [INITIALIZERS, OPTIMIZERS, SCHEDULES], ids=lambda r: r.kind)
def test_get_unknown_name_raises_config_error_listing_names(registry):
    with pytest.raises(ConfigError) as err:
        registry.get("no-such-name")
    assert err.value.exit_code == 2
    msg = str(err.value)
    assert registry.kind in msg and "'no-such-name'" in msg
    for name in registry.names():
        assert name in msg


def test_registry_register_get_contains_and_duplicates():
    reg = Registry("widget")

    @reg.register("a")
    def a():
        return 1

    assert reg.get("a") is a and "a" in reg and "b" not in reg
    assert reg.names() == ("a",)
    with pytest.raises(ValueError, match="twice"):
        reg.register("a")(lambda: 2)
    assert reg.get("a") is a
