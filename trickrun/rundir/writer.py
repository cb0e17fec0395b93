"""Writing a run directory: exclusive creation, atomic writes, a "running" summary at start
and the final one at the end. The files and statuses are described in format.py.
"""

from __future__ import annotations

import errno
import json
import math
import os
import shutil
import socket
import secrets
import time
from pathlib import Path
from typing import Any, Callable, Mapping, TypeVar

import numpy as np

from ..atomic import ABANDONED_AFTER_S, remove_temporaries, replacing
from ..errors import ConfigError, RunDirError
from .files import finite_number, read_metrics, read_summary
from .format import CHECKPOINT_FILE, CONFIG_FILE, FINAL, LOCK_FILE, METRICS_FILE, MODEL_FILE, SUMMARY_FILE, Status
from .lock import RunLock, is_locked


def runs_root(runs_dir: str | Path | None = None) -> Path:
    """The runs folder: the argument, else $TRICKRUN_RUNS_DIR, else ./runs."""
    if runs_dir is not None:
        return Path(runs_dir)
    return Path(os.environ.get("TRICKRUN_RUNS_DIR") or "runs")


def _disk_error(action: str, path: Path, err: OSError) -> RunDirError:
    if err.errno == errno.ENOSPC:
        why = "the disk is full; free some space"
    elif err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        why = "permission denied; choose a writable folder with --runs-dir"
    elif err.errno in (errno.EEXIST, errno.ENOTDIR):  # mkdir(exist_ok=True) on a file says EEXIST
        why = "a file is in the way, not a folder; choose another folder with --runs-dir"
    else:
        why = err.strerror or str(err)
    return RunDirError(f"cannot {action} {path}: {why}")


# A run directory is made whole in a hidden staging folder and renamed into place, so a
# process killed while making it leaves no half-made run behind (only a hidden folder,
# swept away by a later creation once it is clearly abandoned).
STAGING_PREFIX = ".creating-"
T = TypeVar("T")


def create_run_dir(root: Path, name: str, fill: Callable[[Path], T], now: float | None = None) -> tuple[Path, T]:
    """Make a new run directory holding what `fill(folder)` writes (at least one file), and
    return its path and what `fill` returned. It appears whole or not at all, under a name
    never used before, even when two start in one second."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    try:
        root.mkdir(parents=True, exist_ok=True)
        staging = root / f"{STAGING_PREFIX}{name}-{os.getpid()}-{secrets.token_hex(4)}"
        staging.mkdir()  # not mkdtemp: a run directory gets the user's usual permissions
    except OSError as err:
        raise _disk_error("create a run directory in", root, err) from None
    try:
        made = fill(staging)
        for n in range(1, 10_000):
            path = root / (f"{name}-{stamp}" if n == 1 else f"{name}-{stamp}-{n}")
            try:
                # Exclusive: renaming a folder with files onto an existing folder that
                # holds any (another run) fails; so does renaming onto a file.
                os.rename(staging, path)
            except OSError as err:
                if err.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR, errno.EISDIR):
                    continue
                raise _disk_error("create a run directory in", root, err) from None
            _sweep_abandoned(root)
            return path, made
        raise RunDirError(f"cannot find a free run-directory name for {name!r} in {root}")
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _sweep_abandoned(root: Path) -> None:
    """Remove staging folders that a killed process left: old, and nobody holds their lock."""
    try:
        entries = [e for e in os.scandir(root) if e.name.startswith(STAGING_PREFIX) and e.is_dir()]
        for entry in entries:
            if time.time() - entry.stat().st_mtime > ABANDONED_AFTER_S and not is_locked(Path(entry.path)):
                shutil.rmtree(entry.path, ignore_errors=True)
    except OSError:  # tidying is a courtesy: the new run is made
        pass


def _epochs_text(epochs: list) -> str:
    if not epochs:
        return "no epoch"
    shown = ", ".join(str(e) for e in epochs[:8]) + (", ..." if len(epochs) > 8 else "")
    return f"the epochs {shown}"


def remove_if_never_trained(run_dir: Path) -> bool:
    """Remove a run directory in which no epoch was saved (config.yaml, a "running" summary,
    the lock, and at most the first epoch's metrics line, written just before its checkpoint
    that a full disk or a kill stopped): a run that failed before its first checkpoint is no
    run (resume would start it from scratch), and `ls` would list it as stale forever. The
    caller holds the run's lock."""
    if (run_dir / CHECKPOINT_FILE).exists() or (run_dir / MODEL_FILE).exists():
        return False
    shutil.rmtree(run_dir, ignore_errors=True)
    return True


