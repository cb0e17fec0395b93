"""Tolerant readers of the single files of a run directory, and the status they add up to.

Both sides use them: the writer to trim metrics.jsonl when a run is resumed, the reader to
load runs. They never raise on a damaged file; they return what they could read and
warnings naming what they skipped:
  - metrics.jsonl's last line may be torn by a crash mid-write: it is skipped quietly;
    an unparsable line anywhere else, or a record whose values have the wrong types (see
    record_problem), is skipped with a warning naming the line.
  - summary.json may be missing or unreadable: None.
  - config.yaml may be missing or unreadable: an empty config.
"""

from __future__ import annotations

import json
import math
import os
import socket
from pathlib import Path
from typing import Any, Mapping

from ..config import parse_yaml
from ..errors import ConfigError, RunDirError
from .format import CONFIG_FILE, ENSEMBLE_KIND, FINAL, SUMMARY_FILE, Status
from .lock import RunLock, is_locked


def finite_number(value: Any) -> float | None:
    """A value read from a run's JSON as a finite float; None for anything else (null, NaN,
    a string, true)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _is_number(value: Any) -> bool:
    """A metric value: a number, or null (a non-finite value; JSON has no NaN)."""
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))


def record_problem(record: Mapping[str, Any]) -> str | None:
    """Why an epoch record of metrics.jsonl cannot be used, or None: `epoch` must be a whole
    number, `layers` a list of objects each with a string `name`, and every other value, in
    the record and in its layers, a number or null."""
    epoch = record.get("epoch", 1)
    if isinstance(epoch, bool) or not isinstance(epoch, int):
        return "epoch is not a whole number"
    bad = next((key for key, value in record.items() if key not in ("epoch", "layers") and not _is_number(value)), None)
    if bad is not None:
        return f"{bad} is not a number"
    layers = record.get("layers") or []
    if not isinstance(layers, list):
        return "layers is not a list"
    for entry in layers:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            return "a layers entry is not an object with a string name"
        bad = next((key for key, value in entry.items() if key != "name" and not _is_number(value)), None)
        if bad is not None:
            return f"{bad} of layer {entry['name']} is not a number"
    return None


def read_metrics(path: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """The epoch records of a metrics.jsonl and warnings about lines that were skipped.

    A missing file is no records. The last line is skipped without a warning when it does
    not parse (a torn write); any other line that is not a JSON object is skipped with one,
    and so is any record of the wrong shape (record_problem).
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return [], []
    except OSError as err:
        return [], [f"{path}: cannot be read ({err.strerror or err}); no epochs shown"]
    lines = data.split(b"\n")
    while lines and not lines[-1].strip():
        lines.pop()
    records, warnings = [], []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if not isinstance(record, dict):
            if number != len(lines):
                warnings.append(f"{path}: line {number} is not a JSON object; skipped")
        elif (problem := record_problem(record)) is not None:
            warnings.append(f"{path}: line {number} is not a valid epoch record ({problem}); skipped")
        else:
            records.append(record)
    return records, warnings


def read_summary(path: Path) -> tuple[dict[str, Any] | None, list[str]]:
    """summary.json as a dict, or None (with a warning if it exists but is unreadable)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None, []
    except (OSError, UnicodeDecodeError) as err:
        return None, [f"{path}: cannot be read ({err}); treated as missing"]
    try:
        data = json.loads(text)
    except ValueError as err:
        return None, [f"{path}: not valid JSON ({err}); treated as missing"]
    if not isinstance(data, dict):
        return None, [f"{path}: not a JSON object; treated as missing"]
    return data, []


def read_config(path: Path) -> tuple[dict[str, Any], list[str]]:
    """config.yaml as a dict; an empty dict with a warning when it is missing or unreadable."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}, [f"{path}: missing; the run's config is unknown"]
    except (OSError, UnicodeDecodeError) as err:
        return {}, [f"{path}: cannot be read ({err}); the run's config is unknown"]
    try:
        data = parse_yaml(text, str(path))
    except ConfigError as err:
        return {}, [f"{err}; the run's config is unknown"]
    if not isinstance(data, dict):
        return {}, [f"{path}: not a mapping; the run's config is unknown"]
    return data, []


