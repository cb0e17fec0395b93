"""The worker: trains one cell in exactly the run directory the driver made or claimed.

On this machine it is a process of its own (`python -m trickrun.sweep.worker RUN_DIR LOCK_FD
fresh|resume`), which takes over the run's lock the driver passed it as an open file: the
lock is never let go between the driver's claim and the training. It prints the run's
summary (with `run_dir`) as JSON on stdout and exits as `trickrun train` does (0, 128 + the
signal when interrupted, a TrickrunError's code with `error: ...` on stderr).

On Ray, `train_copy` trains a copy of the run directory in a scratch folder of the worker's
machine and returns its files, which the driver writes into the real one.
"""

from __future__ import annotations

import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from ..atomic import ABANDONED_AFTER_S
from ..errors import TrickrunError
from ..rundir.writer import to_json

SCRATCH_PREFIX = "trickrun-cell-"

INTERRUPTED_BEFORE_TRAINING = 128 + signal.SIGINT


def _run(run_dir: Path, lock, fresh: bool):
    from .. import api

    try:
        return api.run_claimed(run_dir, lock, fresh=fresh, progress="quiet"), None
    except api.OutOfMemory as err:  # the run is kept as interrupted: report it and why
        return err.result, err


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    try:
        run_dir, fd, mode = Path(args[0]), int(args[1]), args[2]
    except (IndexError, ValueError):
        print("usage: python -m trickrun.sweep.worker RUN_DIR LOCK_FD fresh|resume", file=sys.stderr)
        return 2
    try:
        from ..rundir.lock import RunLock

        lock = RunLock.adopt(run_dir, fd)
        try:
            result, error = _run(run_dir, lock, fresh=mode == "fresh")
        finally:
            lock.release()
    except KeyboardInterrupt:  # stopped before training began: the run is resumable from its start
        return INTERRUPTED_BEFORE_TRAINING
    except TrickrunError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    print(to_json({**result.summary, "run_dir": str(result.run_dir)}), flush=True)
    if error is not None:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    return result.exit_code


def run_files(path: Path) -> dict[str, bytes]:
    """A run directory's files (not its lock file, which belongs to this machine's process)."""
    return {f.name: f.read_bytes() for f in path.iterdir() if f.is_file() and not f.name.startswith(".")}


def train_copy(dir_name: str, files: dict[str, bytes], fresh: bool, arrays: dict, source: str,
               dataset: str, threads: int) -> dict[str, Any]:
    """In a Ray worker: the run directory `files` (its config and summary, and for a resume its
    metrics and checkpoint) is trained in a scratch copy; returns the copy's files and summary."""
    from threadpoolctl import threadpool_limits

    from ..data.load import supply_verified
    from ..rundir.lock import RunLock

    supply_verified(dataset, arrays, source)
    remove_abandoned_scratch(Path(tempfile.gettempdir()))
    with threadpool_limits(threads), tempfile.TemporaryDirectory(prefix=SCRATCH_PREFIX) as scratch:
        path = Path(scratch) / dir_name
        path.mkdir()
        for name, data in files.items():
            (path / name).write_bytes(data)
        lock = RunLock.acquire(path)
        try:
            result, error = _run(path, lock, fresh)
        finally:
            lock.release()
        return {"files": run_files(path), "summary": result.summary, "error": None if error is None else str(error)}


def remove_abandoned_scratch(folder: Path) -> None:
    """Delete the scratch copies that workers killed outright left in `folder` (kill -9 skips
    TemporaryDirectory's clean-up): those untouched for ABANDONED_AFTER_S whose run no live
    process holds. A younger one may be a cell that has not yet taken its lock."""
    from ..rundir.lock import is_locked

    for scratch in folder.glob(f"{SCRATCH_PREFIX}*"):
        try:
            if time.time() - scratch.stat().st_mtime < ABANDONED_AFTER_S:
                continue
            if any(is_locked(run) for run in scratch.iterdir() if run.is_dir()):
                continue
        except OSError:  # gone meanwhile, or not ours to look into: tidying is a courtesy
            continue
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
