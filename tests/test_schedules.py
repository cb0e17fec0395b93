"""Each schedule's lr sequence against its closed form, warm-up, and the plateau rule."""

from __future__ import annotations

import math

import pytest

from trickrun.config import ScheduleConfig
from trickrun.nn.schedules import SCHEDULES, LRSchedule, Schedule

LR, EPOCHS, MIN_LR = 0.1, 12, 0.004
GAMMA = {"exponential": 0.98, "step": 0.5}
STEP_SIZE = 3

# lr at scheduled epoch k (1-based) of K scheduled epochs, written from the docstring
CLOSED_FORM = {
    "constant": lambda k, K: LR,
    "exponential": lambda k, K: LR * 0.98 ** (k - 1),
    "step": lambda k, K: LR * 0.5 ** ((k - 1) // STEP_SIZE),
    "cosine": lambda k, K: MIN_LR + (LR - MIN_LR) * (1 + math.cos(math.pi * (k - 1) / (K - 1))) / 2,
    "plateau": lambda k, K: LR,  # constant until observe() reports no improvement
}


def schedule(name: str, warmup: int = 0, **kw) -> LRSchedule:
    kw = {"gamma": GAMMA.get(name, 0.98), "step_size": STEP_SIZE, "min_lr": MIN_LR, **kw}
    cfg = ScheduleConfig(name=name, warmup_epochs=warmup, **kw)
    return LRSchedule(cfg, LR, EPOCHS)


@pytest.mark.parametrize("warmup", [0, 3])
@pytest.mark.parametrize("name", SCHEDULES.names())
def test_lr_sequence_matches_closed_form(name, warmup):
    assert name in CLOSED_FORM, f"write the closed form of the new schedule {name!r}"
    s = schedule(name, warmup)
    got = [s.lr(e) for e in range(1, EPOCHS + 1)]
    ramp = [LR * e / (warmup + 1) for e in range(1, warmup + 1)]
    rest = [CLOSED_FORM[name](k, EPOCHS - warmup) for k in range(1, EPOCHS - warmup + 1)]
    assert got == pytest.approx(ramp + rest, rel=1e-12, abs=1e-15)


def test_step_schedule_literal():
    s = schedule("step")
    got = [s.lr(e) for e in range(1, 13)]
    assert got == pytest.approx([0.1] * 3 + [0.05] * 3 + [0.025] * 3 + [0.0125] * 3, rel=1e-12)


def test_exponential_uses_gamma_per_epoch():
    s = schedule("exponential")
    assert s.lr(1) == pytest.approx(0.1)
    assert s.lr(2) == pytest.approx(0.098)
    assert s.lr(3) == pytest.approx(0.1 * 0.9604)


@pytest.mark.parametrize("warmup", [0, 3])
def test_cosine_starts_at_lr_and_reaches_min_lr_at_the_last_epoch(warmup):
    s = schedule("cosine", warmup)
    assert s.lr(warmup + 1) == pytest.approx(LR, rel=1e-12)
    assert s.lr(EPOCHS) == pytest.approx(MIN_LR, rel=1e-12)
    assert s.lr(EPOCHS - 1) > MIN_LR
    lrs = [s.lr(e) for e in range(warmup + 1, EPOCHS + 1)]
    assert all(a > b for a, b in zip(lrs, lrs[1:]))  # strictly decreasing


def test_warmup_ramp_literal():
    s = schedule("constant", warmup=3)
    assert [s.lr(e) for e in range(1, 6)] == pytest.approx([0.025, 0.05, 0.075, 0.1, 0.1], rel=1e-12)


@pytest.mark.parametrize("name", [n for n in SCHEDULES.names() if n != "plateau"])
def test_observe_does_not_change_other_schedules(name):
    s, reference = schedule(name, patience=1), schedule(name, patience=1)
    for e in range(1, EPOCHS + 1):
        assert s.lr(e) == reference.lr(e)
        s.observe(e, improved=False)


def test_plateau_cuts_after_patience_bad_epochs_and_never_below_min_lr():
    s = schedule("plateau", patience=2, factor=0.5, min_lr=0.02)
    improved = [True, False, False, False, False, True, False, False, False, False, False, False]
    got = []
    for e, imp in enumerate(improved, start=1):
        got.append(s.lr(e))
        s.observe(e, imp)
    # cuts after epochs 3 (bad 2, 3), 5 (bad 4, 5), 8 (bad 7, 8 - epoch 6 reset the count);
    # 0.1 * 0.5^3 = 0.0125 is floored at min_lr 0.02
    assert got == pytest.approx([0.1, 0.1, 0.1, 0.05, 0.05, 0.025, 0.025, 0.025, 0.02, 0.02, 0.02, 0.02],
                                rel=1e-12)


def test_plateau_patience_zero_cuts_at_every_bad_epoch():
    s = schedule("plateau", patience=0, factor=0.5, min_lr=0.0)
    got = []
    for e, imp in enumerate([True, False, False, True, False], start=1):
        got.append(s.lr(e))
        s.observe(e, imp)
    assert got == pytest.approx([0.1, 0.1, 0.05, 0.025, 0.025], rel=1e-12)


def test_plateau_ignores_observations_during_warmup():
    s = schedule("plateau", warmup=2, patience=1, factor=0.5, min_lr=0.0)
    got = []
    for e in range(1, 6):
        got.append(s.lr(e))
        s.observe(e, improved=False)
    assert got == pytest.approx([0.1 / 3, 0.2 / 3, 0.1, 0.05, 0.025], rel=1e-12)


def test_plateau_state_round_trip_continues_identically():
    improved = [True, False, False, False, True, False, False, False, False, False, True, False]
    whole = schedule("plateau", patience=2, factor=0.5, min_lr=0.0)
    expected = []
    for e, imp in enumerate(improved, start=1):
        expected.append(whole.lr(e))
        whole.observe(e, imp)

    first = schedule("plateau", patience=2, factor=0.5, min_lr=0.0)
    for e, imp in enumerate(improved[:4], start=1):
        first.lr(e)
        first.observe(e, imp)
    state = first.state_dict()
    assert state == {"scale": 0.5, "bad_epochs": 1}  # mid-count: a restore must keep it
    resumed = schedule("plateau", patience=2, factor=0.5, min_lr=0.0)
    resumed.load_state_dict(state)
    got = []
    for e, imp in enumerate(improved[4:], start=5):
        got.append(resumed.lr(e))
        resumed.observe(e, imp)
    assert got == expected[4:]


def test_a_registered_schedule_gets_observations_and_checkpoints_without_being_named(monkeypatch):
    """LRSchedule treats every schedule alike: a new stateful one needs no caller changed."""

    class Counting(Schedule):
        def __init__(self, cfg, lr, total):
            super().__init__(cfg, lr, total)
            self.seen = []

        def lr(self, k):
            return self.base_lr * (len(self.seen) + 1)

        def observe(self, improved):
            self.seen.append(improved)

        def state_dict(self):
            return {"seen": list(self.seen)}

        def load_state_dict(self, state):
            self.seen = list(state["seen"])

    monkeypatch.setitem(SCHEDULES._items, "counting", Counting)
    s = schedule("counting", warmup=1)
    for e, imp in enumerate([False, True, False], start=1):
        s.observe(e, imp)
    assert s.state_dict() == {"seen": [True, False]}  # the warm-up epoch is not observed
    assert s.lr(4) == pytest.approx(3 * LR)
    resumed = schedule("counting", warmup=1)
    resumed.load_state_dict(s.state_dict())
    assert resumed.lr(4) == s.lr(4)


@pytest.mark.parametrize("name", [n for n in SCHEDULES.names() if n != "plateau"])
def test_stateless_schedules_write_the_same_checkpoint_fields(name):
    s = schedule(name)
    s.observe(1, improved=False)
    assert s.state_dict() == {"scale": 1.0, "bad_epochs": 0}  # what older checkpoints hold
    s.load_state_dict({"scale": 1.0, "bad_epochs": 0})
