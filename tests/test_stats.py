"""Seed statistics: the p-value of Student's t against closed forms, numeric integration and
scipy (pinned), and Welch's test by hand."""

from __future__ import annotations

import math

import pytest

from trickrun.analysis.stats import t_two_sided_p, welch_t_test


@pytest.mark.parametrize("t", [0.0, 0.5, 1.0, 3.0, 12.706])
def test_t_p_value_df1_is_the_cauchy_closed_form(t: float) -> None:
    assert t_two_sided_p(t, 1.0) == pytest.approx(1 - 2 / math.pi * math.atan(t), abs=1e-12)


@pytest.mark.parametrize("t", [0.3, 1.0, 2.0, 4.303, 10.0])
def test_t_p_value_df2_closed_form(t: float) -> None:
    assert t_two_sided_p(t, 2.0) == pytest.approx(1 - t / math.sqrt(2 + t * t), abs=1e-12)


@pytest.mark.parametrize(("t", "df"), [(2.228139, 10), (2.085963, 20), (1.959964, 1e6)])
def test_t_p_value_of_textbook_critical_values_is_five_percent(t: float, df: float) -> None:
    assert t_two_sided_p(t, df) == pytest.approx(0.05, abs=2e-6)


def _p_by_integration(t: float, df: float, steps: int = 20000) -> float:
    """2 * integral from |t| to infinity of the t density, by Simpson's rule on u = 1/x."""
    log_c = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)

    def f(u: float) -> float:  # density(1/u) / u^2
        if u == 0:
            return 0.0
        x = 1 / u
        return math.exp(log_c - (df + 1) / 2 * math.log1p(x * x / df)) / (u * u)

    b = 1 / abs(t)
    h = b / steps
    total = f(0) + f(b) + sum((4 if i % 2 else 2) * f(i * h) for i in range(1, steps))
    return 2 * total * h / 3


@pytest.mark.parametrize(("t", "df"), [(1.5, 3.7), (2.5, 7.25), (4.0, 2.97), (0.8, 15.5)])
def test_t_p_value_matches_numeric_integration_for_fractional_df(t: float, df: float) -> None:
    assert t_two_sided_p(t, df) == pytest.approx(_p_by_integration(t, df), rel=1e-6)


def test_welch_t_and_df_by_hand() -> None:
    a, b = [0.974, 0.976, 0.973], [0.965, 0.968, 0.962]
    # means 0.974333.., 0.965; sample variances 2.3333e-6 and 9e-6
    va, vb = 7e-6 / 3, 9e-6
    se2 = va / 3 + vb / 3
    result = welch_t_test(a, b)
    assert result.t == pytest.approx((0.974 + 0.976 + 0.973 - 0.965 - 0.968 - 0.962) / 3 / math.sqrt(se2))
    assert result.df == pytest.approx(se2**2 / ((va / 3) ** 2 / 2 + (vb / 3) ** 2 / 2))
    assert result.df == pytest.approx(2.9717, abs=1e-4)
    assert result.p == pytest.approx(_p_by_integration(result.t, result.df), rel=1e-6)
    assert result.significant


# (a, b, t, df, p) from scipy 1.17.1, pinned so the test runs without scipy:
#   from scipy import stats
#   r = stats.ttest_ind(a, b, equal_var=False)
#   print(repr(float(r.statistic)), repr(float(r.df)), repr(float(r.pvalue)))
SCIPY_WELCH = [
    ([0.971, 0.975, 0.969, 0.973], [0.968, 0.974, 0.966],
     0.9773555548504553, 3.145760336370007, 0.397433628805201),
    ([0.974, 0.976, 0.973], [0.965, 0.968, 0.962],
     4.801960383990343, 2.971722365038561, 0.0175648722911258),
    ([1.0, 2.0, 4.0, 8.0, 16.0], [3.0, 3.5],
     1.0770082100144456, 4.066338746839964, 0.3411795058249357),
]


@pytest.mark.parametrize(("a", "b", "t", "df", "p"), SCIPY_WELCH)
def test_welch_matches_scipy(a, b, t, df, p) -> None:
    result = welch_t_test(a, b)
    assert result.t == pytest.approx(t, rel=1e-9)
    assert result.df == pytest.approx(df, rel=1e-9)
    assert result.p == pytest.approx(p, rel=1e-9)


def test_welch_edge_cases() -> None:
    assert welch_t_test([1.0, 1.0], [1.0, 1.0]).p == 1.0
    assert welch_t_test([1.0, 1.0], [2.0, 2.0]).p == 0.0
    with pytest.raises(ValueError):
        welch_t_test([1.0], [1.0, 2.0])


def test_a_p_value_is_never_shown_on_the_other_side_of_the_level_nor_as_certainty():
    from trickrun.analysis.significance import judge, p_text

    assert [p_text(p) for p in (0.0004, 0.0037, 0.37, 0.0497, 0.0504, 0.996, 1.0)] == [
        "<0.001", "=0.0037", "=0.37", "=0.0497", "=0.05", "=0.996", "=1"]
    # Welch's p is 0.04970 here: "worse (p=0.05)" would contradict the rule "p < 0.05" it is judged by
    assert str(judge([0.877282, 0.887282, 0.897282], [0.90, 0.91, 0.92], True)) == "worse (p=0.0497)"
