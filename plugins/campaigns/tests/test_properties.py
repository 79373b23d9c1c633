"""Property tests of the pure parts: assignment and statistics against plain Python."""

from __future__ import annotations

import math
import random
import statistics as stdlib
from decimal import Decimal

import pytest
from crmcore_campaigns.assignment import (
    CONTROL,
    TREATMENT,
    assign,
    held_out,
    share_in_basis_points,
    variant_pattern,
)
from crmcore_campaigns.statistics import (
    Z95,
    GroupStats,
    combine,
    compare_variants,
    incremental_revenue,
    roi,
    uplift,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats  # type: ignore[import-untyped]

members = st.dictionaries(
    st.integers(1, 10_000), st.sampled_from(["high", "medium", "low", "unvalued"]), max_size=200
)
weights = st.lists(st.integers(1, 4), min_size=1, max_size=4)


def _plain_assignment(
    strata: dict[int, str], seed: int, share_bp: int, names: list[tuple[str, int]]
) -> dict[int, tuple[str, str | None]]:
    """The docs' procedure written out again, plainly."""
    rng = random.Random(seed)
    pattern: list[str] = []
    for name, weight in names:
        pattern += [name] * weight
    out: dict[int, tuple[str, str | None]] = {}
    for stratum in sorted(set(strata.values())):
        ids = sorted(c for c, s in strata.items() if s == stratum)
        rng.shuffle(ids)
        k = math.floor(share_bp * len(ids) / 10000 + 0.5)
        for i, c in enumerate(ids):
            out[c] = (CONTROL, None) if i < k else (TREATMENT, pattern[(i - k) % len(pattern)])
    return out


@given(members, st.integers(0, 2**32), st.integers(0, 9999), weights)
@settings(max_examples=150, deadline=None)
def test_assignment_follows_the_documented_procedure(
    strata: dict[int, str], seed: int, share_bp: int, w: list[int]
) -> None:
    names = [(chr(65 + i), x) for i, x in enumerate(w)]
    found = assign(strata, seed=seed, share_bp=share_bp, variants=names)
    assert {a.customer_id: (a.group, a.variant) for a in found} == _plain_assignment(
        strata, seed, share_bp, names
    )
    assert sorted(a.customer_id for a in found) == sorted(strata)
    for stratum in set(strata.values()):
        n = sum(1 for s in strata.values() if s == stratum)
        control = sum(1 for a in found if a.stratum == stratum and a.group == CONTROL)
        assert control == held_out(share_bp, n)


@given(members, st.integers(0, 2**32))
@settings(max_examples=50, deadline=None)
def test_assignment_is_reproducible_and_order_free(strata: dict[int, str], seed: int) -> None:
    first = assign(strata, seed=seed, share_bp=1000, variants=[("A", 1), ("B", 1)])
    reordered = assign(
        list(reversed(list(strata.items()))),
        seed=seed,
        share_bp=1000,
        variants=[("A", 1), ("B", 1)],
    )
    assert first == reordered


def test_rounding_is_half_up_and_pattern_follows_weights() -> None:
    assert held_out(1000, 25) == 3  # 2.5 rounds up
    assert held_out(1000, 24) == 2  # 2.4 rounds down
    assert held_out(1000, 5) == 1  # 0.5 rounds up
    assert held_out(0, 100) == 0
    assert share_in_basis_points(Decimal("0.1")) == 1000
    assert variant_pattern([("A", 2), ("B", 1)]) == ["A", "A", "B"]
    with pytest.raises(ValueError):
        share_in_basis_points(Decimal("0.00001"))
    with pytest.raises(ValueError):
        share_in_basis_points(Decimal(1))


revenues = st.lists(
    st.decimals(min_value=0, max_value=10_000, places=2, allow_nan=False), max_size=40
)


def _group(values: list[Decimal], converted: int) -> GroupStats:
    total = sum(values, Decimal(0))
    mean = float(total) / len(values) if values else 0.0
    return GroupStats(len(values), converted, total, sum((float(v) - mean) ** 2 for v in values))


@given(st.lists(revenues, min_size=1, max_size=4))
@settings(max_examples=100, deadline=None)
def test_combine_equals_the_pooled_variance(groups: list[list[Decimal]]) -> None:
    pooled = combine([_group(g, 0) for g in groups])
    flat = [float(v) for g in groups for v in g]
    assert pooled.n == len(flat)
    if len(flat) >= 2:
        assert pooled.variance == pytest.approx(stdlib.variance(flat), rel=1e-9, abs=1e-6)


@given(revenues, revenues, st.data())
@settings(max_examples=100, deadline=None)
def test_revenue_and_uplift_intervals_match_plain_formulas(
    t: list[Decimal], c: list[Decimal], data: st.DataObject
) -> None:
    conv_t = data.draw(st.integers(0, len(t)))
    conv_c = data.draw(st.integers(0, len(c)))
    treated, control = _group(t, conv_t), _group(c, conv_c)
    up = uplift(treated, control)
    revenue = incremental_revenue(treated, control)
    if not t or not c:
        assert up is None and revenue is None
        return
    assert up is not None and revenue is not None
    p_t, p_c = conv_t / len(t), conv_c / len(c)
    se = math.sqrt(p_t * (1 - p_t) / len(t) + p_c * (1 - p_c) / len(c))
    assert up.estimate == pytest.approx(p_t - p_c)
    assert up.low == pytest.approx(p_t - p_c - Z95 * se)
    mean_t = sum(float(v) for v in t) / len(t)
    mean_c = sum(float(v) for v in c) / len(c)
    assert revenue.estimate == pytest.approx((mean_t - mean_c) * len(t), abs=1e-6)
    if len(t) < 2 or len(c) < 2:
        assert revenue.low is None
    else:
        w = math.sqrt(
            stdlib.variance([float(v) for v in t]) / len(t)
            + stdlib.variance([float(v) for v in c]) / len(c)
        )
        assert revenue.se == pytest.approx(w * len(t), rel=1e-6, abs=1e-6)


def test_z_is_scipys_quantile() -> None:
    assert Z95 == 1.959963984540054


def test_roi_definition() -> None:
    assert roi(150.0, Decimal(50)) == 2.0
    assert roi(10.0, Decimal(0)) is None
    assert roi(None, Decimal(5)) is None


def test_variant_comparison_is_chi_square_and_z_for_two() -> None:
    found = compare_variants([(30, 100), (45, 100)])
    table = [[30, 70], [45, 55]]
    chi2, p, dof, _ = stats.chi2_contingency(table, correction=False)
    assert found.chi2 == pytest.approx(chi2) and found.p_value == pytest.approx(p)
    assert found.dof == dof == 1
    pooled = 75 / 200
    z = (0.30 - 0.45) / math.sqrt(pooled * (1 - pooled) * (1 / 100 + 1 / 100))
    assert found.z == pytest.approx(z)
    assert found.z**2 == pytest.approx(chi2)
    assert found.z_p_value == pytest.approx(p)
    three = compare_variants([(30, 100), (45, 100), (20, 50)])
    assert three.dof == 2 and three.z is None
    assert compare_variants([(0, 10), (0, 10)]).p_value is None  # nobody converted
    assert compare_variants([(3, 10)]).p_value is None  # one variant
    assert compare_variants([(3, 10), (0, 0)]).p_value is None  # an empty variant
