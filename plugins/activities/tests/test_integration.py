"""Follow-ups from other plugins, reminders, workbench, measures, 360°, churn, privacy, merge."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import crmcore_complaints.plugin
import crmcore_sales.plugin
import crmcore_surveys.plugin
import pytest
from crmcore_activities import activities as act
from crmcore_activities import followups, measures, planner, rules, workbench
from crmcore_sales import contracts, deals, receivables, stages

from crmcore import CRM, Period
from crmcore.errors import ValidationError
from crmcore.testing import FrozenClock

from .conftest import ReminderRecorder


def _cid(crm: CRM, **extra: Any) -> int:
    cid = crm.customers.create({"name": "Ann", "owner": "alice", **extra}).id
    assert cid is not None
    return cid


def test_followups_from_complaints_surveys_and_sales_once_each(
    open_crm: Any, clock: FrozenClock
) -> None:
    crm = open_crm(extra=[crmcore_complaints.plugin, crmcore_surveys.plugin, crmcore_sales.plugin])
    cid = _cid(crm)
    breach = {
        "complaint_id": 7,
        "customer_id": cid,
        "severity": "high",
        "target": "resolution",
        "due_at": clock(),
        "detected_at": clock(),
    }
    response = {"response_id": 3, "customer_id": cid, "metric": "nps", "score": 2.0}
    for _ in range(2):
        with crm.unit_of_work() as uow:
            crm.call_hook("complaints_sla_breached", ctx=uow, breaches=[breach])
            crm.call_hook("surveys_low_score", ctx=uow, responses=[response])
    deal = deals.add_deal(
        crm, {"customer_id": cid, "title": "d", "expected_close": "2026-01-10", "amount": "100"}
    ).id
    stages.win_deal(crm, deal, reason="price")
    contracts.create_contract(
        crm, deal, {"start_date": "2025-02-01", "end_date": "2026-02-01", "instalment_count": 1}
    )
    receivables.sweep(crm)
    receivables.sweep(crm)
    made = act.list_activities(crm)
    by_ref = sorted((a["ref_type"], a["assignee"], a["priority"]) for a in made)
    assert ("complaints.complaint", "olga", 1) in by_ref  # escalated to alice's manager
    assert ("surveys.response", "alice", 1) in by_ref
    assert sum(1 for a in made if a["ref_type"] == "sales.contract") >= 1
    keys = [a["followup_key"] for a in made]
    assert len(keys) == len(set(keys))
    assert sum(1 for k in keys if k.startswith(("sla_breach", "detractor"))) == 2


def test_followups_can_be_switched_off(open_crm: Any) -> None:
    crm = open_crm({"followups": {"detractor": False}})
    cid = _cid(crm)
    with crm.unit_of_work() as uow:
        assert (
            followups.detractors(
                uow, [{"response_id": 1, "customer_id": cid, "metric": "nps", "score": 1.0}]
            )
            == []
        )
    assert act.list_activities(crm) == []


def test_reminders_handed_over_once_and_workbench_order(
    acrm: CRM, clock: FrozenClock, recorder: ReminderRecorder
) -> None:
    cid = _cid(acrm)
    base = {"customer_id": cid, "kind": "call", "subject": "s", "assignee": "alice"}
    # 2026-01-01 12:00 UTC is 20:00 in Shanghai: "today" ends at 16:00 UTC.
    late = act.add_activity(acrm, {**base, "due": "2026-01-01T21:00", "priority": 3})
    first = act.add_activity(acrm, {**base, "due": "2026-01-01T21:00", "priority": 1})
    tomorrow = act.add_activity(acrm, {**base, "due": "2026-01-02T09:00"})
    assert [a["id"] for a in workbench.workbench(acrm, "today", user="alice")] == [
        first["id"],
        late["id"],
    ]
    assert tomorrow["id"] in [a["id"] for a in workbench.workbench(acrm, "week", user="alice")]
    clock.set(datetime(2026, 1, 1, 12, 40, tzinfo=UTC))  # 20:40 local: 21:00 reminders due
    assert {r["id"] for r in workbench.reminders(acrm)} == {first["id"], late["id"]}
    sent = workbench.send_reminders(acrm)
    assert {r["activity_id"] for r in sent} == {first["id"], late["id"]}
    assert workbench.send_reminders(acrm) == [] and recorder.calls == 1
    assert workbench.reminders(acrm) == []
    with pytest.raises(ValidationError, match=r"^view: 'month' is not one of"):
        workbench.workbench(acrm, "month")


def test_measures_and_coverage_match_an_independent_count(acrm: CRM, clock: FrozenClock) -> None:
    clock.set(datetime(2026, 1, 1, 8, tzinfo=UTC))
    ids = [_cid(acrm, tags=["key_account"]) for _ in range(4)] + [_cid(acrm)]
    rules.add_rule(
        acrm,
        {
            "name": "key",
            "type": "cadence",
            "kind": "visit",
            "subject": "Visit",
            "params": {"rrule": "FREQ=DAILY;INTERVAL=30", "window_days": 30},
            "targets": {"tags": ["key_account"]},
        },
        start_date="2026-01-01",
    )
    planner.plan(acrm)
    tasks = act.list_activities(acrm)
    assert len(tasks) == 4
    clock.set(datetime(2026, 1, 3, 8, tzinfo=UTC))
    act.complete_activity(acrm, tasks[0]["id"], at=datetime(2026, 1, 2, 9, tzinfo=UTC))
    act.complete_activity(acrm, tasks[1]["id"], at=datetime(2026, 1, 1, 0, 30, tzinfo=UTC))
    acrm.interactions.record({"customer_id": ids[4], "kind": "visit", "occurred_at": clock()})
    cover = measures.coverage(acrm)
    assert cover["rules"]["key"] == {"targeted": 4, "contacted": 2, "coverage": 0.5}
    period = Period(datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC))
    kpis = measures.metrics(acrm, period)
    # due 09:00 Shanghai = 01:00 UTC on 1 January; done 32 h late and 0.5 h early
    assert kpis["activities_planned"] == 4 and kpis["activities_done"] == 2
    assert kpis["median_lateness_hours"] == pytest.approx((32 - 0.5) / 2)
    assert kpis["overdue_rate"] == 0.75  # 2 still planned, 1 done late, 1 on time
    (row,) = measures.report(acrm, period)
    assert row["person"] == "alice" and row["planned"] == 4
    assert measures.report(acrm, period, by="team")[0]["team"] == "olga"
    section = acrm.customers.profile(ids[2])["plugins"]["activities"]
    assert section["overdue"] == 1 and section["next"][0]["subject"] == "Visit"


def test_churn_signal_for_key_customers_without_contact(acrm: CRM, clock: FrozenClock) -> None:
    key, plain, seen = (_cid(acrm, tags=t) for t in (["key_account"], [], ["key_account"]))
    clock.set(datetime(2026, 3, 1, tzinfo=UTC))
    acrm.interactions.record({"customer_id": seen, "kind": "call", "occurred_at": clock()})
    signals = measures.churn_signals(acrm, [key, plain, seen])
    assert [s.customer_id for s in signals] == [key]


def test_export_erase_and_merge(acrm: CRM, clock: FrozenClock) -> None:
    kept, merged = _cid(acrm), _cid(acrm, name="Ann B", email="annb@example.com")
    for cid in (kept, merged):
        act.add_activity(
            acrm, {"customer_id": cid, "kind": "call", "subject": "s", "due": "2026-01-05T10:00"}
        )
    exported = acrm.customers.export(merged)["plugins"]["activities"]
    assert len(exported["activities"]) == 1
    acrm.customers.merge(kept, merged)
    assert {a["customer_id"] for a in act.list_activities(acrm)} == {kept}
    assert len(act.list_activities(acrm, customer_id=kept)) == 2
    acrm.customers.erase(kept)
    assert act.list_activities(acrm) == []


def test_segmentation_churn_alerts_become_retention_calls(
    crm_factory: Any, clock: FrozenClock
) -> None:
    import crmcore_activities.plugin
    import crmcore_segmentation.plugin
    from crmcore_segmentation import churn

    clock.set(datetime(2026, 6, 1, tzinfo=UTC))
    crm = crm_factory(
        plugins=[crmcore_activities.plugin, crmcore_segmentation.plugin],
        plugin_sections={
            "activities": {},
            "segmentation": {"churn": {"threshold": 0.2, "inactivity_days": 30}},
        },
    )
    ids = [
        c.id
        for c in crm.customers.create_many([{"name": f"C{i}", "owner": "alice"} for i in range(30)])
    ]
    crm.interactions.record_many(
        [
            {
                "customer_id": cid,
                "kind": "purchase",
                "amount": "10",
                "currency": "EUR",
                "occurred_at": datetime(2025, 5 + k % 6, 1, tzinfo=UTC).isoformat(),
                "items": [{"sku": "s1"}],
            }
            for k, cid in enumerate(ids)
        ]
    )
    moves = churn.apply_churn(crm)
    assert moves.moved > 0
    calls = [a for a in act.list_activities(crm, limit=1000) if a["source"] == "followup"]
    assert len(calls) == moves.moved
    assert {a["assignee"] for a in calls} == {"alice"} and {a["kind"] for a in calls} == {"call"}


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda c: act.list_activities(c, status="open"), r"^status: 'open' is not one of"),
        (lambda c: act.list_activities(c, limit=0), r"^limit: 0 is outside"),
        (lambda c: workbench.workbench(c, "today", user=" "), r"^user: is required"),
        (lambda c: measures.coverage(c, at=datetime(2026, 1, 1)), r"^at: expected a timezone"),
        (
            lambda c: measures.report(
                c,
                Period(datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC)),
                by="dept",
            ),
            r"^by: 'dept' is not one of",
        ),
        (lambda c: planner.plan(c, dry_run="yes"), r"^dry_run: expected true or false"),
        (lambda c: act.complete_activity(c, 0), r"^activity_id: 0 is outside"),
    ],
)
def test_bad_arguments_name_the_field(acrm: CRM, call: Any, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        call(acrm)
