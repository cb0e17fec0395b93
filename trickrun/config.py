"""The experiment config: typed schema with every default, YAML loading, `--set` overrides,
validation that names the key path, and the resolved dict saved with each run.

Every default lives in this file, with its meaning and units, except those of the
optimizers (the learning rate and hyper-parameters of each rule), which nn/optim.py declares
and this file reads. The choices of each "name" key are read from that family's registry. A
value left at `None` where the comment says "per-..." is filled in by `resolve()`, so the
saved config.yaml is complete and re-runs the same experiment. The comment on a field's line
is its meaning as `trickrun explain` shows it, so it speaks YAML (null, false), not Python.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence, get_args, get_origin, get_type_hints

from .data.catalog import DATASETS
from .data.scaling import SCALES
from .errors import ConfigError
from .metrics import MONITORS
from .nn.initializers import INITIALIZERS
from .nn.layers import ACTIVATIONS, NORMS
from .nn.optim import OPTIMIZERS, hyper_defaults
from .nn.schedules import SCHEDULES
from .registry import Registry
from .ranges import RANGES, Bounds
from .userinput import PATH_CHARS, dump_yaml, parse_yaml, read_capped, short

__all__ = ["Config", "ConfigError", "dump_yaml", "load_config", "parse_yaml", "short"]  # re-exported

# The registry that builds each component named in a config.
REGISTRIES: dict[str, Registry] = {
    "data.scale": SCALES,
    "model.activation": ACTIVATIONS,
    "model.init": INITIALIZERS,
    "model.norm": NORMS,
    "optimizer.name": OPTIMIZERS,
    "schedule.name": SCHEDULES,
}
# The choices of every "name" key, each read from the registry that builds it (in
# registration order, as error messages list them). None of these modules imports this one.
CHOICES: dict[str, tuple[str, ...]] = {
    "data.dataset": tuple(DATASETS),
    **{key: registry.names() for key, registry in REGISTRIES.items()},
    "early_stopping.monitor": tuple(MONITORS),
}
# Other names people type for a choice (`model.init: xavier` is `glorot`), per key: accepted,
# and replaced by the registered name when a config is loaded, so config.yaml saves that one.
ALIASES: dict[str, dict[str, str]] = {key: r.aliases() for key, r in REGISTRIES.items() if r.aliases()}

# A run name: its directory is `<name>-<timestamp>`, so the name must be a safe file name.
NAME_RULE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,99}")
MAX_NAME = 100
# `schedule.gamma` when not given: the lesson's 0.98 per epoch, or a tenfold cut per step;
# schedules without a gamma save the exponential one, so the saved config is complete.
DEFAULT_GAMMA = {"exponential": 0.98, "step": 0.1}


@dataclass
class DataConfig:
    dataset: str = "mnist"  # the images and labels trained on: mnist | fashion-mnist
    dir: str | None = None  # folder with the four IDX files; null: search (see README)
    val_size: int = 5000  # training examples held out for validation
    split_seed: int = 0  # seed of the train/validation split, independent of `seed`
    train_limit: int | None = None  # train on only this many examples (null: all)
    scale: str = "unit"  # how pixels are scaled, see data/scaling.py for each formula


@dataclass
class ModelConfig:
    hidden: list[int] = field(default_factory=lambda: [256, 128])  # hidden layer widths
    activation: str = "relu"  # the non-linearity of each hidden layer, see nn/layers.py
    init: str = "he"  # how the weights are drawn before training, see nn/initializers.py
    norm: str = "none"  # normalization: none | batch | layer (between affine map and activation) | weight (w = g v/||v||)
    bn_momentum: float = 0.9  # running = momentum * running + (1 - momentum) * batch
    dropout: float = 0.0  # inverted-dropout rate after each hidden activation, in [0, 1)
    input_dropout: float = 0.0  # inverted-dropout rate on the input pixels, in [0, 1)
    residual: bool = False  # h <- h + block(h) around each hidden block after the first (equal widths)


@dataclass
class OptimizerConfig:
    name: str = "adam"  # the update rule, see nn/optim.py for each formula
    lr: float | None = None  # learning rate; null: the optimizer's own default
    # The rule's hyper-parameters; None: the named optimizer's own default (nn/optim.py's
    # `defaults`, 0.9 / 0.9 / 0.999 / 1e-8 / 0.9 for every rule today).
    momentum: float | None = None  # gamma of momentum and nesterov
    beta1: float | None = None  # adam/adamw first-moment decay
    beta2: float | None = None  # adam/adamw second-moment decay
    eps: float | None = None  # added to the denominator of adagrad, rmsprop, adam, adamw
    rho: float | None = None  # rmsprop's decay of the squared-gradient average
    weight_decay: float | None = None  # adamw's decoupled decay; null: adamw's default, else 0


@dataclass
class RegularizationConfig:
    l2: float = 0.0  # adds l2/2 * sum(w^2) over weight matrices to the loss
    l1: float = 0.0  # adds l1 * sum(|w|) over weight matrices to the loss
    max_norm: float | None = None  # cap on each unit's incoming-weight L2 norm after every step; null: off


@dataclass
class ClipConfig:
    norm: float | None = None  # rescale the gradient to this global L2 norm when above it
    value: float | None = None  # clamp each gradient element to [-value, value]


@dataclass
class ScheduleConfig:
    name: str = "constant"  # how the learning rate changes from epoch to epoch, see nn/schedules.py
    gamma: float | None = None  # exponential/step factor; null: 0.98 (exponential), 0.1 (step)
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
    enabled: bool = True  # stop when the monitored metric stops improving
    monitor: str = "val_loss"  # what decides the best epoch: val_loss (lower is better) | val_acc (higher)
    patience: int = 5  # epochs without an improvement larger than min_delta before stopping
    min_delta: float = 0.0  # smallest change that counts as an improvement
    restore_best: bool = True  # evaluate and save the best weights (false: the last ones)


@dataclass
class Config:
    name: str | None = None  # run name; null: the config file's name without extension
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
    """The hint after an unknown `key` among `valid`: the full keys of another section whose last
    part it is (`lr` -> `optimizer.lr`), else the closest of `valid`, else all of them."""
    elsewhere = [full for full in flatten(Config().to_dict()) if full.rsplit(".", 1)[-1] == key]
    if elsewhere:
        return f" (did you mean {' or '.join(repr(full) for full in elsewhere)}?)"
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


class Problems:
    """The ConfigErrors of one config, collected so that one look shows every mistake: a key
    that is wrong keeps its default meanwhile, and the checks go on."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    @contextmanager
    def collect(self) -> Iterator[None]:
        try:
            yield
        except ConfigError as err:
            self.messages.append(str(err))

    def raise_any(self) -> None:
        if len(self.messages) == 1:
            raise ConfigError(self.messages[0])
        if self.messages:
            raise ConfigError(f"{len(self.messages)} problems in the config:\n"
                              + "\n".join(f"  {message}" for message in self.messages))