def write_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that readers see the old file or the new one, never a part."""
    try:
        with replacing(path) as (f, _):
            f.write(data)
    except OSError as err:
        raise _disk_error("write", path, err) from None


def _remove_quietly(path: str | Path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _jsonable(value: Any) -> Any:
    """NumPy scalars to Python; non-finite floats to None (JSON has no NaN)."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def to_json(data: Mapping[str, Any], indent: int | None = None) -> str:
    return json.dumps(_jsonable(data), indent=indent, allow_nan=False)


def write_json(path: Path, data: Mapping[str, Any]) -> None:
    write_atomic(path, (to_json(data, indent=2) + "\n").encode())


def _from_lack_of_memory(err: BaseException) -> bool:
    """Whether `err` or an exception it arose from is a MemoryError."""
    seen: set[int] = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, MemoryError):
            return True
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return False


def write_npz(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    """Write `arrays` as an .npz at `path`, atomically. It is built in memory first, so a
    MemoryError leaves the old file whole; an error that a MemoryError set off on the way
    (zipfile closing a half-written buffer) is raised as the MemoryError it is, which the
    training loop ends the run on, resumably."""
    import io

    buf = io.BytesIO()
    try:
        np.savez(buf, **arrays)
        data = buf.getvalue()
    except Exception as err:
        if _from_lack_of_memory(err):
            raise MemoryError(f"out of memory writing {path.name}") from None
        raise
    write_atomic(path, data)


class MetricsLog:
    """Append-only metrics.jsonl: one line per epoch, flushed and fsynced as written."""

    def __init__(self, path: Path):
        self.path = path
        try:
            self._file = open(path, "a", encoding="utf-8")
        except OSError as err:
            raise _disk_error("open", path, err) from None

    def append(self, record: Mapping[str, Any]) -> None:
        try:
            self._file.write(to_json(record) + "\n")
            self._file.flush()
            os.fsync(self._file.fileno())
        except OSError as err:
            raise _disk_error("append to", self.path, err) from None

    def close(self) -> None:
        try:
            self._file.close()
        except OSError:
            pass


def environment() -> dict[str, str]:
    """Versions that make a result reproducible: trickrun, Python, numpy and its BLAS."""
    import platform

    from ..version import __version__

    blas = "unknown"
    try:
        from threadpoolctl import threadpool_info

        for lib in threadpool_info():
            if lib.get("user_api") == "blas":
                blas = (f"{lib.get('internal_api')} {lib.get('version')} "
                        f"({lib.get('architecture')}, {lib.get('num_threads')} threads)")
                break
    except Exception:  # threadpoolctl missing or confused: the run matters more
        pass
    return {"trickrun": __version__, "python": platform.python_version(), "numpy": np.__version__, "blas": blas}


def _earlier_times(summary: Mapping[str, Any], kept: list[Mapping[str, Any]]) -> tuple[float, float]:
    """(wall_s, train_s) of a run's parts before a resume: as its summary has them; for a process
    killed outright (its summary still "running"), the larger of what the parts before it had
    and the time of the epochs it kept (their epoch_s), which counts theirs too."""
    def seconds(value: Any) -> float:
        return max(finite_number(value) or 0.0, 0.0)

    if summary.get("status") != Status.RUNNING:
        return seconds(summary.get("wall_s")), seconds(summary.get("train_s"))
    epochs = sum(seconds(record.get("epoch_s")) for record in kept)
    return (max(seconds(summary.get("earlier_wall_s")), epochs),
            max(seconds(summary.get("earlier_train_s")), epochs))


class RunWriter:
    """Writes one run directory: config and a "running" summary at start, metrics as each
    epoch ends, the model and the final summary at the end. It holds the run's lock
    (lock.RunLock) from start to `finish()` or `close()`."""

    def __init__(self, path: Path, lock: RunLock | None = None):
        self.path = path
        self.lock = lock
        self._metrics: MetricsLog | None = None
        self._summary: dict[str, Any] = {}
        self._earlier_train_s = 0.0  # training time of the run's earlier parts (before a resume)

    @staticmethod
    def _running_summary(started: Any, seed: Any) -> dict[str, Any]:
        """What summary.json says while a run trains (from its start or its resumption on)."""
        return {
            "status": Status.RUNNING,
            "started": started,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "seed": seed,
            "versions": environment(),
        }

    @classmethod
    def create(cls, root: Path, name: str, config_yaml: str, seed: int) -> "RunWriter":
        """A new run directory holding config.yaml and a "running" summary, its lock held
        by this writer from before it appears."""
        started_s = time.time()
        summary = cls._running_summary(time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started_s)), seed)

        def fill(folder: Path) -> RunLock:
            lock = RunLock.acquire(folder)
            try:
                write_atomic(folder / CONFIG_FILE, config_yaml.encode())
                write_json(folder / SUMMARY_FILE, summary)
            except BaseException:
                lock.release()
                raise
            return lock

        path, lock = create_run_dir(root, name, fill, started_s)
        lock.path = path / LOCK_FILE
        writer = cls(path, lock)
        writer._started, writer._summary = started_s, summary
        writer._metrics = MetricsLog(path / METRICS_FILE)
        return writer

    def write_file(self, name: str, data: bytes) -> None:
        write_atomic(self.path / name, data)

    def append_metrics(self, record: Mapping[str, Any]) -> None:
        self._metrics.append(record)

    def save_model(self, arrays: Mapping[str, np.ndarray]) -> None:
        write_npz(self.path / MODEL_FILE, arrays)

    def save_checkpoint(self, arrays: Mapping[str, np.ndarray]) -> None:
        write_npz(self.path / CHECKPOINT_FILE, arrays)

    @classmethod
    def reopen(cls, path: Path, epochs_done: int, lock: RunLock | None = None,
               resumed: bool = True) -> "RunWriter":
        """Continue writing an existing run after `epochs_done` epochs: metrics.jsonl keeps
        exactly its first `epochs_done` records (a torn line or records written after the
        last checkpoint are dropped) and summary.json says "running" again, with this
        process's pid. `lock`: the run's lock, already held by this process (else it is
        taken here). `resumed` False: a run directory made for this process to start (a
        sweep's cell), which does not count as a resumption."""
        writer = cls(path, lock or RunLock.acquire(path))
        records, _ = read_metrics(path / METRICS_FILE)
        kept = [r.get("epoch") for r in records[:epochs_done]]
        if kept != list(range(1, epochs_done + 1)):  # checked before anything is written
            if lock is None:
                writer.lock.release()
            raise ConfigError(
                f"{path}: its checkpoint is from after epoch {epochs_done}, but metrics.jsonl holds "
                f"{_epochs_text(kept)} before it: the two are not the record of one run (a checkpoint "
                f"copied from another run, or a damaged line), and resuming would leave gaps. Nothing was "
                f"changed; train the config as a new run")
        remove_temporaries(path)  # a killed writer's half-written checkpoint: none is live under our lock
        summary = read_summary(path / SUMMARY_FILE)[0] or {}
        write_atomic(path / METRICS_FILE, "".join(to_json(r) + "\n" for r in records[:epochs_done]).encode())
        earlier_wall_s, writer._earlier_train_s = _earlier_times(summary, records[:epochs_done])
        writer._started = time.time() - earlier_wall_s
        writer._summary = cls._running_summary(summary.get("started"), summary.get("seed"))
        # kept while it trains, so that a process killed outright does not lose them
        writer._summary.update(earlier_wall_s=earlier_wall_s, earlier_train_s=writer._earlier_train_s)
        if resumed:
            writer._summary["resumed"] = int(summary.get("resumed", 0)) + 1
        elif "resumed" in summary:
            writer._summary["resumed"] = summary["resumed"]
        write_json(path / SUMMARY_FILE, writer._summary)
        writer._metrics = MetricsLog(path / METRICS_FILE)
        return writer

    def finish(self, result: Mapping[str, Any]) -> dict[str, Any]:
        """Write the final summary: the start fields, the result, and timing. A resumed run's
        `wall_s` and `train_s` go on from where its summary left them."""
        finished = time.time()
        summary = {
            "status": Status(result["status"]),
            **{k: v for k, v in result.items() if k != "status"},
            "wall_s": finished - self._started,
            "seed": self._summary["seed"],
            "started": self._summary["started"],
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(finished)),
            "pid": self._summary["pid"],
            "host": self._summary["host"],
            "versions": self._summary["versions"],
        }
        if "train_s" in summary:
            summary["train_s"] += self._earlier_train_s
        if "resumed" in self._summary:
            summary["resumed"] = self._summary["resumed"]
        write_json(self.path / SUMMARY_FILE, summary)
        if summary["status"] in FINAL:  # nothing left to resume: free the space
            _remove_quietly(self.path / CHECKPOINT_FILE)
        self.close()
        return json.loads(to_json(summary))

    def close(self) -> None:
        """Close metrics.jsonl and let go of the run's lock; safe to call twice."""
        if self._metrics is not None:
            self._metrics.close()
            self._metrics = None
        if self.lock is not None:
            self.lock.release()

