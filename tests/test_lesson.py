"""`trickrun lesson`: the statistical rule (Holm, paired intervals, verdicts) on hand-worked
numbers (tests/test_verdicts.py checks them against scipy), the measures on scripted curves, the claims' sweep files, the report on synthetic
runs, and one quick report on real MNIST."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from helpers import requires_real_mnist
from trickrun.cli import app
from trickrun.errors import ConfigError
from trickrun.lesson.claims import CLAIMS, LR_RANGES, by_arm, lr_average
from trickrun.lesson.ensembles import DERIVED_ARMS, leave_one_out
from trickrun.lesson.measures import CHANCE, epochs_to_threshold, test_acc as measured_test_acc
from trickrun.lesson.results import ClaimResult, LessonOptions
from trickrun.lesson.runner import claim_specs, config_folder, measure_claim, parse_claims
from trickrun.lesson.verdicts import (CONTRADICTED, INCONCLUSIVE, NO_PRACTICAL_EFFECT, SUPPORTED, Comparison,
                                     SeedValues, holm, judge, outcomes_for, t_quantile, verdict)
from trickrun.rundir.reader import Run
from trickrun.sweep.plan import resolve_cells

runner = CliRunner()
CLAIM_OF = {c.number: c for c in CLAIMS}


# --- the rule --------------------------------------------------------------------------
def test_holm_matches_a_hand_worked_example():
    # sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> max(0.06, 0.04)
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])  # capped at 1
    assert holm([]) == []


@pytest.mark.parametrize("df, expected", [(1, 12.7062), (2, 4.3027), (4, 2.7764), (10, 2.2281), (1e6, 1.9600)])
def test_t_quantile_matches_tables(df, expected):
    assert t_quantile(df) == pytest.approx(expected, abs=1e-4)


def test_paired_interval_by_hand():
    # differences 1, 2, 3 on seeds 0..2: mean 2, sd 1, se 1/sqrt(3), t(0.975, 2) = 4.302653
    c = Comparison("test_acc", "a", "b", True, sesoi=0.5)
    samples = {"a": {"test_acc": SeedValues({0: 2.0, 1: 4.0, 2: 6.0})},
               "b": {"test_acc": SeedValues({2: 3.0, 1: 2.0, 0: 1.0})}}  # given out of order: pairs by seed
    (outcome,) = outcomes_for(1, [c], samples)
    half = 4.302653 / math.sqrt(3)
    assert outcome.n_pairs == 3 and outcome.diff == pytest.approx(2.0) and outcome.won == 1.0
    assert outcome.ci == pytest.approx((2.0 - half, 2.0 + half), abs=1e-5)


@pytest.mark.parametrize("diff, p, p_tost, higher, expected", [
    (0.01, 0.01, 0.9, True, SUPPORTED),
    (-0.01, 0.01, 0.9, True, CONTRADICTED),
    (-2.0, 0.001, 0.9, False, SUPPORTED),  # fewer epochs predicted, fewer found
    (2.0, 0.001, 0.9, False, CONTRADICTED),
    (0.0001, 0.01, 0.01, True, SUPPORTED),  # significant and equivalent: supported (below practical size)
    (0.01, 0.05, 0.9, True, INCONCLUSIVE),  # alpha is strict
    (0.01, 0.5, 0.01, True, NO_PRACTICAL_EFFECT),
    (0.01, 0.5, 0.05, True, INCONCLUSIVE),
    (0.01, None, None, True, INCONCLUSIVE),
    (None, 0.01, 0.01, True, INCONCLUSIVE),
])
def test_verdict_rule(diff, p, p_tost, higher, expected):
    assert verdict(diff, p, p_tost, higher) == expected


def test_holm_runs_over_every_claim_of_the_report():
    up = Comparison("test_acc", "a", "b", True, sesoi=0.002)
    samples = {"a": {"test_acc": SeedValues({0: 0.900, 1: 0.920, 2: 0.940, 3: 0.930})},
               "b": {"test_acc": SeedValues({0: 0.880, 1: 0.890, 2: 0.900, 3: 0.900})}}
    alone = judge(outcomes_for(1, [up], samples))  # differences 0.02, 0.03, 0.04, 0.03: p 2 x 0.0052
    assert alone[0].p < 0.05 and alone[0].verdict == SUPPORTED
    # The same comparison among five equal ones: Holm multiplies its p by five.
    many = judge([o for n in range(5) for o in outcomes_for(n, [up], samples)])
    assert all(o.p_holm == pytest.approx(min(1.0, 5 * alone[0].p)) for o in many)
    assert {o.verdict for o in many} == {INCONCLUSIVE}


def test_an_arm_with_one_paired_seed_is_not_tested_and_left_out_of_holm():
    c = Comparison("test_acc", "a", "b", True, sesoi=0.002)
    samples = {"a": {"test_acc": SeedValues({0: 0.9, 5: 0.7})}, "b": {"test_acc": SeedValues({0: 0.8, 1: 0.81})}}
    outcomes = judge(outcomes_for(1, [c], samples))
    assert outcomes[0].n_pairs == 1 and outcomes[0].p is None and outcomes[0].p_holm is None
    assert outcomes[0].verdict == INCONCLUSIVE and outcomes[0].p_tost_holm is None
    assert outcomes[0].diff == pytest.approx(0.9 - 0.8)  # seed 0 only: seeds 1 and 5 have no pair


# --- measures --------------------------------------------------------------------------
def test_epochs_to_threshold_on_scripted_curves():
    # crossed between epoch 2 (0.8) and epoch 3 (0.96): 0.15 of the 0.16 climbed
    assert epochs_to_threshold([0.5, 0.8, 0.96, 0.97], 0.95, 4) == pytest.approx(2 + 0.15 / 0.16, abs=1e-12)
    assert epochs_to_threshold([0.5, 0.95], 0.95, 4) == 2  # reaching it exactly counts
    # in epoch 1: from chance (0.1) at epoch 0 to 0.96, 0.85 of the 0.86 climbed
    assert epochs_to_threshold([0.96, 0.90, 0.97], 0.95, 4) == pytest.approx(0.85 / 0.86, abs=1e-12)
    # a missing value is skipped: the line runs from epoch 0 to epoch 2
    assert epochs_to_threshold([None, 0.96], 0.95, 4) == pytest.approx(2 * 0.85 / 0.86, abs=1e-12)
    assert epochs_to_threshold([0.5], 0.05, 4) == 0  # already past it untrained
    assert epochs_to_threshold([0.5, 0.8], 0.95, 20) == 21  # never: max epochs + 1
    assert epochs_to_threshold([], 0.95, 20) == 21


def test_epochs_to_threshold_counts_the_records_own_epochs_when_a_line_was_lost():
    from trickrun.lesson.measures import epochs_to

    records = [{"epoch": 1, "val_acc": 0.5}, {"epoch": 2, "val_acc": 0.8}, {"epoch": 4, "val_acc": 0.96}]
    run = Run(Path("r"), {"train": {"epochs": 6}}, {"status": "completed"}, records)  # epoch 3's line is gone
    assert epochs_to(run, 0.95) == pytest.approx(2 + 2 * 0.15 / 0.16, abs=1e-12)  # from epoch 2 to epoch 4


def _run(config: dict, acc: float | None = 0.9, status: str = "completed", records=None, path="r") -> Run:
    summary = {"status": status, "test": None if acc is None else {"acc": acc, "loss": 0.3}}
    return Run(Path(path), config, summary, records or [])


def test_a_diverged_run_scores_chance_whatever_it_reached():
    assert measured_test_acc(_run({}, 0.97)) == 0.97
    assert measured_test_acc(_run({}, 0.97, status="diverged")) == CHANCE
    assert measured_test_acc(_run({}, None)) == CHANCE


def test_optimizer_score_averages_only_its_declared_rates():
    claim = CLAIM_OF[7]
    runs = [_run({"optimizer": {"name": "adam", "lr": lr}, "seed": seed}, acc)
            for seed in (0, 1) for lr, acc in ((1e-4, 0.90), (1e-3, 0.96), (1e-2, 0.93), (1.0, 0.10))]
    samples = lr_average(claim, runs, None)
    assert LR_RANGES["adam"] == (0.0001, 0.001, 0.01)
    score = (0.90 + 0.96 + 0.93) / 3  # lr 1.0 not in it
    assert samples["adam"]["score"].by_seed == pytest.approx({0: score, 1: score})
    assert list(samples["adam lr=1"]["test_acc"]) == [0.10, 0.10]
    # a seed that lacks one of the three rates has no score: it would not compare with the others
    runs = [r for r in runs if not (r.seed == 1 and r.config["optimizer"]["lr"] == 1e-2)]
    assert lr_average(claim, runs, None)["adam"]["score"].seeds == (0,)


def test_a_claim_judged_over_rates_scores_each_arm_over_its_own_rates():
    """Claim 8 (clipping) is judged like claim 7, over a range of rates: the arm is the
    clipping, the rates the same for every arm."""
    claim = CLAIM_OF[8]
    assert claim.derived == "lr_average" and set(claim.rates) == set(claim.arms)
    rates = claim.rates["no clipping"]
    # each rate its own accuracy, and one more rate outside the declared range that must not count
    runs = [_run({"optimizer": {"name": "sgd", "lr": lr}, "clip": {"norm": clip}, "seed": 0}, acc + i / 100)
            for clip, acc in ((None, 0.5), (10.0, 0.8), (1.0, 0.9)) for i, lr in enumerate([*rates, 64.0])]
    samples = lr_average(claim, runs, None)
    mean = sum(range(len(rates))) / len(rates) / 100  # the rates' offsets, averaged
    assert samples["no clipping"]["score"].by_seed == pytest.approx({0: 0.5 + mean})
    assert samples["clip 10"]["score"].by_seed == pytest.approx({0: 0.8 + mean})
    assert samples["clip 1"]["score"].by_seed == pytest.approx({0: 0.9 + mean})
    assert f"clip 1 lr={rates[0]:g}" in samples and f"clip 10 lr={rates[0]:g}" in samples


def _layers(*norms):
    return [{"epoch": 1, "layers": [{"name": f"hidden{i + 1}", "grad_norm": n} for i, n in enumerate(norms)]
             + [{"name": "output", "grad_norm": 1e9}]}]


def test_gradient_spread_is_decades_between_the_hidden_layers_after_epoch_one():
    from trickrun.lesson.measures import grad_spread

    assert grad_spread(_run({}, records=_layers(1.0, 0.01, 0.1))) == pytest.approx(2.0)  # output left out
    assert grad_spread(_run({}, records=_layers(0.5, 0.5))) == 0.0
    assert grad_spread(_run({}, records=_layers(1.0, None))) is None  # diverged: no spread to measure
    assert grad_spread(_run({}, records=_layers(1.0, 0.0))) is None
    assert grad_spread(_run({}, records=[])) is None


def test_claim_4_judges_layer_and_weight_norm_beside_batch_norm():
    claim = CLAIM_OF[4]
    judged = {(c.arm, c.metric) for c in claim.comparisons}
    assert judged == {(n, m) for n in ("batch", "layer", "weight") for m in ("test_acc", "epochs_to")}
    (spec,) = claim_specs(claim, config_folder(), False, 1)
    cells, configs, _ = resolve_cells(spec)
    assert {cfg.model.norm for cfg in configs} == {"none", "batch", "layer", "weight"}


def test_leave_one_out():
    assert leave_one_out(["a", "b", "c"]) == [["b", "c"], ["a", "c"], ["a", "b"]]


def test_parse_claims():
    assert [c.number for c in parse_claims("9,1,9")] == [1, 9]
    assert len(parse_claims(None)) == len(CLAIMS) == 9
    for bad in ("0", "10", "a", "1,,2", "", " "):  # empty: not all nine by a slip
        with pytest.raises(ConfigError, match="--claims"):
            parse_claims(bad)


# --- the claims and their sweep files --------------------------------------------------
@pytest.mark.parametrize("quick", [False, True], ids=["full", "quick"])
@pytest.mark.parametrize("claim", CLAIMS, ids=[c.slug for c in CLAIMS])
def test_every_cell_is_valid_and_falls_in_a_declared_arm(claim, quick):
    arms, rates = set(), {}
    for spec in claim_specs(claim, config_folder(), quick, None):
        assert spec.seeds == ([0, 1] if quick else list(range(claim.seeds)))
        assert spec.name.endswith("-quick") == quick
        _, configs, _ = resolve_cells(spec)
        arms |= {claim.arm(cfg.to_dict()) for cfg in configs}
        for cfg in configs:
            rates.setdefault(claim.arm(cfg.to_dict()), set()).add(cfg.optimizer.lr)
    for arm, declared_rates in (claim.rates or {}).items():  # a score over rates the sweep never runs is empty
        assert set(declared_rates) <= rates[arm], (arm, declared_rates, rates[arm])
        if quick and claim.number != 6:
            assert all(cfg.data.train_limit == 2000 and cfg.train.epochs == 3 for cfg in configs)
    declared = set(claim.arms) - (set(DERIVED_ARMS) if claim.derived == "ensembles" else set())
    assert arms == declared
    for c in claim.comparisons:
        assert {c.arm, c.baseline} <= set(claim.arms)


def _synthetic_runs(claim, tmp_path: Path) -> list[Run]:
    """A run per cell of the claim's quick sweeps, with made-up curves and layer statistics."""
    runs = []
    for spec in claim_specs(claim, config_folder(), True, None):
        _, configs, _ = resolve_cells(spec)
        for i, cfg in enumerate(configs):
            config = cfg.to_dict()
            layers = [{"name": n, "act_std": 0.5 + j, "grad_norm": 0.1 / (j + 1)}
                      for j, n in enumerate(("hidden1", "hidden2", "output"))]
            records = [{"epoch": e, "lr": 0.01, "train_loss": 1.0 / e, "train_acc": 0.8 + 0.05 * e,
                        "val_acc": 0.8 + 0.04 * e + 0.001 * i, "grad_norm": 1.0, "layers": layers}
                       for e in range(1, 4)]
            runs.append(_run(config, 0.9 + 0.001 * (i % 7), records=records, path=str(tmp_path / cfg.name)))
    return runs


