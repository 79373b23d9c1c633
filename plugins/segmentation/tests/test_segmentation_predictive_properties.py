"""Property tests of issue 15: SQL summaries, intervals and basket rules equal plain Python;
fits recover the parameters of data simulated from them (both backends)."""

from __future__ import annotations

import itertools
import statistics
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import crmcore_segmentation.plugin
import numpy as np
import pytest
from crmcore_segmentation import basket, bgnbd, gamma_gamma, intervals, predictive
from crmcore_segmentation.predictive_summary import customer_summaries
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmcore import CRM
from crmcore.pytest_plugin import CRMFactory

T0 = datetime(2025, 1, 1, tzinfo=UTC)
END = date(2025, 3, 31)
AS_OF = datetime(2025, 6, 1, tzinfo=UTC)
SLOW = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture
def seg(crm_factory: CRMFactory, clock: Any) -> CRM:
    clock.set(AS_OF)
    return crm_factory(plugins=[crmcore_segmentation.plugin])


purchase = st.tuples(
    st.integers(0, 4),  # customer
    st.integers(0, 120),  # day offset from T0 (some after END)
    st.integers(0, 86399),  # second of the day (several on one day)
    st.sampled_from([0, 0, 250, 1000, 1999]),  # cents: zero-value purchases too
    st.booleans(),  # refunded in full
)


