"""The sweep's vocabulary: what the driver does with a cell (`Action`) and where a cell stands
(`CellState`, sweep.json's `status`), with the transitions a cell may make.

    pending --run--> running --> completed | early_stopped | diverged   (finished)
                             \\-> interrupted   (Ctrl-C, SIGTERM, or its process died: resumable)
                             \\-> failed        (its process raised, exited non-zero or was killed)
    pending --> busy            another live process trains the cell's run: never run twice
    pending --> finished        found finished when the sweep was planned (skipped)
    pending --> interrupted     found part-way when the sweep was planned (resumed when run)
    interrupted | failed --run--> running
    interrupted --> busy | finished   its run could not be claimed to resume: another process
                                      holds it or removed it, or finished it (then its result)

A finished cell's state is its run's status (rundir.format.Status), so the two vocabularies
agree where they meet.
"""

from __future__ import annotations

from enum import Enum

from ..rundir.format import FINAL, Status


class Action(str, Enum):
    """What a sweep does with a cell, decided from the runs already in the runs folder."""

    SKIP = "skip"  # its run finished with the same config: nothing to do
    RESUME = "resume"  # its run stopped part-way: go on from the run's checkpoint
    TRAIN = "train"  # no run yet: a new run directory
    BUSY = "busy"  # another live process trains its run: leave it alone

    def __str__(self) -> str:
        return self.value

    @property
    def runs(self) -> bool:
        return self in (Action.RESUME, Action.TRAIN)


class CellState(str, Enum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = Status.COMPLETED.value
    EARLY_STOPPED = Status.EARLY_STOPPED.value
    DIVERGED = Status.DIVERGED.value
    INTERRUPTED = Status.INTERRUPTED.value
    FAILED = "failed"
    BUSY = "busy"

    def __str__(self) -> str:
        return self.value

    @classmethod
    def of_run(cls, status: Status | str) -> "CellState":
        """A run's status as a cell's state: finished ones as they are, anything that
        stopped part-way (interrupted, stale, no summary) as interrupted."""
        return cls(str(status)) if status in FINAL else cls.INTERRUPTED


FINISHED = frozenset({CellState.COMPLETED, CellState.EARLY_STOPPED, CellState.DIVERGED})
_ENDS = FINISHED | {CellState.INTERRUPTED, CellState.FAILED}
TRANSITIONS: dict[CellState, frozenset[CellState]] = {
    CellState.PENDING: frozenset({CellState.RUNNING, CellState.BUSY, CellState.INTERRUPTED} | FINISHED),
    CellState.RUNNING: _ENDS,
    CellState.INTERRUPTED: frozenset({CellState.RUNNING, CellState.BUSY} | FINISHED),
    CellState.FAILED: frozenset({CellState.RUNNING}),
    CellState.BUSY: frozenset(),
    **{state: frozenset() for state in FINISHED},
}


class TransitionError(RuntimeError):
    """A programming error: the driver asked for a transition the table above does not allow."""


def check_transition(old: CellState, new: CellState) -> None:
    if new not in TRANSITIONS[old]:
        raise TransitionError(f"a cell cannot go from {old} to {new}")


# Exit codes of a process stopped by a signal it handled (128 + the signal: SIGINT, SIGTERM,
# SIGHUP), as trickrun's train, resume and the worker report them.
INTERRUPTED_EXIT_CODES = frozenset({130, 143, 129})
