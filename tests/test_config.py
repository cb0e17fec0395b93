"""Config loading: every bad input is a ConfigError (exit code 2) naming the key path;
YAML and --set parsing; resolution of dependent defaults; the dump/load round trip."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from trickrun.config import CHOICES, Config, dump_yaml, load_config, parse_yaml
from trickrun.errors import ConfigError


def config_error(source, overrides=(), **kw) -> str:
    with pytest.raises(ConfigError) as err:
        load_config(source, list(overrides), **kw)
    assert err.value.exit_code == 2
    return str(err.value)


def write(tmp_path: Path, text: str, name: str = "exp.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_load_and_validate():
    cfg = load_config({})
    assert isinstance(cfg, Config)
    assert cfg.name == "run" and cfg.optimizer.name == "adam" and cfg.model.hidden == [256, 128]


# --- unknown keys -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "data, path, suggestion",
    [
        ({"optimzer": {"lr": 0.1}}, "optimzer", "optimizer"),
        ({"model": {"hiden": [10]}}, "model.hiden", "hidden"),
        ({"early_stopping": {"patiense": 3}}, "early_stopping.patiense", "patience"),
    ],
)
def test_unknown_key_names_path_and_closest_key(data, path, suggestion):
    msg = config_error(data)
    assert repr(path) in msg
    assert f"did you mean {suggestion!r}" in msg


def test_unknown_key_without_close_match_lists_valid_keys():
    msg = config_error({"train": {"zzzzzz": 1}})
    assert "'train.zzzzzz'" in msg and "epochs" in msg and "batch_size" in msg


# --- wrong types ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "data, path, shown",
    [
        ({"optimizer": {"lr": "fast"}}, "optimizer.lr", "'fast'"),
        ({"model": {"hidden": 256}}, "model.hidden", "256"),
        ({"model": {"hidden": [256, "wide"]}}, "model.hidden[1]", "'wide'"),
        ({"train": {"batch_size": 1.5}}, "train.batch_size", "1.5"),
        ({"early_stopping": {"enabled": "yes"}}, "early_stopping.enabled", "'yes'"),
        ({"early_stopping": {"enabled": 1}}, "early_stopping.enabled", "1"),
        ({"seed": True}, "seed", "True"),
        ({"name": 42}, "name", "42"),
        ({"model": 3}, "model", "3"),
    ],
)
def test_wrong_type_names_path_and_value(data, path, shown):
    msg = config_error(data)
    assert msg.startswith(f"{path}:"), msg
    assert shown in msg


def test_whole_number_floats_are_accepted_for_ints():
    cfg = load_config({"train": {"batch_size": 64.0}, "optimizer": {"lr": 1}})
    assert cfg.train.batch_size == 64 and type(cfg.train.batch_size) is int
    assert cfg.optimizer.lr == 1.0 and type(cfg.optimizer.lr) is float


# --- ranges -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "data, path",
    [
        ({"model": {"dropout": 1.5}}, "model.dropout"),
        ({"model": {"dropout": 1.0}}, "model.dropout"),  # [0, 1): all units dropped is nonsense
        ({"model": {"dropout": -0.1}}, "model.dropout"),
        ({"model": {"input_dropout": 1.0}}, "model.input_dropout"),
        ({"model": {"input_dropout": -0.2}}, "model.input_dropout"),
        ({"optimizer": {"lr": -0.1}}, "optimizer.lr"),
        ({"optimizer": {"lr": 0.0}}, "optimizer.lr"),
        ({"optimizer": {"lr": float("nan")}}, "optimizer.lr"),
        ({"optimizer": {"lr": float("inf")}}, "optimizer.lr"),
        ({"train": {"batch_size": 0}}, "train.batch_size"),
        ({"model": {"hidden": []}}, "model.hidden"),
        ({"model": {"hidden": [64, 0]}}, "model.hidden[1]"),
        ({"data": {"val_size": 0}}, "data.val_size"),
        ({"optimizer": {"beta2": 1.0}}, "optimizer.beta2"),
        ({"schedule": {"factor": 1.0}}, "schedule.factor"),
        ({"early_stopping": {"min_delta": -0.01}}, "early_stopping.min_delta"),
    ],
)
def test_out_of_range_names_path(data, path):
    msg = config_error(data)
    assert msg.startswith(f"{path}:"), msg


@pytest.mark.parametrize(
    "data",
    [
        {"model": {"dropout": 0.0}},
        {"model": {"dropout": 0.99}},
        {"model": {"input_dropout": 0.2}},
        {"data": {"val_size": 1}},
        {"train": {"batch_size": 1}},
        {"model": {"hidden": [1]}},
        {"early_stopping": {"patience": 0}},
    ],
)
def test_boundary_values_inside_the_range_are_accepted(data):
    load_config(data)


def test_every_problem_is_named_at_once_and_a_wrong_key_misleads_no_other_check():
    msg = config_error({"model": {"dropout": 1.5, "init": "hee", "foo": 1, "hidden": "wide", "residual": True},
                       "train": {"epochs": 0, "batch_size": "abc"}, "data": 7})
    lines = msg.splitlines()
    assert lines[0] == "7 problems in the config:"
    assert [line.strip().split(":")[0] for line in lines[1:]] == [
        "unknown key 'model.foo' (valid keys", "model.hidden", "train.batch_size", "data",
        "model.init", "model.dropout", "train.epochs"]
    # model.hidden kept its default meanwhile: residual's check of the widths does not speak of it
    assert "model.residual" not in msg


@pytest.mark.parametrize("data, hint", [
    ({"lr": 0.01}, "unknown key 'lr' (did you mean 'optimizer.lr'?)"),
    ({"model": {"lr": 0.01}}, "unknown key 'model.lr' (did you mean 'optimizer.lr'?)"),
    ({"epochs": 5}, "unknown key 'epochs' (did you mean 'train.epochs'?)"),
    ({"norm": "batch"}, "unknown key 'norm' (did you mean 'model.norm' or 'clip.norm'?)"),
    ({"optimizer": {"nme": "sgd"}}, "unknown key 'optimizer.nme' (did you mean 'name'?)"),
])
def test_a_key_of_another_section_is_named_in_full(data, hint):
    assert config_error(data) == hint


def test_the_checks_that_join_keys_come_once_each_key_is_right():
    msg = config_error({"model": {"hidden": [64, 32], "residual": True}})
    assert msg.startswith("model.residual: needs equal hidden widths") and "\n" not in msg


# --- choices ----------------------------------------------------------------------------------
@pytest.mark.parametrize("path", sorted(CHOICES))
def test_unknown_choice_lists_the_choices(path):
    section, key = path.split(".")
    msg = config_error({section: {key: "no-such-thing"}})
    assert msg.startswith(f"{path}:")
    assert "'no-such-thing'" in msg
    for choice in CHOICES[path]:
        assert choice in msg


def test_unknown_choice_suggests_the_closest():
    assert "did you mean 'adam'" in config_error({"optimizer": {"name": "adamm"}})


# --- files and YAML ---------------------------------------------------------------------------
def test_malformed_yaml_gives_file_line_and_column(tmp_path):
    path = write(tmp_path, "seed: 1\noptimizer: name: adam\n")
    msg = config_error(path)
    assert str(path) in msg
    assert "line 2, column 16" in msg


def test_malformed_yaml_in_flow_list(tmp_path):
    path = write(tmp_path, "seed: 1\nmodel:\n  hidden: [512, 256\n  norm: batch\n")
    assert "line 4, column 7" in config_error(path)


def test_missing_config_file(tmp_path):
    msg = config_error(tmp_path / "nope.yaml")
    assert "nope.yaml" in msg and "not found" in msg


def test_config_path_that_is_a_folder(tmp_path):
    assert "folder" in config_error(tmp_path)


def test_top_level_must_be_a_mapping(tmp_path):
    assert "mapping" in config_error(write(tmp_path, "- 1\n- 2\n"))


def test_empty_file_gives_defaults_named_after_the_file(tmp_path):
    cfg = load_config(write(tmp_path, "", name="my exp.yaml"))
    assert cfg.name == "my-exp"
    assert cfg.model == load_config({}).model


@pytest.mark.parametrize("text", ["1e-3", "1E-3", "1.0e-3", ".001", "+1e-3"])
def test_exponent_floats_in_yaml_are_floats(tmp_path, text):
    cfg = load_config(write(tmp_path, f"optimizer:\n  lr: {text}\n"))
    assert type(cfg.optimizer.lr) is float and cfg.optimizer.lr == pytest.approx(0.001)


def test_yaml_integers_stay_integers():
    assert parse_yaml("a: 10\nb: 1e1\nc: 1.5\n", "x") == {"a": 10, "b": 10.0, "c": 1.5}
    assert type(parse_yaml("a: 10\n", "x")["a"]) is int


# --- --set overrides --------------------------------------------------------------------------
@pytest.mark.parametrize("bad", ["optimizer.lr", "=3", "a..b=1", ".a=1", "a.=1", "opt imizer.lr=1"])
def test_malformed_set_is_a_config_error(bad):
    msg = config_error({}, [bad])
    assert repr(bad) in msg and "KEY=VALUE" in msg


def test_set_with_malformed_yaml_value():
    msg = config_error({}, ["model.hidden=[512,256"])
    assert "--set model.hidden" in msg and "malformed YAML" in msg


def test_set_values_are_yaml():
    cfg = load_config({}, ["model.hidden=[512,256]", "optimizer.lr=1e-3", "early_stopping.enabled=false",
                           "model.activation=tanh", "train.epochs=7"])
    assert cfg.model.hidden == [512, 256]
    assert cfg.optimizer.lr == 0.001 and type(cfg.optimizer.lr) is float
    assert cfg.early_stopping.enabled is False
    assert cfg.model.activation == "tanh"
    assert cfg.train.epochs == 7


def test_set_wins_over_file_and_later_set_wins(tmp_path):
    path = write(tmp_path, "optimizer:\n  name: sgd\n  lr: 0.5\n")
    cfg = load_config(path, ["optimizer.lr=0.2", "optimizer.lr=0.3"])
    assert (cfg.optimizer.name, cfg.optimizer.lr) == ("sgd", 0.3)


def test_set_of_an_unknown_key_is_reported_with_its_path():
    assert "'optimizer.learning_rate'" in config_error({}, ["optimizer.learning_rate=0.1"])


def test_set_does_not_modify_the_callers_mapping():
    data = {"model": {"hidden": [8]}}
    load_config(data, ["model.hidden=[4]"])
    assert data == {"model": {"hidden": [8]}}


def test_load_config_name_and_seed_win(tmp_path):
    path = write(tmp_path, "name: from-file\nseed: 1\n")
    cfg = load_config(path, ["seed=2", "name=from-set"], name="from-cli", seed=3)
    assert (cfg.name, cfg.seed) == ("from-cli", 3)
    cfg = load_config(path, ["seed=2"])
    assert (cfg.name, cfg.seed) == ("from-file", 2)


def test_name_override_is_validated():
    assert config_error({}, name="bad/name").startswith("name:")


# --- resolve ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name, lr",
    [("sgd", 0.1), ("momentum", 0.01), ("nesterov", 0.01), ("adagrad", 0.01),
     ("rmsprop", 0.001), ("adam", 0.001), ("adamw", 0.001)],
)
def test_resolve_fills_per_optimizer_lr(name, lr):
    assert load_config({"optimizer": {"name": name}}).optimizer.lr == lr
    assert load_config({"optimizer": {"name": name, "lr": 0.37}}).optimizer.lr == 0.37


def test_every_optimizer_choice_has_a_default_lr():
    for name in CHOICES["optimizer.name"]:
        assert load_config({"optimizer": {"name": name}}).optimizer.lr > 0


def test_resolve_fills_adamw_weight_decay_and_zero_elsewhere():
    assert load_config({"optimizer": {"name": "adamw"}}).optimizer.weight_decay == 0.01
    assert load_config({"optimizer": {"name": "adamw", "weight_decay": 0.05}}).optimizer.weight_decay == 0.05
    assert load_config({"optimizer": {"name": "adamw", "weight_decay": 0}}).optimizer.weight_decay == 0.0
    assert load_config({"optimizer": {"name": "adam"}}).optimizer.weight_decay == 0.0


def test_optimizer_defaults_are_read_from_the_optimizers(monkeypatch):
    """config.py keeps no copy: a rule's defaults decide what resolve() and the schema give."""
    from trickrun.nn.optim import OPTIMIZERS

    monkeypatch.setattr(OPTIMIZERS.get("sgd"), "default_lr", 0.123)
    monkeypatch.setitem(OPTIMIZERS.get("adamw").defaults, "weight_decay", 0.04)
    assert load_config({"optimizer": {"name": "sgd"}}).optimizer.lr == 0.123
    assert load_config({"optimizer": {"name": "adamw"}}).optimizer.weight_decay == 0.04
    for name in OPTIMIZERS.names():  # each rule's own defaults, none kept in the schema
        resolved = load_config({"optimizer": {"name": name}}).optimizer
        for key, value in OPTIMIZERS.get(name).defaults.items():
            assert getattr(Config().optimizer, key) is None, key  # None: the rule decides
            assert getattr(resolved, key) == value, (name, key)


