"""Reading run directories back: finding them by name, prefix or glob, loading what they hold,
and deriving results for runs that never finished.

Incomplete run directories are read as files.py describes. A summary.json that still says
"running" (only the start-time fields) or is missing has its results derived from
metrics.jsonl; a "running" run that no process trains any more is "stale".
A folder holding none of config.yaml, summary.json, metrics.jsonl is not a run.
"""

from __future__ import annotations

import errno
import glob as globlib
import os
import re
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from ..errors import ConfigError, RunDirError
from ..metrics import MONITORS, best_index as best_of
from ..userinput import short
from .files import effective_status, finite_number, read_config, read_metrics, read_summary
from .format import CONFIG_FILE, ENDED, ENSEMBLE_KIND, METRICS_FILE, SUMMARY_FILE, SWEEPS_FOLDER, Status, layer_order

RUN_FILES = (CONFIG_FILE, SUMMARY_FILE, METRICS_FILE)

# `<name>-<YYYYmmdd-HHMMSS>[-N]`, the directory name writer.create_run_dir() makes.
_STAMP = re.compile(r"^(?P<name>.+)-(?P<stamp>\d{8}-\d{6})(?:-(?P<n>\d+))?$")
_GLOB_CHARS = re.compile(r"[*?\[]")

# Per-epoch keys of metrics.jsonl that are not metrics one can plot or rank.
_NOT_METRICS = ("epoch", "layers")


def is_run_dir(path: Path) -> bool:
    return path.is_dir() and any((path / f).is_file() for f in RUN_FILES)


def split_dir_name(dirname: str) -> tuple[str, datetime | None]:
    """`adam-20240501-120000-2` -> ("adam", datetime(2024, 5, 1, 12, 0, 0))."""
    match = _STAMP.match(dirname)
    if not match:
        return dirname, None
    try:
        return match["name"], datetime.strptime(match["stamp"], "%Y%m%d-%H%M%S")
    except ValueError:
        return match["name"], None


def parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


# ---------------------------------------------------------------------------------------
# A loaded run.