def _build(cls: type, data: Any, path: str, problems: Problems) -> Any:
    """An instance of the config dataclass `cls` from `data`; every key that is unknown or
    of the wrong type is told to `problems` and left at its default."""
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        where = path or "config"
        problems.messages.append(f"{where}: expected a mapping of keys to values, got {short(data)}")
        return cls()
    hints = get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in data.items():
        full = f"{path}.{key}" if path else str(key)
        if key not in hints:
            problems.messages.append(f"unknown key {short(full)}{_closest(str(key)[:100], names)}")
            continue
        hint = hints[key]
        if dataclasses.is_dataclass(hint):
            kwargs[key] = _build(hint, value, full, problems)
        else:
            with problems.collect():
                kwargs[key] = _check_value(full, value, hint)
    return cls(**kwargs)


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"optimizer": {"lr": 0.1}} -> {"optimizer.lr": 0.1}; lists stay values."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        full = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, full + "."))
        else:
            out[full] = value
    return out


def get_key(cfg: Config, dotted: str) -> Any:
    """The value of a dotted key such as "model.init"."""
    node: Any = cfg
    for part in dotted.split("."):
        node = getattr(node, part)
    return node


def _check_range(path: str, value: float | int | None, bounds: Bounds) -> None:
    if value is not None and not bounds.holds(value):
        raise ConfigError(f"{path}: {short(value)} is out of range; allowed {bounds}")