def test_resolve_fills_schedule_gamma():
    assert load_config({"schedule": {"name": "exponential"}}).schedule.gamma == 0.98
    assert load_config({"schedule": {"name": "step"}}).schedule.gamma == 0.1
    assert load_config({"schedule": {"name": "step", "gamma": 0.3}}).schedule.gamma == 0.3


@pytest.mark.parametrize("name", [n for n in CHOICES["optimizer.name"] if n != "adamw"])
def test_weight_decay_with_non_adamw_is_an_error(name):
    msg = config_error({"optimizer": {"name": name, "weight_decay": 0.1}})
    assert msg.startswith("optimizer.weight_decay:") and "adamw" in msg


def test_resolve_does_not_modify_its_input():
    from trickrun.config import resolve

    cfg = Config()
    resolved = resolve(cfg)
    assert cfg.optimizer.lr is None and resolved.optimizer.lr == 0.001


# --- round trip -------------------------------------------------------------------------------
ROUND_TRIP_CASES = [
    {},
    {"name": "adamw-cosine", "seed": 7, "optimizer": {"name": "adamw", "eps": 1e-7},
     "schedule": {"name": "cosine", "min_lr": 1e-5, "warmup_epochs": 2},
     "model": {"hidden": [512, 256, 10], "norm": "batch", "dropout": 0.25, "activation": "leaky_relu"},
     "clip": {"norm": 5.0, "value": 0.5}, "regularization": {"l2": 1e-4, "l1": 1e-6},
     "data": {"dir": "/tmp/some data", "train_limit": 1000, "scale": "standard"},
     "early_stopping": {"monitor": "val_acc", "enabled": False, "min_delta": 0.001}},
    {"optimizer": {"name": "momentum", "lr": 0.05}, "schedule": {"name": "step", "step_size": 4}},
]


