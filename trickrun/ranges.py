"""The allowed range of every numeric config key: what validation checks and what error
messages and `trickrun explain` show."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Bounds:
    """The allowed range of a numeric key: lo <= value <= hi, with open ends where asked."""

    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False

    def __str__(self) -> str:
        """`[0, 1)`, `(0, inf)`: the form error messages and `trickrun explain` show. An
        unbounded end is open, since validation refuses infinity itself."""
        left = "(-inf" if self.lo is None else f"{'(' if self.lo_open else '['}{self.lo}"
        right = "inf)" if self.hi is None else f"{self.hi}{')' if self.hi_open else ']'}"
        return f"{left}, {right}"

    def holds(self, value: float | int) -> bool:
        bad_lo = self.lo is not None and (value <= self.lo if self.lo_open else value < self.lo)
        bad_hi = self.hi is not None and (value >= self.hi if self.hi_open else value > self.hi)
        return not (bad_lo or bad_hi or value != value)  # value != value: NaN


RATE = Bounds(0, 1, hi_open=True)  # a probability or decay factor: 0 allowed, 1 not
POSITIVE = Bounds(0, lo_open=True)
AT_LEAST_0, AT_LEAST_1 = Bounds(0), Bounds(1)
# The range of every numeric key (of each item, for a list); null passes wherever a key may be null.
RANGES: dict[str, Bounds] = {
    "seed": AT_LEAST_0,
    "data.val_size": Bounds(1, 59_999),
    "data.split_seed": AT_LEAST_0,
    "data.train_limit": AT_LEAST_1,
    "model.hidden": Bounds(1, 65_536),
    "model.bn_momentum": RATE,
    "model.dropout": RATE,
    "model.input_dropout": RATE,
    "optimizer.lr": POSITIVE,
    "optimizer.momentum": RATE,
    "optimizer.beta1": RATE,
    "optimizer.beta2": RATE,
    "optimizer.eps": POSITIVE,
    "optimizer.rho": RATE,
    "optimizer.weight_decay": AT_LEAST_0,
    "regularization.l2": AT_LEAST_0,
    "regularization.l1": AT_LEAST_0,
    "regularization.max_norm": POSITIVE,
    "clip.norm": POSITIVE,
    "clip.value": POSITIVE,
    "schedule.gamma": Bounds(0, 1, lo_open=True),
    "schedule.step_size": AT_LEAST_1,
    "schedule.min_lr": AT_LEAST_0,
    "schedule.factor": Bounds(0, 1, lo_open=True, hi_open=True),
    "schedule.patience": AT_LEAST_0,
    "schedule.warmup_epochs": AT_LEAST_0,
    "train.epochs": AT_LEAST_1,
    "train.batch_size": AT_LEAST_1,
    "early_stopping.patience": AT_LEAST_0,
    "early_stopping.min_delta": AT_LEAST_0,
}
