"""Campaigns sending through crmcore-messaging: launch, deliver, click, remind, stop, results."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from crmcore_campaigns import campaigns, launching, results
from crmcore_messaging import delivery, tokens
from sqlalchemy import select

from crmcore import CRM, ConflictError, NotFoundError, ValidationError
from crmcore.testing import FrozenClock


def _messages(crm: CRM, campaign_id: int) -> list[Any]:
    table = crm.metadata.tables["messaging_messages"]
    with crm.reading() as uow:
        return uow.connection.execute(
            select(table)
            .where(table.c.ref_type == "campaigns.campaign", table.c.ref_id == str(campaign_id))
            .order_by(table.c.id)
        ).all()


def _click(crm: CRM, message: Any) -> None:
    link = tokens.tracked_url(crm, message.token, "https://shop.example/back")
    assert tokens.resolve_click(crm, link.rsplit("/c/", 1)[1]) == "https://shop.example/back"


def test_launch_sends_step_one_to_the_treated_only(
    mcrm: CRM, reachable: Callable[[CRM, int], list[int]], tmp_path: Path
) -> None:
    ids = reachable(mcrm, 20)
    draft = campaigns.create_campaign(
        mcrm,
        {
            "name": "win back",
            "audience": {"customers": ids},
            "template": "winback",
            "cost_per_message": "0.5",
            "budget": "100",
        },
    )
    summary = launching.launch_campaign(mcrm, draft["id"])
    assert (summary["treated"], summary["control"]) == (18, 2)
    assert summary["messages"] == {"queued": 18}
    members = {m["customer_id"]: m for m in campaigns.recipients(mcrm, draft["id"])}
    sent_to = {m.customer_id for m in _messages(mcrm, draft["id"])}
    assert sent_to == {c for c, m in members.items() if m["grp"] == "treatment"}
    report = delivery.send_pending(mcrm)
    assert report.sent == 18
    assert len(list((tmp_path / "outbox").iterdir())) == 18
    found = results.campaign_results(mcrm, draft["id"])
    assert found["treated"]["delivered"] == 18 and found["control"]["delivered"] == 0
    assert found["messages_sent"] == 18 and found["cost"] == Decimal("9.0")
    with pytest.raises(ConflictError, match="not a draft"):
        launching.launch_campaign(mcrm, draft["id"])


def test_clicks_conversions_reminders_and_roi(
    mcrm: CRM,
    clock: FrozenClock,
    reachable: Callable[[CRM, int], list[int]],
    purchase: Callable[..., None],
) -> None:
    ids = reachable(mcrm, 10)
    draft = campaigns.create_campaign(
        mcrm,
        {
            "name": "steps",
            "audience": {"customers": ids},
            "variants": [{"name": "A", "template": "winback", "reminder_template": "reminder"}],
            "control_share": "0.2",
            "cost_per_message": "1",
            "reminder_days": 3,
        },
    )
    launch = clock()
    launching.launch_campaign(mcrm, draft["id"])
    delivery.send_pending(mcrm)
    first = _messages(mcrm, draft["id"])
    assert len(first) == 8
    _click(mcrm, first[0])  # responded by clicking
    clock.advance(days=1)
    purchase(mcrm, first[1].customer_id, clock(), "40")  # responded by buying
    assert launching.send_reminders(mcrm) == []  # not due yet
    clock.advance(days=2)
    [report] = launching.send_reminders(mcrm)
    assert report["reminded"] == 6 and report["reminder_status"] == "sent"
    assert launching.send_reminders(mcrm) == []  # idempotent
    delivery.send_pending(mcrm)
    step2 = [m for m in _messages(mcrm, draft["id"]) if m.dedupe_key.split(":")[2] == "2"]
    assert {m.customer_id for m in step2}.isdisjoint({first[0].customer_id, first[1].customer_id})
    assert {m.template for m in step2} == {"reminder"}
    found = results.campaign_results(mcrm, draft["id"])
    assert found["treated"]["clicked"] == 1 and found["treated"]["conversions"] == 1
    assert found["messages_sent"] == 14 and found["cost"] == Decimal(14)
    # incremental revenue 40 - 0 = 40 (control bought nothing); ROI = (40 - 14) / 14
    assert found["incremental_revenue"]["estimate"] == pytest.approx(40.0)
    assert found["roi"] == pytest.approx((40 - 14) / 14)
    assert launch == found["launched_at"]


def test_reminders_stop_at_the_budget(
    mcrm: CRM, clock: FrozenClock, reachable: Callable[[CRM, int], list[int]]
) -> None:
    ids = reachable(mcrm, 10)
    draft = campaigns.create_campaign(
        mcrm,
        {
            "name": "tight",
            "audience": {"customers": ids},
            "template": "winback",
            "control_share": 0,
            "cost_per_message": "1",
            "budget": "13",
            "reminder_days": 1,
        },
    )
    launching.launch_campaign(mcrm, draft["id"])
    delivery.send_pending(mcrm)
    clock.advance(days=1)
    [report] = launching.send_reminders(mcrm)
    assert (report["reminded"], report["skipped_for_budget"]) == (3, 7)
    assert report["reminder_status"] == "budget_exhausted"
    assert campaigns.get_campaign(mcrm, draft["id"])["reminder_status"] == "budget_exhausted"


def test_launch_over_budget_is_refused_with_the_audience_that_fits(
    mcrm: CRM, reachable: Callable[[CRM, int], list[int]]
) -> None:
    ids = reachable(mcrm, 20)
    draft = campaigns.create_campaign(
        mcrm,
        {
            "name": "costly",
            "audience": {"customers": ids},
            "template": "winback",
            "cost_per_message": "2",
            "budget": "10",
        },
    )
    with pytest.raises(ValidationError, match="at most 5 treated members fit"):
        launching.launch_campaign(mcrm, draft["id"])
    assert campaigns.get_campaign(mcrm, draft["id"])["status"] == "draft"
    assert campaigns.recipients(mcrm, draft["id"]) == []
    assert _messages(mcrm, draft["id"]) == []


def test_stop_cancels_queued_messages(
    mcrm: CRM, reachable: Callable[[CRM, int], list[int]]
) -> None:
    ids = reachable(mcrm, 10)
    draft = campaigns.create_campaign(
        mcrm,
        {
            "name": "stopped",
            "audience": {"customers": ids},
            "template": "winback",
            "reminder_days": 2,
        },
    )
    launching.launch_campaign(mcrm, draft["id"])
    assert launching.stop_campaign(mcrm, draft["id"])["cancelled_messages"] == 9
    states = {(m.state, m.reason) for m in _messages(mcrm, draft["id"])}
    assert states == {("refused", "campaign_stopped")}
    assert delivery.send_pending(mcrm).sent == 0
    stopped = campaigns.get_campaign(mcrm, draft["id"])
    assert stopped["status"] == "stopped" and stopped["reminder_status"] == "stopped"
    with pytest.raises(ConflictError):
        launching.stop_campaign(mcrm, draft["id"])


def test_refused_messages_cost_nothing(mcrm: CRM, make_customers: Callable[..., list[int]]) -> None:
    ids = make_customers(mcrm, 5)  # no email, no consent: messaging refuses
    draft = campaigns.create_campaign(
        mcrm,
        {
            "name": "nobody",
            "audience": {"customers": ids},
            "template": "winback",
            "control_share": 0,
            "cost_per_message": "1",
        },
    )
    summary = launching.launch_campaign(mcrm, draft["id"])
    assert summary["messages"] == {"refused": 5}
    found = results.campaign_results(mcrm, draft["id"])
    assert found["cost"] == 0 and found["roi"] is None and found["treated"]["delivered"] == 0


def test_launch_without_messaging_fails_clearly(
    ccrm: CRM, make_customers: Callable[..., list[int]]
) -> None:
    ids = make_customers(ccrm, 3)
    draft = campaigns.create_campaign(
        ccrm, {"name": "x", "audience": {"customers": ids}, "template": "t"}
    )
    with pytest.raises(ValidationError, match="install crmcore-messaging"):
        launching.launch_campaign(ccrm, draft["id"])
    assert campaigns.get_campaign(ccrm, draft["id"])["status"] == "draft"


def test_a_failing_launch_leaves_nothing(
    mcrm: CRM, reachable: Callable[[CRM, int], list[int]]
) -> None:
    ids = reachable(mcrm, 5)
    draft = campaigns.create_campaign(
        mcrm,
        {"name": "broken", "audience": {"customers": ids}, "template": "winback", "channel": "x"},
    )
    with pytest.raises(ValidationError, match="channel"):
        launching.launch_campaign(mcrm, draft["id"])  # messaging refuses the first message
    assert campaigns.get_campaign(mcrm, draft["id"])["status"] == "draft"
    assert campaigns.recipients(mcrm, draft["id"]) == []
    assert _messages(mcrm, draft["id"]) == []


def test_templates_must_exist(mcrm: CRM, reachable: Callable[[CRM, int], list[int]]) -> None:
    ids = reachable(mcrm, 1)
    with pytest.raises(NotFoundError, match="no_such"):
        campaigns.create_campaign(
            mcrm, {"name": "x", "audience": {"customers": ids}, "template": "no_such"}
        )


def test_send_at_delays_step_one_and_the_reminder_counts_from_it(
    mcrm: CRM, clock: FrozenClock, reachable: Callable[[CRM, int], list[int]]
) -> None:
    ids = reachable(mcrm, 4)
    later = clock() + timedelta(days=2)
    draft = campaigns.create_campaign(
        mcrm,
        {
            "name": "later",
            "audience": {"customers": ids},
            "template": "winback",
            "control_share": 0,
            "send_at": later.isoformat(),
            "reminder_days": 1,
        },
    )
    summary = launching.launch_campaign(mcrm, draft["id"])
    assert summary["first_send_at"] == later
    assert {m.not_before for m in _messages(mcrm, draft["id"])} == {later}
    assert delivery.send_pending(mcrm).sent == 0
    clock.advance(days=2)
    assert delivery.send_pending(mcrm).sent == 4
    assert launching.send_reminders(mcrm) == []  # due a day after send_at, not after launch
    clock.advance(days=1)
    assert launching.send_reminders(mcrm)[0]["reminded"] == 4


def test_events_and_audit(mcrm: CRM, reachable: Callable[[CRM, int], list[int]]) -> None:
    ids = reachable(mcrm, 3)
    draft = campaigns.create_campaign(
        mcrm, {"name": "ev", "audience": {"customers": ids}, "template": "winback"}
    )
    launching.launch_campaign(mcrm, draft["id"])
    launching.stop_campaign(mcrm, draft["id"])
    types = [e.type for e in mcrm.events.iter() if e.type.startswith("campaigns.")]
    assert types == ["campaigns.created", "campaigns.launched", "campaigns.stopped"]
    actions = {e.action for e in mcrm.audit.query(action="campaigns.*", limit=100).items}
    assert actions == {"campaigns.create", "campaigns.launch", "campaigns.stop"}


def test_templates_see_the_campaign_and_the_variant(
    mcrm: CRM, reachable: Callable[[CRM, int], list[int]]
) -> None:
    from crmcore_messaging.templates import save_template

    save_template(
        mcrm, "tagged", locale="en", text="{{ campaigns.name }} / {{ campaigns.variant }}"
    )
    ids = reachable(mcrm, 4)
    draft = campaigns.create_campaign(
        mcrm,
        {
            "name": "Spring",
            "audience": {"customers": ids},
            "variants": [{"name": "A", "template": "tagged"}, {"name": "B", "template": "tagged"}],
            "control_share": 0,
        },
    )
    launching.launch_campaign(mcrm, draft["id"])
    variant = {m["customer_id"]: m["variant"] for m in campaigns.recipients(mcrm, draft["id"])}
    bodies = {m.customer_id: m.body_text for m in _messages(mcrm, draft["id"])}
    assert bodies == {cid: f"Spring / {variant[cid]}" for cid in ids}
