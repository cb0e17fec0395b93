"""What a sweep is: a base config, fixed overrides, a grid and seeds, expanded into cells.

Cells are the cartesian product of the grid times the seeds, ordered seed-major (every grid
point with the first seed, then every grid point with the next), so that the results of a
sweep stopped part-way still cover the whole grid.

A cell's run name is `<sweep>_<key>-<value>[_<key>-<value>...]_s<seed>`: the key is the last
part of the dotted key (the whole dotted key with its dots kept where two keys share a last
part), the value as YAML writes it with every character a run name cannot hold replaced by
`-` (a list `[512, 256]` becomes `512x256`). A name longer than the limit is cut and ends with
eight hex digits of a hash of the whole, so distinct cells keep distinct names.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ..config import ALIASES, dump_yaml, parse_override, parse_yaml, read_config_file, short
from ..errors import ConfigError

NAME_LIMIT = 100  # the run-name length limit of config.validate
SWEEP_NAME_LIMIT = 40
MAX_CELLS = 10_000  # more is a typo (a grid of a million cells), refused before anything is built
# Keys a sweep sets itself: each cell's run name (its seed comes from --seeds or a grid axis).
OWN_KEYS = ("name",)
_SAFE = re.compile(r"[^A-Za-z0-9.+-]+")
SWEEP_KEYS = ("name", "base", "set", "grid", "seeds")


@dataclass(frozen=True)
class Cell:
    """One run of the sweep: the grid values it sets and its seed."""

    index: int
    values: tuple[tuple[str, Any], ...]
    seed: int
    name: str

    def overrides(self) -> list[str]:
        """The cell's grid values as `--set KEY=VALUE` strings: for --print-commands only; the
        sweep itself hands each cell its resolved config, never these strings."""
        return [f"{key}={flow(value)}" for key, value in self.values]

    def label(self) -> str:
        """For messages: `optimizer.lr=0.1 model.hidden=[256] seed 0`."""
        return " ".join([*(f"{k}={flow(v)}" for k, v in self.values), f"seed {self.seed}"])


@dataclass
class SweepSpec:
    name: str
    base: Path
    fixed: list[tuple[str, Any]] = field(default_factory=list)  # (dotted key, value) set in every cell
    grid: dict[str, list[Any]] = field(default_factory=dict)
    seeds: list[int] | None = None  # None: the base config's own seed (or the grid's `seed` axis)

    def fixed_overrides(self) -> list[str]:
        """`fixed` as `--set KEY=VALUE` strings, for the record and --print-commands."""
        return [f"{key}={flow(value)}" for key, value in self.fixed]

    def cell_count(self) -> int:
        return math.prod(len(v) for v in self.grid.values()) * len(self.seeds or [0])

    def cells(self, default_seed: int) -> list[Cell]:
        """Every cell, seed-major. A grid axis over `seed` gives each cell its seed."""
        seeds = self.seeds if self.seeds is not None else [default_seed]
        keys = list(self.grid)
        leaves = _short_keys(keys)
        points = list(itertools.product(*(self.grid[k] for k in keys)))
        cells = []
        for seed in seeds:
            for point in points:
                values = tuple(zip(keys, point))
                cell_seed = dict(values).get("seed", seed)
                name = cell_name(self.name, [(leaves[k], v) for k, v in values if k != "seed"], cell_seed)
                cells.append(Cell(len(cells), values, cell_seed, name))
        return _distinct_names(cells)


def _distinct_names(cells: list[Cell]) -> list[Cell]:
    """Two cells whose values differ only in characters a run name cannot hold ('a b' and
    'a-b') would share a name, and so a run: each such name gets a hash of its cell's values."""
    counts = Counter(c.name for c in cells)
    out = []
    for c in cells:
        if counts[c.name] > 1:
            digest = hashlib.sha256(c.label().encode()).hexdigest()[:8]
            c = dataclasses.replace(c, name=f"{c.name[: NAME_LIMIT - 9]}_{digest}")
        out.append(c)
    return out