def pid_alive(pid: Any, host: Any) -> bool | None:
    """Whether process `pid` still exists; None when it cannot be told (another host)."""
    if host != socket.gethostname() or not isinstance(pid, int) or pid <= 0:
        return None
    try:
        os.kill(pid, 0)  # signal 0: only checks that the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except OSError:
        return None
    return True


def process_alive(summary: Mapping[str, Any], path: Path | None = None) -> bool | None:
    """Whether the process that wrote a "running" summary still trains the run: its lock
    tells; for a run without a lock file (an older trickrun's) or no `path`, its pid does
    (this host only). None when it cannot be told."""
    locked = is_locked(path) if path is not None else None
    return locked if locked is not None else pid_alive(summary.get("pid"), summary.get("host"))


def effective_status(summary: Mapping[str, Any] | None, path: Path | None = None) -> Status | str:
    """The summary's status, STALE for a "running" one that no process trains any more (see
    process_alive; give the run's `path` so its lock is asked), INCOMPLETE without a summary.
    A status this version does not know (a newer trickrun's) is returned as written."""
    if summary is None or not isinstance(summary.get("status"), str):
        return Status.INCOMPLETE
    try:
        status = Status(summary["status"])
    except ValueError:
        return summary["status"]
    if status is Status.RUNNING and process_alive(summary, path) is False:
        return Status.STALE
    return status


def _require_run_dir(path: Path) -> None:
    if not (path / CONFIG_FILE).is_file() or not (path / SUMMARY_FILE).is_file():
        raise ConfigError(f"{path} is not a run directory (it needs {CONFIG_FILE} and {SUMMARY_FILE})")


def check_resumable(path: Path, lock: RunLock | None = None) -> dict[str, Any]:
    """The summary of the run at `path` if `trickrun resume` may continue it. ConfigError when
    it is not a run, already finished, or still being trained; RunDirError when its summary
    cannot be read. `lock`: this process holds the run's lock, so a "running" summary is a
    dead process's. A "running" run that cannot be checked (another host, no lock file) is
    let through."""
    _require_run_dir(path)
    summary, _ = read_summary(path / SUMMARY_FILE)
    if summary is None:
        raise RunDirError(f"{path / SUMMARY_FILE} is not a readable JSON object; the run cannot be resumed")
    status = summary.get("status")
    if summary.get("kind") == ENSEMBLE_KIND:  # its config.yaml lists members: no config to train
        raise ConfigError(f"{path} is an ensemble saved by trickrun ensemble --save: it trained nothing, "
                          "so there is nothing to resume (resume or train its member runs instead)")
    if isinstance(status, str) and status in FINAL:  # a list or dict in JSON is unhashable
        raise ConfigError(f"{path} already finished (status {status}); nothing to resume. "
                          f"To train it again: trickrun train {path / CONFIG_FILE}")
    if status == Status.RUNNING:
        if lock is None:
            alive = process_alive(summary, path)
        else:  # ours now; only a run from before the lock may have a live writer not locking
            alive = lock.created and pid_alive(summary.get("pid"), summary.get("host"))
        if alive:
            raise ConfigError(f"{path} is still running (pid {summary.get('pid')}); stop it first")
    return summary


def claim_for_resume(path: Path) -> tuple[RunLock, dict[str, Any]]:
    """Lock the run at `path`, then check that it may be resumed (check_resumable): in this
    order no other process can start training it between the check and the training. The
    caller releases the lock; it is released here if the check fails."""
    _require_run_dir(path)  # before the lock, which would leave a lock file in any folder
    lock = RunLock.acquire(path)
    try:
        return lock, check_resumable(path, lock)
    except BaseException:
        lock.release()
        raise

