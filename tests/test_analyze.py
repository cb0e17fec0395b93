"""The analysis layer on its own: plain data out of Run objects, no cells, no rich objects."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest

from runfactory import curve_records, make_run
from trickrun.analysis import analyze
from trickrun.analysis.compare import load_compared
from trickrun.analysis.stats import welch_t_test
from trickrun.errors import ConfigError
from trickrun.rundir.reader import load_run

ADAM_ACCS = [0.974, 0.976, 0.973]
SGD_ACCS = [0.965, 0.968, 0.962]


def seed_runs(root: Path) -> list:
    paths = [make_run(root, "adam", seed=s, stamp=f"20240501-12000{s}", test_acc=acc)
             for s, acc in enumerate(ADAM_ACCS)]
    paths += [make_run(root, "sgd", seed=s, stamp=f"20240501-13000{s}", test_acc=acc,
                       **{"optimizer.name": "sgd", "optimizer.lr": 0.1})
              for s, acc in enumerate(SGD_ACCS)]
    return [load_run(p) for p in paths]


def _plain(value) -> bool:
    """Only builtins, dataclasses of them, Runs and WelchResults: nothing to render with."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return True
    if isinstance(value, (list, tuple)):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(_plain(k) and _plain(v) for k, v in value.items())
    if type(value).__name__ == "Run":
        return True
    if dataclasses.is_dataclass(value):
        return all(_plain(getattr(value, f.name)) for f in dataclasses.fields(value))
    return False


def test_compare_runs_gives_plain_results_curves_and_gradients(tmp_path: Path) -> None:
    a = load_run(make_run(tmp_path, "adam", test_acc=0.973))
    b = load_run(make_run(tmp_path, "sgd", stamp="20240501-130000", test_acc=0.96, epochs=4,
                          **{"optimizer.name": "sgd"}))
    got = analyze.compare_runs([a, b], baseline=1, metric="train_loss")
    assert _plain(got)
    assert got.baseline == 1 and got.diff == [("optimizer.name", ["adam", "sgd"])]
    assert [k for k, _ in got.fields][:4] == ["status", "epochs_run", "best_epoch", "best_train_loss"]
    first = got.runs[0]
    assert first.label == "adam" and first.results["test_acc"] == 0.973
    assert first.results["best_train_loss"] == min(first.run.series("train_loss"))
    curve = first.curves["val_acc"]
    assert (curve.best_epoch, curve.best_value) == (a.summary["best_epoch"], max(curve.values))
    assert list(first.curves) == ["train_loss", "val_acc", "val_loss"]
    assert first.grads["hidden1"] == (pytest.approx(0.1), pytest.approx(0.1 / 6))
    assert got.runs[1].curves["val_loss"].best_epoch == 4


def test_compare_groups_gives_mean_sd_n_and_welch(tmp_path: Path) -> None:
    got = analyze.compare_groups(seed_runs(tmp_path), baseline=0)
    assert _plain(got)
    adam, sgd = got.groups
    # labelled by the config values that differ between the groups, as the sweep leaderboard labels them
    assert (adam.group.label, sgd.group.label, got.baseline) == (
        "optimizer.name=adam optimizer.lr=0.001", "optimizer.name=sgd optimizer.lr=0.1", 0)
    stat = adam.stats["test_acc"]
    assert stat.n == 3 and stat.mean == pytest.approx(sum(ADAM_ACCS) / 3)
    assert stat.sd == pytest.approx(math.sqrt(7e-6 / 3))
    assert "status" not in adam.stats
    expected = welch_t_test(SGD_ACCS, ADAM_ACCS)  # the other group minus the baseline's
    assert got.verdicts[0] is None and got.verdicts[1].word == "worse"
    welch = got.verdicts[1].welch
    assert (welch.t, welch.df, welch.p) == (expected.t, expected.df, expected.p)
    assert got.diff == [("optimizer.name", ["adam", "sgd"]), ("optimizer.lr", [0.001, 0.1])]


def test_every_group_is_judged_against_the_baseline_group(tmp_path: Path) -> None:
    runs = seed_runs(tmp_path) + [load_run(make_run(tmp_path, "rms", **{"optimizer.name": "rmsprop"}))]
    got = analyze.compare_groups(runs, baseline=6)  # the rms run, alone in its group
    assert len(got.groups) == 3 and got.baseline == 2
    assert [str(v) for v in got.verdicts] == ["n < 2", "n < 2", "None"]
    got = analyze.compare_groups(runs, baseline=3)  # sgd: adam is judged against it, rms cannot be
    assert [v.word if v else None for v in got.verdicts] == ["better", None, "n < 2"]


def test_a_single_group_is_labelled_by_the_name_its_runs_share(tmp_path: Path) -> None:
    runs = [load_run(make_run(tmp_path, f"base_s{s}", seed=s, stamp=f"20240501-12000{s}")) for s in range(3)]
    assert [g.label for g in analyze.group_runs(runs)] == ["base"]
    assert analyze.group_runs(runs[:1])[0].label == "base_s0"


