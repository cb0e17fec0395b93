"""Seed statistics: mean ± sample standard deviation, Welch's unequal-variance t-test, the
paired t-test with its interval, the paired sign-flip permutation test, the two one-sided tests
of equivalence (TOST), Holm's correction, Student's t quantile, and the paired test's power
(minimal detectable effect, seeds needed). Pure Python but for the sign-flip test (NumPy).

Welch: t = (m1 - m2) / sqrt(s1²/n1 + s2²/n2) with Welch-Satterthwaite degrees of freedom.
Every p-value comes from P(|T| > |t|) = I_{df/(df+t²)}(df/2, 1/2), with I the regularized
incomplete beta function (continued fraction, Numerical Recipes §6.4).

Paired: the n differences d_i = a_i - b_i of the same seed; mean d̄, se = sd(d)/sqrt(n),
t = d̄/se with n - 1 degrees of freedom, interval d̄ ± t_{(1+c)/2, n-1}·se (as scipy's
ttest_rel). TOST against ±margin: p = max(P(T >= (d̄ + margin)/se), P(T <= (d̄ - margin)/se));
p < α exactly when the (1 - 2α) interval lies inside (-margin, margin).

Sign flip (Fisher's paired permutation test): under "no effect" each difference is as likely
+d_i as -d_i, so p is the share of the 2^n sign patterns whose sum is at least as far out as
the observed sum: two-sided, 2·min(P(S <= s), P(S >= s)) capped at 1 (as
scipy.stats.permutation_test, permutation_type="samples"). Sums equal in theory count as equal
within 100 machine epsilons of the sum of |d_i| and of n times the largest |value| the
differences were taken from, not of the observed sum alone as scipy has it: accuracies such as
0.9812 - 0.9801 and 0.9712 - 0.9701 are equal differences whose floats differ in the last bits of
the accuracies, far more than in those of the differences, and two patterns that tie would not
(their p too small). Exact up to EXACT_FLIP_PAIRS pairs (all patterns, counted
half against half); beyond, FLIP_RESAMPLES random patterns from a fixed seed, with scipy's +1
correction, so the same differences always give the same p. It assumes nothing about the
differences' shape: a few extreme differences cannot hide a consistent sign, but its p
cannot go below 2/2^n.

Power (two-sided paired t at level α, no multiplicity correction): the usual central-t
approximation MDE(n) = (t_{1-α/2, n-1} + t_{power, n-1})·sd/sqrt(n), which slightly
understates the exact noncentral-t answer for very small n.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

SIGNIFICANCE_LEVEL = 0.05  # Welch's two-sided p below this: larger than seed noise
POWER = 0.8  # the chance of detecting an effect the minimal detectable effect is quoted at
MAX_SEEDS = 10_000  # seeds_needed stops searching here (None: more than this)
EXACT_FLIP_PAIRS = 30  # the sign-flip test enumerates all 2^n patterns up to here (2 x 2^15 sums)
FLIP_RESAMPLES = 100_000  # random sign patterns beyond it
FLIP_SEED = 20261206


def mean_sd(values: Sequence[Any]) -> tuple[float | None, float | None, int]:
    finite = [float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)
              and math.isfinite(v)]
    if not finite:
        return None, None, 0
    sd = statistics.stdev(finite) if len(finite) > 1 else None
    return statistics.fmean(finite), sd, len(finite)


# ---------------------------------------------------------------------------------------
# Welch's t-test.


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    tiny, eps = 1e-300, 1e-15
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 500):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        step = d * c
        h *= step
        if abs(step - 1.0) < eps:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b), for a, b > 0 and 0 <= x <= 1."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    front = math.exp(log_front)
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def t_two_sided_p(t: float, df: float) -> float:
    """P(|T| >= |t|) for Student's t with `df` (real, > 0) degrees of freedom."""
    if math.isnan(t):
        return math.nan
    if math.isinf(t):
        return 0.0
    return betainc(df / 2.0, 0.5, df / (df + t * t))


@dataclass
class WelchResult:
    mean_a: float
    mean_b: float
    t: float
    df: float
    p: float

    @property
    def significant(self) -> bool:
        return self.p < SIGNIFICANCE_LEVEL


