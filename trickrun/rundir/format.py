"""The run-directory format in one place: file names, statuses, layer names.

A run directory `<runs>/<name>-<YYYYmmdd-HHMMSS>[-N]` holds:
  config.yaml    the resolved config (re-runnable with `trickrun train`)
  metrics.jsonl  one JSON object per epoch, appended and flushed as each epoch ends
  summary.json   status and results; written with status "running" at start, rewritten at end
  model.npz      the weights that were evaluated on the test set
  checkpoint.npz everything needed to resume after the last finished epoch
  .lock          not a result: the process training the run holds an exclusive flock on it
                 (and writes its pid and host into it) for as long as it trains; the OS
                 drops the lock when that process dies. Readers ignore the file; it is
                 never deleted (deleting a lock file lets two processes lock two files).
The directory itself appears whole (writer.create_run_dir: made in a hidden staging folder,
then renamed into place). Every file but metrics.jsonl is replaced atomically (temporary file, fsync, rename), so a
reader never sees half a file, and a crash leaves the previous complete version.
"""

from __future__ import annotations

from enum import Enum

CONFIG_FILE = "config.yaml"
METRICS_FILE = "metrics.jsonl"
SUMMARY_FILE = "summary.json"
MODEL_FILE = "model.npz"
ENSEMBLE_KIND = "ensemble"  # config.yaml's and summary.json's `kind` of a saved ensemble: no training
CHECKPOINT_FILE = "checkpoint.npz"
# Beside the run directories in a runs folder: `sweeps/<NAME>/sweep.json`, one per sweep.
SWEEPS_FOLDER = "sweeps"
LOCK_FILE = ".lock"


class Status(str, Enum):
    """A run's status. The first five are written to summary.json; the last two are only
    ever derived by readers (a `running` run that no process holds the lock of any more, or
    whose process is gone for a run from before the lock; no summary at all)."""

    RUNNING = "running"
    COMPLETED = "completed"
    EARLY_STOPPED = "early_stopped"
    DIVERGED = "diverged"
    INTERRUPTED = "interrupted"
    STALE = "stale"
    INCOMPLETE = "incomplete"

    def __str__(self) -> str:  # so f-strings and tables show "completed", not "Status.COMPLETED"
        return self.value


# Over for good: nothing left to resume, the checkpoint is deleted.
FINAL = frozenset({Status.COMPLETED, Status.EARLY_STOPPED, Status.DIVERGED})
# Stopped part-way: `trickrun resume` goes on from the last checkpoint.
RESUMABLE = frozenset({Status.INTERRUPTED, Status.STALE})
# Has results to show and no process writing to it any more.
ENDED = FINAL | {Status.INTERRUPTED}
# Ran all the way to its end: a wall time that compares (a diverged or interrupted run was cut short)
RAN_TO_END = frozenset({Status.COMPLETED, Status.EARLY_STOPPED})

OUTPUT_LAYER = "output"
_HIDDEN = "hidden"


def layer_names(n_hidden: int) -> list[str]:
    """The per-layer names of metrics.jsonl and model.npz: hidden1..hiddenN, output."""
    return [f"{_HIDDEN}{i + 1}" for i in range(n_hidden)] + [OUTPUT_LAYER]


def layer_order(name: str) -> tuple[int, int | str]:
    """Sort key putting layer names in network order (hidden2 before hidden10, output last)."""
    if name == OUTPUT_LAYER:
        return (2, 0)
    digits = name[len(_HIDDEN):]
    if name.startswith(_HIDDEN) and digits.isdigit():
        return (0, int(digits))
    return (1, name)
