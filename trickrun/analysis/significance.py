"""One rule for telling a seed group from another, shared by `compare --group` (each group against
the baseline's) and the sweep leaderboard (each group against the leader): Welch's two-sided
t-test on one measure of the groups' runs (stats.py); p < SIGNIFICANCE_LEVEL means the difference
is larger than seed-to-seed noise, and the group is *better* or *worse* by the measure's direction;
otherwise the two are *tied*, which means the seeds cannot tell them apart, not that they are
equal. Fewer than two runs with a value on either side: *n < 2*, too few to tell.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from .stats import SIGNIFICANCE_LEVEL, WelchResult, welch_t_test

RULE = (f"Welch's t-test over seeds, p < {SIGNIFICANCE_LEVEL:g}: better or worse beyond seed noise; "
        "else tied (the seeds cannot tell the two apart); n < 2: too few runs")


@dataclass
class Verdict:
    word: str  # better | worse | tied | n < 2
    welch: WelchResult | None  # the group's values minus the reference's

    def __str__(self) -> str:
        if self.welch is None:
            return self.word
        return f"{self.word} (p{p_text(self.welch.p)})"


def p_text(p: float) -> str:
    """"<0.001", or "=" and p to two significant digits, more where two would put it on the
    other side of SIGNIFICANCE_LEVEL (0.0497 is not "0.05") or read as certainty (0.996, not 1)."""
    if p < 0.001:
        return "<0.001"
    for digits in (2, 3, 4):
        shown = f"{p:.{digits}g}"
        if (float(shown) < SIGNIFICANCE_LEVEL) == (p < SIGNIFICANCE_LEVEL) and float(shown) < 1:
            return f"={shown}"
    return f"={p:g}"


def judge(values: Sequence[float], reference: Sequence[float], higher_is_better: bool) -> Verdict:
    """The verdict on a group's `values` of a measure against the reference group's."""
    if len(values) < 2 or len(reference) < 2:
        return Verdict("n < 2", None)
    welch = welch_t_test(values, reference)
    if not welch.significant:
        return Verdict("tied", welch)
    ahead = (welch.mean_a > welch.mean_b) == higher_is_better
    return Verdict("better" if ahead else "worse", welch)


def rule_line(measure: str, reference: str) -> str:
    """The rule as stated under a table: which measure, against which group."""
    return f"verdict on {measure} against {reference}: {RULE}"