def test_the_report_has_every_section_table_figure_and_verdict(tmp_path):
    """On synthetic runs (no training): every claim's section, figure and verdict rows."""
    from trickrun.lesson.report import write_report

    results, outcomes = [], []
    for claim in CLAIMS:
        result = ClaimResult(claim, _synthetic_runs(claim, tmp_path), {}, None)
        measure_claim(result, quick=True)
        result.outcomes = outcomes_for(claim.number, claim.comparisons, result.samples)
        outcomes += result.outcomes
        results.append(result)
    judge(outcomes)
    out = tmp_path / "report"
    text = write_report(results, LessonOptions(quick=True, out=out), 2, 1.0).read_text()
    assert "## The rule" in text and "Holm" in text and "CPU:" in text and "BLAS:" in text
    for claim in CLAIMS:
        section = text.split(f"## Claim {claim.number}: {claim.title}")[1].split("\n## ")[0]
        assert "**The lesson:**" in section and "**Setup:**" in section and "**Verdict:" in section
        assert "| arm | n |" in section or "| optimizer | n |" in section
        assert f"![Claim {claim.number}]({claim.figure_file})" in section
        assert (out / claim.figure_file).stat().st_size > 10_000
        assert len(_verdict_rows(section)) == len(claim.comparisons)
    assert "w <- w - lr g/||g||" in text  # claim 7 says what `normalized` is
    assert "agree at theta = 1" in text  # claim 8 says how its clipping differs from the lesson's


