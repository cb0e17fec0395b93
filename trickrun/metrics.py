"""The per-epoch metrics every run records, and which way is better for each.

One place decides "higher is better" and picks the best epoch, for early stopping while a
run trains and for every reader of finished runs.
"""

from __future__ import annotations

import math
from typing import Sequence

# Metric keys the training loop writes to metrics.jsonl, in the order tables show them.
METRIC_KEYS = (
    "lr",
    "train_loss",
    "train_acc",
    "val_loss",
    "val_acc",
    "penalty",
    "grad_norm",
    "clip_fraction",
    "epoch_s",
)
# What early stopping (and the plateau schedule) may watch.
MONITORS = ("val_loss", "val_acc")


def higher_is_better(metric: str) -> bool | None:
    """True for accuracies, False for losses, None for metrics with no better direction."""
    if metric.endswith("acc"):
        return True
    if metric.endswith("loss"):
        return False
    return None


def best_index(values: Sequence[float | None], metric: str) -> int | None:
    """Index of the best finite value by the metric's direction (the first of equals); the
    last finite one for a metric with no better direction; None when none is finite."""
    direction = higher_is_better(metric)
    best = None
    for i, v in enumerate(values):
        if v is None or not math.isfinite(v):
            continue
        if best is None or direction is None or (v > values[best] if direction else v < values[best]):
            best = i
    return best
