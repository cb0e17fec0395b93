"""Tolerant readers of the single files of a run directory, and the status they add up to.

Both sides use them: the writer to trim metrics.jsonl when a run is resumed, the reader to
load runs. They never raise on a damaged file; they return what they could read and
warnings naming what they skipped:
  - metrics.jsonl's last line may be torn by a crash mid-write: it is skipped quietly;
    an unparsable line anywhere else is skipped with a warning naming the line.
  - summary.json may be missing or unreadable: None.
  - config.yaml may be missing or unreadable: an empty config.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any, Mapping

from ..config import parse_yaml
from ..errors import ConfigError, RunDirError
from .format import CONFIG_FILE, FINAL, RESUMABLE, SUMMARY_FILE, Status


def read_metrics(path: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """The epoch records of a metrics.jsonl and warnings about lines that were skipped.

    A missing file is no records. The last line is skipped without a warning when it does
    not parse (a torn write); any other line that is not a JSON object is skipped with one.
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
        if isinstance(record, dict):
            records.append(record)
        elif number != len(lines):
            warnings.append(f"{path}: line {number} is not a JSON object; skipped")
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


def effective_status(summary: Mapping[str, Any] | None) -> Status | str:
    """The summary's status, STALE for a "running" one whose process is gone from this host,
    INCOMPLETE without a summary. A status this version does not know (a newer trickrun's)
    is returned as written rather than hidden."""
    if summary is None or not isinstance(summary.get("status"), str):
        return Status.INCOMPLETE
    try:
        status = Status(summary["status"])
    except ValueError:
        return summary["status"]
    if status is Status.RUNNING and pid_alive(summary.get("pid"), summary.get("host")) is False:
        return Status.STALE
    return status


def check_resumable(path: Path) -> dict[str, Any]:
    """The summary of the run at `path` if `trickrun resume` may continue it. ConfigError when
    it is not a run, already finished, or still running here; RunDirError when its summary
    cannot be read. A "running" run on another host cannot be checked and is let through."""
    if not (path / CONFIG_FILE).is_file() or not (path / SUMMARY_FILE).is_file():
        raise ConfigError(f"{path} is not a run directory (it needs {CONFIG_FILE} and {SUMMARY_FILE})")
    summary, _ = read_summary(path / SUMMARY_FILE)
    if summary is None:
        raise RunDirError(f"{path / SUMMARY_FILE} is not a readable JSON object; the run cannot be resumed")
    status = summary.get("status")
    if isinstance(status, str) and status in FINAL:  # a list or dict in JSON is unhashable
        raise ConfigError(f"{path} already finished (status {status}); nothing to resume. "
                          f"To train it again: trickrun train {path / CONFIG_FILE}")
    if status == Status.RUNNING and pid_alive(summary.get("pid"), summary.get("host")):
        raise ConfigError(f"{path} is still running (pid {summary.get('pid')}); stop it first")
    return summary


def resumable(path: Path) -> bool:
    """True for a run that stopped part-way (interrupted, or its process died) and has its config."""
    if not (path / CONFIG_FILE).is_file():
        return False
    summary, _ = read_summary(path / SUMMARY_FILE)
    return summary is not None and effective_status(summary) in RESUMABLE
