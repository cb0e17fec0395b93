"""The lesson's statistics and its four verdicts: the paired t-test, the sign-flip permutation
test, the two one-sided tests (TOST), Holm's correction and Student's t quantile against scipy
(values pinned below, so the tests run without scipy), then each verdict produced by a small
synthetic case."""

from __future__ import annotations

import itertools
import math

import pytest

from trickrun.analysis import stats
from trickrun.analysis.stats import (either_test_p, holm, minimal_detectable_effect, paired_t_test, seeds_needed,
                                     sign_flip_p, t_quantile, tost_p)
from trickrun.lesson.verdicts import (CONTRADICTED, INCONCLUSIVE, NO_PRACTICAL_EFFECT, SUPPORTED, Comparison,
                                      T_ALPHA, SeedValues, judge, outcomes_for)

# Reference values from scipy 1.17 (the system Python outside the venv), produced by:
#   from scipy import stats; import numpy as np
#   r = stats.ttest_rel(a, b); ci = r.confidence_interval(0.95)
#   print(r.statistic, r.df, r.pvalue, ci.low, ci.high)                      # PAIRED
#   d = np.subtract(a, b); n = len(d); m = d.mean(); se = d.std(ddof=1) / np.sqrt(n)
#   print(max(stats.t.sf((m + margin) / se, n - 1), stats.t.cdf((m - margin) / se, n - 1)))  # TOST
#   o = np.argsort(p); adj = np.minimum(1, np.maximum.accumulate((len(p) - np.arange(len(p))) * p[o]))
#   out = np.empty_like(p); out[o] = adj                                       # HOLM, by its formula
#   stats.t.ppf(q, df)                                                         # QUANTILES
# (each printed with repr(float(x)))
PAIRED = [  # (a, b, t, df, two-sided p, 95% low, 95% high)
    ([0.981, 0.978, 0.983], [0.975, 0.976, 0.979],
     3.4641016151377544, 2.0, 0.07417990022744855, -0.000968275423500661, 0.008968275423500668),
    ([0.971, 0.975, 0.969, 0.973, 0.970], [0.968, 0.974, 0.966, 0.975, 0.969],
     1.3093073414159542, 4.0, 0.2605745473680253, -0.0013446539714917051, 0.003744653971491707),
    ([12.0, 9.0, 11.0, 10.0], [13.0, 12.0, 11.0, 14.0],
     -2.1908902300206647, 3.0, 0.11615752834753823, -4.905162715754765, 0.905162715754765),
]
TOST = [(0.01, 0.017549359322992373), (0.004, 0.018920484742906595), (1.0, 0.8233062668556511)]  # per PAIRED case
HOLM_P = [0.01, 0.04, 0.03, 0.005, 0.2, 0.0011]
HOLM_ADJUSTED = [0.04, 0.09, 0.09, 0.025, 0.2, 0.0066]
QUANTILES = [((0.975, 2), 4.302652729749462), ((0.8, 2), 1.0606601717798214),
             ((0.975, 9), 2.262157162798205), ((0.95, 4), 2.1318467863266495)]
# The paired sign-flip test, exact: (differences, p) by
#   stats.permutation_test((np.array(d),), np.mean, permutation_type="samples", n_resamples=np.inf).pvalue
SIGN_FLIP = [
    ([1.0, -2.0, 3.0, 4.0, 5.0, 0.5], 0.15625),
    # 12 seeds, all won, two of them by a collapse of the baseline (skewed): the floor 2/2^12
    ([0.0041, 0.0023, 0.8512, 0.0030, 0.0019, 0.0052, 0.0008, 0.4410, 0.0036, 0.0027, 0.0044, 0.0015],
     0.00048828125),
    ([1.0, 0.0, -1.0, 2.0, 0.0, 1.0, 1.0, -1.0, 3.0, 0.0, 1.0, 2.0], 0.09375),  # epochs: ties and zeros
    ([0.00508, -0.00411, 0.00184, -0.00014, 9e-05, 0.00057, -0.00304], 0.984375),
    ([0.0021, -0.0013, 0.0008, 0.003, -0.0002, 0.0017, 0.0011, 0.0025, -0.0007, 0.0019, 0.0004, 0.0012, 0.0009],
     0.014892578125),
]
SKEWED_T_P = 0.1780536265926822  # stats.ttest_1samp(SIGN_FLIP[1][0], 0).pvalue
# The inconclusive case below: sd of its differences, its MDE at 80% power (two-sided, α 0.025:
# the t-test's level for a doubled p below 0.05; n = 3), and the fewest seeds whose MDE reaches
# the SESOI 0.002, by scipy:
#   d = np.subtract(a, b); sd = d.std(ddof=1)
#   mde = lambda n: (stats.t.ppf(1 - 0.025 / 2, n - 1) + stats.t.ppf(0.8, n - 1)) * sd / np.sqrt(n)
#   next(n for n in range(2, 10000) if mde(n) <= 0.002)
# (by hand for n = 3, two degrees of freedom: t.ppf(p) = x sqrt(2 / (1 - x^2)), x = 2p - 1.)
INCONCLUSIVE_SD, INCONCLUSIVE_MDE, INCONCLUSIVE_SEEDS = 0.007505553499465142, 0.031486030282852316, 137


