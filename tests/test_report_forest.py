"""The figure at the top of the lesson report: every comparison's paired effect in units of
its SESOI, signed so that the predicted direction is positive, with its verdict's colour."""

from __future__ import annotations

import pytest

from trickrun.lesson.figures import _in_sesoi_units, forest
from trickrun.lesson.verdicts import CONTRADICTED, INCONCLUSIVE, Comparison, Outcome


def outcome(higher: bool, diff: float, ci: tuple[float, float], verdict: str, sesoi: float = 0.002,
            metric: str = "test_acc", mean_base: float = 0.9) -> Outcome:
    o = Outcome(1, Comparison(metric, "a", "b", higher, sesoi), 8, 0.9, mean_base, diff, ci, 0.5, 0.01)
    o.verdict = verdict
    return o


def test_effects_are_in_sesoi_units_and_point_the_predicted_way():
    assert _in_sesoi_units(outcome(True, 0.004, (0.002, 0.006), CONTRADICTED)) == pytest.approx((2.0, 1.0, 3.0))
    # "lower is better" (epochs to a threshold): a drop of 4 epochs is +4 SESOIs of 1 epoch
    epochs = outcome(False, -4.0, (-5.0, -3.0), CONTRADICTED, sesoi=1.0, metric="epochs_to", mean_base=9.0)
    assert _in_sesoi_units(epochs) == pytest.approx((4.0, 3.0, 5.0))


def test_the_forest_figure_is_drawn_for_every_testable_comparison(tmp_path):
    rows = [("1: a > b", outcome(True, 0.004, (0.002, 0.006), CONTRADICTED)),
            ("2: c > d", outcome(True, 0.0, (-0.001, 0.001), INCONCLUSIVE)),
            ("3: untestable", outcome(True, None, None, INCONCLUSIVE))]  # left out, no error
    path = forest(rows, tmp_path / "verdicts.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000