def welch_t_test(a: Sequence[float], b: Sequence[float]) -> WelchResult:
    """Welch's unequal-variance t-test of mean(a) - mean(b); needs two values in each."""
    if len(a) < 2 or len(b) < 2:
        raise ValueError("Welch's t-test needs at least two values in each sample")
    ma, mb = statistics.fmean(a), statistics.fmean(b)
    va, vb = statistics.variance(a), statistics.variance(b)
    na, nb = len(a), len(b)
    se2 = va / na + vb / nb
    if se2 == 0:
        t = 0.0 if ma == mb else math.copysign(math.inf, ma - mb)
        df = float(na + nb - 2)
        p = 1.0 if ma == mb else 0.0
    else:
        t = (ma - mb) / math.sqrt(se2)
        df = se2**2 / ((va / na) ** 2 / (na - 1) + (vb / nb) ** 2 / (nb - 1))
        p = t_two_sided_p(t, df)
    return WelchResult(ma, mb, t, df, p)


def t_one_sided_p(t: float, df: float) -> float:
    """P(T >= t), the upper tail of Student's t with `df` degrees of freedom."""
    if math.isnan(t):
        return math.nan
    half = t_two_sided_p(t, df) / 2.0
    return half if t >= 0 else 1.0 - half


def t_quantile(df: float, level: float = 0.975) -> float:
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
        if hi - lo < 1e-13 * max(1.0, hi):
            break
    return (lo + hi) / 2.0


# ---------------------------------------------------------------------------------------
# Paired t-test, equivalence, multiplicity, power.


@dataclass(frozen=True)
class PairedResult:
    n: int  # pairs
    mean_diff: float  # mean of a_i - b_i
    sd_diff: float  # sample standard deviation of the differences
    t: float
    df: int  # n - 1
    p: float  # two-sided
    ci: tuple[float, float]  # at the confidence asked for

    @property
    def se(self) -> float:
        return self.sd_diff / math.sqrt(self.n)


def paired_t_test(a: Sequence[float], b: Sequence[float], confidence: float = 0.95) -> PairedResult:
    """Student's paired t-test of mean(a_i - b_i) = 0; a and b pair by position; n >= 2.
    Identical differences (sd 0): t is 0 (no difference) or ±inf, p 1 or 0, a zero-width interval."""
    if len(a) != len(b) or len(a) < 2:
        raise ValueError(f"the paired t-test needs two equally long samples of at least 2 (got {len(a)}, {len(b)})")
    diffs = [x - y for x, y in zip(a, b)]
    n, mean = len(diffs), statistics.fmean(diffs)
    sd = statistics.stdev(diffs)
    if sd == 0:
        t = 0.0 if mean == 0 else math.copysign(math.inf, mean)
        return PairedResult(n, mean, 0.0, t, n - 1, 1.0 if mean == 0 else 0.0, (mean, mean))
    se = sd / math.sqrt(n)
    half = t_quantile(n - 1, 0.5 + confidence / 2.0) * se
    return PairedResult(n, mean, sd, mean / se, n - 1, t_two_sided_p(mean / se, n - 1), (mean - half, mean + half))


def tost_p(paired: PairedResult, margin: float) -> float:
    """The two one-sided tests' p of |true mean difference| >= margin (small: equivalent)."""
    if margin <= 0:
        return 1.0
    if paired.sd_diff == 0:
        return 0.0 if abs(paired.mean_diff) < margin else 1.0
    above_minus = t_one_sided_p((paired.mean_diff + margin) / paired.se, paired.df)
    below_plus = 1.0 - t_one_sided_p((paired.mean_diff - margin) / paired.se, paired.df)
    return max(above_minus, below_plus)


def _signed_sums(values: np.ndarray) -> np.ndarray:
    """The sums of all 2^len(values) sign patterns of values."""
    sums = np.zeros(1)
    for value in values:
        sums = np.concatenate([sums + value, sums - value])
    return sums


def rounding(diffs: Sequence[float], magnitude: float = 0.0) -> float:
    """How far apart two sums of ±diffs equal in theory may lie in floats (see the module
    docstring); `magnitude`: the largest |value| the differences were taken from."""
    return (float(np.abs(np.asarray(diffs, dtype=np.float64)).sum()) + len(diffs) * abs(magnitude)) \
        * np.finfo(np.float64).eps * 100


