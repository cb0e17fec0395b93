"""The rule that turns seed samples into verdicts, applied by code only.

Each claim pre-declares comparisons: a metric, an arm, the arm it is measured against, the
direction the lesson expects, and the smallest effect of interest (SESOI, in the metric's
units). Runs of two arms with the same seed share their initial weights, batch order and
dropout stream (trickrun.train.Rngs), so each comparison pairs the arm's and the baseline's
values on the seeds both have: the effect is the mean of the per-seed differences
d = arm - baseline, with its 95% paired t interval (n - 1 degrees of freedom), and the share
of seeds on which the arm beats the baseline in the predicted direction.

Whether the arms differ is asked of two tests declared together: the paired t-test (the most
powerful when the differences are roughly normal, and usable from two seeds) and the exact
sign-flip permutation test (which assumes nothing about their shape: when a few seeds of one
arm collapse to chance, the differences are skewed, the t interval is wide, yet the arm may win
on every seed). A comparison's p is the smaller of the two, doubled (Bonferroni over the two
tests). Two families of p-values, each Holm-corrected over ALL testable comparisons of the
report: that p, and the equivalence (TOST, paired t) p against ±SESOI. At ALPHA:

  supported          Holm p < ALPHA and d̄ in the predicted direction; marked "below practical
                     size" when |d̄| < SESOI
  contradicted       Holm p < ALPHA and d̄ against the predicted direction
  no practical effect  otherwise, Holm TOST p < ALPHA: the effect lies within ±SESOI
  inconclusive       otherwise; the outcome then says the minimal detectable effect at 80%
                     power (two-sided paired t at T_ALPHA = ALPHA / 2, without Holm) for the pairs
                     it had, and how many seeds would detect the SESOI

A comparison with fewer than two paired seeds is inconclusive and takes no part in either
correction. When every seed has the same difference (to the rounding of the values: collapsed
arms score the same accuracy on every seed), the differences have no spread and the t-test's p,
0 or 1 whatever the number of seeds, says nothing about chance: the sign-flip test then decides
alone (its p doubled, as declared), and equivalence is its one-sided form against ±SESOI,
1/2^n when |d̄| < SESOI (else 1); such a comparison, if inconclusive, quotes the seeds the
sign-flip test would need to decide it (before Holm) instead of an MDE. The statistics are in trickrun/analysis/stats.py.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Any, Iterator, Mapping, Sequence

from ..analysis.stats import (either_test_p, holm, minimal_detectable_effect, paired_t_test, rounding, seeds_needed,
                              sign_flip_p, sign_flip_seeds, t_quantile, tost_p)

ALPHA = 0.05
# The level the paired t-test's own p must reach before Holm: the rule doubles the smaller of
# the two tests' p, so the MDE and the seeds the SESOI needs are quoted at it, not at ALPHA.
T_ALPHA = ALPHA / 2
CONFIDENCE = 0.95
SUPPORTED, CONTRADICTED = "supported", "contradicted"
NO_PRACTICAL_EFFECT, INCONCLUSIVE = "no practical effect", "inconclusive"
VERDICTS = (SUPPORTED, CONTRADICTED, NO_PRACTICAL_EFFECT, INCONCLUSIVE)
__all__ = ["ALPHA", "CONFIDENCE", "T_ALPHA", "VERDICTS", "Comparison", "Outcome", "SeedValues", "holm", "judge",
           "outcomes_for", "t_quantile", "test_comparison", "verdict"]


def seed_order(seed: Any) -> tuple:
    """Integer seeds in numeric order, any other after them by their text."""
    return (0, seed, "") if isinstance(seed, int) and not isinstance(seed, bool) else (1, 0, str(seed))


class SeedValues(Sequence[float]):
    """One measure of one arm: a value per seed. It reads as the sequence of its values in seed
    order (for tables, means and figures); `by_seed` is what comparisons pair on."""

    def __init__(self, by_seed: Mapping[Any, float] | None = None):
        self._by_seed: dict[Any, float] = {}
        for seed, value in (by_seed or {}).items():
            self.add(seed, value)

    def add(self, seed: Any, value: float) -> None:
        if seed in self._by_seed:
            raise ValueError(f"seed {seed!r} already has a value ({self._by_seed[seed]})")
        self._by_seed[seed] = value
        self._by_seed = dict(sorted(self._by_seed.items(), key=lambda item: seed_order(item[0])))

    @property
    def by_seed(self) -> dict[Any, float]:
        return dict(self._by_seed)

    @property
    def seeds(self) -> tuple:
        return tuple(self._by_seed)

    def __getitem__(self, index):
        return list(self._by_seed.values())[index]

    def __len__(self) -> int:
        return len(self._by_seed)

    def __iter__(self) -> Iterator[float]:
        return iter(list(self._by_seed.values()))

    def __repr__(self) -> str:
        return f"SeedValues({self._by_seed!r})"


@dataclass(frozen=True)
class Comparison:
    """`metric` of `arm` expected higher (or lower) than that of `baseline`; `sesoi` is the
    smallest difference that would matter in practice, in the metric's units (> 0)."""

    metric: str
    arm: str
    baseline: str
    higher: bool
    sesoi: float


