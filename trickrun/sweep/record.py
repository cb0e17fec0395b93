"""The sweep's record, `<runs>/sweeps/<NAME>/sweep.json`, replaced atomically as each cell ends.

    {"name", "base", "set", "grid", "seeds", "backend", "jobs", "started", "updated",
     "cells": [{"index", "name", "overrides": {key: value}, "seed", "run_dir",
                "status", "action", "error"}]}

`status` is the run's status (completed, early_stopped, diverged, interrupted, ...) once the
cell has run, `pending` before, `running` while it runs, `failed` when its process raised,
exited non-zero or was killed (then `error` says how).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from ..rundir.format import SWEEPS_FOLDER
from ..rundir.writer import write_json
from .spec import Cell, SweepSpec

RECORD_FILE = "sweep.json"
PENDING, RUNNING, FAILED = "pending", "running", "failed"


def record_path(runs_root: Path, name: str) -> Path:
    return runs_root / SWEEPS_FOLDER / name / RECORD_FILE


def read_record(path: Path) -> dict[str, Any] | None:
    """The sweep.json at `path`, or None if missing or unreadable (a fresh record is made)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("cells"), list) else None


class SweepRecord:
    def __init__(self, path: Path, spec: SweepSpec, cells: list[Cell], seeds: list[int], backend: str, jobs: int):
        self.path = path
        self.data: dict[str, Any] = {
            "name": spec.name, "base": str(spec.base), "set": spec.fixed,
            "grid": spec.grid, "seeds": seeds, "backend": backend, "jobs": jobs,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S"), "updated": None,
            "cells": [{"index": c.index, "name": c.name, "overrides": dict(c.values), "seed": c.seed,
                       "run_dir": None, "status": PENDING, "action": None, "error": None} for c in cells],
        }

    def cell(self, index: int) -> dict[str, Any]:
        return self.data["cells"][index]

    def update(self, index: int, **fields: Any) -> None:
        cell = self.cell(index)
        for key, value in fields.items():
            cell[key] = str(value) if isinstance(value, Path) else value

    def save(self) -> None:
        self.data["updated"] = time.strftime("%Y-%m-%dT%H:%M:%S")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_json(self.path, self.data)
