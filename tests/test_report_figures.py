"""The lesson report's figures do not mislead: accuracy bars start at 0 (no cut axis magnifies
a gap), an arm whose runs diverged says so, one with nothing finite to draw is named in its
panel instead of vanishing, and the overview figure shows the same cut intervals as the tables."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pytest

from test_lesson import _synthetic_runs
from trickrun.lesson import figures
from trickrun.lesson.claims import CLAIMS
from trickrun.lesson.measures import CHANCE
from trickrun.lesson.results import ClaimResult
from trickrun.lesson.runner import measure_claim
from trickrun.lesson.verdicts import SUPPORTED, Comparison, Outcome
from trickrun.rundir.reader import Run

CLAIM_OF = {c.number: c for c in CLAIMS}


@pytest.fixture
def drawn(monkeypatch) -> list[dict]:
    """What each figure drawn during the test showed: per panel its texts, legend, tick labels
    and y range."""
    seen: list[dict] = []

    def capture(fig, axes, path, title):
        for ax in axes:
            legend = ax.get_legend_handles_labels()[1]
            seen.append({"texts": [t.get_text() for t in ax.texts], "legend": legend, "title": ax.get_title(),
                         "ticks": [t.get_text() for t in ax.get_xticklabels()], "ylim": ax.get_ylim(),
                         "hlines": [line.get_ydata()[0] for line in ax.get_lines() if line.get_linestyle() == ":"]})
        plt.close(fig)

    monkeypatch.setattr(figures, "_save", capture)
    return seen


def test_accuracy_bars_start_at_zero_with_chance_marked_and_means_labelled():
    fig, ax = plt.subplots()
    figures.bar_panel(ax, {"a": [0.962, 0.964], "b": [0.958, 0.960]}, "test accuracy")
    low, high = ax.get_ylim()
    assert low == 0.0 and high >= 1.0  # a 0.4-point gap stays a 0.4-point gap
    assert [t.get_text() for t in ax.texts] == ["0.9630", "0.9590"]
    assert any(line.get_linestyle() == ":" and line.get_ydata()[0] == CHANCE for line in ax.get_lines())
    assert "axis from 0" in ax.get_ylabel()
    plt.close(fig)


def test_claim7_score_bars_start_at_zero(tmp_path, drawn):
    claim = CLAIM_OF[7]
    result = ClaimResult(claim, _synthetic_runs(claim, tmp_path), {}, None)
    measure_claim(result, quick=True)
    figures.draw(result, tmp_path)
    score_panel = next(p for p in drawn if p["title"].startswith("score"))
    assert score_panel["ylim"][0] == 0.0


def _diverged(run: Run) -> Run:
    """The run as it looks when it blew up in its first epoch: no finite statistic."""
    records = [{**r, "val_acc": None, "train_loss": None,
                "layers": [{**layer, "act_std": None, "grad_norm": None} for layer in r["layers"]]}
               for r in run.records]
    return Run(run.path, run.config, {**run.summary, "status": "diverged"}, records)


def test_claim2_figure_names_the_arms_that_diverged(tmp_path, drawn):
    claim = CLAIM_OF[2]
    runs = [_diverged(r) if claim.arm(r.config) == "relu normal" else r for r in _synthetic_runs(claim, tmp_path)]
    result = ClaimResult(claim, runs, {}, None)
    measure_claim(result, quick=True)
    figures.draw(result, tmp_path)
    relu = [p for p in drawn if p["title"].startswith("relu")]
    profiles = [p for p in relu if "test accuracy" not in p["title"]]
    assert len(profiles) == 2
    for panel in profiles:  # nothing finite to draw: named in the panel, with its count
        assert panel["texts"] == ["not drawn, no finite value: normal (2/2 diverged)"]
        assert not any(label.startswith("normal") for label in panel["legend"])
    bars = next(p for p in relu if "test accuracy" in p["title"])
    assert "normal (2/2 diverged)" in bars["ticks"] and "(diverged = 0.1)" in bars["title"]
    tanh = [p for p in drawn if p["title"].startswith("tanh")]
    assert tanh and not any(t.startswith("not drawn") for p in tanh for t in p["texts"])  # all drawn


def test_curves_count_the_diverged_runs_of_an_arm(tmp_path, drawn):
    claim = CLAIM_OF[1]
    runs = _synthetic_runs(claim, tmp_path)
    first = next(r for r in runs if claim.arm(r.config) == "none")
    runs = [Run(r.path, r.config, {**r.summary, "status": "diverged"}, r.records) if r is first else r for r in runs]
    result = ClaimResult(claim, runs, {}, None)
    measure_claim(result, quick=True)
    figures.draw(result, tmp_path)
    curves = next(p for p in drawn if p["title"] == "validation accuracy")
    assert "none (n=2, 1 diverged)" in curves["legend"]


def test_the_overview_shows_an_accuracy_interval_cut_at_the_range(tmp_path):
    comparison = Comparison("test_acc", "a", "b", True, 0.002)
    o = Outcome(1, comparison, 3, 0.99, 0.97, 0.02, (-0.01, 0.05), 1.0, 0.01, verdict=SUPPORTED)
    effect, low, high = figures._in_sesoi_units(o)
    assert high == pytest.approx((1 - 0.97) / 0.002)  # the arm's mean cannot pass 1
    assert low == pytest.approx(-0.01 / 0.002) and effect == pytest.approx(10.0)
    path = figures.forest([("1: a > b", o)], tmp_path / "verdicts.png")
    assert path.stat().st_size > 5000


def test_a_curve_runs_to_the_epochs_every_run_that_did_not_diverge_reached(tmp_path):
    from runfactory import make_run
    from trickrun.rundir.reader import load_run

    def run(seed, epochs, status="completed"):
        return load_run(make_run(tmp_path, "x", seed=seed, stamp=f"20240501-12000{seed}", epochs=epochs,
                                 status=status))

    full, stopped, broken = run(0, 5), run(1, 3, "early_stopped"), run(2, 2, "diverged")
    epochs, means, _ = figures.mean_band([full, stopped], "val_acc")
    assert epochs == [1, 2, 3]  # not epochs 4 and 5, where only the run still going is left
    assert means[-1] == pytest.approx((full.series("val_acc")[2] + stopped.series("val_acc")[2]) / 2)
    epochs, means, _ = figures.mean_band([full, broken], "val_acc")
    assert epochs == [1, 2, 3, 4, 5]  # a diverged run counts until it diverged (its label says so)
    assert means[0] == pytest.approx((full.series("val_acc")[0] + broken.series("val_acc")[0]) / 2)
    assert means[-1] == pytest.approx(full.series("val_acc")[-1])
