"""Property-based fuzzing of configs and `--set` overrides through the CLI.

Whatever YAML file and `--set` strings a user gives, `trickrun validate` ends with exit code
0 (and prints a config that validates to itself) or 2 (and says `error:`), never with a
traceback; `trickrun train` agrees with validate, and creates a run directory exactly when
it exits 0. Generated configs mix the real key paths of `Config().to_dict()` (often with
plausible values, so that valid configs are common) with random keys and values of every
YAML type; `--set` strings mix real keys with random text and YAML edge cases.

Each property runs inside its test function, so the outcomes of all its examples can be
counted afterwards: a strategy that stopped producing valid configs (or invalid ones) would
make the property vacuous, and fails the test instead.
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, Phase, assume, example, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import trickrun.train
from trickrun.cli import app
from trickrun.config import CHOICES, Config, ConfigError, load_config

runner = CliRunner()

REAL = Config().to_dict()
FAKE_DIR = "@FAKE_DATA@"  # replaced by the fake dataset's folder when a test runs


def _paths(data: dict, prefix: tuple = ()) -> list[tuple[str, ...]]:
    out = []
    for key, value in data.items():
        out.append((*prefix, key))
        if isinstance(value, dict):
            out.extend(_paths(value, (*prefix, key)))
    return out


def _default(path: tuple[str, ...]) -> Any:
    value: Any = REAL
    for key in path:
        value = value[key]
    return value


PATHS = _paths(REAL)
LEAVES = [p for p in PATHS if not isinstance(_default(p), dict)]
SECTIONS = [p for p in PATHS if p not in LEAVES]
NAMES = sorted({p[-1] for p in PATHS})
ALL_CHOICES = sorted({c for choices in CHOICES.values() for c in choices})

# --- values ---------------------------------------------------------------------------------
HUGE_INTS = [0, -1, 1, 2, 65_536, 65_537, 2**31, 2**53 + 1, -(2**63), 2**64, 10**30, -(10**30)]
ODD_FLOATS = [math.nan, math.inf, -math.inf, -0.0, 5e-324, 1e-320, 1e308, 0.5, 1.0, 1e-8, 0.999]
scalars = st.one_of(
    st.integers(),
    st.sampled_from(HUGE_INTS),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(ODD_FLOATS),
    st.text(max_size=12),
    st.booleans(),
    st.none(),
    st.sampled_from(ALL_CHOICES),
)
keys = st.one_of(st.sampled_from(NAMES), st.text(max_size=8), st.integers(-3, 3), st.booleans(), st.none())
wild = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=3), max_leaves=10
)
run_names = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,12}", fullmatch=True)
small_pos = st.floats(min_value=1e-4, max_value=0.95)


def plausible(path: tuple[str, ...]) -> st.SearchStrategy:
    """Values that are often valid for the key at `path` (small sizes: no big allocations)."""
    dotted = ".".join(path)
    if path in SECTIONS:
        return st.one_of(st.just({}), st.none())
    if dotted in CHOICES:
        return st.sampled_from(CHOICES[dotted])
    special = {
        "name": st.none() | run_names,
        "data.dir": st.sampled_from([None, FAKE_DIR, f"{FAKE_DIR}/missing", "/", "a\x00b"]),
        "data.val_size": st.integers(1, 700),
        "data.train_limit": st.none() | st.integers(1, 1000),
        "model.hidden": st.lists(st.integers(1, 32), min_size=1, max_size=3),
        "optimizer.lr": st.none() | small_pos,
        "optimizer.weight_decay": st.none() | st.just(0.0) | small_pos,
        "clip.norm": st.none() | small_pos,
        "clip.value": st.none() | small_pos,
        "schedule.gamma": st.none() | small_pos,
    }
    if dotted in special:
        return special[dotted]
    default = _default(path)
    if isinstance(default, bool):
        return st.booleans()
    if isinstance(default, int):
        return st.integers(0, 40)
    if isinstance(default, float):
        return st.sampled_from([0.0, 0.5, default]) | st.floats(0, 0.95)
    return wild


def _set_path(data: dict, path: tuple, value: Any) -> None:
    node = data
    for key in path[:-1]:
        if not isinstance(node.get(key), dict):
            node[key] = {}
        node = node[key]
    node[path[-1]] = value


@st.composite
def config_data(draw) -> Any:
    """A nested mapping of real and random keys; rarely, something that is not a mapping."""
    if draw(st.integers(0, 19)) == 0:
        return draw(wild)
    data: dict = {}
    for _ in range(draw(st.integers(0, 5))):
        kind = draw(st.sampled_from(["real"] * 5 + ["section+random", "random"]))
        if kind == "real":
            path = draw(st.sampled_from(PATHS))
            value = draw(plausible(path) if draw(st.integers(0, 7)) else wild)
        elif kind == "section+random":
            path = (*draw(st.sampled_from(SECTIONS)), draw(keys))
            value = draw(wild)
        else:
            path = tuple(draw(st.lists(keys, min_size=1, max_size=3)))
            value = draw(wild)
        _set_path(data, path, value)
    return data


# --- --set strings ----------------------------------------------------------------------------
YAML_FRAGMENTS = [
    "[1,", "{a: 1}", "!!python/object:os.system", "!!python/object/apply:os.system ['true']",
    "&a *a", "&a [*a]", "*a", "", " ", "=", "==1", "null", "~", ".nan", "-.inf", "1e999", "1e-3",
    "0x1F", "0o17", "1_000", "yes", "off", "2001-12-14", "2001-13-45", "!!binary AAAA", "!!set {a}",
    "!!int abc", "!!float x", "!!timestamp 1", "? a", "- 1", "'unterminated", '"\\ud800"', '"a\\0b"',
    "\t", "%YAML 1.1\n---\n1", "---\n...", "a: b: c", "{", "}", "[[[[]]]]", "[" * 3000, "9" * 5000,
    "[/]", "[bold]x[/bold]", "[/x]", "\x00", "\x1b[31mred", "<<: *a", "[1, [2, [3]]]", "{hidden: [8]}",
]
KEY_EDGES = ["", " ", ".", "a..b", ".a", "a.", "optimizer.lr.x", "seed.x", "data.dir.x", "model.hidden.0",
             "optimizer", "x" * 200, "ÿ.é", "[/]"]


def _flow_yaml(value: Any) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, width=10**6)
    return text.removesuffix("\n...\n").strip()


set_values = st.one_of(
    st.sampled_from(YAML_FRAGMENTS),
    st.text(max_size=20),
    wild.map(_flow_yaml),
    st.tuples(st.sampled_from(LEAVES), st.integers(0, 3)).flatmap(
        lambda t: plausible(t[0]).map(_flow_yaml)),
)
set_keys = st.one_of(
    st.sampled_from([".".join(p) for p in PATHS]),
    st.sampled_from(KEY_EDGES),
    st.text(max_size=15),
)
plausible_sets = st.sampled_from(LEAVES).flatmap(
    lambda path: plausible(path).map(lambda v: f"{'.'.join(path)}={_flow_yaml(v)}"))
set_strings = st.one_of(
    plausible_sets, plausible_sets, plausible_sets, plausible_sets,
    st.tuples(set_keys, set_values).map(lambda kv: f"{kv[0]}={kv[1]}"),
    st.tuples(set_keys, set_values).map(lambda kv: f"{kv[0]} = {kv[1]}"),
    st.text(max_size=30),
    st.sampled_from(["=", "==", "=1", "a=", "a", "", "seed=", "=seed"]),
)

# --- whole cases: a config file's content and the --set strings ---------------------------------
file_contents = st.one_of(
    config_data().map(lambda d: ("yaml", d)),
    config_data().map(lambda d: ("yaml", d)),
    config_data().map(lambda d: ("yaml", d)),
    st.text(max_size=60).map(lambda t: ("text", t)),
    st.lists(st.sampled_from(YAML_FRAGMENTS + ["model:", "  hidden:", "seed: 1", "name: x"]), max_size=5)
    .map(lambda parts: ("text", "\n".join(parts))),
    st.binary(max_size=40).map(lambda b: ("bytes", b)),
)
cases = st.tuples(file_contents, st.one_of(st.just([]), st.lists(set_strings, max_size=3)))
# Error messages quoting user text must not be read as rich markup.
MARKUP_CASES = [(("yaml", {"[/x]": 1}), []), (("yaml", {}), ["[/]=1"]), (("yaml", {"model": {"[bold]": 1}}), [])]


def _substitute(value: Any, fake_dir: str) -> Any:
    if isinstance(value, str):
        return value.replace(FAKE_DIR, fake_dir)
    if isinstance(value, dict):
        return {k: _substitute(v, fake_dir) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, fake_dir) for v in value]
    return value


def write_case(case, folder: Path, fake_dir: str, small_val: bool = False) -> tuple[Path, list[str]]:
    """Write the case's config file; return its path and the --set options.

    `small_val`: a mapping that leaves data.val_size unset gets 100 (the default 5000 is
    more than the fake dataset's 600 examples, which would make nearly every config fail)."""
    (kind, content), sets = case
    path = folder / "fuzz.yaml"
    if small_val and kind == "yaml" and isinstance(content, dict):
        data = content.get("data")
        if data is None:
            content = {**content, "data": {"val_size": 100}}
        elif isinstance(data, dict) and "val_size" not in data:
            content = {**content, "data": {**data, "val_size": 100}}
    if kind == "yaml":
        path.write_text(yaml.safe_dump(_substitute(content, fake_dir), sort_keys=False), encoding="utf-8")
    elif kind == "text":
        path.write_text(content.replace(FAKE_DIR, fake_dir), encoding="utf-8")
    else:
        path.write_bytes(content)
    return path, [f"--set={s.replace(FAKE_DIR, fake_dir)}" for s in sets]


def describe(result) -> str:
    import traceback

    tb = "".join(traceback.format_exception(*result.exc_info)) if result.exc_info else ""
    return f"exit {result.exit_code}\nstdout: {result.stdout!r}\nstderr: {result.stderr!r}\n{tb}"


def assert_clean_exit(result, allowed: tuple[int, ...]) -> None:
    assert result.exception is None or isinstance(result.exception, SystemExit), describe(result)
    assert result.exit_code in allowed, describe(result)
    assert "Traceback" not in result.output, describe(result)
    if result.exit_code != 0:
        assert "error:" in result.stderr, describe(result)


FUZZ = dict(deadline=None, derandomize=True, database=None, print_blob=False, report_multiple_bugs=False)


def test_validate_exits_0_or_2_and_never_crashes(tmp_path):
    outcomes: Counter = Counter()

    @settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], **FUZZ)
    @given(case=cases)
    @example(case=MARKUP_CASES[0])
    @example(case=MARKUP_CASES[1])
    @example(case=MARKUP_CASES[2])
    def check(case):
        path, sets = write_case(case, tmp_path, str(tmp_path / "data"))
        result = runner.invoke(app, ["validate", str(path), *sets])
        assert_clean_exit(result, (0, 2))
        outcomes[result.exit_code] += 1
        if result.exit_code == 0:
            # The printed config is complete and is itself a config that validates to itself.
            resolved = yaml.safe_load(result.stdout)
            assert set(resolved) == set(REAL)
            again = tmp_path / "resolved.yaml"
            again.write_text(result.stdout, encoding="utf-8")
            second = runner.invoke(app, ["validate", str(again)])
            assert second.exit_code == 0, describe(second)
            assert second.stdout == result.stdout

    check()
    assert sum(outcomes.values()) >= 400, outcomes
    assert outcomes[0] >= 40 and outcomes[2] >= 200, outcomes  # both outcomes really exercised


