"""`trickrun rm`: delete run directories, and a sweep's record with its runs, safely.

What may be deleted: only a run directory (a folder reader.is_run_dir accepts) that sits
directly in the runs folder, is no symbolic link, and is not hidden (`.creating-…` folders
are runs being made, writer.py's; they are left alone). The runs folder itself may be a
link: it is resolved once and every path is checked against the result. Anything else the
user names is refused before anything is deleted (ConfigError, exit 2).

How: each run's lock (lock.py) is taken first and held while the run goes, so a process
that trains it is never pulled from under (the run is left and named with its holder;
exit 1 at the end). Under the lock the folder is renamed to a hidden `.removing-…` folder in
the runs folder, then deleted. A crash part-way leaves only that hidden folder, which `ls`
and name lookups never show as a run, and which the next `rm` finishes deleting. Deleting
never follows a link inside a run: shutil.rmtree unlinks a link and leaves what it points to
(and on Linux does so without races).

A sweep (`--sweep NAME`): its lock is held from before its runs are listed to the end, so it
cannot start while they go; a running sweep is refused (exit 2). Its record folder
`<runs>/sweeps/<NAME>/` goes last, and only if every run it lists went.
"""

from __future__ import annotations

import os
import secrets
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from rich.console import Console

from ..display import say
from ..errors import ConfigError, TrickrunError
from ..rundir.files import pid_alive, read_summary
from ..rundir.format import LOCK_FILE, SUMMARY_FILE, SWEEPS_FOLDER, Status
from ..rundir.lock import RunLock, holder, is_locked
from ..rundir.reader import RUN_FILES, is_run_dir, resolve_run, scan_entry
from ..rundir.writer import STAGING_PREFIX
from ..sweep.record import cell_run_dirs, no_record, read_record, record_path, sweeps_by_run

TRASH_PREFIX = ".removing-"


@dataclass
class Removal:
    """What `rm` was asked to delete, checked: run directories directly in `root` (the runs
    folder, links resolved), and a sweep's record folder."""

    root: Path
    runs: list[Path]
    sweep: str | None = None
    sweep_folder: Path | None = None
    sweep_lock: RunLock | None = None  # held from planning to the end (not for a dry run)
    sweep_runs: list[Path] = field(default_factory=list)  # those of `runs` its record lists, read under the lock

    def release(self) -> None:
        if self.sweep_lock is not None:
            self.sweep_lock.release()


@dataclass
class Outcome:
    removed: list[Path] = field(default_factory=list)
    left: list[str] = field(default_factory=list)  # why each run that stayed stayed
    sweep_removed: bool = False


# ---------------------------------------------------------------------------------------
# What may be deleted.


def _real_root(root: Path) -> Path:
    if root.exists() and not root.is_dir():  # as the readers say it (rundir.reader._scan_folder)
        raise ConfigError(f"runs folder {str(root)!r} is not a folder")
    if not root.is_dir():
        raise ConfigError(f"runs folder {str(root)!r} does not exist; pass --runs-dir or set TRICKRUN_RUNS_DIR")
    return Path(os.path.realpath(root))


def checked_run(path: Path, root: Path) -> Path:
    """`path` as the run directory it is in the runs folder `root` (links resolved), or a
    ConfigError saying why rm leaves it alone."""
    if path.is_symlink():
        raise ConfigError(f"{path} is a symbolic link (to {os.readlink(path)}); rm never deletes through a "
                          f"link: to drop the link alone, delete it with your shell's rm, which leaves what "
                          f"it points to")
    if Path(os.path.realpath(path)) == root:  # `.`, `./` or '' from the runs folder, or its own path
        raise ConfigError(f"{str(path) or repr('')} is the runs folder {root} itself; rm deletes runs in it, "
                          f"never the folder: name the runs, e.g. trickrun rm 'baseline-*'")
    parent = Path(os.path.realpath(path.parent))
    if parent != root:
        hint = f" (give --runs-dir {parent} to remove it from its own)" if _not_a_run(path) is None else ""
        raise ConfigError(f"{path} is not in the runs folder {root}; rm deletes only runs directly in the "
                          f"runs folder{hint}")
    if path.name.startswith(STAGING_PREFIX):
        raise ConfigError(f"{path} is a run being created (a staging folder); rm leaves it alone, and a "
                          f"later run removes it once it is abandoned")
    if path.name.startswith("."):
        raise ConfigError(f"{path} is a hidden folder, not a run rm deletes")
    real = root / path.name
    if (why := _not_a_run(real)) is not None:
        raise ConfigError(f"{path} is not a run directory ({why}); rm deletes only runs")
    if (real / LOCK_FILE).is_symlink():
        raise ConfigError(f"{real / LOCK_FILE} is a symbolic link; rm will not lock or delete through it: "
                          f"delete that link yourself, then run rm again")
    return real