@pytest.mark.parametrize(("a", "b", "t", "df", "p", "low", "high"), PAIRED)
def test_paired_t_test_matches_scipy(a, b, t, df, p, low, high) -> None:
    result = paired_t_test(a, b)
    assert (result.t, result.df, result.p) == pytest.approx((t, df, p), abs=1e-10)
    assert result.ci == pytest.approx((low, high), abs=1e-10)


@pytest.mark.parametrize(("case", "margin_and_p"), list(zip(PAIRED, TOST)))
def test_tost_matches_scipy(case, margin_and_p) -> None:
    margin, p = margin_and_p
    assert tost_p(paired_t_test(case[0], case[1]), margin) == pytest.approx(p, abs=1e-10)


def test_tost_agrees_with_the_90_percent_interval_inside_the_margin() -> None:
    a, b = PAIRED[0][:2]
    inner = paired_t_test(a, b, confidence=0.90).ci
    for margin in (0.006, 0.0095, 0.02):
        inside = -margin < inner[0] and inner[1] < margin
        assert (tost_p(paired_t_test(a, b), margin) < 0.05) == inside


def test_holm_matches_its_formula_computed_with_numpy() -> None:
    assert holm(HOLM_P) == pytest.approx(HOLM_ADJUSTED, abs=1e-10)


@pytest.mark.parametrize(("args", "expected"), QUANTILES)
def test_t_quantile_matches_scipy(args, expected) -> None:
    level, df = args
    assert t_quantile(df, level) == pytest.approx(expected, abs=1e-10)


@pytest.mark.parametrize(("diffs", "p"), SIGN_FLIP)
def test_sign_flip_matches_scipy(diffs, p) -> None:
    assert sign_flip_p(diffs) == pytest.approx(p, abs=1e-10)


def test_sign_flip_beyond_the_exact_limit_samples_with_a_fixed_seed(monkeypatch) -> None:
    diffs = SIGN_FLIP[4][0]
    monkeypatch.setattr(stats, "EXACT_FLIP_PAIRS", 10)
    sampled = sign_flip_p(diffs)
    assert sampled == sign_flip_p(diffs)  # the same differences, the same p
    assert sampled != SIGN_FLIP[4][1] and sampled == pytest.approx(SIGN_FLIP[4][1], abs=0.003)  # ± 4 sd of 1e5 draws


def test_sign_flip_edge_cases() -> None:
    assert sign_flip_p([]) == 1.0 and sign_flip_p([0.0, 0.0, 0.0]) == 1.0
    assert sign_flip_p([0.3]) == 1.0  # one pair: +d and -d are the only patterns
    assert sign_flip_p([2.0] * 8) == pytest.approx(2 / 2**8)


def test_sign_flip_counts_equal_accuracy_differences_as_ties() -> None:
    # Test accuracies are whole digits out of 10,000: the differences +30, +30, -10, +10, +10 digits
    # give exactly p = 2 x 4/32 (the sums that reach +70: flip nothing, the -10, or the -10 and
    # either +10). The floats of 0.9743 - 0.9753 and 0.9718 - 0.9708 differ in their last bits by
    # far more than 100 epsilons of the observed sum: read as unequal, two ties were lost, p halved.
    arm = [0.9733, 0.9819, 0.9743, 0.9718, 0.9729]
    base = [0.9703, 0.9789, 0.9753, 0.9708, 0.9719]
    digits = [round(a * 10_000) - round(b * 10_000) for a, b in zip(arm, base)]
    patterns = [sum(s * d for s, d in zip(signs, digits)) for signs in itertools.product((1, -1), repeat=5)]
    exact = 2 * sum(s >= sum(digits) for s in patterns) / 2**5
    assert exact == 0.25
    c = Comparison("test_acc", "a", "b", True, sesoi=0.002)
    (outcome,) = outcomes_for(1, [c], {"a": {"test_acc": SeedValues(dict(enumerate(arm)))},
                                       "b": {"test_acc": SeedValues(dict(enumerate(base)))}})
    assert outcome.p_flip == exact
    assert sign_flip_p([0.1, 0.2, -0.3]) == 1.0  # a sum of 0 in theory, 5.6e-17 in floats