MAX_PARAMS = 2_000_000  # valid configs build their MLP: keep it small


def _fake_run(self, writer) -> dict:
    """Trainer.run replaced: return at once a result of the shape Trainer._finish gives."""
    return {
        "status": "completed", "stop_reason": "fuzz: not trained", "epochs_run": 0, "best_epoch": None,
        "stopped_epoch": 0, "best": {"monitor": self.stopper.monitor, "val_loss": None, "val_acc": None},
        "test": None, "train_s": 0.0, "divergence": None,
    }


def _run_dirs(root: Path) -> set[Path]:
    return {p for p in root.iterdir() if p.is_dir()} if root.exists() else set()


def test_train_agrees_with_validate_and_leaves_a_run_dir_only_on_success(fake_data, tmp_path, monkeypatch):
    monkeypatch.setattr(trickrun.train.Trainer, "run", _fake_run)
    runs = tmp_path / "runs"
    fake_dir = str(fake_data / "mnist")
    cfg_folder = tmp_path / "cfg"
    cfg_folder.mkdir()
    outcomes: Counter = Counter()

    # No shrinking: each example trains (a little), and shrinking a failure here took minutes;
    # the failure is reported with its traceback, and the validate property shrinks config bugs.
    @settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
              phases=[Phase.explicit, Phase.generate], **FUZZ)
    @given(case=cases)
    def check(case):
        path, sets = write_case(case, cfg_folder, fake_dir, small_val=True)
        try:
            cfg = load_config(path, [s.removeprefix("--set=") for s in sets])
        except ConfigError:
            cfg = None
        except Exception:  # validate (below) reports it with the CLI's output
            cfg = None
        if cfg is not None:
            widths = [784, *cfg.model.hidden, 10]
            assume(sum(a * b for a, b in zip(widths, widths[1:])) <= MAX_PARAMS)
        checked = runner.invoke(app, ["validate", str(path), *sets])
        assert_clean_exit(checked, (0, 2))

        before = _run_dirs(runs)
        result = runner.invoke(app, ["train", str(path), "--quiet", *sets])
        assert_clean_exit(result, (0, 2, 3))
        new = _run_dirs(runs) - before
        outcomes[result.exit_code] += 1
        if checked.exit_code == 2:  # every config error validate finds, train finds first
            assert result.exit_code == 2, describe(result)
        if result.exit_code == 0:
            assert len(new) == 1, (new, describe(result))
            (run_dir,) = new
            assert result.stdout.strip().splitlines()[-1] == str(run_dir)
            assert (run_dir / "config.yaml").read_text() == checked.stdout
            assert (run_dir / "summary.json").is_file()
        else:
            assert new == set(), (new, describe(result))
        if result.exit_code == 3:
            assert "data" in result.stderr or "mnist" in result.stderr, describe(result)

    check()
    assert sum(outcomes.values()) >= 300, outcomes
    assert outcomes[0] >= 20 and outcomes[2] >= 100, outcomes


