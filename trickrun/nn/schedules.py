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


class Schedule:
    """lr at scheduled epoch k (1-based) of `total` scheduled epochs. A schedule may react to
    `observe(improved)` after each scheduled epoch; its `state_dict` is what a checkpoint
    keeps. Every schedule writes the plateau rule's fields (scale 1, no bad epochs for the
    rest), so one checkpoint format holds them all. `uses`: the keys of the schedule section
    it reads besides name and warmup_epochs."""

    uses: tuple[str, ...] = ()

    def __init__(self, cfg, lr: float, total: int):
        self.cfg, self.base_lr, self.total = cfg, lr, total

    def lr(self, k: int) -> float:
        raise NotImplementedError

    def observe(self, improved: bool) -> None:
        """After a scheduled epoch: did the monitored metric improve? Most schedules ignore it."""

    def state_dict(self) -> dict:
        return {"scale": 1.0, "bad_epochs": 0}

    def load_state_dict(self, state: dict) -> None:
        """Stateless: nothing to restore."""


@SCHEDULES.register("constant")
class Constant(Schedule):
    def lr(self, k: int) -> float:
        return self.base_lr


@SCHEDULES.register("exponential")
class Exponential(Schedule):
    uses = ("gamma",)

    def lr(self, k: int) -> float:
        return self.base_lr * self.cfg.gamma ** (k - 1)


@SCHEDULES.register("step")
class Step(Schedule):
    uses = ("gamma", "step_size")

    def lr(self, k: int) -> float:
        return self.base_lr * self.cfg.gamma ** ((k - 1) // self.cfg.step_size)


@SCHEDULES.register("cosine")
class Cosine(Schedule):
    uses = ("min_lr",)

    def lr(self, k: int) -> float:
        lr, total, min_lr = self.base_lr, self.total, self.cfg.min_lr
        if total <= 1:
            return lr
        progress = min(k - 1, total - 1) / (total - 1)
        return min_lr + (lr - min_lr) * (1 + math.cos(math.pi * progress)) / 2


@SCHEDULES.register("plateau")
class Plateau(Schedule):
    uses = ("factor", "patience", "min_lr")

    def __init__(self, cfg, lr: float, total: int):
        super().__init__(cfg, lr, total)
        self.scale = 1.0  # product of the cuts so far
        self.bad_epochs = 0

    def lr(self, k: int) -> float:
        return max(self.base_lr * self.scale, self.cfg.min_lr)

    def observe(self, improved: bool) -> None:
        self.bad_epochs = 0 if improved else self.bad_epochs + 1
        if self.bad_epochs >= max(self.cfg.patience, 1):
            self.scale *= self.cfg.factor
            self.bad_epochs = 0

    def state_dict(self) -> dict:
        return {"scale": self.scale, "bad_epochs": self.bad_epochs}

    def load_state_dict(self, state: dict) -> None:
        self.scale, self.bad_epochs = float(state["scale"]), int(state["bad_epochs"])


class LRSchedule:
    """lr for each epoch of the run: the warm-up ramp, then the configured schedule."""

    def __init__(self, cfg, base_lr: float, epochs: int):
        self.cfg, self.base_lr, self.epochs = cfg, base_lr, epochs
        self.schedule: Schedule = SCHEDULES.get(cfg.name)(cfg, base_lr, epochs - cfg.warmup_epochs)

    def lr(self, epoch: int) -> float:
        w = self.cfg.warmup_epochs
        if epoch <= w:
            return self.base_lr * epoch / (w + 1)
        return self.schedule.lr(epoch - w)

    def observe(self, epoch: int, improved: bool) -> None:
        """After an epoch; epochs of the warm-up are not the schedule's to judge."""
        if epoch > self.cfg.warmup_epochs:
            self.schedule.observe(improved)

    def state_dict(self) -> dict:
        return self.schedule.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.schedule.load_state_dict(state)