@dataclass
class Run:
    """Everything one run directory holds, read once."""

    path: Path
    config: dict[str, Any]
    summary: dict[str, Any] | None
    records: list[dict[str, Any]]
    warnings: list[str] = field(default_factory=list)

    @property
    def dirname(self) -> str:
        return self.path.name

    @property
    def name(self) -> str:
        name = self.config.get("name")
        return name if isinstance(name, str) and name else split_dir_name(self.dirname)[0]

    @property
    def seed(self) -> Any:
        return self.config.get("seed", (self.summary or {}).get("seed"))

    @property
    def status(self) -> Status | str:
        return effective_status(self.summary, self.path)

    @property
    def is_ensemble(self) -> bool:
        """A saved ensemble (`trickrun ensemble --save`): test results, no training."""
        return ENSEMBLE_KIND in (self.config.get("kind"), (self.summary or {}).get("kind"))

    @property
    def finished(self) -> bool:
        """Written to the end (or interrupted): the summary holds the results."""
        return self.status in ENDED

    @property
    def epochs(self) -> list[int]:
        return [r.get("epoch", i + 1) for i, r in enumerate(self.records)]

    def series(self, key: str) -> list[float | None]:
        """One value per epoch record; None where missing or non-finite."""
        return [finite_number(r.get(key)) for r in self.records]

    def layer_names(self) -> list[str]:
        """The layers any record names, in network order."""
        names = {layer["name"] for record in self.records for layer in record.get("layers") or ()
                 if isinstance(layer, dict) and isinstance(layer.get("name"), str)}
        return sorted(names, key=layer_order)

    def layer_series(self, layer: str, key: str) -> list[float | None]:
        out = []
        for record in self.records:
            found = None
            for entry in record.get("layers") or ():
                if isinstance(entry, dict) and entry.get("name") == layer:
                    found = finite_number(entry.get(key))
                    break
            out.append(found)
        return out

    def metric_names(self) -> list[str]:
        """Numeric per-epoch keys present in this run's records."""
        names = []
        for record in self.records:
            for key, value in record.items():
                if key in _NOT_METRICS or key in names:
                    continue
                if value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)):
                    names.append(key)
        return names

    def monitor(self) -> str:
        best = (self.summary or {}).get("best")
        if isinstance(best, dict) and best.get("monitor") in MONITORS:
            return best["monitor"]
        monitor = (self.config.get("early_stopping") or {}).get("monitor")
        return monitor if monitor in MONITORS else "val_loss"

    def best_index(self, metric: str | None = None) -> int | None:
        """Index into `records` of the best epoch: the summary's when it has one and `metric`
        is not given (None when no record is of that epoch: a line of metrics.jsonl lost or
        edited away, whose neighbour is not the epoch the results are of), else the best
        finite value of `metric` (the monitor by default)."""
        if metric is None:
            best_epoch = (self.summary or {}).get("best_epoch")
            if isinstance(best_epoch, int):
                return next((i for i, epoch in enumerate(self.epochs) if epoch == best_epoch), None)
            metric = self.monitor()
        return best_of(self.series(metric), metric)

    def results(self) -> dict[str, Any]:
        """The result fields shown by `compare`, from summary.json where it has them and from
        metrics.jsonl otherwise (unfinished runs). An ensemble trained nothing: no epochs, no
        training time."""
        summary = self.summary or {}
        finished = self.finished
        best = summary.get("best") if isinstance(summary.get("best"), dict) else {}
        test = summary.get("test") if isinstance(summary.get("test"), dict) else {}
        best_i = self.best_index()
        epochs_run = summary.get("epochs_run") if finished else None
        if not isinstance(epochs_run, int):
            epochs_run = len(self.records)
        best_epoch = summary.get("best_epoch") if finished else None
        if not isinstance(best_epoch, int):
            best_epoch = self.epochs[best_i] if best_i is not None else None
        val_acc = finite_number(best.get("val_acc")) if finished else None
        val_loss = finite_number(best.get("val_loss")) if finished else None
        if best_i is not None and (val_acc is None and val_loss is None):
            val_acc = finite_number(self.records[best_i].get("val_acc"))
            val_loss = finite_number(self.records[best_i].get("val_loss"))
        epoch_times = [t for t in self.series("epoch_s") if t is not None]
        wall_s = finite_number(summary.get("wall_s")) if finished else None
        if wall_s is None and epoch_times:
            wall_s = sum(epoch_times)
        if epoch_times:
            s_per_epoch = sum(epoch_times) / len(epoch_times)
        elif wall_s is not None and epochs_run:
            s_per_epoch = wall_s / epochs_run
        else:
            s_per_epoch = None
        if self.is_ensemble:
            epochs_run = wall_s = s_per_epoch = None
        return {
            "status": self.status,
            "epochs_run": epochs_run,
            "best_epoch": best_epoch,
            "best_val_acc": val_acc,
            "best_val_loss": val_loss,
            "test_acc": finite_number(test.get("acc")),
            "test_loss": finite_number(test.get("loss")),
            "wall_s": wall_s,
            "s_per_epoch": s_per_epoch,
        }


def load_run(path: Path) -> Run:
    """Read one run directory; ConfigError (exit 2) if it is not one."""
    if not path.is_dir():
        raise ConfigError(f"{path} is not a folder")
    if not is_run_dir(path):
        raise ConfigError(f"{path} is not a run directory (it has none of {', '.join(RUN_FILES)})")
    config, w1 = read_config(path / CONFIG_FILE)
    summary, w2 = read_summary(path / SUMMARY_FILE)
    records, w3 = read_metrics(path / METRICS_FILE)
    return Run(path=path, config=config, summary=summary, records=records, warnings=w1 + w2 + w3)


# ---------------------------------------------------------------------------------------
# Finding runs from what the user typed.


def _scan_folder(root: Path) -> list[os.DirEntry]:
    """The entries of the runs folder, or a clear error saying why it cannot be listed."""
    try:
        return list(os.scandir(root))
    except FileNotFoundError:
        raise ConfigError(
            f"runs folder {str(root)!r} does not exist; pass --runs-dir or set TRICKRUN_RUNS_DIR"
        ) from None
    except NotADirectoryError:
        raise ConfigError(f"runs folder {str(root)!r} is not a folder") from None
    except OSError as err:
        raise RunDirError(f"cannot list the runs folder {root}: {err.strerror or err}") from None


