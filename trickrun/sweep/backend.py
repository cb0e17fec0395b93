"""Where cells run: the protocol every backend keeps, and the registry that builds one by name.

The driver hands a backend a `CellJob`: a cell whose run directory the driver has already made
(or claimed, to resume) and whose lock it holds. The backend trains exactly that directory
and reports a `CellEnd`; it never chooses a directory or re-reads the cell's config from
anywhere but that directory. The driver never asks which backend it has.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ..config import Config
from ..rundir.lock import RunLock


@dataclass
class CellJob:
    index: int  # the cell's index in the sweep
    run_dir: Path  # made or claimed by the driver: the worker trains exactly this directory
    lock: RunLock  # the run's lock, held by the driver until the backend takes it over
    fresh: bool  # a new run directory (train from its start) rather than one to resume
    config: Config  # the cell's resolved config (what run_dir/config.yaml holds)


@dataclass(frozen=True)
class CellEnd:
    index: int
    summary: dict[str, Any] | None  # the run's summary.json, when the worker got that far
    error: str | None  # why the worker failed; None when it ran (a diverged run included)
    exit_code: int | None


class Backend(Protocol):
    slots: int  # cells at once

    @property
    def running(self) -> int: ...
    def submit(self, job: CellJob) -> None: ...
    def poll(self, timeout: float) -> list[CellEnd]:
        """The cells that ended, waiting up to `timeout` seconds for one."""
    def stop(self, signum: int) -> None:
        """Pass the sweep's stop signal on to every running cell: each ends as interrupted."""
    def kill(self) -> None:
        """End every running cell now (a second Ctrl-C); each is resumable from its last checkpoint."""
    def close(self) -> None: ...
