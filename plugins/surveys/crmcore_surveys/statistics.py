"""Estimates with 95% confidence intervals, from aggregates computed in SQL.

Every function takes counts and sums (``n``, ``sum x``, ``sum x^2`` ...) that a
``GROUP BY`` produced, and does only the final arithmetic (ratios, square roots).
"""

from __future__ import annotations

import math
from typing import Any

from attrs import asdict, frozen

#: The 97.5% quantile of the standard normal distribution (two-sided 95% intervals).
Z95 = 1.959963984540054


@frozen
class Estimate:
    """A point estimate, the number of observations behind it and its 95% interval.

    ``ci_low``/``ci_high`` are ``None`` when there are too few observations (a mean
    needs n >= 2) or no estimate at all (n = 0, ``value`` ``None``).
    """

    value: float | None
    n: int
    ci_low: float | None = None
    ci_high: float | None = None
    sd: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return asdict(self)


def sample_sd(n: int, total: float, squares: float) -> float | None:
    """Sample standard deviation (divisor n - 1) from n, sum x and sum x^2; None for n < 2."""
    if n < 2:
        return None
    variance = (squares - total * total / n) / (n - 1)
    return math.sqrt(max(variance, 0.0))


def mean_estimate(n: int, total: float, squares: float) -> Estimate:
    """Mean with a normal-approximation interval ``mean +- 1.96 * s / sqrt(n)``.

    ``s`` is the sample standard deviation; no interval below n = 2.
    """
    if n <= 0:
        return Estimate(None, 0)
    mean = total / n
    sd = sample_sd(n, total, squares)
    if sd is None:
        return Estimate(mean, n)
    half = Z95 * sd / math.sqrt(n)
    return Estimate(mean, n, mean - half, mean + half, sd)


def proportion_estimate(n: int, hits: int) -> Estimate:
    """A share in percent (``100 * hits / n``) with the Wilson score interval (95%)."""
    if n <= 0:
        return Estimate(None, 0)
    p = hits / n
    z2 = Z95 * Z95
    denominator = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denominator
    half = Z95 * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denominator
    return Estimate(100.0 * p, n, 100.0 * max(0.0, centre - half), 100.0 * min(1.0, centre + half))


def nps_estimate(n: int, promoters: int, detractors: int) -> Estimate:
    """NPS in points (-100..100) with a normal interval from the trinomial variance.

    ``NPS = 100 (P - D) / n``; ``Var = (p_P + p_D - (p_P - p_D)^2) / n``;
    interval ``NPS +- 1.96 * 100 * sqrt(Var)`` (not clipped to -100..100).
    """
    if n <= 0:
        return Estimate(None, 0)
    p_p, p_d = promoters / n, detractors / n
    nps = 100.0 * (promoters - detractors) / n
    variance = max(p_p + p_d - (p_p - p_d) ** 2, 0.0) / n
    half = Z95 * 100.0 * math.sqrt(variance)
    return Estimate(nps, n, nps - half, nps + half, 100.0 * math.sqrt(variance * n))


def pearson_estimate(n: int, sx: float, sy: float, sxx: float, syy: float, sxy: float) -> Estimate:
    """Pearson's r from sums, with a Fisher-z 95% interval (``tanh(atanh r +- 1.96/sqrt(n-3))``).

    ``value`` is ``None`` when either variable is constant or n < 2; no interval for n < 4.
    """
    if n < 2:
        return Estimate(None, n)
    cov = sxy - sx * sy / n
    vx = sxx - sx * sx / n
    vy = syy - sy * sy / n
    if vx <= 1e-12 or vy <= 1e-12:
        return Estimate(None, n)
    r = max(-1.0, min(1.0, cov / math.sqrt(vx * vy)))
    if n < 4 or abs(r) >= 1.0:
        return Estimate(r, n)
    z = math.atanh(r)
    half = Z95 / math.sqrt(n - 3)
    return Estimate(r, n, math.tanh(z - half), math.tanh(z + half))
