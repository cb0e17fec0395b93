"""The experiment config: typed schema with every default, YAML loading, `--set` overrides,
validation that names the key path, and the resolved dict saved with each run.

Every default lives in this file, with its meaning and units, except those of the
optimizers (the learning rate and hyper-parameters of each rule), which nn/optim.py declares
and this file reads. The choices of each "name" key are read from that family's registry. A
value left at `None` where the comment says "per-..." is filled in by `resolve()`, so the
saved config.yaml is complete and re-runs the same experiment.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence, get_args, get_origin, get_type_hints

from .data.catalog import DATASETS
from .data.scaling import SCALES
from .errors import ConfigError
from .metrics import MONITORS
from .nn.initializers import INITIALIZERS
from .nn.layers import ACTIVATIONS, NORMS
from .nn.optim import OPTIMIZERS, hyper_defaults
from .nn.schedules import SCHEDULES
from .userinput import PATH_CHARS, dump_yaml, parse_yaml, read_capped, short

__all__ = ["Config", "ConfigError", "dump_yaml", "load_config", "parse_yaml", "short"]  # re-exported

# The choices of every "name" key, each read from the registry that builds it (in
# registration order, as error messages list them). None of these modules imports this one.
CHOICES: dict[str, tuple[str, ...]] = {
    "data.dataset": tuple(DATASETS),
    "data.scale": SCALES.names(),
    "model.activation": ACTIVATIONS.names(),
    "model.init": INITIALIZERS.names(),
    "model.norm": NORMS.names(),
    "optimizer.name": OPTIMIZERS.names(),
    "schedule.name": SCHEDULES.names(),
    "early_stopping.monitor": tuple(MONITORS),
}

# A run name: its directory is `<name>-<timestamp>`, so the name must be a safe file name.
NAME_RULE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,99}")
MAX_NAME = 100
# `schedule.gamma` when not given: the lesson's 0.98 per epoch, or a tenfold cut per step;
# schedules without a gamma save the exponential one, so the saved config is complete.
DEFAULT_GAMMA = {"exponential": 0.98, "step": 0.1}


@dataclass
class DataConfig:
    dataset: str = "mnist"  # mnist | fashion-mnist
    dir: str | None = None  # folder with the four IDX files; None: search (see README)
    val_size: int = 5000  # training examples held out for validation
    split_seed: int = 0  # seed of the train/validation split, independent of `seed`
    train_limit: int | None = None  # train on only this many examples (None: all)
    scale: str = "unit"  # unit [0,1] | symmetric [-1,1] | standard (z-score) | none (0..255)


@dataclass
class ModelConfig:
    hidden: list[int] = field(default_factory=lambda: [256, 128])  # hidden layer widths
    activation: str = "relu"  # relu | leaky_relu (slope 0.01) | tanh | sigmoid
    init: str = "he"  # weight initializer, see initializers.py for each formula
    norm: str = "none"  # none | batch | layer (between affine map and activation) | weight (w = g v/||v||, every layer)
    bn_momentum: float = 0.9  # running = momentum * running + (1 - momentum) * batch
    dropout: float = 0.0  # inverted-dropout rate after each hidden activation, in [0, 1)
    input_dropout: float = 0.0  # inverted-dropout rate on the input pixels, in [0, 1)
    residual: bool = False  # h <- h + block(h) around each hidden block after the first (equal widths)


@dataclass
class OptimizerConfig:
    name: str = "adam"
    lr: float | None = None  # learning rate; None: the optimizer's `default_lr`
    # The rule's hyper-parameters; None: the named optimizer's own default (nn/optim.py's
    # `defaults`, 0.9 / 0.9 / 0.999 / 1e-8 / 0.9 for every rule today).
    momentum: float | None = None  # gamma of momentum and nesterov
    beta1: float | None = None  # adam/adamw first-moment decay
    beta2: float | None = None  # adam/adamw second-moment decay
    eps: float | None = None  # added to the denominator of adagrad, rmsprop, adam, adamw
    rho: float | None = None  # rmsprop's decay of the squared-gradient average
    weight_decay: float | None = None  # adamw's decoupled decay; None: adamw's default, else 0


@dataclass
class RegularizationConfig:
    l2: float = 0.0  # adds l2/2 * sum(w^2) over weight matrices to the loss
    l1: float = 0.0  # adds l1 * sum(|w|) over weight matrices to the loss
    max_norm: float | None = None  # cap on each unit's incoming-weight L2 norm after every step; None: off


@dataclass
class ClipConfig:
    norm: float | None = None  # rescale the gradient to this global L2 norm when above it
    value: float | None = None  # clamp each gradient element to [-value, value]


@dataclass
class ScheduleConfig:
    name: str = "constant"
    gamma: float | None = None  # exponential/step factor; None: 0.98 (exponential), 0.1 (step)
    step_size: int = 10  # step: epochs between cuts
    min_lr: float = 0.0  # cosine: final lr; plateau: lr never goes below it
    factor: float = 0.5  # plateau: lr multiplier after `patience` epochs without improvement
    patience: int = 3  # plateau: epochs without improvement of early_stopping.monitor
    warmup_epochs: int = 0  # linear warm-up from lr/(warmup_epochs+1) to lr, before the schedule


@dataclass
class TrainConfig:
    epochs: int = 30  # maximum number of epochs
    batch_size: int = 128  # examples per gradient step; data reshuffled every epoch


@dataclass
class EarlyStoppingConfig:
    enabled: bool = True
    monitor: str = "val_loss"  # val_loss (lower is better) | val_acc (higher is better)
    patience: int = 5  # epochs without an improvement larger than min_delta before stopping
    min_delta: float = 0.0  # smallest change that counts as an improvement
    restore_best: bool = True  # evaluate and save the best weights (False: the last ones)


@dataclass
class Config:
    name: str | None = None  # run name; None: the config file's name without extension
    seed: int = 0  # seeds initialization, shuffling and dropout (separate streams)
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    regularization: RegularizationConfig = field(default_factory=RegularizationConfig)
    clip: ClipConfig = field(default_factory=ClipConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    early_stopping: EarlyStoppingConfig = field(default_factory=EarlyStoppingConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# ---------------------------------------------------------------------------------------
# Building a Config from plain data, with errors that name the key path.


def _closest(key: str, valid: Sequence[str]) -> str:
    match = difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
    return f" (did you mean {match[0]!r}?)" if match else f" (valid keys: {', '.join(valid)})"


def _check_value(path: str, value: Any, hint: Any) -> Any:
    """Coerce `value` to the annotated type `hint` or raise ConfigError naming `path`."""
    origin, args = get_origin(hint), get_args(hint)
    if origin is not None and type(None) in args:  # Optional[X]
        if value is None:
            return None
        (hint,) = [a for a in args if a is not type(None)]
        origin, args = get_origin(hint), get_args(hint)
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{path}: expected a list, got {short(value)}")
        return [_check_value(f"{path}[{i}]", item, args[0]) for i, item in enumerate(value)]
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{path}: expected true or false, got {short(value)}")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(f"{path}: expected a whole number, got {short(value)}")
    if hint is float:
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise ConfigError(f"{path}: expected a number, got {short(value)}")
        try:
            number = float(value)
        except OverflowError:  # an int beyond float range
            number = math.inf
        if not math.isfinite(number):  # no float key means anything with NaN or infinity
            raise ConfigError(f"{path}: must be a finite number, got {short(value)}")
        return number
    if hint is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{path}: expected text, got {short(value)}")
    raise TypeError(f"unsupported annotation {hint!r} at {path}")  # a bug in the schema


def _build(cls: type, data: Any, path: str) -> Any:
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        where = path or "config"
        raise ConfigError(f"{where}: expected a mapping of keys to values, got {short(data)}")
    hints = get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in data.items():
        full = f"{path}.{key}" if path else str(key)
        if key not in hints:
            raise ConfigError(f"unknown key {short(full)}{_closest(str(key)[:100], names)}")
        hint = hints[key]
        if dataclasses.is_dataclass(hint):
            kwargs[key] = _build(hint, value, full)
        else:
            kwargs[key] = _check_value(full, value, hint)
    return cls(**kwargs)


def _range(path: str, value: float | int | None, lo=None, hi=None, lo_open=False, hi_open=False):
    """Check lo <= value <= hi (with open ends where asked); None passes."""
    if value is None:
        return
    bad_lo = lo is not None and (value <= lo if lo_open else value < lo)
    bad_hi = hi is not None and (value >= hi if hi_open else value > hi)
    if bad_lo or bad_hi or value != value:  # value != value: NaN
        left = "(" if lo_open else "["
        right = ")" if hi_open else "]"
        lo_s = "-inf" if lo is None else lo
        hi_s = "inf" if hi is None else hi
        raise ConfigError(f"{path}: {short(value)} is out of range; allowed {left}{lo_s}, {hi_s}{right}")


def _check_choices(cfg: Config) -> None:
    for path, choices in CHOICES.items():
        section, key = path.split(".")
        value = getattr(getattr(cfg, section), key)
        if value not in choices:
            close = difflib.get_close_matches(str(value)[:100], choices, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"{path}: unknown choice {short(value)}{hint}; choose one of: {', '.join(choices)}")


def validate(cfg: Config) -> Config:
    """Check choices and ranges; return `cfg` unchanged or raise ConfigError."""
    _check_choices(cfg)
    if cfg.name is not None and not NAME_RULE.fullmatch(cfg.name):
        raise ConfigError(
            f"name: {short(cfg.name)} cannot name a run directory: a name "
            f"has 1 to {MAX_NAME} characters, a letter or digit first, then letters, digits, '.', '_', '+' or '-'"
        )
    _range("seed", cfg.seed, 0)
    d = cfg.data
    _range("data.val_size", d.val_size, 1, 59_999)
    _range("data.split_seed", d.split_seed, 0)
    _range("data.train_limit", d.train_limit, 1)
    m = cfg.model
    if not m.hidden:
        raise ConfigError("model.hidden: the list of hidden widths is empty; give at least one, e.g. [256]")
    for i, width in enumerate(m.hidden):
        _range(f"model.hidden[{i}]", width, 1, 65_536)
    _range("model.bn_momentum", m.bn_momentum, 0, 1, hi_open=True)
    _range("model.dropout", m.dropout, 0, 1, hi_open=True)
    _range("model.input_dropout", m.input_dropout, 0, 1, hi_open=True)
    if m.residual and len(set(m.hidden)) > 1:
        raise ConfigError(f"model.residual: needs equal hidden widths, got {short(m.hidden)}; "
                          f"e.g. model.hidden: {short([m.hidden[0]] * len(m.hidden))}")
    o = cfg.optimizer
    _range("optimizer.lr", o.lr, 0, lo_open=True)
    _range("optimizer.momentum", o.momentum, 0, 1, hi_open=True)
    _range("optimizer.beta1", o.beta1, 0, 1, hi_open=True)
    _range("optimizer.beta2", o.beta2, 0, 1, hi_open=True)
    _range("optimizer.eps", o.eps, 0, lo_open=True)
    _range("optimizer.rho", o.rho, 0, 1, hi_open=True)
    _range("optimizer.weight_decay", o.weight_decay, 0)
    if o.weight_decay and o.name != "adamw":
        raise ConfigError(
            f"optimizer.weight_decay: decoupled weight decay belongs to adamw, not {o.name}; "
            "use regularization.l2 for a penalty in the loss"
        )
    _range("regularization.l2", cfg.regularization.l2, 0)
    _range("regularization.l1", cfg.regularization.l1, 0)
    _range("regularization.max_norm", cfg.regularization.max_norm, 0, lo_open=True)
    _range("clip.norm", cfg.clip.norm, 0, lo_open=True)
    _range("clip.value", cfg.clip.value, 0, lo_open=True)
    s = cfg.schedule
    _range("schedule.gamma", s.gamma, 0, 1, lo_open=True)
    _range("schedule.step_size", s.step_size, 1)
    _range("schedule.min_lr", s.min_lr, 0)
    _range("schedule.factor", s.factor, 0, 1, lo_open=True, hi_open=True)
    _range("schedule.patience", s.patience, 0)
    _range("schedule.warmup_epochs", s.warmup_epochs, 0)
    _range("train.epochs", cfg.train.epochs, 1)
    _range("train.batch_size", cfg.train.batch_size, 1)
    e = cfg.early_stopping
    _range("early_stopping.patience", e.patience, 0)
    _range("early_stopping.min_delta", e.min_delta, 0)
    return cfg


# Optimizer keys resolved from the named rule's defaults (weight_decay apart: 0 when unused).
HYPER_KEYS = ("momentum", "beta1", "beta2", "eps", "rho")


def _unused_default(key: str, defaults: dict[tuple[str, str], float]) -> float:
    """The value saved for a key the chosen rule does not take: the first registered rule's
    default for it, so every saved config names every key with a plausible value."""
    return next(value for (_, k), value in defaults.items() if k == key)


def resolve(cfg: Config) -> Config:
    """Fill in the defaults that depend on other keys, so the saved config is explicit."""
    o = dataclasses.replace(cfg.optimizer)
    rule = OPTIMIZERS.get(o.name)
    if o.lr is None:
        o.lr = rule.default_lr
    defaults = hyper_defaults()
    for key in HYPER_KEYS:
        if getattr(o, key) is None:
            setattr(o, key, defaults.get((o.name, key), _unused_default(key, defaults)))
    if o.weight_decay is None:
        o.weight_decay = defaults.get((o.name, "weight_decay"), 0.0)  # 0: the rule has no decay
    s = dataclasses.replace(cfg.schedule)
    if s.gamma is None:
        s.gamma = DEFAULT_GAMMA.get(s.name, DEFAULT_GAMMA["exponential"])
    return dataclasses.replace(cfg, optimizer=o, schedule=s)


# ---------------------------------------------------------------------------------------
# Overrides and the public entry point.


def parse_override(text: str) -> tuple[list[str], Any]:
    """`"optimizer.lr=0.01"` -> (["optimizer", "lr"], 0.01); the value is read as YAML."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*", key):
        raise ConfigError(
            f"--set {short(text)}: expected KEY=VALUE with a dotted key, e.g. --set optimizer.lr=0.01"
        )
    return key.split("."), parse_yaml(raw, f"--set {key}") if raw.strip() else None