def test_either_test_costs_a_factor_two() -> None:
    assert either_test_p(0.01, 0.2) == 0.02 and either_test_p(0.3, 0.004) == 0.008 and either_test_p(0.6, 0.9) == 1.0
    assert math.isnan(either_test_p(math.nan, 0.0)) and math.isnan(either_test_p(0.0, math.nan))


def test_a_difference_that_is_not_finite_gives_no_sign_flip_p() -> None:
    # never p = 0 (no pattern compares >= NaN): the measures leave such values out, and if
    # one got through, the comparison would be left out of Holm as untestable
    assert math.isnan(sign_flip_p([0.01, math.nan, 0.02])) and math.isnan(sign_flip_p([math.inf, 0.01]))


def test_paired_t_test_edge_cases() -> None:
    same = paired_t_test([1.0, 2.0], [1.0, 2.0])
    assert (same.t, same.p, same.ci) == (0.0, 1.0, (0.0, 0.0))
    shifted = paired_t_test([2.0, 3.0], [1.0, 2.0])  # every seed +1: no spread, certain
    assert shifted.p == 0.0 and shifted.t == math.inf and tost_p(shifted, 2.0) == 0.0 and tost_p(shifted, 0.5) == 1.0
    with pytest.raises(ValueError):
        paired_t_test([1.0], [2.0])
    with pytest.raises(ValueError):
        paired_t_test([1.0, 2.0], [2.0])


# --- the four verdicts on synthetic cases ---------------------------------------------
def judged(arm: list[float], base: list[float], sesoi: float = 0.002, higher: bool = True):
    """One comparison of arm against base over seeds 0, 1, ..., judged alone."""
    comparison = Comparison("test_acc", "arm", "base", higher, sesoi)
    samples = {"arm": {"test_acc": SeedValues(dict(enumerate(arm)))},
               "base": {"test_acc": SeedValues(dict(enumerate(base)))}}
    (outcome,) = judge(outcomes_for(1, [comparison], samples))
    return outcome


def test_supported_beyond_the_sesoi() -> None:
    outcome = judged([0.90, 0.92, 0.94, 0.93], [0.88, 0.89, 0.90, 0.90])  # differences 0.02, 0.03, 0.04, 0.03
    assert outcome.verdict == SUPPORTED and not outcome.below_practical_size
    assert outcome.won == 1.0 and outcome.p_holm == pytest.approx(outcome.p) and outcome.p < 0.05
    assert outcome.p_flip == 2 / 2**4 and outcome.p == pytest.approx(2 * outcome.p_t)  # the t-test decides
    assert not outcome.by_sign_flip


def test_a_win_on_every_seed_is_supported_though_a_collapse_skews_the_t_test() -> None:
    diffs = SIGN_FLIP[1][0]
    outcome = judged([0.1 + d for d in diffs], [0.1] * len(diffs))
    assert outcome.p_t == pytest.approx(SKEWED_T_P, abs=1e-10) and outcome.ci[0] < 0  # t alone: inconclusive
    assert outcome.p == pytest.approx(2 * SIGN_FLIP[1][1]) and outcome.verdict == SUPPORTED
    assert outcome.by_sign_flip


def test_supported_but_below_practical_size() -> None:
    outcome = judged([0.9010, 0.9021, 0.9032], [0.9000, 0.9010, 0.9020])  # differences 0.0010, 0.0011, 0.0012
    assert outcome.verdict == SUPPORTED and outcome.below_practical_size
    assert outcome.diff == pytest.approx(0.0011) and outcome.diff < outcome.comparison.sesoi


def test_contradicted() -> None:
    outcome = judged([0.88, 0.89, 0.90, 0.90], [0.90, 0.92, 0.94, 0.93])
    assert outcome.verdict == CONTRADICTED and outcome.won == 0.0
    # the same numbers when the lesson predicts lower (e.g. fewer epochs): supported
    assert judged([0.88, 0.89, 0.90, 0.90], [0.90, 0.92, 0.94, 0.93], higher=False).verdict == SUPPORTED


def test_no_practical_effect() -> None:
    base = [0.9000, 0.9100, 0.9200, 0.9300, 0.9400]
    arm = [b + d for b, d in zip(base, (0.0001, -0.0001, 0.0002, -0.0002, 0.0))]
    outcome = judged(arm, base)
    assert outcome.verdict == NO_PRACTICAL_EFFECT
    assert outcome.p_holm > 0.05 and outcome.p_tost_holm < 0.05 and outcome.won == pytest.approx(2 / 5)
    # The same effect with a SESOI it cannot be told from: inconclusive.
    assert judged(arm, base, sesoi=0.0001).verdict == INCONCLUSIVE


