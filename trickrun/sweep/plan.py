"""What a sweep does with each cell: validate it, and find the run it may already have.

Re-running a sweep command skips every cell whose run has finished with the same resolved
config and seed, resumes the cells whose run was interrupted or whose process died, and
trains the rest (`--rerun`: every cell afresh).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import Config, dump_yaml, load_config, parse_yaml
from ..errors import ConfigError
from ..rundir.files import effective_status, read_config, read_summary
from ..rundir.format import FINAL, RESUMABLE, Status
from ..rundir.reader import split_dir_name
from .spec import Cell, SweepSpec

SKIP, RESUME, TRAIN, BUSY = "skip", "resume", "train", "busy"


@dataclass
class Plan:
    cell: Cell
    config: Config
    action: str  # skip | resume | train | busy (another process is training its run)
    run_dir: Path | None = None  # the existing run it skips or resumes
    status: str | None = None  # that run's status


def resolve_cells(spec: SweepSpec) -> tuple[list[Cell], list[Config], list[int]]:
    """Every cell with its resolved config; a bad key or value in any cell is a ConfigError
    naming the cell, raised before anything runs."""
    base = load_config(spec.base, spec.fixed)
    cells = spec.cells(base.seed)
    configs = []
    for cell in cells:
        try:
            configs.append(load_config(spec.base, [*spec.fixed, *cell.overrides()], name=cell.name, seed=cell.seed))
        except ConfigError as err:
            raise ConfigError(f"cell {cell.index + 1} of {len(cells)} ({cell.label()}): {err}") from None
    seeds = spec.seeds if spec.seeds is not None else [base.seed]
    return cells, configs, seeds


def _comparable(config: Any) -> Any:
    """A config as it reads back from config.yaml, so a resolved Config and a saved one compare."""
    return parse_yaml(dump_yaml(config), "config")


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


def newest_run(root: Path, name: str) -> Path | None:
    """The newest run directory of the run `name` in `root` (for a cell whose process ended
    without saying which directory it made)."""
    runs = _runs_by_name(root).get(name, [])
    return max(runs, key=lambda p: p.name) if runs else None


def plan_cells(cells: list[Cell], configs: list[Config], root: Path, rerun: bool) -> list[Plan]:
    """Each cell's action, from the runs already in the runs folder."""
    existing = {} if rerun else _runs_by_name(root)
    plans = []
    for cell, cfg in zip(cells, configs):
        plan = Plan(cell, cfg, TRAIN)
        wanted = _comparable(cfg.to_dict())
        # Newest first: a finished run wins over an older one of the same cell, and the
        # newest unfinished one is the one to resume.
        for path in sorted(existing.get(cell.name, []), key=lambda p: p.name, reverse=True):
            config, _ = read_config(path / "config.yaml")
            if not config or _comparable(config) != wanted:
                continue
            summary, _ = read_summary(path / "summary.json")
            status = effective_status(summary, path)
            if status in FINAL:
                plan = Plan(cell, cfg, SKIP, path, str(status))
                break
            if status in RESUMABLE and plan.action == TRAIN:
                plan = Plan(cell, cfg, RESUME, path, str(status))
            elif status == Status.RUNNING and plan.action == TRAIN:
                plan = Plan(cell, cfg, BUSY, path, str(status))
        plans.append(plan)
    return plans