@dataclass
class Outcome:
    claim: int
    comparison: Comparison
    n_pairs: int  # seeds both arms have
    mean_arm: float | None  # over the paired seeds
    mean_base: float | None
    diff: float | None  # mean of the per-seed differences, arm - baseline
    ci: tuple[float, float] | None  # its 95% paired t interval
    won: float | None  # share of the pairs where the arm beats the baseline in the predicted direction
    p: float | None  # the difference's two-sided p (either_test_p of the two below); None when untestable
    p_t: float | None = None  # the paired t-test's; None also when the differences have no spread
    p_flip: float | None = None  # the sign-flip permutation test's
    p_tost: float | None = None  # equivalence within ±sesoi
    mde: float | None = None  # minimal detectable effect at 80% power, two-sided T_ALPHA, no Holm
    # pairs needed for the sesoi to be the mde (None: > MAX_SEEDS); with no spread (mde None), the
    # pairs the sign-flip test needs to reach T_ALPHA
    seeds_for_sesoi: int | None = None
    p_holm: float | None = None
    p_tost_holm: float | None = None
    verdict: str = INCONCLUSIVE

    @property
    def by_sign_flip(self) -> bool:
        """Significant, and it is the sign-flip test's p that made it so (the t-test's is larger,
        or has nothing to say: no spread)."""
        return (self.verdict in (SUPPORTED, CONTRADICTED) and self.p_flip is not None
                and (self.p_t is None or self.p_flip < self.p_t))

    @property
    def no_spread(self) -> bool:
        """Every paired seed had the same difference (the sign-flip test alone decided)."""
        return self.p is not None and self.p_t is None

    @property
    def below_practical_size(self) -> bool:
        return self.verdict == SUPPORTED and self.diff is not None and abs(self.diff) < self.comparison.sesoi


def paired_values(arm: Sequence[float], base: Sequence[float]) -> tuple[list, list[float], list[float]]:
    """(seeds both have, the arm's values, the baseline's), in seed order."""
    arm_by, base_by = _by_seed(arm), _by_seed(base)
    seeds = sorted(set(arm_by) & set(base_by), key=seed_order)
    return seeds, [arm_by[s] for s in seeds], [base_by[s] for s in seeds]


def _by_seed(values: Sequence[float]) -> dict[Any, float]:
    if isinstance(values, SeedValues):
        return values.by_seed
    if isinstance(values, Mapping):
        return dict(values)
    raise TypeError(f"comparisons pair values by seed: give SeedValues or a seed -> value mapping, not {values!r}")