def _not_a_run(path: Path) -> str | None:
    """Why `path` is not a run directory trickrun made, or None. A run directory is flat: a
    folder with a config.yaml and folders in it (a project holding its runs) is never one."""
    if not is_run_dir(path):
        return f"it has none of {', '.join(RUN_FILES)}"
    try:
        folders = sorted(entry.name for entry in os.scandir(path) if entry.is_dir(follow_symlinks=False))
    except OSError as err:
        return f"it cannot be listed: {err.strerror}"
    if folders:
        return f"it holds folders ({', '.join(folders[:3])}{', ...' if len(folders) > 3 else ''}), which a run never does"
    return None


def _checked_sweep_folder(root: Path, name: str) -> Path:
    folder = record_path(root, name).parent
    missing = ConfigError(f"--sweep {name[:60]!r}: no sweep of that name in {root / SWEEPS_FOLDER}")
    try:
        for path in (root / SWEEPS_FOLDER, folder):
            if path.is_symlink():
                raise ConfigError(f"{path} is a symbolic link; rm never deletes through a link")
        if Path(os.path.realpath(folder)).parent != root / SWEEPS_FOLDER or not folder.is_dir():
            raise missing
    except OSError:  # a name the file system will not look up (too long): no sweep has it
        raise missing from None
    return folder


def _sweep_busy_message(name: str) -> Callable[[str], str]:
    return lambda who: (f"sweep {name!r} is being run by {who}; rm leaves a running sweep and its "
                        f"runs alone: wait for it to end (or stop it), then run rm again")


def plan_removal(specs: Iterable[str], root: Path, sweep: str | None = None, *, dry_run: bool = False) -> Removal:
    """The runs `specs` name (as compare takes them; a name or prefix matching several runs
    is refused by resolve_run, which is what a delete needs) plus, with `sweep`, the runs its
    record lists that are still there and its record folder, all checked; ConfigError before
    anything is deleted when any is not removable. The sweep's lock is taken here, before its
    record is read (only probed for a dry run), so the runs listed are the record's as it
    stays until rm ends: a `--rerun` cannot swap them in between."""
    root = _real_root(root)
    runs: dict[Path, None] = {}
    for spec in specs:
        for path in resolve_run(spec, root):
            runs.setdefault(checked_run(path, root), None)
    removal = Removal(root, list(runs), sweep)
    if sweep is None:
        return removal
    removal.sweep_folder = _checked_sweep_folder(root, sweep)
    busy = _sweep_busy_message(sweep)
    if dry_run:
        if is_locked(removal.sweep_folder):
            raise ConfigError(busy(holder(removal.sweep_folder)))
    else:
        removal.sweep_lock = RunLock.acquire(removal.sweep_folder, busy=busy)
    try:
        removal.sweep_runs = _sweep_runs(root, sweep)
    except BaseException:
        removal.release()
        raise
    removal.runs += [run for run in removal.sweep_runs if run not in runs]
    return removal


def _sweep_runs(root: Path, sweep: str) -> list[Path]:
    """The run directories the sweep's record lists that are still there, each checked.
    Runs are never taken by name: those of an earlier --rerun the record no longer lists stay."""
    record = read_record(record_path(root, sweep))
    if record is None:
        raise no_record(root, sweep)
    listed = dict.fromkeys(cell_run_dirs(root, record))
    return [checked_run(run, root) for run in listed if os.path.isdir(run)]


# ---------------------------------------------------------------------------------------
# Deleting.


def _trash_name(folder: Path) -> Path:
    return folder.parent / f"{TRASH_PREFIX}{folder.name}-{secrets.token_hex(4)}"


def _delete(folder: Path) -> str | None:
    """Rename `folder` to a hidden name beside it, then delete it; why not, or None."""
    try:
        trash = _trash_name(folder)
        os.rename(folder, trash)
    except OSError as err:
        return f"{folder.name}: cannot remove it: {err.strerror or err}; it is left as it was"
    try:
        shutil.rmtree(trash)
    except OSError as err:
        return f"{folder.name}: removed from the runs, but deleting {trash.name} failed part-way " \
               f"({err.strerror or err}); the next trickrun rm deletes the rest"
    return None


def _still_trained_without_lock(run: Path, lock: RunLock) -> bool:
    """A run from before run locks whose summary says running and whose pid lives (this host)."""
    if not lock.created:
        return False
    summary, _ = read_summary(run / SUMMARY_FILE)
    return bool(summary) and summary.get("status") == Status.RUNNING \
        and pid_alive(summary.get("pid"), summary.get("host")) is True


def remove_run(run: Path) -> str | None:
    """Delete the run directory `run` under its lock; None when done, else why it was left."""
    try:
        lock = RunLock.acquire(run, busy=lambda who: f"{run.name} is being trained by {who}; left alone "
                                                     f"(stop that process first to remove it)")
    except TrickrunError as err:
        return str(err)
    try:
        if run.is_symlink():  # swapped for a link since it was checked
            return f"{run.name} became a symbolic link since it was listed; left alone"
        if _still_trained_without_lock(run, lock):
            (run / LOCK_FILE).unlink(missing_ok=True)  # ours, made just now: it must not say the run is free
            return f"{run.name} may still be trained by pid {read_summary(run / SUMMARY_FILE)[0].get('pid')} " \
                   f"(a trickrun from before run locks); left alone"
        return _delete(run)
    finally:
        lock.release()


