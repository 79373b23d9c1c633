"""Activities: add, due time in the assignee's zone, overdue, done/cancel/reschedule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from crmcore_activities import activities as act
from sqlalchemy import func, select

from crmcore import CRM
from crmcore.access import AccessDeniedError, Principal
from crmcore.errors import NotFoundError, ValidationError
from crmcore.hooks import hookimpl
from crmcore.testing import FrozenClock


def _customer(crm: CRM, **extra: object) -> int:
    cid = crm.customers.create({"name": "Ann", "owner": "alice", **extra}).id
    assert cid is not None
    return cid


def test_due_in_assignee_zone_overdue_and_done_records_interaction(
    acrm: CRM, clock: FrozenClock
) -> None:
    cid = _customer(acrm)
    a = act.add_activity(
        acrm,
        {
            "customer_id": cid,
            "kind": "visit",
            "subject": "Quarterly visit",
            "assignee": "alice",
            "due": "2026-01-02T09:30",
            "ref_type": "sales.deal",
            "ref_id": 17,
        },
    )
    # 09:30 in Shanghai (UTC+8) is 01:30 UTC.
    assert a["due_at"] == datetime(2026, 1, 2, 1, 30, tzinfo=UTC)
    assert a["timezone"] == "Asia/Shanghai" and a["due_local"] == "2026-01-02T09:30:00+08:00"
    assert a["overdue"] is False and a["ref_id"] == "17"
    assert [x["id"] for x in act.list_activities(acrm, ref_type="sales.deal", ref_id="17")] == [
        a["id"]
    ]
    clock.advance(days=2)
    assert act.get_activity(acrm, a["id"])["overdue"] is True
    assert [x["id"] for x in act.list_activities(acrm, overdue=True)] == [a["id"]]
    done = act.complete_activity(acrm, a["id"], outcome="went well")
    assert done["status"] == "done" and done["overdue"] is False
    (interaction,) = acrm.interactions.list(customer_id=cid).items
    assert interaction.kind == "visit" and interaction.channel == "field_sales"
    assert interaction.direction == "outbound" and interaction.handled_by == "alice"
    assert done["interaction_id"] == interaction.id
    with pytest.raises(ValidationError, match=r"activity_id: .* is done, not planned"):
        act.complete_activity(acrm, a["id"])


def test_dst_gap_refused_and_default_zone(acrm: CRM) -> None:
    cid = _customer(acrm, owner=None)
    # 2026-03-29 02:30 does not exist in Europe/Berlin (the default zone of carol).
    with pytest.raises(ValidationError, match=r"^due: .*DST gap"):
        act.add_activity(
            acrm,
            {
                "customer_id": cid,
                "kind": "call",
                "subject": "x",
                "due": "2026-03-29T02:30",
                "assignee": "carol",
            },
        )
    a = act.add_activity(
        acrm,
        {
            "customer_id": cid,
            "kind": "call",
            "subject": "x",
            "due": "2026-03-29T03:30",
            "assignee": "carol",
        },
    )
    assert a["due_at"] == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"kind": "fax"}, "^kind: 'fax' is not one of"),
        ({"subject": " "}, "^subject: is required"),
        ({"due": None}, "^due: is required"),
        ({"due": "tomorrow"}, "^due: 'tomorrow' is not a timestamp"),
        ({"priority": 7}, "^priority: 7 is outside 1-3"),
        ({"ref_type": "deal", "ref_id": "1"}, "^ref_type: 'deal' is not <plugin>.<record>"),
        ({"ref_type": "sales.deal"}, "^ref_id: is required"),
        ({"colour": "red"}, "^colour: is not a field"),
        ({"contact_id": 99}, "^contact_id: customer .* is a person"),
    ],
)
def test_bad_input_names_the_field_and_stores_nothing(
    acrm: CRM, change: dict[str, object], message: str
) -> None:
    cid = _customer(acrm)
    data = {"customer_id": cid, "kind": "call", "subject": "s", "due": "2026-01-05T10:00"}
    with pytest.raises(ValidationError, match=message):
        act.add_activity(acrm, {**data, **change})
    assert act.list_activities(acrm) == []


def test_unknown_customer_and_activity(acrm: CRM) -> None:
    with pytest.raises(NotFoundError):
        act.add_activity(
            acrm, {"customer_id": 999, "kind": "call", "subject": "s", "due": "2026-01-05T10:00"}
        )
    with pytest.raises(NotFoundError, match="activity 5 does not exist"):
        act.get_activity(acrm, 5)


def test_cancel_and_reschedule_move_the_reminder(acrm: CRM) -> None:
    cid = _customer(acrm)
    a = act.add_activity(
        acrm,
        {
            "customer_id": cid,
            "kind": "call",
            "subject": "s",
            "due": "2026-01-05T10:00",
            "assignee": "alice",
            "reminder_minutes": 60,
        },
    )
    assert a["remind_at"] == a["due_at"] - timedelta(minutes=60)
    moved = act.reschedule_activity(acrm, a["id"], "2026-01-06T11:00")
    assert moved["due_local"] == "2026-01-06T11:00:00+08:00"
    assert moved["remind_at"] == moved["due_at"] - timedelta(minutes=60)
    gone = act.cancel_activity(acrm, a["id"], reason="customer away")
    assert gone["status"] == "cancelled" and gone["outcome"] == "customer away"
    with pytest.raises(ValidationError, match="is cancelled, not planned"):
        act.reschedule_activity(acrm, a["id"], "2026-01-07T11:00")


class Boom:
    """Fails after core recorded the interaction: the completion must roll back."""

    @hookimpl(trylast=True)
    def crm_interactions_recorded(self, ctx: object, interactions: object) -> None:
        """Raise."""
        raise RuntimeError("boom")


def test_completion_rolls_back_with_the_interaction(open_crm: object) -> None:
    crm = open_crm(extra=[Boom()])  # type: ignore[operator]
    cid = _customer(crm)
    a = act.add_activity(
        crm, {"customer_id": cid, "kind": "call", "subject": "s", "due": "2026-01-05T10:00"}
    )
    with pytest.raises(Exception, match="boom"):
        act.complete_activity(crm, a["id"])
    assert act.get_activity(crm, a["id"])["status"] == "planned"
    interactions = crm.metadata.tables["crm_interactions"]
    with crm.reading() as uow:
        assert uow.connection.execute(select(func.count()).select_from(interactions)).scalar() == 0


def test_agents_see_their_own_and_visible_customers(acrm: CRM) -> None:
    mine = _customer(acrm)
    theirs = _customer(acrm, owner="bob")
    alice = acrm.as_user(Principal("alice"))
    own = act.add_activity(
        alice, {"customer_id": mine, "kind": "call", "subject": "s", "due": "2026-01-05T10:00"}
    )
    assert own["assignee"] == "alice"
    foreign = act.add_activity(
        acrm, {"customer_id": theirs, "kind": "call", "subject": "s", "due": "2026-01-05T10:00"}
    )
    with pytest.raises(AccessDeniedError):
        act.get_activity(alice, foreign["id"])
    with pytest.raises(AccessDeniedError):
        act.complete_activity(alice, foreign["id"])
    assert [a["id"] for a in act.list_activities(alice)] == [own["id"]]