# The YAML edge cases once more, each for certain (the properties above draw them only by chance).
FILE_EDGES = YAML_FRAGMENTS + ["model:\n  hidden: &a [*a]\n", "data: &d\n  x: *d\n", "seed: " + "9" * 5000,
                               "name: 2001-13-45\n", "optimizer:\n  lr: !!timestamp 1\n", "- [" * 500]


@pytest.mark.parametrize("fragment", YAML_FRAGMENTS, ids=range(len(YAML_FRAGMENTS)))
def test_each_yaml_edge_case_as_a_set_value_exits_0_or_2(tmp_path, fragment):
    path = tmp_path / "c.yaml"
    path.write_text("")
    for key in ("optimizer.lr", "model.hidden", "name", "data"):
        assert_clean_exit(runner.invoke(app, ["validate", str(path), f"--set={key}={fragment}"]), (0, 2))


@pytest.mark.parametrize("text", FILE_EDGES, ids=range(len(FILE_EDGES)))
def test_each_yaml_edge_case_as_a_file_exits_0_or_2(tmp_path, text):
    path = tmp_path / "c.yaml"
    path.write_text(text, encoding="utf-8")
    assert_clean_exit(runner.invoke(app, ["validate", str(path)]), (0, 2))


@pytest.mark.parametrize("text", ["[bold]x=1", "[/]=1", "[red]a[/red].b=1", "[link=file:///etc]k[/link]=1"])
def test_error_messages_quote_user_text_verbatim_not_as_markup(tmp_path, text):
    path = tmp_path / "c.yaml"
    path.write_text("")
    result = runner.invoke(app, ["validate", str(path), f"--set={text}"])
    assert_clean_exit(result, (2,))
    assert text in result.stderr