def finish_interrupted(folder: Path) -> None:
    """Delete what an `rm` that crashed part-way left in `folder` (its hidden folders whose
    lock no process holds)."""
    try:
        entries = [e for e in os.scandir(folder) if e.name.startswith(TRASH_PREFIX)
                   and e.is_dir(follow_symlinks=False)]
    except OSError:
        return
    for entry in entries:
        if not is_locked(Path(entry.path)):
            shutil.rmtree(entry.path, ignore_errors=True)


def remove(removal: Removal) -> Outcome:
    """Delete the runs, then the sweep's record if every run it listed went (a run named
    beside the sweep that stays does not keep it)."""
    outcome = Outcome()
    for run in removal.runs:
        why = remove_run(run)
        if why is None:
            outcome.removed.append(run)
        else:
            outcome.left.append(why)
    if removal.sweep_folder is not None and not sweep_runs_left(removal, outcome):
        why = _delete(removal.sweep_folder)
        if why is None:
            outcome.sweep_removed = True
        else:
            outcome.left.append(f"the record of sweep {removal.sweep}: {why}")
    finish_interrupted(removal.root)
    finish_interrupted(removal.root / SWEEPS_FOLDER)
    return outcome


def sweep_runs_left(removal: Removal, outcome: Outcome) -> list[Path]:
    """The sweep's own runs that are still there after `remove`."""
    removed = set(outcome.removed)
    return [run for run in removal.sweep_runs if run not in removed]


# ---------------------------------------------------------------------------------------
# The command.


def _listing(removal: Removal) -> list[str]:
    lines = []
    for run in removal.runs:
        entry = scan_entry(run)  # None only if it stopped being a run since it was checked
        epochs = (f", {entry.epochs} epoch{'' if entry.epochs == 1 else 's'}"
                  if entry and entry.epochs is not None else "")
        lines.append(f"  {run.name}  ({entry.status if entry else 'no longer a run'}{epochs})")
    if removal.sweep_folder is not None:
        lines.append(f"  {SWEEPS_FOLDER}/{removal.sweep_folder.name}/  (the record of sweep {removal.sweep})")
    return lines


def _sweeps_missing_runs(removal: Removal, outcome: Outcome) -> dict[str, int]:
    """Sweeps whose records (still there) list runs just removed: name -> how many."""
    by_run = sweeps_by_run(removal.root)
    counts: dict[str, int] = {}
    for run in outcome.removed:
        for name in by_run.get(run.name, ()):
            if name != removal.sweep:  # said already: its record is kept
                counts[name] = counts.get(name, 0) + 1
    return counts


def _what(removal: Removal) -> str:
    runs = f"{len(removal.runs)} run{'s' if len(removal.runs) != 1 else ''}"
    return runs + (f" and the record of sweep {removal.sweep}" if removal.sweep is not None else "")


def run_rm(specs: list[str], root: Path, sweep: str | None, *, dry_run: bool,
           ask: Callable[[str], bool] | None, out: Console, err: Console) -> int:
    """List what the specs name, ask (`ask` None: --yes), delete; the exit code: 0 all gone
    (or a dry run), 1 declined or some run left (busy, or a disk error)."""
    removal = plan_removal(specs, root, sweep, dry_run=dry_run)
    try:
        say(out, f"{'would remove' if dry_run else 'to remove'} from {removal.root}: {_what(removal)}")
        for line in _listing(removal):
            say(out, line)
        if dry_run:
            say(out, "nothing was removed (--dry-run)")
            return 0
        if ask is not None and not ask(f"Remove {_what(removal)}?"):
            say(out, "nothing was removed")
            return 1
        outcome = remove(removal)
    finally:
        removal.release()
    for line in outcome.left:
        say(err, f"left: {line}")
    if kept := sweep_runs_left(removal, outcome):
        say(err, f"the record of sweep {sweep} is kept, since {len(kept)} of its {len(removal.sweep_runs)} runs "
                 f"stayed; run rm --sweep {sweep} again once they can go")
    for name, gone in _sweeps_missing_runs(removal, outcome).items():
        say(err, f"the record of sweep {name} still lists {gone} run(s) removed here; compare --sweep "
                 f"{name} and export --sweep {name} take the runs still there, with a warning; trickrun rm "
                 f"--sweep {name} removes its other runs and the record", "note:")
    done = f"removed {len(outcome.removed)} run{'s' if len(outcome.removed) != 1 else ''}"
    say(out, done + (f" and the record of sweep {sweep}" if outcome.sweep_removed else ""))
    return 1 if outcome.left else 0  # as a sweep that left a cell busy