def reference_summary(rows: list[tuple[int, datetime, Decimal, bool]]) -> dict[int, tuple]:
    """Per customer: (x, t_x days, T days, repeat spend), by the documented rules."""
    by_day: dict[int, dict[date, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for cid, at, amount, refunded in rows:
        if at.date() > END or (refunded and amount > 0):
            continue
        by_day[cid][at.date()] += amount
    out = {}
    for cid, days in by_day.items():
        ordered = sorted(days)
        repeat = sum((days[d] for d in ordered[1:]), Decimal(0))
        out[cid] = (
            len(ordered) - 1,
            (ordered[-1] - ordered[0]).days,
            (END - ordered[0]).days,
            float(repeat),
        )
    return out


def load(crm: CRM, raw: list[tuple[int, int, int, int, bool]]) -> tuple[list[int], list[Any]]:
    ids = [int(c.id) for c in crm.customers.create_many([{"name": f"P{i}"} for i in range(5)])]
    rows = [
        {
            "customer_id": ids[c],
            "kind": "purchase",
            "occurred_at": (T0 + timedelta(days=d, seconds=s)).isoformat(),
            "amount": str(Decimal(cents) / 100),
            "currency": "EUR",
        }
        for c, d, s, cents, _ in raw
    ]
    recorded = crm.interactions.record_many(rows, keep=True) if rows else []
    refunds = [
        {
            "customer_id": p.customer_id,
            "kind": "refund",
            "occurred_at": (p.occurred_at + timedelta(minutes=1)).isoformat(),
            "amount": str(p.amount),
            "currency": "EUR",
            "payload": {"refund_of": p.id},
        }
        for p, (*_, refunded) in zip(recorded, raw, strict=True)
        if refunded and p.amount > 0
    ]
    if refunds:
        crm.interactions.record_many(refunds)
    return ids, recorded


@SLOW
@given(raw=st.lists(purchase, max_size=25))
def test_sql_summary_and_intervals_equal_python(seg: CRM, raw: list[Any]) -> None:
    ids, recorded = load(seg, raw)
    try:
        rows = [
            (p.customer_id, p.occurred_at, p.amount, r[4])
            for p, r in zip(recorded, raw, strict=True)
        ]
        expected = reference_summary(rows)
        summary = customer_summaries(seg, calibration_end=END, time_unit_days=1)
        got = {
            int(summary.customer_id[i]): (
                int(summary.frequency[i]),
                int(summary.recency[i]),
                int(summary.age[i]),
                round(float(summary.mean_value[i] * summary.frequency[i]), 6),
            )
            for i in range(len(summary))
        }
        assert got == {k: (*v[:3], round(v[3], 6)) for k, v in expected.items()}

        # Intervals use counted purchases (net > 0) before AS_OF, per purchase day.
        days: dict[int, set[date]] = defaultdict(set)
        for cid, at, amount, refunded in rows:
            if amount > 0 and not refunded:
                days[cid].add(at.date())
        wanted = {}
        for cid, found in days.items():
            ordered = sorted(found)
            gaps = [(b - a).days for a, b in itertools.pairwise(ordered)]
            if gaps:
                wanted[cid] = (len(ordered), statistics.median(gaps), statistics.fmean(gaps))
        stats = {
            s.customer_id: (s.purchase_days, s.median_interval_days, s.mean_interval_days)
            for s in intervals.interval_stats(seg, as_of=AS_OF)
        }
        assert stats.keys() == wanted.keys()
        for cid, (n, median, mean) in wanted.items():
            assert stats[cid][0] == n
            assert stats[cid][1] == pytest.approx(median)
            assert stats[cid][2] == pytest.approx(mean)
    finally:
        for cid in ids:
            seg.customers.delete(cid)


SKUS = ["a", "b", "c", "d", "e"]
basket_strategy = st.lists(
    st.tuples(st.integers(0, 3), st.sets(st.sampled_from(SKUS), min_size=1, max_size=4)),
    min_size=1,
    max_size=30,
)


def brute_force_rules(
    baskets: list[frozenset[str]], min_support: float, min_confidence: float, min_lift: float
) -> dict[tuple[tuple[str, ...], tuple[str, ...]], tuple[int, float, float]]:
    """Every rule of itemsets up to 3 items, by enumeration (no apriori)."""
    n = len(baskets)

    def count(items: tuple[str, ...]) -> int:
        return sum(1 for b in baskets if set(items) <= b)

    rules = {}
    for size in (2, 3):
        for itemset in itertools.combinations(SKUS, size):
            together = count(itemset)
            if together == 0 or together / n < min_support - 1e-12:
                continue
            for k in range(1, size):
                for antecedent in itertools.combinations(itemset, k):
                    consequent = tuple(i for i in itemset if i not in antecedent)
                    confidence = together / count(antecedent)
                    lift = confidence / (count(consequent) / n)
                    if confidence >= min_confidence - 1e-12 and lift >= min_lift - 1e-12:
                        rules[(antecedent, consequent)] = (together, confidence, lift)
    return rules


@SLOW
@given(
    raw=basket_strategy,
    min_support=st.sampled_from([0.05, 0.1, 0.2]),
    min_confidence=st.sampled_from([0.0, 0.3, 0.6]),
    min_lift=st.sampled_from([0.0, 1.0, 1.2]),
)
def test_rules_equal_an_independent_computation(
    seg: CRM, raw: list[Any], min_support: float, min_confidence: float, min_lift: float
) -> None:
    ids = [int(c.id) for c in seg.customers.create_many([{"name": f"B{i}"} for i in range(4)])]
    try:
        rows = [
            {
                "customer_id": ids[c],
                "kind": "purchase",
                "occurred_at": (T0 + timedelta(hours=i)).isoformat(),
                "amount": "0" if i % 3 == 0 else "10",  # zero-value purchases are baskets
                "currency": "EUR",
                "items": [{"sku": s, "quantity": "1"} for s in sorted(items)]
                + [{"sku": sorted(items)[0], "quantity": "2"}],  # a repeated line counts once
            }
            for i, (c, items) in enumerate(raw)
        ]
        seg.interactions.record_many(rows)
        analysis = basket.association_rules(
            seg,
            min_support=min_support,
            min_confidence=min_confidence,
            min_lift=min_lift,
            as_of=AS_OF,
        )
        baskets = [frozenset(items) for _, items in raw]
        assert analysis.baskets == len(baskets)
        expected = brute_force_rules(baskets, min_support, min_confidence, min_lift)
        got = {
            (r.antecedent, r.consequent): (r.count, r.confidence, r.lift) for r in analysis.rules
        }
        assert got.keys() == expected.keys()
        for key, (n, confidence, lift) in expected.items():
            assert got[key][0] == n
            assert got[key][1] == pytest.approx(confidence)
            assert got[key][2] == pytest.approx(lift)
    finally:
        for cid in ids:
            seg.customers.delete(cid)


def test_fits_recover_simulated_parameters() -> None:
    """20,000 simulated customers: every estimate within 4 standard errors of the truth."""
    truth = (0.5, 6.0, 0.7, 3.0)
    ages = np.random.default_rng(7).uniform(20, 60, 20_000)
    x, t_x, T = bgnbd.simulate(truth, ages, seed=11)
    fit = bgnbd.fit_bgnbd(x, t_x, T)
    for value, se, true in zip(fit.values, fit.standard_errors, truth, strict=True):
        assert se is not None and abs(value - true) < 4 * se, (fit, truth)
    spend_truth = (4.0, 5.0, 20.0)
    m = gamma_gamma.simulate(spend_truth, x, seed=3)
    spend = gamma_gamma.fit_gamma_gamma(x, m)
    for value, se, true in zip(spend.values, spend.standard_errors, spend_truth, strict=True):
        assert se is not None and abs(value - true) < 4 * se, (spend, spend_truth)


def test_fit_in_the_database_recovers_simulated_parameters(seg: CRM) -> None:
    """Purchase days simulated from known BG/NBD parameters, stored, fitted through SQL."""
    truth = (2.0, 40.0, 0.5, 4.0)  # time in days
    rng = np.random.default_rng(5)
    n = 1500
    created = seg.customers.create_many([{"name": f"S{i}"} for i in range(n)])
    end_day = 300
    rows = []
    for customer in created:
        first = int(rng.integers(0, 200))
        rate = rng.gamma(truth[0], 1 / truth[1])
        drop = rng.beta(truth[2], truth[3])
        days = [first]
        clock = float(first)
        while True:
            clock += rng.exponential(1 / rate)
            if clock > end_day:
                break
            days.append(int(clock))
            if rng.random() < drop:
                break
        rows += [
            {
                "customer_id": customer.id,
                "kind": "purchase",
                "occurred_at": (T0 + timedelta(days=d, hours=10)).isoformat(),
                "amount": "5",
                "currency": "EUR",
            }
            for d in days
        ]
    seg.interactions.record_many(rows)
    fits = predictive.fit_models(
        seg, calibration_end=(T0 + timedelta(days=end_day)).date(), time_unit_days=1
    )
    fit = fits.purchases.fit
    # Days are whole (several purchases on one day merge): allow 4 standard errors.
    for value, se, true in zip(fit.values, fit.standard_errors, truth, strict=True):
        assert se is not None and abs(value - true) < 4 * se, (fit, truth)


def test_analytic_gradients_equal_finite_differences() -> None:
    from scipy.optimize import approx_fprime

    x, t_x, T = bgnbd.simulate((0.5, 6.0, 0.7, 3.0), np.full(400, 40.0), seed=4)
    at = np.array([0.4, 5.0, 0.9, 2.5])
    numeric = approx_fprime(at, lambda p: float(np.sum(bgnbd.log_likelihood(p, x, t_x, T))), 1e-7)
    assert bgnbd.gradient(at, x, t_x, T, np.ones_like(x)) == pytest.approx(numeric, rel=1e-4)
    m = gamma_gamma.simulate((4.0, 5.0, 20.0), x, seed=5)
    keep = (x > 0) & (m > 0)
    at_gg = np.array([3.0, 4.0, 15.0])
    numeric_gg = approx_fprime(
        at_gg, lambda p: float(np.sum(gamma_gamma.log_likelihood(p, x[keep], m[keep]))), 1e-7
    )
    got = gamma_gamma.gradient(at_gg, x[keep], m[keep], np.ones(int(keep.sum())))
    assert got == pytest.approx(numeric_gg, rel=1e-4)