def flow(value: Any) -> str:
    """A value as one line of YAML (mappings and lists in flow style), the form `--set` reads
    back to the same value."""
    text = dump_yaml({"v": value}, flow=True).strip()
    return text[1:-1].strip()[len("v:"):].strip()


def _short_keys(keys: list[str]) -> dict[str, str]:
    leaves = [k.rsplit(".", 1)[-1] for k in keys]
    return {k: leaf if leaves.count(leaf) == 1 else k for k, leaf in zip(keys, leaves)}


def _slug(value: Any) -> str:
    if isinstance(value, list):
        return "x".join(_slug(v) for v in value) or "empty"
    text = flow(value).strip("'\"")
    return _SAFE.sub("-", text).strip("-") or "x"


def cell_name(sweep: str, values: list[tuple[str, Any]], seed: int) -> str:
    parts = [sweep, *(f"{_SAFE.sub('-', k)}-{_slug(v)}" for k, v in values), f"s{seed}"]
    name = "_".join(parts)
    if len(name) > NAME_LIMIT:
        digest = hashlib.sha256(name.encode()).hexdigest()[:8]
        name = f"{name[: NAME_LIMIT - 9]}_{digest}"
    return name


def safe_name(text: str) -> str:
    """A sweep name from a file name: what a run name cannot hold becomes `-`; a name longer
    than SWEEP_NAME_LIMIT is cut and ends with a hash of the whole, so that two long names
    with a common beginning keep two records."""
    name = _SAFE.sub("-", text).strip("-.+") or "sweep"
    if len(name) > SWEEP_NAME_LIMIT:
        digest = hashlib.sha256(name.encode()).hexdigest()[:8]
        name = f"{name[: SWEEP_NAME_LIMIT - 9].rstrip('-.+')}-{digest}"
    return name


# ---------------------------------------------------------------------------------------
# Reading a sweep from the command line and from a sweep file.


def parse_grid_option(text: str) -> tuple[str, list[Any]]:
    """`--grid KEY=VALUES`: VALUES is a YAML flow list or comma-separated scalars."""
    key_text, sep, raw = text.partition("=")
    if not sep:
        raise ConfigError(f"--grid {text[:60]!r}: expected KEY=VALUES, e.g. --grid optimizer.lr=0.01,0.001")
    key = _sweepable(_dotted_key(key_text, "--grid"), "--grid")
    raw = raw.strip()
    if not raw:
        raise ConfigError(f"--grid {key}: no values; e.g. --grid {key}=a,b or --grid '{key}=[a, b]'")
    if raw.startswith("["):
        values = _flow_list(key, raw)
        if not isinstance(values, list):
            raise ConfigError(f"--grid {key}: expected a list such as [0.1, 0.01]")
    else:
        parts = raw.split(",")
        if not all(part.strip() for part in parts):
            raise ConfigError(f"--grid {key}: the values {short(raw)} have an empty one between commas; "
                              f"write null for the key's default")
        values = [parse_yaml(part, f"--grid {key}") for part in parts]
    return key, _check_values(key, values, "--grid")


def _dotted_key(key: Any, where: str) -> str:
    """`key` if it has the form of a config key (optimizer.lr), else a ConfigError from `where`."""
    try:
        parse_override(f"{key}=")
    except ConfigError:
        raise ConfigError(f"{where} {short(str(key))}: expected a dotted config key, "
                          f"such as optimizer.lr or model.hidden") from None
    return str(key).strip()


def _flow_list(key: str, raw: str) -> Any:
    """VALUES that start with `[`, read as YAML. `[256],[512]` (a list per value, comma-separated)
    is not YAML: the error then shows the one list that holds them, quoted for the shell."""
    try:
        return parse_yaml(raw, f"--grid {key}")
    except ConfigError:
        try:
            whole = parse_yaml(f"[{raw}]", f"--grid {key}")
        except ConfigError:
            whole = None
        if isinstance(whole, list) and len(whole) > 1:
            raise ConfigError(f"--grid {key}={raw}: a grid of lists is one YAML list of them, in quotes so "
                              f"the shell keeps it whole: --grid '{key}={flow(whole)}'") from None
        raise


