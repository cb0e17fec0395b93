"""Learning-rate schedules: lr as a pure function of the epoch (1-based), plus the plateau
schedule, which has to remember the metric.

With warm-up W > 0 the first W epochs ramp linearly, lr * e / (W + 1) for e = 1..W, and
the schedule then starts at its own epoch 1 on epoch W + 1:
  constant     lr
  exponential  lr * gamma^(k - 1)                 (the lesson's decay, gamma 0.98 per epoch)
  step         lr * gamma^floor((k - 1) / step_size)
  cosine       min_lr + (lr - min_lr) * (1 + cos(pi * (k - 1) / (K - 1))) / 2, reaching
               min_lr at the last epoch of the run (K = epochs - W scheduled epochs)
  plateau      lr, times `factor` each time `patience` epochs in a row pass without the
               monitored metric improving (improvement as early stopping defines it,
               with early_stopping.monitor and min_delta); never below min_lr
where k = e - W counts the scheduled epochs.
"""

from __future__ import annotations

import math

from ..registry import Registry

SCHEDULES: Registry = Registry("schedule")


@SCHEDULES.register("constant")
def constant(k: int, lr: float, cfg, total: int) -> float:
    return lr


@SCHEDULES.register("exponential")
def exponential(k: int, lr: float, cfg, total: int) -> float:
    return lr * cfg.gamma ** (k - 1)


@SCHEDULES.register("step")
def step(k: int, lr: float, cfg, total: int) -> float:
    return lr * cfg.gamma ** ((k - 1) // cfg.step_size)


@SCHEDULES.register("cosine")
def cosine(k: int, lr: float, cfg, total: int) -> float:
    if total <= 1:
        return lr
    progress = min(k - 1, total - 1) / (total - 1)
    return cfg.min_lr + (lr - cfg.min_lr) * (1 + math.cos(math.pi * progress)) / 2


@SCHEDULES.register("plateau")
def plateau(k: int, lr: float, cfg, total: int) -> float:
    return lr  # the cuts are applied by LRSchedule.observe, which knows the metric


class LRSchedule:
    """lr for each epoch from the config; `observe(improved)` feeds the plateau rule."""

    def __init__(self, cfg, base_lr: float, epochs: int):
        self.cfg, self.base_lr, self.epochs = cfg, base_lr, epochs
        self._rule = SCHEDULES.get(cfg.name)
        self.scale = 1.0  # product of plateau cuts so far
        self.bad_epochs = 0

    def lr(self, epoch: int) -> float:
        w = self.cfg.warmup_epochs
        if epoch <= w:
            return self.base_lr * epoch / (w + 1)
        value = self._rule(epoch - w, self.base_lr, self.cfg, self.epochs - w)
        if self.cfg.name == "plateau":
            value = max(value * self.scale, self.cfg.min_lr)
        return value

    def observe(self, epoch: int, improved: bool) -> None:
        """After an epoch: count epochs without improvement and cut lr for plateau."""
        if self.cfg.name != "plateau" or epoch <= self.cfg.warmup_epochs:
            return
        self.bad_epochs = 0 if improved else self.bad_epochs + 1
        if self.bad_epochs >= max(self.cfg.patience, 1):
            self.scale *= self.cfg.factor
            self.bad_epochs = 0

    def state_dict(self) -> dict:
        return {"scale": self.scale, "bad_epochs": self.bad_epochs}

    def load_state_dict(self, state: dict) -> None:
        self.scale, self.bad_epochs = float(state["scale"]), int(state["bad_epochs"])