def test_a_run_its_name_no_longer_means_is_labelled_name_tilde_k(tmp_path: Path) -> None:
    older, newer, other = (load_run(make_run(tmp_path, name, stamp=stamp)) for name, stamp in
                           [("base", "20240501-120000"), ("base", "20240501-130000"), ("norm", "20240501-120000")])
    assert analyze.run_labels([older, other]) == ["base~1", "norm"]  # "base" now means `newer`
    assert analyze.run_labels([newer, other]) == ["base", "norm"]
    assert analyze.run_labels([newer, older]) == ["base", "base~1"]  # same name and seed
    seeds = [load_run(make_run(tmp_path / "s", "adam", seed=s, stamp=f"20240501-12000{s}")) for s in range(3)]
    assert analyze.run_labels(seeds) == ["adam s0", "adam s1", "adam s2"]  # the seed says more


def test_one_run_copied_into_two_runs_folders_is_labelled_by_the_folders(tmp_path: Path) -> None:
    a, b = (load_run(make_run(tmp_path / side / "runs", "base")) for side in ("a", "b"))
    assert a.dirname == b.dirname
    assert analyze.run_labels([a, b]) == [f"a/runs/{a.dirname}", f"b/runs/{b.dirname}"]


def test_mean_curve_is_marked_at_the_best_of_the_mean_over_the_epochs_every_run_reached(tmp_path: Path) -> None:
    one = curve_records(3)  # stopped early
    two = curve_records(5)
    for r, v in zip(one, [0.5, 0.9, 0.8]):
        r["val_acc"] = v
    for r, v in zip(two, [0.7, 0.5, 0.5, 0.99, 0.6]):
        r["val_acc"] = v
    runs = [load_run(make_run(tmp_path, "x", records=one)),
            load_run(make_run(tmp_path, "x", stamp="20240501-130000", records=two))]
    curve = analyze.mean_curve(runs, "val_acc")
    # not epoch 4, where the one run left would make the best "mean" of the group
    assert curve.epochs == [1, 2, 3] and curve.values == pytest.approx([0.6, 0.7, 0.65])
    assert curve.best_epoch == 2


def test_a_group_s_curves_follow_its_finished_runs_not_one_interrupted_early(tmp_path: Path) -> None:
    finished = [load_run(make_run(tmp_path, "x", seed=s, stamp=f"20240501-12000{s}", epochs=5)) for s in (0, 1)]
    stopped = load_run(make_run(tmp_path, "x", seed=2, stamp="20240501-120002", epochs=2, status="interrupted"))
    group = analyze.compare_groups([*finished, stopped]).groups[0]
    assert group.curves["val_acc"].epochs == [1, 2, 3, 4, 5]
    assert group.curves["val_acc"].values == pytest.approx(analyze.mean_curve(finished, "val_acc").values)
    assert analyze.curve_runs([stopped]) == [stopped]  # none finished: the runs there are


def test_metric_value_is_the_value_at_the_metrics_best_epoch(tmp_path: Path) -> None:
    records = curve_records(4)
    for r, v in zip(records, [0.3, 0.1, None, 0.2]):
        r["train_loss"] = v
    run = load_run(make_run(tmp_path, records=records))
    assert analyze.metric_value(run, "train_loss") == 0.1
    assert analyze.metric_value(run, "lr") == records[-1]["lr"]  # no direction: the last
    assert analyze.run_results(run, "lr")["last_lr"] == records[-1]["lr"]


def test_best_flags_mark_every_tie_and_need_two_numbers() -> None:
    assert analyze.best_flags([0.9, 0.95, 0.95, None], True) == [False, True, True, False]
    assert analyze.best_flags([3.0, 2.0, "x"], False) == [False, True, False]
    assert analyze.best_flags([0.9, None], True) == [False, False]
    assert analyze.best_flags([1.0, 2.0], None) == [False, False]


def test_a_run_cut_short_is_never_the_fastest() -> None:
    results = [{"status": "completed", "wall_s": 10.0}, {"status": "running", "wall_s": 2.0},
               {"status": "early_stopped", "wall_s": 8.0}, {"status": "diverged", "wall_s": 0.6},
               {"status": "interrupted", "wall_s": 6.2}]
    assert analyze.best_runs(results, "wall_s", False) == [False, False, True, False, False]
    assert analyze.best_runs(results, "s_per_epoch", False) == [False] * 5  # no values: nothing marked


def test_layers_are_in_network_order_across_depths(tmp_path: Path) -> None:
    shallow = load_run(make_run(tmp_path, "a", records=curve_records(2, layers=("hidden1", "output"))))
    deep = load_run(make_run(tmp_path, "b", records=curve_records(
        2, layers=tuple(f"hidden{i}" for i in range(1, 12)) + ("output",))))
    assert analyze.layer_union([shallow, deep]) == [f"hidden{i}" for i in range(1, 12)] + ["output"]


def test_load_compared_puts_an_outside_baseline_first(tmp_path: Path) -> None:
    a = make_run(tmp_path, "adam")
    b = make_run(tmp_path, "sgd", stamp="20240501-130000")
    runs, base = load_compared(["adam"], "sgd", tmp_path)
    assert [r.path for r in runs] == [b.resolve(), a.resolve()] and base == 0
    runs, base = load_compared(["adam", "sgd"], "sgd", tmp_path)
    assert [r.name for r in runs] == ["adam", "sgd"] and base == 1


def test_load_compared_refuses_a_baseline_naming_several_runs(tmp_path: Path) -> None:
    make_run(tmp_path, "adam")
    make_run(tmp_path, "adam", stamp="20240501-130000")
    with pytest.raises(ConfigError, match=r"--baseline 'adam-\*' matches 2 runs; name one run"):
        load_compared(["adam-20240501-120000"], "adam-*", tmp_path)