def _sweepable(key: str, where: str) -> str:
    if key in OWN_KEYS:
        raise ConfigError(f"{where} {key}: a sweep names each cell's run itself (<sweep>_<values>_s<seed>); "
                          f"name the sweep with --name instead")
    return key


def _check_values(key: str, values: list[Any], where: str) -> list[Any]:
    """`values` of a grid axis, none listed twice, also under another name of a choice
    (glorot and xavier): such cells would be one configuration trained twice, counted as two."""
    if not values:
        raise ConfigError(f"{where} {key}: the list of values is empty")
    aliases = ALIASES.get(key, {})
    seen: list[tuple[Any, Any]] = []  # (the value as given, what it stands for); lists are values too
    for v in values:
        meaning = aliases.get(v, v) if isinstance(v, str) else v
        for given, meant in seen:
            if meant == meaning:
                if given == v:
                    raise ConfigError(f"{where} {key}: the value {flow(v)[:40]} is listed twice")
                raise ConfigError(f"{where} {key}: the values {flow(given)[:40]} and {flow(v)[:40]} name the same "
                                  f"choice")
        seen.append((v, meaning))
    return values


def parse_seed_list(text: str) -> list[int]:
    try:
        seeds = [int(part) for part in text.split(",")]
    except ValueError:
        raise ConfigError(f"--seed-list {text[:40]!r}: expected whole numbers separated by commas, e.g. 0,3,7") from None
    return _check_seeds(seeds, "--seed-list")


def _check_seeds(seeds: list[Any], where: str) -> list[int]:
    if not seeds:
        raise ConfigError(f"{where}: no seeds")
    for s in seeds:
        if isinstance(s, bool) or not isinstance(s, int) or s < 0:
            raise ConfigError(f"{where}: seeds are whole numbers from 0, got {str(s)[:40]!r}")
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"{where}: a seed is listed twice")
    return list(seeds)


def given_seeds(seeds: int | None, seed_list: str | None) -> list[int] | None:
    """The seeds `--seeds N` or `--seed-list` give, None for neither; ConfigError for both
    or for a bad value."""
    if seeds is not None and seed_list is not None:
        raise ConfigError("--seeds and --seed-list: give one of them")
    if seeds is not None:
        return seeds_from_count(seeds)
    return parse_seed_list(seed_list) if seed_list is not None else None


def seeds_from_count(count: int, where: str = "--seeds") -> list[int]:
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 1000:
        raise ConfigError(f"{where}: the number of seeds is a whole number from 1 to 1000, got {str(count)[:40]!r}")
    return list(range(count))


def is_sweep_file(data: Mapping[str, Any]) -> bool:
    """A sweep file has `base:` or `grid:` at the top; a config has neither."""
    return "base" in data or "grid" in data


def spec_from_file(path: Path, data: Mapping[str, Any]) -> SweepSpec:
    unknown = [k for k in data if k not in SWEEP_KEYS]
    if unknown:
        raise ConfigError(f"{path}: unknown sweep key {str(unknown[0])[:40]!r}; a sweep file has {', '.join(SWEEP_KEYS)}")
    if not isinstance(data.get("base"), str):
        raise ConfigError(f"{path}: base: expected the path of a config file, relative to the sweep file")
    spec = SweepSpec(name=_file_sweep_name(path, data), base=path.parent / data["base"])
    if _same_file(spec.base, path):
        raise ConfigError(f"{path}: base: points at this sweep file itself; base is the config the cells start from")
    spec.fixed = _fixed_values(path, data.get("set"))
    grid = data.get("grid") or {}
    if not isinstance(grid, Mapping):
        raise ConfigError(f"{path}: grid: expected a mapping of dotted keys to lists of values")
    for key, values in grid.items():
        if not isinstance(values, list):
            raise ConfigError(f"{path}: grid.{str(key)[:60]}: expected a list of values")
        key = _dotted_key(key, f"{path}: grid:")
        spec.grid[key] = _check_values(_sweepable(key, f"{path}: grid"), values, f"{path}: grid")
    seeds = data.get("seeds")
    if isinstance(seeds, list):
        spec.seeds = _check_seeds(seeds, f"{path}: seeds")
    elif seeds is not None:
        spec.seeds = seeds_from_count(seeds, f"{path}: seeds")
    return spec


