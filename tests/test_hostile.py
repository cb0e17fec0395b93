"""Hostile input: YAML alias bombs, huge files, non-finite floats, odd names and folders,
duplicate keys, and models too large for the machine. Each must end at once with exit 2
and a short message, never hang, eat memory or echo the whole bad value.

The alias bombs and huge files run the real CLI in a subprocess with a timeout, so that a
hang fails the test instead of stalling the suite.
"""

from __future__ import annotations

import os
import resource
from pathlib import Path
import subprocess
import sys

import pytest
from typer.testing import CliRunner

import trickrun.memory as memory
from runfactory import DEAD_PID, make_run
from trickrun import api
from trickrun.cli import app
from trickrun.config import Config, ConfigError, default_name, load_config, short
from trickrun.nn.optim import OPTIMIZERS

runner = CliRunner()
TIMEOUT = 20  # seconds: a bounded parse takes well under one
MAX_MESSAGE = 600  # characters of stderr an error may take
MEMORY_LIMIT = 4 * 2**30  # address space of a CLI child process


def bomb(key_yaml: str, levels: int = 9) -> str:
    """A billion laughs: `levels` anchors of ten aliases each, the last used at `key_yaml`."""
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    return "\n".join(lines) + f"\n{key_yaml}*a{levels - 1}\n"


def _limit_memory() -> None:
    """In the child: an unbounded expansion fails with MemoryError instead of filling the machine."""
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def trickrun(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "trickrun", *args], capture_output=True, text=True,
                          timeout=TIMEOUT, stdin=subprocess.DEVNULL, preexec_fn=_limit_memory)


