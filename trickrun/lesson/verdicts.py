"""The rule that turns seed samples into verdicts, applied by code only.

Each claim pre-declares comparisons: a metric, an arm, the arm it is measured against, and
the direction the lesson expects. For each, Welch's t-test across seeds gives a two-sided p;
Holm's step-down correction is then applied over ALL comparisons of the report at ALPHA:

    sort the m p-values p_(1) <= ... <= p_(m);  adjusted p_(i) = max_{j<=i} min(1, (m-j+1) p_(j))

and a comparison is significant when its adjusted p is below ALPHA. The verdict is
*supported* when significant with the difference in the expected direction, *contradicted*
when significant against it, *not shown* otherwise (a comparison that cannot be tested, with
fewer than two values on a side, is *not shown* and takes no part in the correction).

The effect size is the difference of means (arm minus baseline) with its 95% Welch interval
diff ± t_{0.975,df} · se, se = sqrt(s_a²/n_a + s_b²/n_b); the quantile comes from bisection
on stats.t_two_sided_p.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Mapping, Sequence

from ..analysis.stats import t_two_sided_p, welch_t_test

ALPHA = 0.05
CONFIDENCE = 0.95
SUPPORTED, CONTRADICTED, NOT_SHOWN = "supported", "contradicted", "not shown"


@dataclass(frozen=True)
class Comparison:
    """`metric` of `arm` expected higher (or lower) than that of `baseline`."""

    metric: str
    arm: str
    baseline: str
    higher: bool


@dataclass
class Outcome:
    claim: int
    comparison: Comparison
    n_arm: int
    n_base: int
    mean_arm: float | None
    mean_base: float | None
    diff: float | None  # mean(arm) - mean(baseline)
    ci: tuple[float, float] | None
    p: float | None  # Welch's two-sided p, None when untestable
    p_holm: float | None = None
    verdict: str = NOT_SHOWN


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values, in the order given."""
    m = len(pvalues)
    order = sorted(range(m), key=lambda i: pvalues[i])
    adjusted = [1.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        adjusted[i] = running
    return adjusted


def t_quantile(df: float, level: float = 0.5 + CONFIDENCE / 2) -> float:
    """The `level` quantile (level > 0.5) of Student's t with `df` degrees of freedom:
    the t with P(|T| >= t) = 2 (1 - level), by bisection (the p falls as t grows)."""
    target = 2.0 * (1.0 - level)
    lo, hi = 0.0, 1.0
    while t_two_sided_p(hi, df) > target:
        hi *= 2.0
    for _ in range(200):
        mid = (lo + hi) / 2.0
        if t_two_sided_p(mid, df) > target:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-12 * max(1.0, hi):
            break
    return (lo + hi) / 2.0


def welch_interval(a: Sequence[float], b: Sequence[float]) -> tuple[float, float, float]:
    """(diff, low, high): mean(a) - mean(b) and its 95% Welch confidence interval."""
    result = welch_t_test(a, b)
    diff = result.mean_a - result.mean_b
    se = math.sqrt(statistics.variance(a) / len(a) + statistics.variance(b) / len(b))
    half = t_quantile(result.df) * se if se > 0 else 0.0
    return diff, diff - half, diff + half


def _mean(values: Sequence[float]) -> float | None:
    return statistics.fmean(values) if values else None


def test_comparison(claim: int, comparison: Comparison, arm: Sequence[float], base: Sequence[float]) -> Outcome:
    """The unadjusted outcome of one comparison (named test_ for the t-test, not for pytest)."""
    arm, base = list(arm), list(base)
    outcome = Outcome(claim, comparison, len(arm), len(base), _mean(arm), _mean(base), None, None, None)
    if outcome.mean_arm is not None and outcome.mean_base is not None:
        outcome.diff = outcome.mean_arm - outcome.mean_base
    if len(arm) >= 2 and len(base) >= 2:
        diff, low, high = welch_interval(arm, base)
        outcome.ci = (low, high)
        outcome.p = welch_t_test(arm, base).p
    return outcome


test_comparison.__test__ = False  # not a pytest test despite its name


def verdict(diff: float | None, p_holm: float | None, higher: bool, alpha: float = ALPHA) -> str:
    """The rule: significant after Holm and in the expected direction, or against it."""
    if diff is None or p_holm is None or math.isnan(p_holm) or p_holm >= alpha or diff == 0:
        return NOT_SHOWN
    return SUPPORTED if (diff > 0) == higher else CONTRADICTED


def judge(outcomes: list[Outcome], alpha: float = ALPHA) -> list[Outcome]:
    """Holm over every testable outcome of the report, then each verdict (in place)."""
    testable = [o for o in outcomes if o.p is not None and not math.isnan(o.p)]
    for outcome, adjusted in zip(testable, holm([o.p for o in testable])):
        outcome.p_holm = adjusted
    for outcome in outcomes:
        outcome.verdict = verdict(outcome.diff, outcome.p_holm, outcome.comparison.higher, alpha)
    return outcomes


def outcomes_for(claim: int, comparisons: Sequence[Comparison],
                 samples: Mapping[str, Mapping[str, Sequence[float]]]) -> list[Outcome]:
    """The unadjusted outcome of each comparison; `samples[arm][metric]` is one value per seed."""
    return [test_comparison(claim, c, samples.get(c.arm, {}).get(c.metric, []),
                            samples.get(c.baseline, {}).get(c.metric, [])) for c in comparisons]