def set_key(data: dict[str, Any], keys: Sequence[str], value: Any, where: str) -> None:
    """Set the dotted key `keys` in the mapping `data` in place, making missing sections;
    ConfigError (prefixed with `where`) when a part of the path is a value, not a section."""
    node = data
    for i, key in enumerate(keys[:-1]):
        child = node.get(key)
        if child is None:
            child = node[key] = {}
        if not isinstance(child, dict):
            raise ConfigError(f"{where}: {short('.'.join(keys[: i + 1]))} is not a section")
        node = child
    node[keys[-1]] = value


def apply_overrides(data: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Return a copy of `data` with each KEY=VALUE override set (unknown keys fail later)."""
    out = _deep_copy(data)
    for text in overrides:
        keys, value = parse_override(text)
        set_key(out, keys, value, f"--set {short(text)}")
    return out


def _deep_copy(data: Any, memo: dict[int, Any] | None = None) -> Any:
    """Copy dicts and lists; YAML aliases stay shared, so `&a [*a]` or a billion laughs
    copies in linear time instead of recursing without end."""
    memo = {} if memo is None else memo
    if id(data) in memo:
        return memo[id(data)]
    if isinstance(data, Mapping):
        copy: dict = {}
        memo[id(data)] = copy
        copy.update((k, _deep_copy(v, memo)) for k, v in data.items())
        return copy
    if isinstance(data, list):
        items: list = []
        memo[id(data)] = items
        items.extend(_deep_copy(v, memo) for v in data)
        return items
    return data


def read_config_file(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    shown = short(str(path), PATH_CHARS)
    try:
        text = read_capped(path)
    except FileNotFoundError:
        raise ConfigError(f"config file {shown} not found; try one of configs/*.yaml") from None
    except IsADirectoryError:
        raise ConfigError(f"config {shown} is a folder; give a YAML file") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"config file {shown} cannot be read: {short(err, 200)}") from None
    data = parse_yaml(text, str(path))
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{shown}: expected a mapping of keys to values at the top, got {type(data).__name__}")
    return data


def default_name(path: str | Path) -> str:
    """A valid run name from a config file's name: unsafe characters become '-', the name
    starts with a letter or digit and is cut to MAX_NAME characters."""
    name = re.sub(r"[^A-Za-z0-9._+-]+", "-", Path(path).stem)
    name = re.sub(r"^[^A-Za-z0-9]+", "", name)[:MAX_NAME].rstrip("-.")
    return name or "run"


def load_config(
    source: str | Path | Mapping[str, Any],
    overrides: Sequence[str] = (),
    *,
    name: str | None = None,
    seed: int | None = None,
) -> Config:
    """Read, override, validate and resolve a config.

    `source` is a YAML file path or an already-parsed mapping. `overrides` are `--set`
    strings; `name` and `seed` (the CLI's --name and --seed) win over everything.
    """
    if isinstance(source, Mapping):
        data, fallback = _deep_copy(source), "run"
    else:
        data, fallback = read_config_file(source), default_name(source)
    data = apply_overrides(data, overrides)
    if name is not None:
        data["name"] = name
    if seed is not None:
        data["seed"] = seed
    cfg = _build(Config, data, "")
    if cfg.name is None:
        cfg.name = fallback
    return resolve(validate(cfg))