@pytest.mark.parametrize("data", ROUND_TRIP_CASES)
def test_resolved_config_dumped_and_loaded_is_identical(tmp_path, data):
    cfg = load_config(data)
    text = dump_yaml(cfg.to_dict())
    assert "hidden: [" in text  # lists in flow style, as documented
    again = load_config(write(tmp_path, text, name="other-name.yaml"))
    assert again == cfg
    assert dump_yaml(again.to_dict()) == text
    assert dataclasses.asdict(again) == cfg.to_dict()


@pytest.mark.parametrize(
    "data",
    [
        {"name": "1e5"},  # a valid run name that YAML 1.2 reads as a float
        {"name": "2e-3"},
        {"data": {"dir": "1e3"}},
    ],
)
def test_round_trip_keeps_strings_that_look_like_exponent_floats(tmp_path, data):
    cfg = load_config(data)
    again = load_config(write(tmp_path, dump_yaml(cfg.to_dict())))
    assert again == cfg


@pytest.mark.parametrize("schedule", ["cosine", "plateau"])
def test_a_schedule_floor_above_the_learning_rate_is_refused(schedule):
    with pytest.raises(ConfigError, match=r"schedule.min_lr: 0.01 is above optimizer.lr 0.001"):
        load_config({"schedule": {"name": schedule, "min_lr": 0.01}})
    assert load_config({"schedule": {"name": schedule, "min_lr": 0.001}}).schedule.min_lr == 0.001
    # a schedule that does not read min_lr ignores it, as everywhere else
    assert load_config({"schedule": {"name": "step", "min_lr": 0.01}}).schedule.name == "step"


@pytest.mark.parametrize("key", ["train.batch_size", "data.train_limit"])
def test_batch_norm_on_batches_of_one_example_is_refused(key):
    section, name = key.split(".")
    with pytest.raises(ConfigError, match=rf"batch normalization needs batches of at least 2 .* {key} is 1"):
        load_config({"model": {"norm": "batch"}, section: {name: 1}})
    assert load_config({"model": {"norm": "layer"}, section: {name: 1}}).model.norm == "layer"