def test_inconclusive_says_its_mde_and_the_seeds_the_sesoi_needs() -> None:
    a, b = [0.950, 0.941, 0.948], [0.940, 0.946, 0.946]  # differences 0.010, -0.005, 0.002
    outcome = judged(a, b)
    assert outcome.verdict == INCONCLUSIVE
    assert outcome.mde == pytest.approx(INCONCLUSIVE_MDE, abs=1e-10)
    assert outcome.seeds_for_sesoi == INCONCLUSIVE_SEEDS
    assert minimal_detectable_effect(INCONCLUSIVE_SD, INCONCLUSIVE_SEEDS, T_ALPHA) <= 0.002
    assert minimal_detectable_effect(INCONCLUSIVE_SD, INCONCLUSIVE_SEEDS - 1, T_ALPHA) > 0.002
    assert seeds_needed(0.002, 0.0) == 2 and seeds_needed(1e-9, 1.0) is None  # no spread; too many


def test_fewer_than_two_pairs_is_inconclusive_and_outside_both_corrections() -> None:
    comparison = Comparison("test_acc", "arm", "base", True, 0.002)
    testable = {"arm": {"test_acc": SeedValues({0: 0.90, 1: 0.92, 2: 0.94})},
                "base": {"test_acc": SeedValues({0: 0.88, 1: 0.89, 2: 0.90})}}
    lonely = {"arm": {"test_acc": SeedValues({0: 0.99})}, "base": {"test_acc": SeedValues({0: 0.10, 1: 0.10})}}
    outcomes = judge([*outcomes_for(1, [comparison], testable), *outcomes_for(2, [comparison], lonely)])
    assert outcomes[0].p_holm == outcomes[0].p and outcomes[0].p_tost_holm == outcomes[0].p_tost  # m = 1
    assert outcomes[1].verdict == INCONCLUSIVE and outcomes[1].mde is None and outcomes[1].p_tost_holm is None


def test_holm_corrects_the_equivalence_tests_over_the_report() -> None:
    comparison = Comparison("test_acc", "arm", "base", True, 0.002)
    base = {s: 0.9 + 0.01 * s for s in range(5)}
    samples = {"arm": {"test_acc": SeedValues({s: v + (0.0001, -0.0001, 0.0002, -0.0002, 0.0)[s]
                                               for s, v in base.items()})},
               "base": {"test_acc": SeedValues(base)}}
    alone = judge(outcomes_for(1, [comparison], samples))[0]
    many = judge([o for n in range(4) for o in outcomes_for(n, [comparison], samples)])
    assert all(o.p_tost_holm == pytest.approx(min(1.0, 4 * alone.p_tost)) for o in many)


def test_values_without_seeds_cannot_be_compared() -> None:
    comparison = Comparison("test_acc", "arm", "base", True, 0.002)
    with pytest.raises(TypeError, match="pair values by seed"):
        outcomes_for(1, [comparison], {"arm": {"test_acc": [0.9, 0.91]}, "base": {"test_acc": [0.8, 0.81]}})


def test_the_same_difference_on_every_seed_is_judged_by_the_sign_flip_test_alone() -> None:
    # Two seeds, each 8 test digits worse (a --quick report's weight norm against none): the
    # t-test's p is 0 (no spread), which made this "contradicted" at Holm p 0 from two seeds, and
    # its TOST p 0 "equivalent" at once. The sign-flip test's smallest p with 2 seeds is 2/2^2.
    base = [0.8392, 0.8678]
    outcome = judged([b - 0.0008 for b in base], base)
    assert outcome.no_spread and outcome.p_t is None and outcome.ci == (outcome.diff, outcome.diff)
    assert outcome.p_flip == 0.5 and outcome.p == 1.0 and outcome.p_tost == 0.25
    assert outcome.verdict == INCONCLUSIVE and outcome.seeds_for_sesoi == 5  # 1/2^5 < 0.05: equivalent
    # -10 digits on each seed, whose floats differ in the last bits of the accuracies: no spread all the same
    assert 0.9743 - 0.9753 != 0.9718 - 0.9728 and judged([0.9743, 0.9718], [0.9753, 0.9728]).no_spread
    # far beyond the SESOI on 2 seeds: not decided either; 7 seeds would be (2/2^7 < 0.025)
    outcome = judged([b + 0.05 for b in base], base)
    assert outcome.verdict == INCONCLUSIVE and outcome.p == 1.0 and outcome.seeds_for_sesoi == 7
    # collapsed arms: the same accuracy on every seed, 12 seeds apart by 135 digits: the sign-flip test decides
    outcome = judged([0.1135] * 12, [0.1] * 12)
    assert outcome.verdict == SUPPORTED and outcome.p == 2 * 2 / 2**12 and outcome.by_sign_flip
    # identical arms on 8 seeds: equivalent by the sign-flip form of TOST, 1/2^8
    outcome = judged([0.95 + 0.001 * s for s in range(8)], [0.95 + 0.001 * s for s in range(8)])
    assert outcome.verdict == NO_PRACTICAL_EFFECT and outcome.p_tost == 1 / 2**8