def _file_sweep_name(path: Path, data: Mapping[str, Any]) -> str:
    name = data.get("name")
    if name is None:
        return safe_name(path.stem)
    if not isinstance(name, str) or safe_name(name) != name:
        raise ConfigError(f"{path}: name: {str(name)[:40]!r} cannot name a sweep; use letters, digits, '.', '+' or '-'")
    return name


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


def _fixed_values(path: Path, fixed: Any) -> list[tuple[str, Any]]:
    """`set:` as a mapping of dotted keys to values."""
    if fixed is None:
        return []
    if not isinstance(fixed, Mapping):
        raise ConfigError(f"{path}: set: expected a mapping of dotted keys to values")
    out = []
    for key, value in fixed.items():
        key = _dotted_key(key, f"{path}: set:")
        out.append((_sweepable(key, f"{path}: set:"), value))
    return out


def _parse_set(texts: list[str]) -> list[tuple[str, Any]]:
    """`--set KEY=VALUE` strings, parsed once."""
    out = []
    for text in texts:
        keys, value = parse_override(text)
        out.append((_sweepable(".".join(keys), "--set"), value))
    return out


def load_spec(source: Path, *, grid: list[str], fixed: list[str], seeds: int | None,
              seed_list: str | None, name: str | None) -> SweepSpec:
    """The sweep of `trickrun sweep SOURCE ...`: SOURCE a config or a sweep file; the
    command line's options override the file's."""
    data = read_config_file(source)
    spec = spec_from_file(source, data) if is_sweep_file(data) else SweepSpec(safe_name(source.stem), source)
    spec.fixed = [*spec.fixed, *_parse_set(fixed)]
    given: set[str] = set()  # a key the file's grid has is replaced; one given twice here is a slip
    for text in grid:
        key, values = parse_grid_option(text)
        if key in given:
            raise ConfigError(f"--grid {key} is given twice; give all its values in one --grid, "
                              f"e.g. --grid {key}=a,b")
        given.add(key)
        spec.grid[key] = values
    if (given := given_seeds(seeds, seed_list)) is not None:
        spec.seeds = given
    if spec.seeds is not None and "seed" in spec.grid:
        raise ConfigError("the grid has a seed axis and the sweep has seeds too (--seeds, --seed-list or seeds:); "
                          "give the seeds one way")
    fixed_seed = [value for key, value in spec.fixed if key == "seed"]
    if fixed_seed and (spec.seeds is not None or "seed" in spec.grid):
        raise ConfigError(f"seed={flow(fixed_seed[-1])} is set in every cell, but the sweep's seeds (--seeds, "
                          f"--seed-list, seeds: or a seed axis of the grid) give each cell its own, so it would be "
                          f"ignored; name the seeds one way, e.g. --seed-list {flow(fixed_seed[-1])}")
    if name is not None:
        if safe_name(name) != name:
            raise ConfigError(f"--name {name[:40]!r} cannot name a sweep; use letters, digits, '.', '+' or '-' (40 at most)")
        spec.name = name
    if spec.cell_count() > MAX_CELLS:
        raise ConfigError(f"the sweep has {spec.cell_count():,} cells (the grid's values times the seeds); "
                          f"at most {MAX_CELLS:,}: split it into smaller sweeps")
    return spec
