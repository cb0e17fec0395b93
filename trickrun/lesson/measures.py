"""What is measured on each run, as pure functions of a loaded run (or of its curves).

  test_acc     the test accuracy summary.json holds; a run that diverged, or that has no
               test result, scores CHANCE (0.1, ten classes) whatever it reached before
  epochs_to    when val_acc first reaches a stated threshold, in epochs, read off the straight
               line between the last validation below it and the first at or above it
               (epoch 0 at chance); a run that never reaches it counts as its maximum
               epochs (train.epochs) + 1
  gap          train_acc - val_acc of the scored epoch, the one whose weights the test set
               scored (the last, or the best one restored by early stopping); train_acc is
               the running accuracy of the epoch's batches, dropout on, as recorded
  val_acc      val_acc of the scored epoch
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

from ..rundir.format import Status
from ..rundir.files import finite_number
from ..rundir.reader import Run

CHANCE = 0.1  # accuracy of guessing among MNIST's ten classes


def diverged(run: Run) -> bool:
    return run.status == Status.DIVERGED


def test_acc(run: Run) -> float:
    test = (run.summary or {}).get("test")
    acc = finite_number(test.get("acc")) if isinstance(test, dict) else None
    return CHANCE if diverged(run) or acc is None else acc


test_acc.__test__ = False  # a measure, not a pytest test


def max_epochs(run: Run) -> int:
    epochs = (run.config.get("train") or {}).get("epochs")
    return epochs if isinstance(epochs, int) else len(run.records)


def epochs_to_threshold(val_acc: Sequence[float | None], threshold: float, limit: int,
                        start: float = CHANCE, epochs: Sequence[int] | None = None) -> float:
    """When `val_acc` (one value per epoch, from epoch 1; or of `epochs`, the records' own
    numbers, when a line of metrics.jsonl was lost) first reaches `threshold`, in epochs:
    the crossing of the straight line from the last value below it to the first at or above
    it, with an untrained net (epoch 0) at `start`; limit + 1 when no value reaches it.
    Interpolated rather than the first epoch's number, so that two runs crossing within the
    same epoch still differ by how far into it: whole epochs tie often and hide small savings."""
    last_epoch, last = 0, start
    for epoch, value in zip(epochs if epochs is not None else range(1, len(val_acc) + 1), val_acc):
        if value is None:
            continue
        if value >= threshold:
            if last >= threshold:  # only an epoch 0 already past it
                return float(last_epoch)
            return last_epoch + (epoch - last_epoch) * (threshold - last) / (value - last)
        last_epoch, last = epoch, value
    return float(limit + 1)


def epochs_to(run: Run, threshold: float) -> float:
    return epochs_to_threshold(run.series("val_acc"), threshold, max_epochs(run), epochs=run.epochs)


def scored_record(run: Run) -> dict | None:
    """The metrics.jsonl record of the epoch whose weights the test set scored (the last
    record when the summary does not say)."""
    test = (run.summary or {}).get("test")
    epoch = test.get("weights_of_epoch") if isinstance(test, dict) else None
    for record in run.records:
        if epoch is not None and record.get("epoch") == epoch:
            return record
    return run.records[-1] if run.records else None


def _value(run: Run, key: str) -> float | None:
    record = scored_record(run)
    return finite_number(record.get(key)) if record else None


def gap(run: Run) -> float | None:
    train, val = _value(run, "train_acc"), _value(run, "val_acc")
    return None if train is None or val is None else train - val


def scored_val_acc(run: Run) -> float | None:
    return _value(run, "val_acc")


def grad_spread(run: Run) -> float | None:
    """How far the backward signal leaves its range across the hidden layers after the first
    epoch: log10 of the largest hidden layer's gradient norm over the smallest (0: all equal;
    2: a hundredfold apart). None when a norm is missing, zero or not finite (a run that
    diverged has no spread to measure)."""
    record = run.records[0] if run.records else None
    layers = record.get("layers") if isinstance(record, dict) else None
    if not isinstance(layers, list):
        return None
    norms = [finite_number(layer.get("grad_norm")) for layer in layers
             if isinstance(layer, dict) and str(layer.get("name", "")).startswith("hidden")]
    if len(norms) < 2 or any(n is None or n <= 0 for n in norms):
        return None
    return math.log10(max(norms) / min(norms))


def _epochs_to(run: Run, threshold: float | None) -> float | None:
    return epochs_to(run, threshold) if threshold is not None else None


# The range of each bounded measure (claim 7's score is a mean test accuracy): the report clips
# an interval that would put an arm's mean outside it.
BOUNDS: dict[str, tuple[float, float]] = {"test_acc": (0.0, 1.0), "val_acc": (0.0, 1.0), "score": (0.0, 1.0)}


def clip_interval(metric: str, ci: tuple[float, float], mean_base: float | None) -> tuple[tuple[float, float], bool]:
    """The interval `ci` of a difference (arm - baseline) of `metric`, cut where it would put the
    arm's mean outside the measure's range given the baseline's mean (an accuracy difference
    then lies in [-mean_base, 1 - mean_base], within [-1, 1]); and whether it was cut."""
    bounds = BOUNDS.get(metric)
    if bounds is None or mean_base is None:
        return ci, False
    low, high = max(ci[0], bounds[0] - mean_base), min(ci[1], bounds[1] - mean_base)
    return (low, high), (low, high) != tuple(ci)

# Each measure by the name a claim's `metrics` and comparisons use: (run, threshold) -> value.
MEASURES: dict[str, Callable[[Run, float | None], float | None]] = {
    "test_acc": lambda run, threshold: test_acc(run),
    "epochs_to": _epochs_to,
    "gap": lambda run, threshold: gap(run),
    "grad_spread": lambda run, threshold: grad_spread(run),
    "val_acc": lambda run, threshold: scored_val_acc(run),
    "diverged": lambda run, threshold: float(diverged(run)),
}