def _candidates(root: Path) -> list[Path]:
    """The folders a name or a prefix may mean: never a hidden one (a run being made, or one
    a killed rm was deleting), which only its path reaches."""
    return sorted(Path(e.path) for e in _scan_folder(root) if e.is_dir() and not e.name.startswith("."))


def _listing(paths: Iterable[Path], limit: int = 8) -> str:
    names = [p.name for p in paths]
    more = f", ... ({len(names) - limit} more)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


class Ambiguous(str, Enum):
    """What a run name or prefix that matches several runs means."""

    NEWEST = "newest"  # the newest of them, said in a note: for commands that read or continue runs
    REFUSE = "refuse"  # an error listing them: for commands that delete, which must be told one run


def _age(path: Path) -> tuple[datetime, int, str]:
    """Sorts run directories oldest first: by the start stamp in the name (`-N` breaks a tie
    within one second); a name without a stamp counts as the oldest."""
    match = _STAMP.match(path.name)
    _, started = split_dir_name(path.name)
    n = int(match["n"]) if match and match["n"] else 1
    return started or datetime.min, n, path.name


def resolve_run(spec: str, root: Path, *, ambiguous: Ambiguous | str = Ambiguous.REFUSE,
                note: Callable[[str], None] | None = None) -> list[Path]:
    """The run directories `spec` names: a path, a glob (every match), a directory name under
    `root`, a run name, a unique prefix of a directory name, or `NAME~K`: the K-th run older
    than the newest that NAME (a name or prefix) matches (`~0` the newest).

    A name or prefix that matches several runs means the newest of them with
    `ambiguous="newest"` (and `note` is told which, and how many older ones share the name),
    and is a ConfigError listing them with `ambiguous="refuse"`. ConfigError (naming `spec`)
    also when it is not a run or matches nothing. A path (or a directory name under `root`)
    that exists is taken as it is, even with glob characters such as `[` in it. A name the
    system will not look up (too long for a file name) is a ConfigError too."""
    try:
        return _resolve_run(spec, root, Ambiguous(ambiguous), note)
    except OSError as err:  # from stat: ENAMETOOLONG for a name over 255 bytes, ...
        raise ConfigError(unusable_name(spec, err)) from None


def unusable_name(spec: str, err: OSError) -> str:
    """Why the file system refused to look `spec` up, and what to give instead."""
    return f"{short(spec)} {name_refused(err)}; give a run's directory name, run name or prefix, as trickrun ls lists them"


def name_refused(err: OSError) -> str:
    """Why the file system refused to look a name up, as the rest of a sentence about it."""
    if err.errno == errno.ENAMETOOLONG:
        return "is too long for a file name (the system allows 255 bytes a name, 4096 a path)"
    return f"cannot be looked up: {err.strerror or err}"


def _resolve_run(spec: str, root: Path, ambiguous: Ambiguous, note: Callable[[str], None] | None) -> list[Path]:
    direct = Path(spec)
    if _GLOB_CHARS.search(spec) and not direct.exists() and not (root / spec).exists():
        return _resolve_glob(spec, root)
    if direct.is_dir():
        if not is_run_dir(direct):
            raise ConfigError(
                f"{spec!r} is not a run directory (it has none of {', '.join(RUN_FILES)})"
            )
        return [direct]
    if direct.exists():
        raise ConfigError(f"{spec!r} is a file, not a run directory")
    if os.sep in spec or (os.altsep and os.altsep in spec):
        raise ConfigError(f"run {spec!r} not found: no such folder")
    older = _OLDER.fullmatch(spec)
    if older and not (root / spec).is_dir():  # a folder someone named with a "~" is taken as it is
        return [_older_run(older["spec"], int(older["k"]), root, note)]
    kind, found = _named(spec, root)
    if len(found) > 1 and ambiguous is Ambiguous.REFUSE:
        hint = (f"give the full directory name, or {spec}~K for the K-th older (~0 the newest)"
                + (f", or a glob such as '{root / spec}-*' to take them all" if kind == "name" else ""))
        raise ConfigError(f"run {kind} {spec!r} matches {len(found)} runs in {root}: {_listing(found)}; {hint}")
    if len(found) > 1 and note is not None:
        rest = len(found) - 1
        note(f"{spec!r} matches {len(found)} runs: using the newest, {found[-1].name}; {rest} older "
             f"{'one shares' if rest == 1 else 'ones share'} the {kind} ({spec}~1 names the one before it)")
    return found[-1:]


