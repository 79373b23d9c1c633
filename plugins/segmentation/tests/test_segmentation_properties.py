"""Property tests: the SQL analytics equal a plain-Python reference of the documented rules.

Random purchase histories (with ties on days and amounts, refunds in part, in
full and after the analysis date) on both backends; the reference below is a
direct transcription of docs/plugins/segmentation.md.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, localcontext

import crmcore_segmentation.plugin
import pytest
from crmcore_segmentation import retention, value
from crmcore_segmentation import rfm as rfm_sql
from crmcore_segmentation.settings import DEFAULT_SEGMENTS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st


@dataclass(frozen=True)
class Purchase:
    id: int
    customer_id: int
    at: datetime
    amount: Decimal


@dataclass(frozen=True)
class Refund:
    customer_id: int
    at: datetime
    amount: Decimal
    refund_of: int


def day(moment: datetime) -> date:
    return moment.astimezone(UTC).date()


def counted(
    purchases: Sequence[Purchase], refunds: Sequence[Refund], as_of: datetime
) -> list[tuple[Purchase, Decimal]]:
    refunded: dict[tuple[int, int], Decimal] = defaultdict(Decimal)
    for r in refunds:
        if r.at < as_of:
            refunded[(r.refund_of, r.customer_id)] += r.amount
    out = []
    for p in purchases:
        if p.at >= as_of:
            continue
        net = p.amount - refunded[(p.id, p.customer_id)]
        if net > 0:
            out.append((p, net))
    return out


def _scores(values: dict[int, object], better_is_larger: bool) -> dict[int, int]:
    n = len(values)
    result = {}
    for cid, v in values.items():
        if better_is_larger:
            below = sum(1 for w in values.values() if w < v)  # type: ignore[operator]
        else:
            below = sum(1 for w in values.values() if w > v)  # type: ignore[operator]
        result[cid] = 5 * below // n + 1
    return result


def rfm(
    purchases: Sequence[Purchase],
    refunds: Sequence[Refund],
    as_of: datetime,
    window_days: int,
) -> dict[int, dict[str, object]]:
    since = as_of - timedelta(days=window_days)
    per: dict[int, list[tuple[Purchase, Decimal]]] = defaultdict(list)
    for p, net in counted(purchases, refunds, as_of):
        if p.at >= since:
            per[p.customer_id].append((p, net))
    recency = {c: (day(as_of) - max(day(p.at) for p, _ in ps)).days for c, ps in per.items()}
    frequency = {c: len(ps) for c, ps in per.items()}
    monetary = {c: sum((n for _, n in ps), Decimal(0)) for c, ps in per.items()}
    r = _scores(recency, better_is_larger=False)
    f = _scores(frequency, better_is_larger=True)
    m = _scores(monetary, better_is_larger=True)
    out = {}
    for c in per:
        fm = (f[c] + m[c] + 1) // 2
        segment = next(s.name for s in DEFAULT_SEGMENTS if s.matches(r[c], fm))
        out[c] = {
            "recency_days": recency[c],
            "frequency": frequency[c],
            "monetary": monetary[c],
            "r": r[c],
            "f": f[c],
            "m": m[c],
            "fm": fm,
            "segment": segment,
        }
    return out


def pareto(values: dict[int, Decimal], percent: Decimal) -> list[int]:
    positive = sorted(((v, c) for c, v in values.items() if v > 0), key=lambda x: (-x[0], x[1]))
    total = sum((v for v, _ in positive), Decimal(0))
    members, running = [], Decimal(0)
    for v, c in positive:
        if running < total * percent / 100:
            members.append(c)
        running += v
    return members


def tiers(values: dict[int, Decimal], high: int = 20, medium: int = 30) -> dict[int, str]:
    n = len(values)
    out = {}
    for c, v in values.items():
        above = sum(1 for w in values.values() if w > v)
        if 100 * above < high * n:
            out[c] = "high"
        elif 100 * above < (high + medium) * n:
            out[c] = "medium"
        else:
            out[c] = "low"
    return out


def clv(
    purchases: Sequence[Purchase],
    refunds: Sequence[Refund],
    as_of: datetime,
    *,
    margin: Decimal = Decimal("0.3"),
    rate: Decimal = Decimal("0.1"),
    years: int = 3,
    min_tenure: int = 365,
) -> dict[int, tuple[Decimal, Decimal]]:
    """Customer -> (historic CLV, predictive CLV)."""
    per: dict[int, list[tuple[Purchase, Decimal]]] = defaultdict(list)
    for p, net in counted(purchases, refunds, as_of):
        per[p.customer_id].append((p, net))
    out = {}
    for c, ps in per.items():
        revenue = sum((n for _, n in ps), Decimal(0))
        tenure = (day(as_of) - min(day(p.at) for p, _ in ps)).days
        with localcontext() as ctx:
            ctx.prec = 28
            aov = revenue / len(ps)
            yearly_rate = Decimal(len(ps) * 365) / Decimal(max(tenure, min_tenure))
            annuity = sum((1 / (1 + rate) ** t for t in range(1, years + 1)), Decimal(0))
            value = aov * yearly_rate * margin * annuity
        out[c] = (revenue, value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))
    return out


def month(moment: datetime) -> int:
    utc = moment.astimezone(UTC)
    return utc.year * 12 + utc.month - 1


def cohorts(
    purchases: Sequence[Purchase], refunds: Sequence[Refund], as_of: datetime, months: int
) -> list[tuple[str, int, list[int | None]]]:
    last = month(as_of - timedelta(microseconds=1))
    first_cohort = last - months + 1
    active: dict[int, set[int]] = defaultdict(set)
    for p, _ in counted(purchases, refunds, as_of):
        active[p.customer_id].add(month(p.at))
    by_cohort: dict[int, list[set[int]]] = defaultdict(list)
    for ms in active.values():
        by_cohort[min(ms)].append(ms)
    out = []
    for cohort in sorted(by_cohort):
        if cohort < first_cohort:
            continue
        members = by_cohort[cohort]
        row: list[int | None] = []
        for k in range(months):
            row.append(None if cohort + k > last else sum(1 for ms in members if cohort + k in ms))
        out.append((f"{cohort // 12:04d}-{cohort % 12 + 1:02d}", len(members), row))
    return out


# --- the property tests ------------------------------------------------------------


T0 = datetime(2025, 1, 1, tzinfo=UTC)
AS_OF = datetime(2026, 2, 10, 15, 30, tzinfo=UTC)
WINDOW = 200

purchase = st.tuples(
    st.integers(0, 5),  # customer index
    st.integers(0, 405),  # day offset from T0 (some after AS_OF)
    st.sampled_from([0, 3600 * 23 + 1800, 54321]),  # second of the day (ties on days)
    st.sampled_from([500, 1000, 1999, 2500, 10000]),  # cents (ties on amounts)
)
refund = st.tuples(
    st.integers(0, 40),  # which purchase (modulo)
    st.integers(0, 60),  # days after the purchase
    st.sampled_from([100, 500, 1000, 10000]),  # cents, capped at the purchase's amount
)


@pytest.fixture
def seg_crm(crm_factory):
    return crm_factory(plugins=[crmcore_segmentation.plugin])


def _load(crm, raw_purchases, raw_refunds):
    ids = [c.id for c in crm.customers.create_many([{"name": f"P {i}"} for i in range(6)])]
    rows = [
        {
            "customer_id": ids[c],
            "kind": "purchase",
            "occurred_at": (T0 + timedelta(days=d, seconds=s)).isoformat(),
            "amount": str(Decimal(cents) / 100),
            "currency": "EUR",
        }
        for c, d, s, cents in raw_purchases
    ]
    recorded = crm.interactions.record_many(rows, keep=True) if rows else []
    purchases = [Purchase(p.id, p.customer_id, p.occurred_at, p.amount) for p in recorded]
    refunds = []
    if purchases:
        refund_rows = []
        for which, after, cents in raw_refunds:
            target = purchases[which % len(purchases)]
            amount = min(Decimal(cents) / 100, target.amount)
            at = target.at + timedelta(days=after, hours=1)
            refunds.append(Refund(target.customer_id, at, amount, target.id))
            refund_rows.append(
                {
                    "customer_id": target.customer_id,
                    "kind": "refund",
                    "occurred_at": at.isoformat(),
                    "amount": str(amount),
                    "currency": "EUR",
                    "payload": {"refund_of": target.id},
                }
            )
        if refund_rows:
            crm.interactions.record_many(refund_rows)
    return ids, purchases, refunds


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    raw_purchases=st.lists(purchase, max_size=30),
    raw_refunds=st.lists(refund, max_size=6),
    percent=st.sampled_from([Decimal(80), Decimal(50), Decimal("33.33"), Decimal(100)]),
)
def test_sql_equals_the_python_reference(seg_crm, raw_purchases, raw_refunds, percent):
    crm = seg_crm
    ids, purchases, refunds = _load(crm, raw_purchases, raw_refunds)
    try:
        expected = rfm(purchases, refunds, AS_OF, WINDOW)
        got = {
            s.customer_id: {
                "recency_days": s.recency_days,
                "frequency": s.frequency,
                "monetary": s.monetary,
                "r": s.r,
                "f": s.f,
                "m": s.m,
                "fm": s.fm,
                "segment": s.segment,
            }
            for s in rfm_sql.rfm_scores(crm, as_of=AS_OF, window_days=WINDOW)
        }
        assert got == expected

        monetary = {c: v["monetary"] for c, v in expected.items()}
        assert value.pareto(
            crm, "monetary", percent=percent, as_of=AS_OF, window_days=WINDOW
        ).customer_ids == pareto(monetary, percent)
        got_tiers = {
            m["customer_id"]: tier
            for tier in value.TIERS
            for m in value.tier_members(crm, tier, "monetary", as_of=AS_OF, window_days=WINDOW)
        }
        assert got_tiers == tiers(monetary)

        values = {
            v.customer_id: (v.historic_clv, v.predictive_clv)
            for v in value.customer_values(crm, as_of=AS_OF)
        }
        assert values == clv(purchases, refunds, AS_OF)

        matrix = [
            (c.month, c.size, list(c.active))
            for c in retention.cohort_matrix(crm, as_of=AS_OF, months=14)
        ]
        assert matrix == cohorts(purchases, refunds, AS_OF, 14)
    finally:
        for cid in ids:
            crm.customers.delete(cid)
