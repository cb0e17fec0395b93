"""Every family of named components against the config's choices (one parametrized test),
each initializer's spread against its documented formula, and loud lookups."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pytest

from trickrun.config import CHOICES, Config, load_config
from trickrun.data.catalog import DATASETS, FILES
from trickrun.data.scaling import SCALES, scale
from trickrun.early_stopping import EarlyStopping
from trickrun.errors import ConfigError
from trickrun.metrics import MONITORS
from trickrun.nn.initializers import INITIALIZERS
from trickrun.nn.layers import ACTIVATIONS, NORMS
from trickrun.nn.model import MLP
from trickrun.nn.optim import OPTIMIZERS, make_optimizer
from trickrun.nn.schedules import SCHEDULES, LRSchedule
from trickrun.registry import Registry


# --- every family: config choices == registry names, every name builds, config round trip ------
@dataclass
class Family:
    names: tuple[str, ...]  # in registration order: the order error messages list them in
    build: Callable[[Config], Any]  # the piece the resolved config asks for
    check: Callable[[Any, Config], None]  # that the piece works (and round-trips its config)
    overrides: Callable[[str], dict] = lambda name: {}  # extra config for this name


PIXELS = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20


def build_model(cfg: Config) -> MLP:
    return MLP(4, 3, cfg.model, init_rng=np.random.default_rng(0), dropout_rng=np.random.default_rng(1))


def check_model(model: MLP, cfg: Config) -> None:
    out = model.forward(PIXELS.astype(np.float32) / 255, train=True)
    assert out.shape == (3, 3) and np.isfinite(out).all()
    model.backward(np.ones_like(out))
    assert np.isfinite(model.grads).all()


def check_optimizer(opt, cfg: Config) -> None:
    config = opt.get_config()
    assert all(isinstance(v, (int, float, str, bool)) for v in config.values())  # plain data
    # the config's (non-default) values reached the optimizer, under their own keys
    assert config == {key: getattr(cfg.optimizer, key) for key in type(opt).defaults}
    clone = type(opt)(8, np.float64, 5, **config)
    assert clone.get_config() == config
    rng = np.random.default_rng(0)  # the clone behaves identically
    p1 = rng.normal(size=8)
    p2 = p1.copy()
    for _ in range(3):
        g = rng.normal(size=8)
        opt.step(p1, g, 0.05)
        clone.step(p2, g, 0.05)
    np.testing.assert_array_equal(p1, p2)


def non_default_optimizer(name: str) -> dict:
    return {"optimizer": {"name": name, "lr": 0.05, "momentum": 0.7, "beta1": 0.85, "beta2": 0.95,
                          "eps": 1e-4, "rho": 0.8, "weight_decay": 0.2 if name == "adamw" else 0.0}}


def check_schedule(schedule: LRSchedule, cfg: Config) -> None:
    lrs = [schedule.lr(e) for e in range(1, cfg.train.epochs + 1)]
    assert lrs[0] == cfg.optimizer.lr and all(0 <= lr <= cfg.optimizer.lr for lr in lrs)


def check_stopper(stopper: EarlyStopping, cfg: Config) -> None:
    assert stopper.update(1, 0.5) and not stopper.update(2, 0.5)


def check_dataset(info, cfg: Config) -> None:
    assert set(info.sha256) == set(FILES) and info.mirrors


def check_scaled(arrays, cfg: Config) -> None:
    assert all(a.dtype == np.float32 and a.shape == PIXELS.shape for a in arrays)


FAMILIES: dict[str, Family] = {
    "data.dataset": Family(tuple(DATASETS), lambda cfg: DATASETS[cfg.data.dataset], check_dataset),
    "data.scale": Family(SCALES.names(), lambda cfg: scale(cfg.data.scale, PIXELS, PIXELS), check_scaled),
    "model.activation": Family(ACTIVATIONS.names(), build_model, check_model),
    "model.init": Family(INITIALIZERS.names(), build_model, check_model),
    "model.norm": Family(NORMS.names(), build_model, check_model),
    "optimizer.name": Family(OPTIMIZERS.names(), lambda cfg: make_optimizer(cfg.optimizer, 8, np.float64, 5),
                             check_optimizer, non_default_optimizer),
    "schedule.name": Family(SCHEDULES.names(),
                            lambda cfg: LRSchedule(cfg.schedule, cfg.optimizer.lr, cfg.train.epochs),
                            check_schedule),
    "early_stopping.monitor": Family(tuple(MONITORS), lambda cfg: EarlyStopping(cfg.early_stopping.monitor),
                                     check_stopper),
}
CASES = [(path, name) for path, family in FAMILIES.items() for name in family.names]


def test_every_choice_key_is_a_family():
    assert set(CHOICES) == set(FAMILIES)


@pytest.mark.parametrize("path, name", CASES)
def test_every_registered_name_is_a_config_choice_and_builds(path, name):
    family = FAMILIES[path]
    assert CHOICES[path] == family.names and len(set(family.names)) == len(family.names)
    section, key = path.split(".")
    data = family.overrides(name)
    data.setdefault(section, {})[key] = name
    cfg = load_config(data)
    assert getattr(getattr(cfg, section), key) == name
    family.check(family.build(cfg), cfg)


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
@pytest.mark.parametrize("registry", [INITIALIZERS, OPTIMIZERS, SCHEDULES, ACTIVATIONS, NORMS, SCALES],
                         ids=lambda r: r.kind)
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


def test_an_alias_finds_its_name_and_is_no_name_of_its_own():
    reg = Registry("widget")
    glorot = reg.register("glorot", aliases=("xavier",))(lambda: 1)
    assert reg.get("xavier") is glorot and reg.canonical("xavier") == "glorot" and reg.canonical("he") == "he"
    assert reg.names() == ("glorot",) and reg.aliases() == {"xavier": "glorot"}
    for taken in ("glorot", "xavier"):  # an alias cannot be registered again, as a name or an alias
        with pytest.raises(ValueError, match="twice"):
            reg.register("other", aliases=(taken,))(lambda: 2)
    assert INITIALIZERS.aliases() == {"xavier": "glorot", "kaiming": "he"}