# `NAME~K`: a run name cannot hold "~", so the suffix is never part of one.
_OLDER = re.compile(r"(?P<spec>.+)~(?P<k>\d{1,6})")


def _named(spec: str, root: Path) -> tuple[str, list[Path]]:
    """("name" or "prefix", the runs `spec` names that way, oldest first): an exact directory
    name, else the runs of that run name, else those whose directory name starts with it."""
    candidates = [p for p in _candidates(root) if is_run_dir(p)]
    exact = [p for p in candidates if p.name == spec]
    if exact:
        return "name", exact
    ways = (
        ("name", lambda p: _is_named(p, spec)),
        ("prefix", lambda p: p.name.startswith(spec)),
    )
    for kind, matches in ways:  # a run name first, then a prefix of a directory name
        found = sorted((p for p in candidates if matches(p)), key=_age)
        if found:
            return kind, found
    if spec.startswith(".") and (root / spec).is_dir():
        raise ConfigError(f"{str(root / spec)!r} is a hidden folder (a run being made, or one rm was deleting): no "
                          f"name reaches it; give its path if you mean it")
    if (root / spec).is_dir():
        raise ConfigError(
            f"{str(root / spec)!r} is not a run directory (it has none of {', '.join(RUN_FILES)})"
        )
    raise ConfigError(f"run {spec!r} matches no run in {root}")


def _is_named(path: Path, name: str) -> bool:
    return split_dir_name(path.name)[0] == name


def runs_named(name: str, root: Path) -> list[Path]:
    """The runs whose run name is `name` in the runs folder `root`, oldest first: those the
    name means (its newest; `NAME~K` the others), as a lookup finds them."""
    return sorted((p for p in _candidates(root) if is_run_dir(p) and _is_named(p, name)), key=_age)


def _older_run(spec: str, k: int, root: Path, note: Callable[[str], None] | None) -> Path:
    """`spec~k`: the k-th run older than the newest that `spec` names (k = 0: the newest)."""
    kind, found = _named(spec, root)
    if k >= len(found):
        oldest = f"{spec}~{len(found) - 1} is the oldest" if len(found) > 1 else "it has no older run"
        raise ConfigError(f"'{spec}~{k}': run {kind} {spec!r} matches {len(found)} run"
                          f"{'' if len(found) == 1 else 's'} in {root}; {oldest}")
    chosen = found[len(found) - 1 - k]
    if note is not None:
        note(f"'{spec}~{k}' is {chosen.name}")
    return chosen


def newer_namesakes(paths: Sequence[Path]) -> list[int]:
    """For each run directory, how many runs of its name in its folder are newer: the K of
    `NAME~K` that names it (0: NAME alone does). 0 where the folder cannot be listed."""
    folders: dict[Path, dict[str, list[str]]] = {}  # folder -> run name -> directory names, oldest first
    counts = []
    for path in paths:
        if path.parent not in folders:
            try:
                runs = sorted((p for p in _candidates(path.parent) if is_run_dir(p)), key=_age)
            except (ConfigError, RunDirError, OSError):  # labels only: not worth an error
                runs = []
            folders[path.parent] = named = {}
            for run in runs:
                named.setdefault(split_dir_name(run.name)[0], []).append(run.name)
        same = folders[path.parent].get(split_dir_name(path.name)[0], [])
        counts.append(len(same) - 1 - same.index(path.name) if path.name in same else 0)
    return counts