def _verdict_rows(section: str) -> list[str]:
    marks = (f"**{SUPPORTED}**", f"**{CONTRADICTED}**", f"**{NO_PRACTICAL_EFFECT}**", f"*{INCONCLUSIVE}*")
    return [line for line in section.splitlines()
            if line.startswith("| ") and line.rstrip(" |").rsplit(" | ", 1)[-1].startswith(marks)]


def test_by_arm_puts_each_run_under_its_arm():
    claim = CLAIM_OF[8]
    runs = [_run({"clip": {"norm": norm}, "seed": s}, 0.9, status="diverged" if norm is None else "completed")
            for s in (0, 1) for norm in (None, 1.0)]
    samples = by_arm(claim, runs, None)
    assert samples["no clipping"]["test_acc"].by_seed == {0: CHANCE, 1: CHANCE}
    assert samples["no clipping"]["diverged"].by_seed == {0: 1.0, 1: 1.0}
    assert samples["clip 1"]["test_acc"].by_seed == {0: 0.9, 1: 0.9}
    # a second run of the same arm and seed (by folder name) is left out, and named
    repeated: list[str] = []
    again = by_arm(claim, [*runs, _run({"clip": {"norm": 1.0}, "seed": 0}, 0.5, path="s")], None, repeated)
    assert again["clip 1"]["test_acc"].by_seed == {0: 0.9, 1: 0.9} and repeated == ["s"]  # "r" comes first