def _check_choices(cfg: Config, problems: Problems) -> None:
    for path, choices in CHOICES.items():
        value = get_key(cfg, path)
        if value not in choices:
            aliases = ALIASES.get(path, {})
            close = difflib.get_close_matches(str(value)[:100], [*choices, *aliases], n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            known = "".join(f", {alias} (= {name})" for alias, name in aliases.items())
            problems.messages.append(f"{path}: unknown choice {short(value)}{hint}; "
                                     f"choose one of: {', '.join(choices)}{known}")


def canonical_choices(cfg: Config) -> Config:
    """`cfg` with every alias of a choice replaced by the registered name it stands for (in place)."""
    for path, aliases in ALIASES.items():
        section, key = path.split(".")
        value = getattr(getattr(cfg, section), key)
        if value in aliases:
            setattr(getattr(cfg, section), key, aliases[value])
    return cfg


def validate(cfg: Config, problems: Problems | None = None) -> Config:
    """Check choices and ranges; return `cfg` unchanged or raise ConfigError naming every
    problem (with those `problems` already found). The checks that join several keys run
    once each key is right on its own, as a key left at its default would mislead them."""
    problems = problems or Problems()
    _check_choices(cfg, problems)
    if cfg.name is not None and not NAME_RULE.fullmatch(cfg.name):
        problems.messages.append(
            f"name: {short(cfg.name)} cannot name a run directory: a name "
            f"has 1 to {MAX_NAME} characters, a letter or digit first, then letters, digits, '.', '_', '+' or '-'"
        )
    m = cfg.model
    if not m.hidden:
        problems.messages.append("model.hidden: the list of hidden widths is empty; give at least one, e.g. [256]")
    for path, bounds in RANGES.items():
        value = get_key(cfg, path)
        for i, item in enumerate(value) if isinstance(value, list) else [(None, value)]:
            with problems.collect():
                _check_range(path if i is None else f"{path}[{i}]", item, bounds)
    problems.raise_any()
    if m.residual and len(set(m.hidden)) > 1:
        raise ConfigError(f"model.residual: needs equal hidden widths, got {short(m.hidden)}; "
                          f"e.g. model.hidden: {short([m.hidden[0]] * len(m.hidden))}")
    if m.norm == "batch" and (cfg.train.batch_size < 2 or cfg.data.train_limit == 1):
        key = "train.batch_size" if cfg.train.batch_size < 2 else "data.train_limit"
        raise ConfigError(f"model.norm: batch normalization needs batches of at least 2 examples (one example's "
                          f"variance is 0), and {key} is 1; raise it, or use model.norm=layer")
    o = cfg.optimizer
    if o.weight_decay and o.name != "adamw":
        raise ConfigError(
            f"optimizer.weight_decay: decoupled weight decay belongs to adamw, not {o.name}; "
            "use regularization.l2 for a penalty in the loss"
        )
    s, lr = cfg.schedule, o.lr if o.lr is not None else OPTIMIZERS.get(o.name).default_lr
    if "min_lr" in SCHEDULES.get(s.name).uses and s.min_lr > lr:
        raise ConfigError(f"schedule.min_lr: {s.min_lr:g} is above optimizer.lr {lr:g}, so the {s.name} schedule "
                          f"would raise the learning rate; give a floor below it, e.g. schedule.min_lr={lr / 100:g}")
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
    d = dataclasses.replace(cfg.data)
    if d.dir is not None:  # saved absolute: `resume` or `ensemble` from another folder finds the same data
        d.dir = absolute_data_dir(d.dir)
    return dataclasses.replace(cfg, optimizer=o, schedule=s, data=d)


def absolute_data_dir(folder: str) -> str:
    """data.dir as resolve() saves it: absolute, ~ expanded, a relative one taken from the current
    folder, and without `..`: one folder is one value, or a sweep re-run from another folder
    (`../data` there, `data` here) would take its own runs for another configuration. A run
    saved before that holds the relative one, which then meant the same folder: compared
    through this, it is still the config it was (resume, a sweep's skip)."""
    return os.path.abspath(Path(folder).expanduser())


def unused_keys(cfg: Config) -> set[str]:
    """The dotted keys that `cfg`'s optimizer and schedule do not read (another rule's
    hyper-parameters, another schedule's settings): their values change nothing."""
    takes = OPTIMIZERS.get(cfg.optimizer.name).defaults
    unused = {f"optimizer.{k}" for k in (*HYPER_KEYS, "weight_decay") if k not in takes}
    uses = SCHEDULES.get(cfg.schedule.name).uses
    return unused | {f"schedule.{f.name}" for f in dataclasses.fields(ScheduleConfig)
                     if f.name not in ("name", "warmup_epochs", *uses)}


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
    try:
        return key.split("."), parse_yaml(raw, f"--set {key}") if raw.strip() else None
    except ConfigError as err:
        if raw.count("[") + raw.count("{") <= raw.count("]") + raw.count("}"):
            raise
        raise ConfigError(f"{err}; the value's brackets do not close: from a shell, quote the whole "
                          "KEY=VALUE, e.g. --set 'model.hidden=[512, 256]'") from None


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
    try:
        data = parse_yaml(text, str(path))
    except ConfigError as err:
        if path.suffix.lower() in YAML_SUFFIXES:  # a config with a typo: say where
            raise
        line = re.search(r"at line (\d+)", str(err))
        raise not_a_config(shown, "it does not read as YAML" + (f" (line {line[1]})" if line else "")) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        kind = _KINDS.get(type(data), type(data).__name__)
        raise not_a_config(shown, f"it holds {kind}, not a mapping of keys to values")
    return data


YAML_SUFFIXES = (".yaml", ".yml")
_KINDS = {str: "plain text", list: "a list", int: "a number", float: "a number", bool: "true or false"}


def not_a_config(shown: str, why: str) -> ConfigError:
    """The error for a file that is no config at all (a README, a script), with where to start."""
    return ConfigError(f"{shown} is not a trickrun config: {why}. A config is a YAML file of keys and values "
                       "such as 'optimizer: {lr: 0.01}'; start from configs/baseline.yaml")


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
    if isinstance(overrides, str):  # from the Python API: one string would be read letter by letter
        raise ConfigError(f"overrides: give a list of KEY=VALUE strings, such as [{short(overrides)}], not one string")
    if isinstance(source, Mapping):
        data, fallback = _deep_copy(source), "run"
    else:
        data, fallback = read_config_file(source), default_name(source)
    data = apply_overrides(data, overrides)
    if name is not None:
        data["name"] = name
    if seed is not None:
        data["seed"] = seed
    problems = Problems()
    cfg = _build(Config, data, "", problems)
    if cfg.name is None:
        cfg.name = fallback
    return resolve(validate(canonical_choices(cfg), problems))