# --- 1. alias bombs -----------------------------------------------------------------------------
@pytest.mark.parametrize("key_yaml, key", [
    ("name: ", "name"), ("seed: ", "seed"), ("data:\n  dataset: ", "data.dataset"),
    ("model:\n  hidden: ", "model.hidden"),
])
def test_alias_bomb_in_a_config_file_is_refused_at_once(tmp_path, key_yaml, key):
    path = tmp_path / "bomb.yaml"
    path.write_text(bomb(key_yaml), encoding="utf-8")
    commands = [["validate"]] + ([["train", "--runs-dir", str(tmp_path / "runs")]] if key == "model.hidden" else [])
    for args in commands:
        result = trickrun(*args, str(path))
        assert result.returncode == 2, result.stderr
        assert f"{key} expands to" in result.stderr and "10,000" in result.stderr
        assert len(result.stderr) < MAX_MESSAGE and "lol" not in result.stderr
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("key", ["name", "seed", "data.dataset", "model.hidden"])
def test_alias_bomb_in_a_set_value_is_refused_at_once(tmp_path, key):
    path = tmp_path / "c.yaml"
    path.write_text("", encoding="utf-8")
    flow = "[" + ", ".join(["&a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
                           + [f"&a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]) + "]"
    result = trickrun("validate", str(path), f"--set={key}={flow}")
    assert result.returncode == 2, result.stderr
    assert f"--set {key}:" in result.stderr and "expands to" in result.stderr
    assert len(result.stderr) < MAX_MESSAGE and "lol" not in result.stderr


def test_self_referring_alias_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="--set model.hidden: the YAML alias .* contains it"):
        load_config({}, ["model.hidden=&a [*a]"])
    path = tmp_path / "c.yaml"
    path.write_text("data: &d\n  x: *d\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="contains it"):
        load_config(path)


def test_alias_bomb_in_a_saved_config_leaves_compare_fast_and_warns_briefly(tmp_path):
    runs = tmp_path / "runs"
    good, bad = make_run(runs, "good"), make_run(runs, "bad")
    (bad / "config.yaml").write_text(bomb("model:\n  hidden: "), encoding="utf-8")
    result = trickrun("compare", str(good), str(bad), "--all")
    assert result.returncode == 0, result.stderr
    warning = [line for line in result.stderr.splitlines() if "expands to" in line]
    assert warning and all(len(line) < MAX_MESSAGE for line in warning)
    assert "lol" not in result.stderr + result.stdout


def test_a_few_ordinary_aliases_still_work(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("optimizer:\n  name: momentum\n  beta1: &b 0.5\n  momentum: *b\n", encoding="utf-8")
    assert load_config(path).optimizer.momentum == 0.5


# --- 2. unbounded reads ---------------------------------------------------------------------
def test_dev_zero_as_config_is_refused_with_the_limit():
    result = trickrun("validate", "/dev/zero")
    assert result.returncode == 2, result.stderr
    assert "1 MiB" in result.stderr and "Traceback" not in result.stderr


def test_a_2_mib_config_is_refused_with_the_limit(tmp_path):
    path = tmp_path / "big.yaml"
    path.write_text("# padding\n" * (2 * 2**20 // 10) + "seed: 1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"larger than 1,048,576 bytes \(1 MiB\)"):
        load_config(path)
    path.write_text("# padding\n" * (2**20 // 20) + "seed: 1\n", encoding="utf-8")
    assert load_config(path).seed == 1  # half a MiB is fine


# --- 3. values, names, folders, duplicate keys ------------------------------------------------
def _float_keys() -> list[str]:
    """Every key annotated float (or float | None) in the schema."""
    import dataclasses
    from typing import get_type_hints

    out = []
    for section in dataclasses.fields(Config):
        hint = get_type_hints(Config)[section.name]
        if dataclasses.is_dataclass(hint):
            out += [f"{section.name}.{k}" for k, t in get_type_hints(hint).items() if float in (t, *getattr(t, "__args__", ()))]
    return out


FLOAT_KEYS = _float_keys()


def test_the_float_keys_are_found():
    assert {"optimizer.eps", "schedule.min_lr", "optimizer.lr", "model.dropout"} <= set(FLOAT_KEYS)


@pytest.mark.parametrize("key", FLOAT_KEYS)
@pytest.mark.parametrize("value", [".inf", "-.inf", ".nan", "1" + "0" * 400])
def test_every_float_key_refuses_nan_and_infinity(key, value):
    with pytest.raises(ConfigError, match=f"^{key}: must be a finite number") as err:
        load_config({}, [f"{key}={value}"])
    assert len(str(err.value)) < 200


@pytest.mark.parametrize("stem", ["_sweep", "-x", "." + "a" * 10, "a" * 150, "ünï cødé", "___"])
def test_a_config_whose_file_name_is_no_run_name_still_trains_with_a_derived_name(tmp_path, stem):
    path = tmp_path / f"{stem}.yaml"
    path.write_text("", encoding="utf-8")
    name = load_config(path).name
    assert name == default_name(path) and 1 <= len(name) <= 100
    assert load_config({"name": name}).name == name  # a valid name


def test_default_name_keeps_ordinary_stems():
    assert default_name("configs/baseline.yaml") == "baseline"
    assert default_name("my exp.yaml") == "my-exp"
    assert default_name("_sweep.yaml") == "sweep"
    assert default_name("a" * 150 + ".yaml") == "a" * 100


def test_a_rejected_name_states_the_rule_and_limit_and_is_cut(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("", encoding="utf-8")
    result = runner.invoke(app, ["train", str(path), "--name", "x" * 5000])
    assert result.exit_code == 2
    assert "100 characters" in result.stderr and "5,000 characters" in result.stderr
    assert "x" * 200 not in result.stderr and len(result.stderr) < MAX_MESSAGE


LONG = "a" * 300  # over the 255 bytes a file name may have: stat says ENAMETOOLONG


@pytest.mark.parametrize("args", [["explain", LONG], ["show", LONG], ["rm", "--yes", LONG], ["compare", LONG, LONG],
                                  ["export", LONG], ["ensemble", LONG, LONG], ["resume", LONG],
                                  ["rm", "--yes", "--sweep", LONG], ["compare", "--sweep", LONG]])
def test_a_name_too_long_for_the_file_system_is_exit_2_saying_so(tmp_path, args):
    (tmp_path / "runs").mkdir()
    result = runner.invoke(app, args)
    assert result.exit_code == 2, (result.output, result.exception)
    assert "error:" in result.stderr and ("too long" in result.stderr or "no sweep" in result.stderr)
    assert "a" * 100 not in result.stderr and len(result.stderr) < MAX_MESSAGE


def test_a_lesson_out_folder_name_too_long_is_exit_2_before_training(tmp_path, monkeypatch):
    (tmp_path / "here").mkdir()
    monkeypatch.chdir(tmp_path / "here")
    result = runner.invoke(app, ["lesson", "--out", LONG])
    assert result.exit_code == 2, (result.output, result.exception)
    assert "too long" in result.stderr and len(result.stderr) < MAX_MESSAGE
    assert list((tmp_path / "here").iterdir()) == []


def test_empty_runs_dir_is_refused_and_nothing_is_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TRICKRUN_DATA_DIR", str(tmp_path / "no-data"))  # never trains, even unchecked
    path = tmp_path / "c.yaml"
    path.write_text("", encoding="utf-8")
    for args in (["train", str(path)], ["ls"], ["compare", "x"]):
        result = runner.invoke(app, [*args, "--runs-dir", ""])
        assert result.exit_code == 2, result.output
        assert "--runs-dir" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.yaml"]


@pytest.mark.parametrize("text, line, key", [
    ("seed: 1\nname: a\nseed: 2\n", 3, "seed"),
    ("optimizer:\n  lr: 0.1\n  name: sgd\n  lr: 0.2\n", 4, "lr"),
    ("model: {hidden: [8], hidden: [16]}\n", 1, "hidden"),
])
def test_duplicate_keys_are_refused_with_line_and_key(tmp_path, text, line, key):
    path = tmp_path / "c.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=f"line {line}, .*duplicate key '{key}'"):
        load_config(path)


def test_a_merge_key_may_still_be_overridden(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("base: &b {lr: 0.1, name: sgd}\noptimizer:\n  <<: *b\n  lr: 0.2\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="unknown key 'base'"):  # not the duplicate `lr`
        load_config(path)


# --- short(): no message echoes a whole user value -----------------------------------------------
HUGE = "y" * 5000
HOSTILE = [
    ({"data": {"dataset": HUGE}}, []), ({"model": {"activation": HUGE}}, []), ({HUGE: 1}, []),
    ({"model": {HUGE: 1}}, []), ({"data": list(range(9000))}, []), ({"model": {"hidden": "z" * 5000}}, []),
    ({"seed": HUGE}, []), ({"early_stopping": {"enabled": HUGE}}, []), ({"optimizer": {"lr": HUGE}}, []),
    ({"model": {"hidden": [10**4000]}}, []), ({}, [HUGE]), ({}, [f"name.x{HUGE}=1"]),
    ({}, [f"seed.{HUGE}=1"]), ({}, [f"model.hidden={HUGE}"]), ({}, ["model.hidden=!!" + HUGE + " 1"]),
]


@pytest.mark.parametrize("data, sets", HOSTILE, ids=range(len(HOSTILE)))
def test_no_error_message_echoes_a_whole_value(data, sets):
    with pytest.raises(ConfigError) as err:
        load_config(data, sets)
    assert len(str(err.value)) < 400, str(err.value)[:500]


def test_short_cuts_long_values_and_says_how_long():
    assert short("abc") == "'abc'"
    assert short("x" * 1000, 60) == "'" + "x" * 59 + "... (1,000 characters)"
    assert "digits" in short(10**5000)
    assert len(short(list(range(10_000)))) < 100


# --- 4. memory ---------------------------------------------------------------------------------
GIB = 2**30


def test_estimate_covers_parameters_gradients_and_optimizer_state():
    for name in ("sgd", "momentum", "adam"):
        cfg = load_config({"model": {"hidden": [1024, 512]}, "optimizer": {"name": name}})
        n_params = 784 * 1024 + 1024 + 1024 * 512 + 512 + 512 * 10 + 10
        n_state = len(OPTIMIZERS.get(name).state_names)
        est = memory.estimate(cfg)
        assert est.parts["optimizer"] >= n_state * n_params * 4
        assert est.total > (2 + n_state) * n_params * 4 + 60_000 * 784 * 4  # and the data


def test_estimate_grows_with_batch_size_and_norm():
    small = memory.estimate(load_config({})).parts["activations"]
    assert memory.estimate(load_config({"train": {"batch_size": 4096}})).parts["activations"] > small
    assert memory.estimate(load_config({"model": {"norm": "batch"}})).parts["activations"] > small
    assert memory.estimate(load_config({"model": {"input_dropout": 0.2}})).parts["activations"] > small


def test_huge_widths_are_refused_and_the_baseline_passes(monkeypatch):
    monkeypatch.setattr(memory, "available_bytes", lambda: 24 * GIB)
    with pytest.raises(ConfigError) as err:
        memory.check_fits(load_config({"model": {"hidden": [40000, 40000]}}))
    message = str(err.value)
    assert "24.0 GiB is available" in message and "model.hidden" in message and "train.batch_size" in message
    memory.check_fits(load_config({"model": {"hidden": [256, 128]}}))
    monkeypatch.setattr(memory, "available_bytes", lambda: 64 * 2**20)
    with pytest.raises(ConfigError, match="needs about"):  # even the baseline needs more than 64 MiB
        memory.check_fits(load_config({}))


def test_without_meminfo_nothing_is_checked(monkeypatch, tmp_path):
    monkeypatch.setattr(memory, "MEMINFO", str(tmp_path / "missing"))
    assert memory.available_bytes() is None
    memory.check_fits(load_config({"model": {"hidden": [60000, 60000, 60000]}}))


def test_meminfo_is_read(tmp_path, monkeypatch):
    path = tmp_path / "meminfo"
    path.write_text("MemTotal:       25000000 kB\nMemFree:  100 kB\nMemAvailable:    2048 kB\n")
    monkeypatch.setattr(memory, "MEMINFO", str(path))
    assert memory.available_bytes() == 2048 * 1024


def test_train_refuses_before_loading_data_or_making_a_run_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(memory, "available_bytes", lambda: 1 * GIB)
    monkeypatch.setenv("TRICKRUN_DATA_DIR", str(tmp_path / "no-data"))  # loading would fail (exit 3)
    path = tmp_path / "big.yaml"
    path.write_text("model:\n  hidden: [40000, 40000]\n", encoding="utf-8")
    result = runner.invoke(app, ["train", str(path), "--runs-dir", str(tmp_path / "runs")])
    assert result.exit_code == 2, result.output
    assert "smaller model.hidden" in result.stderr and "1.0 GiB is available" in result.stderr
    assert not (tmp_path / "runs").exists()


def test_resume_refuses_too(tmp_path, monkeypatch):
    run = make_run(tmp_path / "runs", "big", status="running", pid=DEAD_PID, **{"model.hidden": [40000, 40000]})
    monkeypatch.setattr(memory, "available_bytes", lambda: 1 * GIB)
    with pytest.raises(ConfigError, match="needs about"):
        api.resume(run, progress="quiet")


# The peak is VmHWM, this process's own: ru_maxrss would count the parent's RSS at fork.
MEASURE = """
import tempfile
import trickrun.api as api, trickrun.memory as memory
from trickrun.config import load_config
sets = ["train.epochs=1", "data.train_limit=5000"]
est = memory.estimate(load_config({}, sets)).total
api.train({}, sets, runs_dir=tempfile.mkdtemp(), progress="quiet")
with open("/proc/self/status") as f:
    peak = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM:"))
print(est, peak)
"""


@pytest.mark.slow
def test_estimate_is_within_a_factor_of_two_of_a_real_runs_peak(tmp_path):
    from helpers import real_data_dir

    if real_data_dir() is None:
        pytest.skip("TRICKRUN_DATA_DIR does not hold mnist/")
    env = {"TRICKRUN_DATA_DIR": str(real_data_dir()), "XDG_CACHE_HOME": str(tmp_path / "cache"),
           "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", MEASURE], capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr
    est, peak = map(int, out.stdout.split())
    assert peak / 2 <= est <= peak * 2, (est, peak)


def test_a_new_norm_is_estimated_from_what_it_declares(monkeypatch):
    """memory.py keeps no table by norm name: a norm registered later is estimated from its
    own PARAMS, BUFFERS, REPLACES_BIAS and FLOATS_PER_UNIT."""
    import dataclasses

    from trickrun.nn.layers import NORMS, Norm

    scale_only = type("ScaleOnly", (Norm,), {"PARAMS": {"gamma": 1.0, "beta": 0.0, "delta": 0.0}, "BUFFERS": {"running_scale": 1.0},
                                             "REPLACES_BIAS": True, "FLOATS_PER_UNIT": (7, 1)})
    monkeypatch.setitem(NORMS._items, "scale_only", scale_only)
    cfg = load_config({"model": {"hidden": [100, 50]}, "train": {"batch_size": 64}})
    plain = memory.estimate(cfg).parts
    new = memory.estimate(dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, norm="scale_only"))).parts
    hidden, n_state = 150, 2  # adam: m and v
    extra_params = 3 * hidden - hidden  # three parameters per unit, minus the biases they replace
    assert new["optimizer"] - plain["optimizer"] == (n_state + 1) * extra_params * 4
    assert new["checkpoint"] - plain["checkpoint"] == ((n_state + 1) * extra_params + hidden) * 4  # + its buffer
    assert new["activations"] > plain["activations"]


# --- a stdout that stops taking output -------------------------------------------------
def _views(tmp_path) -> list[list[str]]:
    a, b = make_run(tmp_path / "runs", "a"), make_run(tmp_path / "runs", "b", seed=1)
    return [["ls", "--runs-dir", str(a.parent)], ["show", str(a)], ["compare", str(a), str(b)]]


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full, a device that is always full")
def test_every_view_on_a_full_stdout_is_exit_1_saying_so_without_a_traceback(tmp_path):
    for args in _views(tmp_path):
        with open("/dev/full", "wb") as full:
            proc = subprocess.run([sys.executable, "-m", "trickrun", *args], stdout=full, stderr=subprocess.PIPE,
                                  text=True, timeout=120)
        said = " ".join(proc.stderr.split())
        assert proc.returncode == 1 and said.startswith("error: cannot write to stdout: No space left"), (args, said)
        assert "Traceback" not in said and "Exception ignored" not in said, (args, said)


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full, a device that is always full")
@pytest.mark.parametrize("unbuffered", ["1", ""], ids=["PYTHONUNBUFFERED", "buffered"])
@pytest.mark.parametrize("args", [["--help"], ["train", "--help"], ["--version"]], ids=" ".join)
def test_help_and_version_on_a_full_stdout_are_exit_1_saying_so_without_a_traceback(args, unbuffered):
    """They print from click's own options, before any command's error handling."""
    env = dict(os.environ, PYTHONUNBUFFERED=unbuffered)
    with open("/dev/full", "wb") as full:
        proc = subprocess.run([sys.executable, "-m", "trickrun", *args], stdout=full, stderr=subprocess.PIPE,
                              text=True, timeout=120, env=env)
    said = " ".join(proc.stderr.split())
    assert proc.returncode == 1 and said.startswith("error: cannot write to stdout: No space left"), said
    assert "Traceback" not in said and "Exception ignored" not in said, said


def test_a_reader_that_closes_the_pipe_early_gets_no_traceback(tmp_path):
    for args in _views(tmp_path):
        proc = subprocess.Popen([sys.executable, "-m", "trickrun", *args], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        proc.stdout.close()  # before a byte is read: every write fails with EPIPE
        stderr = proc.stderr.read().decode()
        assert proc.wait(timeout=120) == 1 and stderr == "", (args, stderr)