def test_a_seed_list_replaces_every_sweep_s_seeds():
    for claim in CLAIMS:
        for quick in (False, True):
            for spec in claim_specs(claim, config_folder(), quick, None, "8,9,19"):
                assert spec.seeds == [8, 9, 19]
    opts = LessonOptions(seed_list="8,9,19", jobs=2, out=Path("report"))
    assert opts.command() == "trickrun lesson --seed-list 8,9,19 --jobs 2 --backend local --out report"


def test_the_full_report_runs_each_claim_s_declared_seeds_from_the_first_seed():
    counts = {c.number: c.seeds for c in CLAIMS}
    assert min(counts.values()) >= 8 and counts[4] > counts[1]  # the floor; claim 4 declared more
    for claim in CLAIMS:
        for spec in claim_specs(claim, config_folder(), False, None, None, 100):
            assert spec.seeds == list(range(100, 100 + claim.seeds))
        assert claim_specs(claim, config_folder(), True, None, None, 100)[0].seeds == [100, 101]
        assert claim_specs(claim, config_folder(), False, 3, None, 100)[0].seeds == [100, 101, 102]
    opts = LessonOptions(first_seed=100, jobs=2, out=Path("report"))
    assert opts.command() == "trickrun lesson --first-seed 100 --jobs 2 --backend local --out report"


