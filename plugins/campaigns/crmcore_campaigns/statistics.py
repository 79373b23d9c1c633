"""The statistics of campaign results: pure functions over per-group aggregates.

The database computes, per group (control, and each variant of the treated), the
members ``n``, the converted members ``conversions``, the revenue sum and the
sum of squared deviations of per-member revenue about the group's mean
(:mod:`crmcore_campaigns.results`). Everything here follows the docs page's
definitions; ``z = scipy.stats.norm.ppf(0.975)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from decimal import Decimal
from fractions import Fraction

from attrs import frozen
from scipy import stats  # type: ignore[import-untyped]

#: The two-sided 95% normal quantile, 1.959963984540054.
Z95 = float(stats.norm.ppf(0.975))


@frozen
class GroupStats:
    """Aggregates of one group: members, converted members, revenue and its spread.

    ``revenue`` is the exact sum (Decimal); ``ss`` the sum over members of
    ``(revenue_i - mean)^2`` (float, about this group's own mean).
    """

    n: int
    conversions: int
    revenue: Decimal
    ss: float

    @property
    def rate(self) -> float | None:
        """Conversion rate ``conversions / n`` (``None`` when empty)."""
        return self.conversions / self.n if self.n else None

    @property
    def mean_revenue(self) -> float | None:
        """Mean revenue per member (``None`` when empty)."""
        return float(self.revenue) / self.n if self.n else None

    @property
    def variance(self) -> float | None:
        """Sample variance of per-member revenue, ``ss / (n - 1)`` (``None`` when ``n < 2``)."""
        return self.ss / (self.n - 1) if self.n >= 2 else None


@frozen
class Estimate:
    """A point estimate with its standard error and 95% interval (``None`` when undefined)."""

    estimate: float
    se: float | None
    low: float | None
    high: float | None


def combine(groups: Sequence[GroupStats]) -> GroupStats:
    """The groups pooled into one (the treated over every variant).

    ``ss`` of the pool = sum of each group's ``ss`` + ``n_g (mean_g - mean)^2``.
    """
    n = sum(g.n for g in groups)
    conversions = sum(g.conversions for g in groups)
    revenue = sum((g.revenue for g in groups), Decimal(0))
    if n == 0:
        return GroupStats(0, 0, revenue, 0.0)
    mean = float(revenue) / n
    ss = sum(g.ss + g.n * ((float(g.revenue) / g.n) - mean) ** 2 for g in groups if g.n)
    return GroupStats(n, conversions, revenue, ss)


def uplift(treated: GroupStats, control: GroupStats) -> Estimate | None:
    """``p_t - p_c`` with the unpooled Wald interval; ``None`` when either group is empty.

    ``SE = sqrt(p_t (1 - p_t) / n_t + p_c (1 - p_c) / n_c)``; 95% CI = uplift ± z SE.
    """
    p_t, p_c = treated.rate, control.rate
    if p_t is None or p_c is None:
        return None
    se = math.sqrt(p_t * (1 - p_t) / treated.n + p_c * (1 - p_c) / control.n)
    diff = p_t - p_c
    return Estimate(diff, se, diff - Z95 * se, diff + Z95 * se)


def incremental_revenue(treated: GroupStats, control: GroupStats) -> Estimate | None:
    """``(mean_t - mean_c) n_t`` with Welch's interval; ``None`` when either group is empty.

    ``SE = sqrt(s_t^2 / n_t + s_c^2 / n_c)`` (sample variances, ddof 1) and
    95% CI = estimate ± z SE n_t; no interval (``se``, ``low``, ``high`` None)
    unless both groups have at least two members.
    """
    mean_t, mean_c = treated.mean_revenue, control.mean_revenue
    if mean_t is None or mean_c is None:
        return None
    exact = Fraction(treated.revenue) - Fraction(control.revenue) * treated.n / control.n
    value = float(exact)  # (mean_t - mean_c) n_t, computed exactly then rounded once
    var_t, var_c = treated.variance, control.variance
    if var_t is None or var_c is None:
        return Estimate(value, None, None, None)
    se = math.sqrt(var_t / treated.n + var_c / control.n) * treated.n
    return Estimate(value, se, value - Z95 * se, value + Z95 * se)


def roi(incremental_margin: float | None, cost: Decimal) -> float | None:
    """``(incremental margin - cost) / cost``; ``None`` when the cost is 0 or the margin unknown."""
    if incremental_margin is None or cost == 0:
        return None
    return (incremental_margin - float(cost)) / float(cost)


@frozen
class Comparison:
    """The variant comparison: chi-square test of independence and, for two, a z-test."""

    chi2: float | None
    dof: int | None
    p_value: float | None
    z: float | None = None
    z_p_value: float | None = None


def compare_variants(counts: Sequence[tuple[int, int]]) -> Comparison:
    """Compare the conversion of variants, each given as ``(conversions, n)``.

    Chi-square test of independence on the ``k x 2`` table (converted, not
    converted) per variant, ``scipy.stats.chi2_contingency(table,
    correction=False)``. Undefined (all fields None) with fewer than two
    variants, an empty variant, or when nobody or everybody converted. With
    exactly two variants also the pooled two-proportion z-test: ``z = (p_1 - p_2) /
    sqrt(p (1 - p) (1/n_1 + 1/n_2))`` with ``p`` the pooled rate, two-sided
    p-value ``2 (1 - Phi(|z|))``; ``z^2`` equals the chi-square statistic.
    """
    if len(counts) < 2 or any(n == 0 for _, n in counts):
        return Comparison(None, None, None)
    converted = sum(c for c, _ in counts)
    total = sum(n for _, n in counts)
    if converted == 0 or converted == total:
        return Comparison(None, None, None)
    table = [[c, n - c] for c, n in counts]
    chi2, p_value, dof, _ = stats.chi2_contingency(table, correction=False)
    result = Comparison(float(chi2), int(dof), float(p_value))
    if len(counts) != 2:
        return result
    (c1, n1), (c2, n2) = counts
    pooled = converted / total
    z = (c1 / n1 - c2 / n2) / math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    return Comparison(result.chi2, result.dof, result.p_value, z, float(2 * stats.norm.sf(abs(z))))


__all__ = [
    "Z95",
    "Comparison",
    "Estimate",
    "GroupStats",
    "combine",
    "compare_variants",
    "incremental_revenue",
    "roi",
    "uplift",
]
