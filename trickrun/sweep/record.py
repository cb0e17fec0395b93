"""The sweep's record, `<runs>/sweeps/<NAME>/sweep.json`, and the sweep's lock beside it.

    {"name", "base", "set", "grid", "seeds", "backend", "jobs", "started", "updated",
     "cells": [{"index", "name", "overrides": {key: value}, "seed", "run_dir",
                "status", "action", "error"}]}

`status` is the cell's state (states.CellState): `pending`, `running`, the run's status once
it ended (completed, early_stopped, diverged, interrupted), `failed` when its process raised,
exited non-zero or was killed (`error` says how), `busy` when another process trains its run.
The file is replaced atomically at every transition, so it never lies for longer than a
write: a reader sees `running` exactly while a worker trains the cell. Only a driver killed
outright (kill -9) leaves `running` behind; `read_record` shows such a cell `interrupted`.

Beside it, `backend.log` holds whatever the backend's machinery printed (Ray's own messages),
kept off trickrun's stdout. One process at a time drives a sweep: it holds `<runs>/sweeps/<NAME>/.lock` (an flock, as a
run's; the OS drops it when the process dies, however it dies) from planning to the end.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Mapping

from ..errors import ConfigError, RunDirError
from ..rundir.format import SWEEPS_FOLDER
from ..rundir.lock import RunLock, is_locked
from ..rundir.writer import write_json
from ..userinput import short
from .spec import Cell, SweepSpec
from .states import CellState, check_transition

RECORD_FILE = "sweep.json"
BACKEND_LOG = "backend.log"  # beside it: what the backend's machinery printed (Ray's messages)


def record_path(runs_root: Path, name: str) -> Path:
    return runs_root / SWEEPS_FOLDER / name / RECORD_FILE


def no_record(runs_root: Path, name: str) -> ConfigError:
    """The error for a sweep NAME whose record is missing or unreadable; a long NAME is cut."""
    path = record_path(runs_root, name)
    where = f"{path} is missing or unreadable" if len(name) <= 60 else f"none in {runs_root / SWEEPS_FOLDER}"
    return ConfigError(f"no sweep named {short(name)}: {where}")


def read_record(path: Path) -> dict[str, Any] | None:
    """The sweep.json at `path`, or None if missing or unreadable (a fresh record is made).
    A `running` cell is shown `interrupted` when neither the sweep's lock nor its run's is
    held: its driver died before it could record the end, and the next run resumes it."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not (isinstance(data, dict) and isinstance(data.get("cells"), list)):
        return None
    if is_locked(path.parent) is False:  # no driver: only a live worker makes `running` true
        runs_root = path.parent.parent.parent
        for cell in data["cells"]:
            if isinstance(cell, dict) and cell.get("status") == CellState.RUNNING and not _trained(runs_root, cell):
                cell["status"] = CellState.INTERRUPTED.value
    return data


def _trained(runs_root: Path, cell: Mapping[str, Any]) -> bool:
    """Whether a process holds the lock of the cell's run (found by name, as cell_run_dirs)."""
    run_dir = cell.get("run_dir")
    return isinstance(run_dir, str) and bool(is_locked(runs_root / Path(run_dir).name))


def cell_run_dirs(runs_root: Path, record: Mapping[str, Any]) -> list[Path]:
    """The run directories a record's cells list, each found by its name in `runs_root` (the
    runs folder the record is in), wherever the sweep ran from."""
    return [runs_root / Path(c["run_dir"]).name for c in record["cells"]
            if isinstance(c, dict) and isinstance(c.get("run_dir"), str)]


def recorded_runs(path: Path, runs_root: Path) -> dict[str, str]:
    """Cell name -> the name of the run directory the record at `path` lists for it, for the
    runs still in `runs_root`."""
    old = read_record(path)
    found = {}
    for cell in old["cells"] if old else ():
        run_dir = cell.get("run_dir") if isinstance(cell, dict) else None
        if isinstance(run_dir, str) and isinstance(cell.get("name"), str) and (runs_root / Path(run_dir).name).is_dir():
            found[cell["name"]] = Path(run_dir).name
    return found


def sweeps_by_run(runs_root: Path) -> dict[str, list[str]]:
    """Run directory name -> the names of the sweeps in `runs_root` whose records list it."""
    try:
        entries = sorted(os.scandir(runs_root / SWEEPS_FOLDER), key=lambda e: e.name)
    except OSError:  # no sweeps folder: no run belongs to a sweep
        return {}
    found: dict[str, list[str]] = {}
    for entry in entries:
        if entry.name.startswith(".") or not entry.is_dir():
            continue
        record = read_record(Path(entry.path) / RECORD_FILE)
        for path in cell_run_dirs(runs_root, record) if record else ():
            found.setdefault(path.name, []).append(entry.name)
    return found


def lock_sweep(runs_root: Path, name: str) -> RunLock:
    """Take the sweep's lock; ConfigError (exit 2) naming the process that holds it."""
    folder = record_path(runs_root, name).parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise RunDirError(f"cannot create the sweep's folder {folder}: {err.strerror or err}; "
                          f"choose a writable runs folder with --runs-dir") from None
    return RunLock.acquire(folder, busy=lambda holder: (
        f"sweep {name!r} is being run by {holder}; wait for it to end (or stop it), then run this "
        f"command again: finished cells are skipped"))


class SweepRecord:
    def __init__(self, path: Path, spec: SweepSpec, cells: list[Cell], seeds: list[int], backend: str, jobs: int):
        self.path = path
        self.data: dict[str, Any] = {
            "name": spec.name, "base": str(spec.base), "set": spec.fixed_overrides(),
            "grid": spec.grid, "seeds": seeds, "backend": backend, "jobs": jobs,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S"), "updated": None,
            "cells": [{"index": c.index, "name": c.name, "overrides": dict(c.values), "seed": c.seed,
                       "run_dir": None, "status": CellState.PENDING, "action": None, "error": None}
                      for c in cells],
        }

    def cell(self, index: int) -> dict[str, Any]:
        return self.data["cells"][index]

    def state(self, index: int) -> CellState:
        return self.cell(index)["status"]

    def set(self, index: int, state: CellState, *, save: bool = True, **fields: Any) -> None:
        """Move cell `index` to `state` (a TransitionError if the table in states.py does not
        allow it), with the other fields given (run_dir, action, error); then save."""
        cell = self.cell(index)
        if state != cell["status"]:
            check_transition(cell["status"], state)
        cell["status"] = state
        for key, value in fields.items():
            cell[key] = str(value) if isinstance(value, Path) else value
        if save:
            self.save()

    def save(self) -> None:
        self.data["updated"] = time.strftime("%Y-%m-%dT%H:%M:%S")
        write_json(self.path, self.data)
