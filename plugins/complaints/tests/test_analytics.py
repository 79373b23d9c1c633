"""Analytics in SQL: exact rates, nearest-rank percentiles, compliance, reopen rate, workload."""

from __future__ import annotations

import math
from datetime import timedelta

import sqlalchemy as sa
from crmcore_complaints import ComplaintService, analytics
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmcore import CRM, Period
from crmcore.testing import FrozenClock

H = 3600


def test_kpis_of_a_replayed_event_log(
    ccrm: CRM, service: ComplaintService, clock: FrozenClock
) -> None:
    """A small log with known answers: every KPI exact."""
    t0 = clock()
    a, b, c, d = (ccrm.customers.create({"name": n}).id for n in "ABCD")
    assert a and b and c and d
    for cid in (a, a, b, d, d):
        ccrm.interactions.record(
            {
                "customer_id": cid,
                "kind": "purchase",
                "occurred_at": t0,
                "amount": "10",
                "currency": "EUR",
            }
        )
    c1 = service.open({"customer_id": a, "category": "delivery/late", "assignee": "ann"}).id
    clock.advance(hours=1)
    c2 = service.open(
        {"customer_id": b, "category": "delivery/late", "severity": "high", "assignee": "ben"}
    ).id
    clock.advance(hours=1)
    service.move(c1, "acknowledged")  # c1 first response: 2 h
    c3 = service.open({"customer_id": c, "category": "billing/overcharge", "assignee": "ann"}).id
    clock.advance(hours=1)
    service.move(c3, "in_progress")  # c3 first response: 1 h
    clock.advance(hours=1)
    c4 = service.open(
        {"customer_id": a, "category": "delivery/late", "severity": "critical", "assignee": "ann"}
    ).id
    clock.advance(hours=2)
    service.resolve(c3, resolution="refund", root_cause="system")  # c3: 4 h
    service.resolve(c1, resolution="re-sent", root_cause="logistics")  # c1: 6 h
    clock.advance(hours=4)
    service.move(c2, "acknowledged")  # c2 first response 9 h > 8 h target
    clock.advance(hours=10)
    service.resolve(c2, resolution="re-sent", root_cause="logistics")  # c2: 19 h
    service.rate(c1, 5)
    service.rate(c2, 2)
    clock.advance(days=1)
    service.reopen(c3)
    clock.advance(hours=2)
    service.resolve(c3, resolution="refund again")  # c3: 6 h
    clock.set(t0 + timedelta(days=5))
    assert {(br["complaint_id"], br["target"]) for br in service.sweep()} == {
        (c2, "first_response"),
        (c4, "first_response"),
        (c4, "resolution"),
    }
    period = Period(t0 - timedelta(days=1), t0 + timedelta(days=10))
    assert analytics.metrics(ccrm, period) == {
        "complaints_opened": 4,
        "complaints_per_100_active_customers": 100.0,  # 4 active customers (A, B, C, D)
        "complaints_per_100_purchases": 80.0,  # 5 purchases
        "first_response_median_seconds": 2 * H,  # of [1 h, 2 h, 9 h], nearest rank 2
        "first_response_p90_seconds": 9 * H,  # rank ceil(2.7) = 3
        "resolution_median_seconds": 6 * H,  # of [6 h, 6 h, 19 h]
        "resolution_p90_seconds": 19 * H,
        "first_response_compliance_pct": 66.67,
        "resolution_compliance_pct": 100.0,
        "sla_compliance_pct": 66.67,
        "sla_breaches": 3,
        "reopen_rate_pct": 25.0,  # 1 reopening, 4 resolutions
        "recurrences": 1,  # c4 repeats c1
        "avg_rating": 3.5,
    }
    assert ccrm.metrics(period)["complaints"]["complaints_opened"] == 4
    empty = analytics.metrics(ccrm, Period(t0 - timedelta(days=9), t0 - timedelta(days=8)))
    assert empty["complaints_opened"] == 0 and empty["first_response_median_seconds"] is None
    assert empty["complaints_per_100_active_customers"] is None

    report = analytics.report(ccrm, period)
    assert report["top_categories"][0] == {"name": "delivery/late", "count": 3}
    assert report["top_root_causes"][0] == {"name": "logistics", "count": 2}
    assert report["backlog"]["open"] == 1 and report["backlog"]["resolved"] == 3
    workload = {w["assignee"]: w for w in report["workload"]}
    assert workload["ann"]["active"] == 1 and workload["ann"]["overdue"] == 1
    assert workload["ann"]["resolved"] == 2 and workload["ben"]["resolved"] == 1
    trend = analytics.trends(ccrm, period, buckets=11)
    assert trend["series"]["delivery/late"][1] == 3 and sum(trend["series"]["delivery/late"]) == 3


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(values=st.lists(st.integers(min_value=0, max_value=10**6), min_size=1, max_size=40))
def test_percentiles_are_nearest_rank(crm: CRM, values: list[int]) -> None:
    """The SQL percentile is the value at rank ceil(p x n / 100) of the sorted values."""
    rows = sa.union_all(*(sa.select(sa.literal(v).label("v")) for v in values)).subquery()
    with crm.reading() as uow:
        found = analytics.percentiles(uow.connection, rows.c.v, sa.true(), (1, 50, 90, 100))
    ordered = sorted(values)
    for p, value in found.items():
        assert value == ordered[math.ceil(p * len(values) / 100) - 1]
