"""How a run ends: why the epoch loop stopped (an Ending, with the Divergence behind a diverged
one) and the result summary.json records.

However the run ends (early stop, epoch limit, divergence, Ctrl-C, SIGTERM, SIGHUP or running
out of memory), the best weights by the monitor (or the last ones with restore_best false)
are evaluated once on the test set and saved as model.npz. After a divergence the last weights
are not finite and after a stop they are from the middle of an epoch, so then the best ones
are evaluated whatever restore_best says.
"""

from __future__ import annotations

import dataclasses
import signal
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from .nn.losses import evaluate
from .nn.model import model_arrays
from .rundir.format import Status
from .signals import SignalStop, signal_label


@dataclass(frozen=True)
class Divergence:
    """Where training first met a non-finite value; summary.json's `divergence`."""

    epoch: int
    batch: int | None  # None: the validation loss after the epoch, not a batch
    layer: str | None
    where: str  # e.g. "activations", "gradients", "validation loss"
    lr: float

    def reason(self) -> str:
        if self.batch is None:
            return f"{self.where} became non-finite in epoch {self.epoch}"
        return (f"non-finite value in epoch {self.epoch}, batch {self.batch}, "
                f"{self.where} of {self.layer} (lr {self.lr:.3g})")


@dataclass(frozen=True)
class Ending:
    """Why the loop stopped. `stop_signal`: the signal that interrupted it (SIGINT for Ctrl-C);
    `out_of_memory`: a MemoryError did."""

    status: Status
    reason: str
    divergence: Divergence | None = None
    stop_signal: int | None = None
    out_of_memory: bool = False

    @classmethod
    def diverged(cls, divergence: Divergence) -> "Ending":
        return cls(Status.DIVERGED, divergence.reason(), divergence)


def run_until_ended(next_epoch: Callable[[], Ending | None], position: Callable[[], str],
                    signals: SignalStop) -> Ending:
    """Call `next_epoch` until it returns an Ending, with the stop signals turned into
    KeyboardInterrupt (signals.SignalStop). A stop signal or a MemoryError ends the run as
    interrupted, and resumable: freeing memory or a smaller batch may be enough. `position()`
    says where in the run it stopped ("during epoch 3", "after epoch 2"). Once the ending is
    decided a later signal waits (SignalStop.hold_to_the_end) while the caller, which keeps the
    signals installed (api._run), writes the run's end."""
    try:
        # Divergence is caught by the finiteness checks and reported in trickrun's words;
        # numpy's overflow warnings on the way there would only leak source lines.
        with signals.installed(), np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            while (ending := next_epoch()) is None:
                pass
            signals.hold_to_the_end()
            return ending
    except KeyboardInterrupt as stop:  # Ctrl-C, or a StopSignal
        signals.hold_to_the_end()
        signum = getattr(stop, "signum", signal.SIGINT)
        return Ending(Status.INTERRUPTED, f"interrupted ({signal_label(signum)}) {position()}",
                      stop_signal=signum)
    except MemoryError:
        signals.hold_to_the_end()  # decided as well: its end (interrupted, resumable) is written whole
        return Ending(Status.INTERRUPTED, f"ran out of memory {position()}", out_of_memory=True)


def finish(state, ending: Ending, writer, *, restore_best: bool, test_set: tuple[np.ndarray, np.ndarray],
           train_s: float) -> dict[str, Any]:
    """Evaluate the chosen weights of `state` (train.Trainer: model, best_state, stopper,
    best_values, epochs_done, epoch) on `test_set`, save them through `writer`, and return
    the result for the summary (rundir.writer.RunWriter.finish adds timing and versions)."""
    best_epoch, reason = state.stopper.best_epoch, ending.reason
    if restore_best or ending.status in (Status.DIVERGED, Status.INTERRUPTED):
        state.model.load_flat_state(state.best_state)
        evaluated = best_epoch
    else:
        evaluated = state.epochs_done
    test = None
    if best_epoch is None:
        reason += "; no epoch finished, so nothing was evaluated on the test set"
    else:
        test, problem = _test_and_save(state.model, writer, test_set, evaluated)
        reason += problem
    return {
        "status": ending.status,
        "stop_reason": reason,
        "epochs_run": state.epochs_done,
        "best_epoch": best_epoch,
        "stopped_epoch": state.epoch,
        "best": {"monitor": state.stopper.monitor, **state.best_values},
        "test": test,
        "train_s": train_s,
        "divergence": dataclasses.asdict(ending.divergence) if ending.divergence else None,
    }


def _test_and_save(model, writer, test_set, evaluated: int) -> tuple[dict | None, str]:
    """The test result of `model` (the weights of epoch `evaluated`) and model.npz; running
    out of memory for either is said in the stop reason, as the summary matters more."""
    try:
        loss, acc = evaluate(model, *test_set)
    except MemoryError:
        return None, "; out of memory for the test evaluation"
    test = {"loss": loss, "acc": acc, "weights_of_epoch": evaluated}
    try:
        writer.save_model(model_arrays(model))
    except MemoryError:
        return test, "; out of memory saving model.npz"
    return test, ""


def stop_condition(stopper, epoch: int, max_epochs: int, min_delta: float) -> Ending | None:
    """The Ending due before epoch `epoch` + 1 starts, or None to go on: early stopping's
    patience ran out, or the epoch limit was reached."""
    if stopper.should_stop:
        return Ending(Status.EARLY_STOPPED, f"{stopper.monitor} did not improve by more than "
                                            f"{min_delta:g} for {stopper.wait} epochs")
    if epoch >= max_epochs:
        return Ending(Status.COMPLETED, f"reached the epoch limit ({max_epochs})")
    return None
