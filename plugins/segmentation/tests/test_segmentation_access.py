"""Issue 16: segmentation obeys the principal; segment rules are no oracle."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import crmcore_segmentation.plugin
import pytest
from crmcore_segmentation import (
    basket,
    churn,
    intervals,
    lifetime,
    pareto,
    predictive,
    predictive_signals,
    predictive_summary,
    recommend,
    report,
    retention,
    retention_groups,
    rfm,
    rules,
    segments,
    settings,
    tiers,
    validation,
)

from crmcore import CRM, Period
from crmcore.access import AccessDeniedError, Principal
from crmcore.pytest_plugin import CRMFactory
from crmcore.scoping import service_functions, undeclared
from crmcore.testing import (
    EVERYONE_ONLY,
    Case,
    fresh_customer,
    in_unit_of_work,
    run_conformance,
)

MODULES = (
    basket,
    churn,
    intervals,
    lifetime,
    pareto,
    predictive,
    predictive_signals,
    predictive_summary,
    recommend,
    report,
    retention,
    retention_groups,
    rfm,
    rules,
    segments,
    settings,
    tiers,
    validation,
)
NOW = datetime(2026, 6, 1, tzinfo=UTC)
PERIOD = Period(datetime(2025, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))
RULE = {"field": "rfm.r", "op": "ge", "value": 1}


def _buy(crm: CRM, cid: int, days: int, amount: str) -> None:
    crm.interactions.record(
        {
            "customer_id": cid,
            "kind": "purchase",
            "occurred_at": (NOW - timedelta(days=days)).isoformat(),
            "amount": amount,
            "currency": "EUR",
        }
    )


def _prepare(crm: CRM, visible: int, hidden: int) -> dict[str, Any]:
    for cid, amount in ((visible, "50"), (hidden, "500")):
        for days in (5, 40, 200):
            _buy(crm, cid, days, amount)
        crm.lifecycle.move(cid, "active")
    segments.define_segment(crm, "everyone", RULE)
    churn.apply_churn(crm)
    # Enough varied history for a proper model fit (stored scores for the cases below).
    rng = random.Random(15)
    others = crm.customers.create_many([{"name": f"Other {i}"} for i in range(80)])
    rows = [
        {
            "customer_id": other.id,
            "kind": "purchase",
            "occurred_at": (NOW - timedelta(days=day)).isoformat(),
            "amount": str(rng.randint(5, 90)),
            "currency": "EUR",
        }
        for other in others
        for day in rng.sample(range(3, 400), rng.choice([1, 1, 2, 3, 5, 8]))
    ]
    crm.interactions.record_many(rows)
    predictive.fit_models(crm)
    return {"customer": crm.customers.get(visible)}


SQL = "builds SQL; reads nothing"
CASES = [
    Case("rfm.iter_rfm_scores", lambda c, s: rfm.iter_rfm_scores(c)),
    Case("rfm.rfm_scores", lambda c, s: rfm.rfm_scores(c)),
    Case("rfm.rfm_grid", lambda c, s: rfm.rfm_grid(c), EVERYONE_ONLY),
    Case("rfm.segment_summary", lambda c, s: rfm.segment_summary(c), EVERYONE_ONLY),
    Case("rfm.resolve_as_of", lambda c, s: rfm.resolve_as_of(c, None)),
    Case("tiers.tiers", lambda c, s: tiers.tiers(c), EVERYONE_ONLY),
    Case("tiers.iter_tier_members", lambda c, s: tiers.iter_tier_members(c, "high")),
    Case("tiers.tier_members", lambda c, s: tiers.tier_members(c, "low")),
    Case("tiers.resolve_basis", lambda c, s: tiers.resolve_basis(c, None)),
    Case("tiers.measure_of", lambda c, s: tiers.measure_of(c, "profit")),
    Case("pareto.pareto_summary", lambda c, s: pareto.pareto_summary(c), EVERYONE_ONLY),
    Case("pareto.iter_pareto_members", lambda c, s: pareto.iter_pareto_members(c)),
    Case("pareto.pareto", lambda c, s: pareto.pareto(c), EVERYONE_ONLY),
    Case("pareto.resolve_percent", lambda c, s: pareto.resolve_percent(c, None)),
    Case("lifetime.iter_customer_values", lambda c, s: lifetime.iter_customer_values(c)),
    Case("lifetime.customer_values", lambda c, s: lifetime.customer_values(c)),
    Case("lifetime.set_costs", lambda c, s: lifetime.set_costs(c, s.visible, acquisition="5")),
    Case("churn.iter_churn", lambda c, s: churn.iter_churn(c)),
    Case("churn.ranked_churn", lambda c, s: churn.ranked_churn(c)),
    Case("churn.assess_churn", lambda c, s: churn.assess_churn(c)),
    Case("churn.apply_churn", lambda c, s: churn.apply_churn(c), setup=fresh_customer),
    Case("churn.apply_churn_warnings", lambda c, s: churn.apply_churn_warnings(c)),
    Case("churn.recent_alerts", lambda c, s: churn.recent_alerts(c)),
    Case(
        "segments.define_segment", lambda c, s: segments.define_segment(c, "k", RULE), EVERYONE_ONLY
    ),
    Case("segments.refresh_segments", lambda c, s: segments.refresh_segments(c), EVERYONE_ONLY),
    Case(
        "segments.delete_segment",
        lambda c, s: segments.delete_segment(c, s.fresh),
        EVERYONE_ONLY,
        setup=lambda crm, s: segments.define_segment(crm, f"gone{id(s)}", RULE).key,
    ),
    Case(
        "segments.list_segments",
        lambda c, s: segments.list_segments(c),
        reveals=lambda r, cid, s: any(x.key == "everyone" and x.member_count > 1 for x in r),
    ),
    Case(
        "segments.get_segment",
        lambda c, s: segments.get_segment(c, "everyone"),
        reveals=lambda r, cid, s: r.member_count > 1,
    ),
    Case(
        "segments.iter_segment_members", lambda c, s: segments.iter_segment_members(c, "everyone")
    ),
    Case("segments.segment_members", lambda c, s: segments.segment_members(c, "everyone")),
    Case("segments.membership_history", lambda c, s: segments.membership_history(c)),
    Case(
        "segments.segments_of",
        in_unit_of_work(lambda u, s: segments.segments_of(u, s.visible)),
    ),
    Case("retention.cohort_matrix", lambda c, s: retention.cohort_matrix(c), EVERYONE_ONLY),
    Case("retention.retention", lambda c, s: retention.retention(c, PERIOD), EVERYONE_ONLY),
    Case("retention.monthly_retention", lambda c, s: retention.monthly_retention(c), EVERYONE_ONLY),
    Case(
        "retention.repeat_purchase_rate",
        lambda c, s: retention.repeat_purchase_rate(c),
        EVERYONE_ONLY,
    ),
    Case("report.metrics", lambda c, s: report.metrics(c, PERIOD), EVERYONE_ONLY),
    Case(
        "report.rfm_segments_count",
        lambda c, s: report.rfm_segments_count(c, PERIOD),
        EVERYONE_ONLY,
    ),
    Case("report.charts", lambda c, s: report.charts(c, PERIOD), EVERYONE_ONLY),
    Case("report.profile_section", lambda c, s: report.profile_section(c, s.data["customer"])),
    Case("report.export", in_unit_of_work(lambda u, s: report.export(u, s.visible)), EVERYONE_ONLY),
    Case(
        "report.forget",
        in_unit_of_work(lambda u, s: report.forget(u, [s.fresh])),
        EVERYONE_ONLY,
        setup=fresh_customer,
    ),
    Case("rules.fact_queries", lambda c, s: rules.fact_queries(c)),
    Case(
        "predictive_summary.customer_summaries",
        lambda c, s: predictive_summary.customer_summaries(c),
        reveals=lambda r, cid, s: cid in {int(i) for i in r.customer_id},
    ),
    Case("predictive.fit_models", lambda c, s: predictive.fit_models(c), EVERYONE_ONLY),
    Case("predictive.latest_fit", lambda c, s: predictive.latest_fit(c)),
    Case("predictive.predict", lambda c, s: predictive.predict(c)),
    Case(
        "predictive.iter_stored_predictions",
        lambda c, s: list(predictive.iter_stored_predictions(c)),
    ),
    Case(
        "validation.validate_models",
        lambda c, s: validation.validate_models(
            c, calibration_end=(NOW - timedelta(days=30)).date(), horizon_days=20
        ),
        EVERYONE_ONLY,
    ),
    Case("basket.association_rules", lambda c, s: basket.association_rules(c), EVERYONE_ONLY),
    Case(
        "recommend.recommendations",
        lambda c, s: recommend.recommendations(c, [s.visible]),
        reveals=lambda r, cid, s: cid in r,
    ),
    Case("recommend.recommend", lambda c, s: recommend.recommend(c, s.visible)),
    Case("recommend.likely_buyers", lambda c, s: recommend.likely_buyers(c, "sku-1")),
    Case("intervals.iter_interval_stats", lambda c, s: list(intervals.iter_interval_stats(c))),
    Case("intervals.interval_stats", lambda c, s: intervals.interval_stats(c)),
    Case(
        "retention_groups.retention_by_group",
        lambda c, s: retention_groups.retention_by_group(c, "field:stage"),
        EVERYONE_ONLY,
    ),
    Case(
        "retention_groups.interval_stats_by_group",
        lambda c, s: retention_groups.interval_stats_by_group(c, "field:stage"),
        EVERYONE_ONLY,
    ),
    Case(
        "predictive_signals.alive_signals",
        lambda c, s: predictive_signals.alive_signals(c, [s.visible, s.hidden]),
    ),
    Case("settings.settings_of", lambda c, s: settings.settings_of(c)),
    Case("settings.remember_settings", lambda c, s: settings.remember_settings(c)),
]
EXEMPT = {
    "rfm.rfm_query": SQL,
    "tiers.value_query": SQL,
    "tiers.tier_query": SQL,
    "pareto.pareto_query": SQL,
    "lifetime.lifetime_query": SQL,
    "churn.churn_query": SQL,
    "rules.compile_rule": SQL,
    "predictive_summary.summary_query": SQL,
    "intervals.gaps_query": SQL,
    "intervals.interval_query": SQL,
}


@pytest.fixture
def seg(crm_factory: CRMFactory, clock: Any) -> CRM:
    clock.set(NOW)
    return crm_factory(plugins=[crmcore_segmentation.plugin])


def test_every_segmentation_function_is_declared() -> None:
    assert undeclared(*MODULES) == []


def test_segmentation_conformance_matrix(seg: CRM) -> None:
    matrix = run_conformance(
        seg,
        "segmentation",
        CASES,
        prepare=_prepare,
        functions=service_functions(*MODULES),
        exempt=EXEMPT,
    )
    print(matrix.format())
    matrix.assert_clean()


def test_segment_rules_are_no_oracle(seg: CRM) -> None:
    mine, theirs = seg.customers.create_many(
        [
            {"name": "Mine", "owner": "alice", "email": "m@x.org"},
            {"name": "Theirs", "owner": "bob", "email": "secret@x.org"},
        ]
    )
    assert mine.id is not None and theirs.id is not None
    alice = seg.as_user(Principal("alice"))
    probe = {
        "all": [
            {"field": "customer.id", "op": "eq", "value": theirs.id},
            {"field": "customer.email", "op": "lt", "value": "t"},
        ]
    }
    with pytest.raises(AccessDeniedError):
        segments.define_segment(alice, "probe", probe)
    segments.define_segment(seg, "probe", probe)  # a manager's (here the system's) segment
    assert segments.get_segment(seg, "probe").member_count == 1
    assert segments.get_segment(alice, "probe").member_count == 0
    assert segments.segment_members(alice, "probe") == []
    assert segments.membership_history(alice, "probe") == []
    with pytest.raises(AccessDeniedError):
        segments.refresh_segments(alice, ["probe"])
    assert [s.member_count for s in segments.list_segments(alice)] == [0]


def test_agent_analytics_cover_only_their_customers(seg: CRM) -> None:
    mine, theirs = seg.customers.create_many(
        [{"name": "Mine", "owner": "alice"}, {"name": "Theirs", "owner": "bob"}]
    )
    assert mine.id is not None and theirs.id is not None
    for cid in (mine.id, theirs.id):
        _buy(seg, cid, 3, "20")
    alice = seg.as_user(Principal("alice"))
    assert [s.customer_id for s in rfm.rfm_scores(alice)] == [mine.id]
    assert [v.customer_id for v in lifetime.customer_values(alice)] == [mine.id]
    assert {m["customer_id"] for m in pareto.iter_pareto_members(alice)} <= {mine.id}
    with pytest.raises(AccessDeniedError):
        rfm.rfm_grid(alice)
    with pytest.raises(AccessDeniedError):
        pareto.pareto(alice)
    lifetime.set_costs(alice, mine.id, acquisition="3")
    with pytest.raises(AccessDeniedError):
        lifetime.set_costs(alice, theirs.id, acquisition="3")
    assert seg.audit.query(action="segmentation.costs").items[0].actor == "alice"
