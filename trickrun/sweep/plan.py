"""What a sweep does with each cell: resolve it once into its full config, and find the run
it may already have.

The base config file is read once: every cell's config is built from that one reading, the
fixed values and the cell's grid values (as values, never as `--set` strings), validated,
and frozen as the YAML its run directory will hold. Editing the base file while a sweep
runs changes nothing in it.

Re-running a sweep command skips every cell whose run has finished with the same resolved
config, resumes the cells whose run stopped part-way, leaves alone a cell whose run another
live process holds (`busy`), and trains the rest (`--rerun`: every cell afresh).
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from ..config import Config, absolute_data_dir, dump_yaml, load_config, parse_yaml, read_config_file, set_key
from ..errors import ConfigError
from ..rundir.files import effective_status, read_config, read_summary
from ..rundir.format import FINAL, RESUMABLE, Status
from ..rundir.reader import split_dir_name
from .spec import Cell, SweepSpec, is_sweep_file
from .states import Action


@dataclass(frozen=True)
class Plan:
    cell: Cell
    config: Config
    config_yaml: str  # exactly what the cell's run directory holds as config.yaml
    action: Action
    run_dir: Path | None = None  # the existing run it skips, resumes or finds busy
    status: Status | str | None = None  # that run's status


def _with_values(data: Mapping[str, Any], values: list[tuple[str, Any]], where: str) -> dict[str, Any]:
    """A copy of the config mapping `data` with each (dotted key, value) set."""
    out = copy.deepcopy(dict(data))  # keeps YAML aliases shared: linear even for a billion laughs
    for key, value in values:
        set_key(out, key.split("."), value, where)
    return out


def read_base(spec: SweepSpec) -> dict[str, Any]:
    """The base config, read once; a sweep file there is a mistake worth naming."""
    data = read_config_file(spec.base)
    if is_sweep_file(data):
        raise ConfigError(f"{spec.base}: is a sweep file (it has base: or grid:); a sweep's base must be a "
                          f"config such as configs/baseline.yaml")
    return data


def resolve_cells(spec: SweepSpec) -> tuple[list[Cell], list[Config], list[int]]:
    """Every cell with its resolved config; a bad key or value in any cell is a ConfigError
    naming the cell, raised before anything runs."""
    base_data = read_base(spec)
    base = load_config(_with_values(base_data, spec.fixed, str(spec.base)))
    cells = spec.cells(base.seed)
    configs = []
    for cell in cells:
        where = f"cell {cell.index + 1} of {len(cells)} ({cell.label()})"
        try:
            data = _with_values(base_data, [*spec.fixed, *cell.values], where)
            configs.append(load_config(data, name=cell.name, seed=cell.seed))
        except ConfigError as err:
            raise ConfigError(f"{where}: {err}") from None
    seeds = spec.seeds if spec.seeds is not None else sorted({c.seed for c in cells}) or [base.seed]
    return cells, configs, seeds


def _comparable(config: Any) -> Any:
    """A config as it reads back from config.yaml, so a resolved Config and a saved one compare
    (a data.dir saved relative, before trickrun saved it absolute, as resolve() makes it)."""
    comparable = parse_yaml(dump_yaml(config), "config")
    data = comparable.get("data") if isinstance(comparable, dict) else None
    if isinstance(data, dict) and isinstance(data.get("dir"), str):
        data["dir"] = absolute_data_dir(data["dir"])
    return comparable


def _runs_by_name(root: Path) -> dict[str, list[Path]]:
    found: dict[str, list[Path]] = {}
    try:
        entries = list(os.scandir(root))
    except OSError:
        return found
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            name, stamp = split_dir_name(entry.name)
            if stamp is not None:
                found.setdefault(name, []).append(Path(entry.path))
    return found


def holds_config(path: Path, cfg: Config) -> bool:
    """Whether the run directory `path` holds `cfg` as its config.yaml."""
    return config_mismatch(path, cfg) is None


CONFIGURED_OTHERWISE = "its cell is now configured otherwise"  # config_mismatch's reason for a readable config


def config_mismatch(path: Path, cfg: Config) -> str | None:
    """Why the run directory `path` does not hold `cfg` as its config.yaml, or None if it does."""
    config, warnings = read_config(path / "config.yaml")
    if not config:
        return warnings[0] if warnings else f"{path / 'config.yaml'}: empty; the run's config is unknown"
    return None if _comparable(config) == _comparable(cfg.to_dict()) else CONFIGURED_OTHERWISE


def _plan_for(cell: Cell, cfg: Config, config_yaml: str, path: Path) -> Plan | None:
    """What the existing run `path` of the cell means for it, or None if it is none of its."""
    if not holds_config(path, cfg):
        return None
    summary, _ = read_summary(path / "summary.json")
    status = effective_status(summary, path)
    if status in FINAL:
        return Plan(cell, cfg, config_yaml, Action.SKIP, path, status)
    if status in RESUMABLE:
        return Plan(cell, cfg, config_yaml, Action.RESUME, path, status)
    if status == Status.RUNNING:
        return Plan(cell, cfg, config_yaml, Action.BUSY, path, status)
    return None


def plan_cells(cells: list[Cell], configs: list[Config], root: Path, rerun: bool,
               recorded: Mapping[str, str] | None = None) -> list[Plan]:
    """Each cell's action, from the runs already in the runs folder: a run counts for a cell
    only if its config.yaml is the cell's resolved config, and its status is read with its
    lock asked (a run whose process is alive is busy, never finished). The run the sweep's
    record lists for a cell (`recorded`: cell name -> run directory name) is its run while it
    holds the cell's config, whatever another run of the same name did since; a cell the
    record has no run for takes the newest finished run of its name and config (one a shell
    loop or --print-commands trained), else the newest unfinished one."""
    existing = {} if rerun else _runs_by_name(root)
    recorded = {} if rerun else dict(recorded or {})
    plans = []
    for cell, cfg in zip(cells, configs):
        config_yaml = dump_yaml(cfg.to_dict())
        plan = Plan(cell, cfg, config_yaml, Action.TRAIN)
        own = root / recorded[cell.name] if cell.name in recorded else None
        found = _plan_for(cell, cfg, config_yaml, own) if own is not None and own.is_dir() else None
        # Newest first: a finished run wins over an older one of the same cell, and the
        # newest unfinished one is the one to resume.
        for path in [] if found else sorted(existing.get(cell.name, []), key=lambda p: p.name, reverse=True):
            candidate = _plan_for(cell, cfg, config_yaml, path)
            if candidate is None:
                continue
            if candidate.action is Action.SKIP:
                found = candidate
                break
            found = found or candidate
        plans.append(found or plan)
    return plans