def test_bad_options_exit_2(tmp_path):
    for args in (["--claims", "12"], ["--backend", "slurm"], ["--jobs", "0"], ["--seeds", "0"],
                 ["--seed-list", "1,x"], ["--seed-list", "-1"], ["--seeds", "3", "--seed-list", "4,5"],
                 ["--first-seed", "-1"], ["--first-seed", "5", "--seed-list", "4,5"], ["--first-seed", "x"]):
        result = runner.invoke(app, ["lesson", *args, "--out", str(tmp_path / "o")])
        assert result.exit_code == 2, (args, result.output)
    assert not (tmp_path / "o").exists()


# --- one quick report on real MNIST ----------------------------------------------------
@requires_real_mnist
@pytest.mark.slow
def test_quick_report_on_real_mnist(tmp_path):
    out = tmp_path / "report"
    args = ["lesson", "--quick", "--claims", "1,9", "--jobs", "2", "--runs-dir", str(tmp_path / "runs"),
            "--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    text = (out / "lesson.md").read_text()
    assert "trickrun lesson --claims 1,9 --quick --jobs 2" in text
    assert "## The rule" in text and "### Verdicts" in text
    for claim in (CLAIM_OF[1], CLAIM_OF[9]):
        section = text.split(f"## Claim {claim.number}: {claim.title}")[1].split("\n## ")[0]
        assert "| arm | n | test acc |" in section or "| arm | n | lr " in section  # claim 9: over rates
        assert (out / claim.figure_file).stat().st_size > 10_000
        assert len(_verdict_rows(section)) == len(claim.comparisons)
        assert all("| 2 |" in row for row in _verdict_rows(section))  # 2 paired seeds per comparison
    assert "## Claim 2" not in text  # only the claims asked for
    # Run again: every cell is finished, so nothing trains and the same report comes back.
    again = runner.invoke(app, args)
    assert again.exit_code == 0 and "already finished: skipped" in again.output


def test_every_metric_a_claim_tables_has_a_measure():
    from trickrun.lesson.measures import MEASURES

    for claim in CLAIMS:
        derived = {"score"} if claim.derived == "lr_average" else set()
        assert set(claim.metrics) | {c.metric for c in claim.comparisons} <= set(MEASURES) | derived, claim.slug


def test_an_accuracy_interval_is_cut_at_the_range_and_marked():
    from trickrun.lesson.report import _effect, clipped_interval

    c = Comparison("test_acc", "a", "b", True, sesoi=0.002)
    samples = {"a": {"test_acc": SeedValues({0: 0.990, 1: 0.999, 2: 0.996})},
               "b": {"test_acc": SeedValues({0: 0.970, 1: 0.972, 2: 0.971})}}
    (outcome,) = outcomes_for(1, [c], samples)
    (low, high), cut = clipped_interval(outcome)
    assert outcome.ci[1] > 1 - outcome.mean_base  # the t interval would put the arm above accuracy 1
    assert cut and high == pytest.approx(1 - outcome.mean_base) and low == outcome.ci[0]
    assert _effect(outcome).endswith("]‡")
    epochs = Comparison("epochs_to", "a", "b", False, sesoi=1.0)  # unbounded measure: never cut
    (outcome,) = outcomes_for(1, [epochs], {k: {"epochs_to": SeedValues({0: v, 1: v + 9, 2: v + 1})}
                                             for k, v in (("a", 1.0), ("b", 2.0))})
    assert clipped_interval(outcome) == (outcome.ci, False)


def test_a_verdict_the_sign_flip_test_decided_says_so_in_the_table_and_the_figure(tmp_path, monkeypatch):
    from trickrun.lesson import figures
    from trickrun.lesson.report import _verdict

    c = Comparison("test_acc", "a", "b", True, sesoi=0.002)
    wins = [0.004, 0.002, 0.85, 0.003, 0.002, 0.005, 0.001, 0.44, 0.004, 0.003, 0.004, 0.0015]  # skewed
    samples = {"a": {"test_acc": SeedValues({s: 0.1 + d for s, d in enumerate(wins)})},
               "b": {"test_acc": SeedValues({s: 0.1 for s in range(len(wins))})}}
    (skewed,) = judge(outcomes_for(1, [c], samples))
    assert skewed.verdict == SUPPORTED and _verdict(skewed).endswith("(by the sign-flip test)")
    drawn = []
    real_plot = figures.plt.subplots

    def spy(*args, **kwargs):
        fig, ax = real_plot(*args, **kwargs)
        drawn.append(ax)
        return fig, ax

    monkeypatch.setattr(figures.plt, "subplots", spy)
    figures.forest([("skewed", skewed)], tmp_path / "verdicts.png")
    ax = drawn[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["skewed §"]
    assert "§ verdict by the sign-flip test" in ax.get_xlabel()


def test_a_comparison_paired_on_fewer_seeds_than_its_arms_ran_names_the_seeds_left_out():
    from trickrun.lesson.report import verdict_lines

    claim = CLAIM_OF[3]  # residual > plain
    samples = {"residual": {"test_acc": SeedValues({s: 0.91 + 0.001 * s for s in range(8)})},
               "plain": {"test_acc": SeedValues({s: 0.1 for s in range(3, 10)})}}
    result = ClaimResult(claim, [], samples, None, judge(outcomes_for(3, claim.comparisons, samples)))
    assert result.outcomes[0].n_pairs == 5
    text = "\n".join(verdict_lines(result))
    assert ("- test acc: residual > plain: paired on the 5 seed(s) both arms have; left out, without a value of "
            "the other arm: seed(s) 0, 1, 2 of residual and 8, 9 of plain") in text
    samples["plain"]["test_acc"] = SeedValues({s: 0.1 for s in range(8)})
    result = ClaimResult(claim, [], samples, None, judge(outcomes_for(3, claim.comparisons, samples)))
    assert "left out" not in "\n".join(verdict_lines(result))


def test_a_table_cell_over_fewer_runs_than_its_arm_says_how_many():
    from trickrun.lesson.report import arms_table

    claim = CLAIM_OF[1]  # columns test acc and val acc (scored epoch)
    samples = {"none": {"test_acc": SeedValues({0: 0.1, 1: 0.93, 2: 0.94}), "val_acc": SeedValues({1: 0.92, 2: 0.93}),
                        "diverged": SeedValues({0: 1.0, 1: 0.0, 2: 0.0})}}  # seed 0 diverged in its first epoch
    row = next(line for line in arms_table(ClaimResult(claim, [], samples, None)) if line.startswith("| none |"))
    assert row == "| none | 3 | 0.6567 ± 0.4821 | 0.9250 ± 0.0071 (n=2) | 1/3 |"