def sign_flip_seeds(alpha: float) -> int:
    """The fewest pairs whose sign-flip p can fall below `alpha`: its smallest p is 2/2^n."""
    return math.floor(math.log2(2.0 / alpha)) + 1


def sign_flip_p(diffs: Sequence[float], magnitude: float = 0.0) -> float:
    """The paired sign-flip permutation test's two-sided p for mean(diffs) = 0 (see the module
    docstring); 1 for no differences, NaN when one is not finite (as the t-test's p).
    `magnitude`: the largest |value| the differences were taken from, whose rounding they carry."""
    d = np.asarray(diffs, dtype=np.float64)
    n = len(d)
    if n == 0:
        return 1.0
    if not np.isfinite(d).all():
        return math.nan
    observed = float(d.sum())
    tolerance = rounding(d, magnitude)
    if n <= EXACT_FLIP_PAIRS:
        left, right = _signed_sums(d[: n // 2]), np.sort(_signed_sums(d[n // 2:]))
        # pairs (l, r) with l + r <= observed (+ tolerance), and with l + r >= observed (- tolerance)
        at_most = np.searchsorted(right, observed + tolerance - left, side="right").sum()
        at_least = (len(right) - np.searchsorted(right, observed - tolerance - left, side="left")).sum()
        total, plus = 2.0**n, 0
    else:
        rng = np.random.default_rng(FLIP_SEED)
        at_most = at_least = 0
        for start in range(0, FLIP_RESAMPLES, 10_000):
            signs = rng.choice(np.array([-1.0, 1.0]), size=(min(10_000, FLIP_RESAMPLES - start), n))
            sums = signs @ d
            at_most += int((sums <= observed + tolerance).sum())
            at_least += int((sums >= observed - tolerance).sum())
        total, plus = float(FLIP_RESAMPLES), 1
    one_sided = min(at_most, at_least)
    return min(1.0, 2.0 * (one_sided + plus) / (total + plus))


def either_test_p(p_t: float, p_flip: float) -> float:
    """A comparison's p when it is judged by the better of two pre-declared tests: the smaller
    p, doubled (Bonferroni over the two), so picking the better one after the fact costs what it
    should. NaN when either is (an untestable comparison stays untestable)."""
    if math.isnan(p_t) or math.isnan(p_flip):
        return math.nan
    return min(1.0, 2.0 * min(p_t, p_flip))


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the order given:
    sorted p_(1) <= ... <= p_(m), adjusted p_(i) = max_{j<=i} min(1, (m-j+1) p_(j))."""
    m = len(pvalues)
    order = sorted(range(m), key=lambda i: pvalues[i])
    adjusted = [1.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        adjusted[i] = running
    return adjusted


def minimal_detectable_effect(sd_diff: float, n: int, alpha: float = SIGNIFICANCE_LEVEL,
                              power: float = POWER) -> float:
    """The smallest true mean difference a two-sided paired t-test at `alpha` over n pairs detects
    with probability `power` (central-t approximation, see the module docstring)."""
    df = n - 1
    return (t_quantile(df, 1.0 - alpha / 2.0) + t_quantile(df, power)) * sd_diff / math.sqrt(n)


def seeds_needed(effect: float, sd_diff: float, alpha: float = SIGNIFICANCE_LEVEL,
                 power: float = POWER) -> int | None:
    """The fewest pairs (>= 2) whose minimal detectable effect is at most `effect`, given the
    differences' sd; None when more than MAX_SEEDS would be needed (or effect <= 0 < sd)."""
    if sd_diff == 0:
        return 2
    if effect <= 0:
        return None
    lo, hi = 2, 2
    while minimal_detectable_effect(sd_diff, hi, alpha, power) > effect:
        if hi >= MAX_SEEDS:
            return None
        lo, hi = hi, min(2 * hi, MAX_SEEDS)
    while lo < hi:  # the MDE falls as n grows: the first n that reaches it
        mid = (lo + hi) // 2
        if minimal_detectable_effect(sd_diff, mid, alpha, power) > effect:
            lo = mid + 1
        else:
            hi = mid
    return hi