def _resolve_glob(spec: str, root: Path) -> list[Path]:
    matches = sorted(globlib.glob(spec))
    if not matches and not Path(spec).is_absolute():
        matches = sorted(globlib.glob(str(root / spec)))
    dirs = [Path(m) for m in matches if Path(m).is_dir()]
    runs = [d for d in dirs if is_run_dir(d)]
    if not runs:
        what = f"only folders that are not runs ({_listing(dirs)})" if dirs else "nothing"
        raise ConfigError(f"glob {spec!r} matches {what}")
    return runs


def resolve_runs(specs: Iterable[str], root: Path, *, ambiguous: Ambiguous | str = Ambiguous.REFUSE,
                 note: Callable[[str], None] | None = None) -> list[Path]:
    """All runs the specs name (each as resolve_run reads it), in order, each once: absolute,
    under the name they were found by (a run that is a link keeps the link's name, which
    `show` and `rm` take)."""
    seen: dict[Path, Path] = {}
    for spec in specs:
        for path in resolve_run(spec, root, ambiguous=ambiguous, note=note):
            seen.setdefault(path.resolve(), Path(os.path.abspath(path)))
    return list(seen.values())


# ---------------------------------------------------------------------------------------
# `ls`: one cheap record per run, from summary.json alone.


@dataclass
class RunEntry:
    """A row of `trickrun ls`."""

    name: str
    status: Status | str
    epochs: int | None
    best_val_acc: float | None
    test_acc: float | None
    started: datetime | None
    duration_s: float | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "epochs": self.epochs,
            "best_val_acc": self.best_val_acc,
            "test_acc": self.test_acc,
            "started": self.started.isoformat(timespec="seconds") if self.started else None,
            "duration_s": self.duration_s,
        }


def _count_lines(path: Path) -> int | None:
    """Complete lines of a file (the epochs of an unfinished run), without parsing them."""
    try:
        with open(path, "rb") as f:
            return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))
    except OSError:
        return None


def scan_entry(path: Path, now: datetime | None = None) -> RunEntry | None:
    """The `ls` row of one directory, or None if it is not a run. Reads summary.json only
    (and counts the lines of metrics.jsonl for a run that has not finished)."""
    summary, _ = read_summary(path / SUMMARY_FILE)
    if summary is None and not any((path / f).is_file() for f in (CONFIG_FILE, METRICS_FILE)):
        return None
    status = effective_status(summary, path)  # asks the lock only of a "running" run: ls stays fast
    summary = summary or {}
    started = parse_time(summary.get("started")) or split_dir_name(path.name)[1]
    if status in ENDED:
        epochs = summary.get("epochs_run") if isinstance(summary.get("epochs_run"), int) else None
        best = summary.get("best") if isinstance(summary.get("best"), dict) else {}
        test = summary.get("test") if isinstance(summary.get("test"), dict) else {}
        return RunEntry(
            name=path.name,
            status=status,
            epochs=epochs,
            best_val_acc=finite_number(best.get("val_acc")),
            test_acc=finite_number(test.get("acc")),
            started=started,
            duration_s=finite_number(summary.get("wall_s")),
        )
    duration = None
    if status is Status.RUNNING and started is not None:
        now = now or datetime.now(started.tzinfo)
        try:
            duration = max(0.0, (now - started).total_seconds())
        except TypeError:  # naive vs aware
            duration = None
    return RunEntry(
        name=path.name,
        status=status,
        epochs=_count_lines(path / METRICS_FILE),
        best_val_acc=None,
        test_acc=None,
        started=started,
        duration_s=duration,
    )


def scan_runs(root: Path) -> tuple[list[RunEntry], list[str]]:
    """The `ls` rows of every run under `root`, and the names of folders that are not runs."""
    entries = _scan_folder(root)
    rows, skipped = [], []
    for entry in sorted(entries, key=lambda e: e.name):
        if entry.name.startswith(".") or entry.name == SWEEPS_FOLDER or not entry.is_dir():
            continue
        row = scan_entry(Path(entry.path))
        if row is None:
            skipped.append(entry.name)
        else:
            rows.append(row)
    return rows, skipped