def test_comparison(claim: int, comparison: Comparison, arm: Sequence[float], base: Sequence[float]) -> Outcome:
    """The unadjusted outcome of one comparison (named test_ for the t-test, not for pytest)."""
    _, arm_values, base_values = paired_values(arm, base)
    n = len(arm_values)
    outcome = Outcome(claim, comparison, n, None, None, None, None, None, None)
    if n == 0:
        return outcome
    outcome.mean_arm, outcome.mean_base = statistics.fmean(arm_values), statistics.fmean(base_values)
    diffs = [a - b for a, b in zip(arm_values, base_values)]
    outcome.diff = statistics.fmean(diffs)
    outcome.won = sum(1 for d in diffs if (d > 0 if comparison.higher else d < 0)) / n
    if n < 2:
        return outcome
    paired = paired_t_test(arm_values, base_values, CONFIDENCE)
    magnitude = max(abs(v) for v in (*arm_values, *base_values))
    outcome.p_flip = sign_flip_p(diffs, magnitude)
    if max(diffs) - min(diffs) <= rounding(diffs, magnitude):  # no spread: see the module docstring
        outcome.ci, outcome.p = (outcome.diff, outcome.diff), min(1.0, 2.0 * outcome.p_flip)
        within = abs(outcome.diff) < comparison.sesoi
        outcome.p_tost = 0.5**n if within else 1.0
        # the seeds that decide it: a one-sided p of 1/2^n below ALPHA, or a doubled 2/2^n below it
        outcome.seeds_for_sesoi = sign_flip_seeds(2 * ALPHA) if within else sign_flip_seeds(T_ALPHA)
        return outcome
    outcome.ci, outcome.p_t = paired.ci, paired.p
    outcome.p = either_test_p(outcome.p_t, outcome.p_flip)
    outcome.p_tost = tost_p(paired, comparison.sesoi)
    outcome.mde = minimal_detectable_effect(paired.sd_diff, n, T_ALPHA)
    outcome.seeds_for_sesoi = seeds_needed(comparison.sesoi, paired.sd_diff, T_ALPHA)
    return outcome


test_comparison.__test__ = False  # not a pytest test despite its name


def verdict(diff: float | None, p_holm: float | None, p_tost_holm: float | None, higher: bool,
            alpha: float = ALPHA) -> str:
    """The rule: a difference beyond seed noise (for or against the prediction), else an effect
    shown to be within ±SESOI, else inconclusive."""
    if diff is None or p_holm is None or math.isnan(p_holm):
        return INCONCLUSIVE
    if p_holm < alpha and diff != 0:
        return SUPPORTED if (diff > 0) == higher else CONTRADICTED
    if p_tost_holm is not None and p_tost_holm < alpha:
        return NO_PRACTICAL_EFFECT
    return INCONCLUSIVE


def judge(outcomes: list[Outcome], alpha: float = ALPHA) -> list[Outcome]:
    """Holm over every testable outcome of the report (the t-tests' p, and apart from them the
    TOST p), then each verdict (in place)."""
    testable = [o for o in outcomes if o.p is not None and not math.isnan(o.p)]
    for outcome, adjusted, adjusted_tost in zip(testable, holm([o.p for o in testable]),
                                                holm([o.p_tost for o in testable])):
        outcome.p_holm, outcome.p_tost_holm = adjusted, adjusted_tost
    for outcome in outcomes:
        outcome.verdict = verdict(outcome.diff, outcome.p_holm, outcome.p_tost_holm, outcome.comparison.higher, alpha)
    return outcomes


def outcomes_for(claim: int, comparisons: Sequence[Comparison],
                 samples: Mapping[str, Mapping[str, Sequence[float]]]) -> list[Outcome]:
    """The unadjusted outcome of each comparison; `samples[arm][metric]` holds a value per seed."""
    return [test_comparison(claim, c, samples.get(c.arm, {}).get(c.metric, SeedValues()),
                            samples.get(c.baseline, {}).get(c.metric, SeedValues())) for c in comparisons]
