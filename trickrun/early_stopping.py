"""Early stopping as a small state machine, testable with scripted metric sequences.

An epoch improves when the monitored value beats the best so far by more than
`min_delta` (lower for val_loss, higher for val_acc). After `patience` epochs in a row
without improvement the monitor says stop (patience 0: stop at the first epoch that does not
improve). The first epoch always improves. The best epoch is tracked even when stopping is
disabled, so the best weights can be restored however the run ends.
"""

from __future__ import annotations

import math

from .metrics import MONITORS, higher_is_better


class EarlyStopping:
    def __init__(self, monitor: str = "val_loss", patience: int = 5, min_delta: float = 0.0,
                 enabled: bool = True):
        self.monitor, self.patience, self.min_delta, self.enabled = monitor, patience, min_delta, enabled
        if monitor not in MONITORS:
            raise ValueError(f"monitor must be one of {', '.join(MONITORS)}, got {monitor!r}")
        self.higher_is_better = higher_is_better(monitor)
        self.best: float | None = None
        self.best_epoch: int | None = None
        self.wait = 0

    def improves(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        if self.best is None:
            return True
        if self.higher_is_better:
            return value > self.best + self.min_delta
        return value < self.best - self.min_delta

    def update(self, epoch: int, value: float) -> bool:
        """Record one epoch's value; return True when it is the new best."""
        if self.improves(value):
            self.best, self.best_epoch, self.wait = value, epoch, 0
            return True
        self.wait += 1
        return False

    @property
    def should_stop(self) -> bool:
        return self.enabled and self.wait >= max(self.patience, 1)

    def state_dict(self) -> dict:
        return {"best": self.best, "best_epoch": self.best_epoch, "wait": self.wait}

    def load_state_dict(self, state: dict) -> None:
        self.best, self.best_epoch, self.wait = state["best"], state["best_epoch"], int(state["wait"])
