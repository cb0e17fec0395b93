"""Early stopping driven by scripted metric sequences, no training needed."""

from __future__ import annotations

import json
import math

import pytest

from trickrun.early_stopping import EarlyStopping


def drive(es: EarlyStopping, values) -> int | None:
    """Feed values for epochs 1, 2, ...; return the epoch at which it says stop, or None."""
    for epoch, value in enumerate(values, start=1):
        es.update(epoch, value)
        if es.should_stop:
            return epoch
    return None


def test_keras_sequence_stops_at_epoch_5_with_best_epoch_3():
    es = EarlyStopping("val_loss", patience=2)
    assert drive(es, [0.2, 0.15, 0.1, 0.11]) is None  # one bad epoch is not enough
    assert es.wait == 1
    es.update(5, 0.12)
    assert es.should_stop
    assert (es.best, es.best_epoch, es.wait) == (0.1, 3, 2)


def test_update_reports_new_best():
    es = EarlyStopping("val_loss", patience=5)
    assert [es.update(e, v) for e, v in enumerate([0.5, 0.4, 0.45, 0.3], 1)] == [True, True, False, True]


def test_improvement_smaller_than_min_delta_does_not_count():
    es = EarlyStopping("val_loss", patience=2, min_delta=0.05)
    assert drive(es, [1.0, 0.97]) is None
    assert (es.best, es.best_epoch, es.wait) == (1.0, 1, 1)  # 0.97 is not a new best
    es.update(3, 0.93)  # 0.07 below the best: an improvement
    assert (es.best, es.best_epoch, es.wait) == (0.93, 3, 0)


@pytest.mark.parametrize("monitor, values", [("val_loss", [1.0, 0.75]), ("val_acc", [0.5, 0.75])])
def test_change_of_exactly_min_delta_is_not_an_improvement(monitor, values):
    es = EarlyStopping(monitor, patience=3, min_delta=0.25)  # binary-exact numbers
    drive(es, values)
    assert (es.best_epoch, es.wait) == (1, 1)


@pytest.mark.parametrize("monitor", ["val_loss", "val_acc"])
def test_equal_value_is_not_an_improvement(monitor):
    es = EarlyStopping(monitor, patience=1)
    assert drive(es, [0.5, 0.5]) == 2
    assert es.best_epoch == 1


def test_min_delta_is_measured_against_the_best_not_the_last_value():
    # every step is a small improvement on the previous value, none beats 1.0 by 0.05
    es = EarlyStopping("val_loss", patience=3, min_delta=0.05)
    assert drive(es, [1.0, 0.97, 0.96, 0.955]) == 4
    assert es.best_epoch == 1


def test_val_acc_higher_is_better():
    es = EarlyStopping("val_acc", patience=2)
    assert drive(es, [0.5, 0.6, 0.55, 0.58, 0.61]) == 4
    assert (es.best, es.best_epoch) == (0.6, 2)


def test_val_acc_min_delta():
    es = EarlyStopping("val_acc", patience=5, min_delta=0.01)
    drive(es, [0.5, 0.505, 0.52])
    assert [es.best, es.best_epoch] == [0.52, 3]
    es2 = EarlyStopping("val_acc", patience=5, min_delta=0.01)
    drive(es2, [0.5, 0.505])
    assert es2.best_epoch == 1


def test_patience_zero_stops_at_the_first_epoch_without_improvement():
    es = EarlyStopping("val_loss", patience=0)
    assert drive(es, [0.3, 0.2, 0.25, 0.1]) == 3
    assert es.best_epoch == 2


def test_disabled_tracks_best_but_never_stops():
    es = EarlyStopping("val_loss", patience=2, enabled=False)
    assert drive(es, [0.2, 0.15, 0.1, 0.11, 0.12, 0.13, 0.14, 0.5]) is None
    assert (es.best, es.best_epoch, es.wait) == (0.1, 3, 5)


@pytest.mark.parametrize("monitor", ["val_loss", "val_acc"])
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_values_never_improve(monitor, bad):
    es = EarlyStopping(monitor, patience=3)
    es.update(1, 0.5)
    assert es.update(2, bad) is False
    assert (es.best, es.best_epoch, es.wait) == (0.5, 1, 1)


def test_nan_on_the_first_epoch_is_not_the_best():
    es = EarlyStopping("val_loss", patience=3)
    assert es.update(1, math.nan) is False
    assert es.best_epoch is None
    assert es.update(2, 1.0) is True
    assert es.best_epoch == 2


def test_state_round_trip_continues_identically():
    es = EarlyStopping("val_loss", patience=2)
    drive(es, [0.2, 0.15, 0.1, 0.11])
    state = json.loads(json.dumps(es.state_dict()))  # plain data, as a checkpoint stores it
    resumed = EarlyStopping("val_loss", patience=2)
    resumed.load_state_dict(state)
    assert (resumed.best, resumed.best_epoch, resumed.wait) == (0.1, 3, 1)
    resumed.update(5, 0.12)
    assert resumed.should_stop and resumed.best_epoch == 3


def test_an_unknown_monitor_is_refused_naming_the_valid_ones():
    with pytest.raises(ValueError, match="val_loss, val_acc.*'train_loss'"):
        EarlyStopping("train_loss")


@pytest.mark.parametrize(("monitor", "values"), [
    ("val_loss", [0.9, 0.5, 0.5, 0.7, 0.4, 0.4, math.nan]),
    ("val_acc", [0.5, 0.7, 0.7, 0.6, 0.8, 0.8, math.inf]),
])
def test_best_epoch_agrees_with_the_readers_best_index(monitor, values):
    # while training and when reading a run back, the same epoch must be called the best
    from trickrun.metrics import best_index

    es = EarlyStopping(monitor, patience=10)
    drive(es, values)
    assert es.best_epoch == best_index(values, monitor) + 1 == 5
