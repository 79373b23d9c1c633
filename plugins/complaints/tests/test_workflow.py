"""Intake and workflow: complaints, history, illegal moves that change nothing, assignment."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from crmcore_complaints import TRANSITIONS, ComplaintService, State

from crmcore import CRM, NotFoundError, TransitionError, ValidationError
from crmcore.testing import FrozenClock


def counts(crm: CRM) -> dict[str, int]:
    """Rows in the plugin's tables and complaint interactions."""
    result = {}
    with crm.engine.connect() as conn:
        for table in ("complaints_cases", "complaints_history", "complaints_compensations"):
            result[table] = conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()
        result["interactions"] = conn.execute(
            sa.text("SELECT count(*) FROM crm_interactions WHERE kind = 'complaint'")
        ).scalar_one()
    return result


def test_open_records_complaint_interaction_and_history(
    ccrm: CRM, service: ComplaintService, customer: int, clock: FrozenClock
) -> None:
    """Opening stores the case, a complaint interaction, an 'open' entry and the SLA due times."""
    complaint = service.open(
        {
            "customer_id": customer,
            "category": "delivery/late",
            "severity": "high",
            "channel": "web",
            "reference": "ORD-1",
            "description": "Parcel is a week late",
        },
        actor="agent-ann",
    )
    assert complaint.state is State.OPEN
    assert complaint.opened_at == clock()
    assert complaint.first_response_due_at == clock() + timedelta(hours=8)
    assert complaint.resolution_due_at == clock() + timedelta(hours=48)
    timeline = ccrm.interactions.timeline(customer).items
    assert [i.kind.value for i in timeline] == ["complaint"]
    assert timeline[0].payload["complaint_id"] == complaint.id
    assert timeline[0].text == "Parcel is a week late"
    assert complaint.interaction_id == timeline[0].id
    history = service.history(complaint.id)
    assert [(h.action, h.to_value, h.actor, h.at) for h in history] == [
        ("open", "open", "agent-ann", clock())
    ]


BAD_INTAKE: list[tuple[dict[str, Any], type[Exception], str]] = [
    ({"category": "nope"}, ValidationError, "category: 'nope' is not in the category tree"),
    ({"severity": "urgent"}, ValidationError, "severity: 'urgent' is not one of"),
    ({"channel": "pigeon"}, ValidationError, "channel: 'pigeon' is not one of"),
    ({"customer_id": 999}, NotFoundError, "customer_id: customer 999 does not exist"),
    ({"colour": "red"}, ValidationError, "colour: unknown field"),
    ({"opened_at": "2020-01-01"}, ValidationError, "opened_at: must be a timezone-aware"),
]


def test_bad_intake_stores_nothing(ccrm: CRM, service: ComplaintService, customer: int) -> None:
    """Each bad field is named in the error, and neither the case nor the interaction is stored."""
    for data, error, message in BAD_INTAKE:
        with pytest.raises(error) as caught:
            service.open({"customer_id": customer, "category": "delivery/late", **data})
        assert str(caught.value).startswith(message), data
    assert counts(ccrm) == {
        "complaints_cases": 0,
        "complaints_history": 0,
        "complaints_compensations": 0,
        "interactions": 0,
    }


def test_bulk_import_is_all_or_nothing(ccrm: CRM, service: ComplaintService, customer: int) -> None:
    """A bad item in a batch names its position and nothing of the batch is stored."""
    good = {"customer_id": customer, "category": "billing/overcharge"}
    with pytest.raises(ValidationError, match=r"^complaints\[2\]: category"):
        service.open_many([good, good, {**good, "category": "x"}])
    assert counts(ccrm)["complaints_cases"] == 0
    opened = service.open_many([good] * 3)
    assert len(opened) == 3 and counts(ccrm)["interactions"] == 3


def test_the_happy_path_and_history(
    service: ComplaintService, customer: int, clock: FrozenClock
) -> None:
    """A full life: every change recorded with actor and time, in order."""
    cid = service.open({"customer_id": customer, "category": "product/defect"}, actor="a").id
    clock.advance(hours=1)
    service.assign(cid, "ben", actor="lead")
    service.move(cid, "acknowledged", actor="ben")
    clock.advance(hours=1)
    service.move(cid, "in_progress", actor="ben")
    service.move(cid, "waiting_customer", actor="ben", note="asked for photos")
    clock.advance(hours=5)
    service.move(cid, "in_progress", actor="ben")
    service.resolve(cid, resolution="Replaced", root_cause="product", actor="ben")
    service.rate(cid, 4, actor="customer")
    service.close(cid, actor="lead")
    entries = [(h.action, h.from_value, h.to_value, h.actor) for h in service.history(cid)]
    assert entries == [
        ("open", None, "open", "a"),
        ("assign", None, "ben", "lead"),
        ("move", "open", "acknowledged", "ben"),
        ("move", "acknowledged", "in_progress", "ben"),
        ("move", "in_progress", "waiting_customer", "ben"),
        ("move", "waiting_customer", "in_progress", "ben"),
        ("move", "in_progress", "resolved", "ben"),
        ("rate", None, "4", "customer"),
        ("move", "resolved", "closed", "lead"),
    ]
    final = service.get(cid)
    assert final.state is State.CLOSED and final.rating == 4
    assert final.first_response_seconds == 3600
    # paused 5 hours while waiting for the customer: 2 hours counted
    assert final.resolution_seconds == 2 * 3600
    assert final.resolved_by == "ben" and final.root_cause == "product"


PATHS = {
    State.ACKNOWLEDGED: ["acknowledged"],
    State.IN_PROGRESS: ["in_progress"],
    State.WAITING_CUSTOMER: ["acknowledged", "waiting_customer"],
    State.RESOLVED: ["resolved"],
    State.CLOSED: ["resolved", "closed"],
    State.REOPENED: ["resolved", "reopened"],
}


def test_illegal_moves_change_nothing(
    service: ComplaintService, customer: int, clock: FrozenClock
) -> None:
    """From every state, each move outside the graph is a TransitionError and changes nothing."""
    for state, path in PATHS.items():
        cid = service.open({"customer_id": customer, "category": "other"}).id
        for step in path:
            clock.advance(minutes=10)
            service.move(cid, step)
        before = service.get(cid)
        assert before.state is state
        history = len(service.history(cid))
        clock.advance(hours=1)
        for target in State:
            if target in TRANSITIONS[state]:
                continue
            with pytest.raises(TransitionError, match=r"^state: complaint \d+ (cannot|is already)"):
                service.move(cid, target, actor="x")
        assert service.get(cid) == before
        assert len(service.history(cid)) == history


def test_open_cannot_wait_for_the_customer_before_a_response(
    service: ComplaintService, customer: int
) -> None:
    """The allowed moves out of open are exactly acknowledged, in_progress, resolved."""
    cid = service.open({"customer_id": customer, "category": "other"}).id
    with pytest.raises(TransitionError, match="allowed from open: acknowledged, in_progress"):
        service.move(cid, "waiting_customer")
    with pytest.raises(ValidationError, match=r"^state: 'done' is not one of"):
        service.move(cid, "done")
    with pytest.raises(NotFoundError, match="complaint 999 does not exist"):
        service.move(999, "acknowledged")


def test_assignment_and_rating_rules(
    service: ComplaintService, customer: int, clock: FrozenClock
) -> None:
    """Reassignment is recorded; the same assignee is a no-op; ratings need a settled complaint."""
    cid = service.open({"customer_id": customer, "category": "other", "assignee": "ann"}).id
    service.assign(cid, "ann")
    clock.advance(minutes=1)
    service.assign(cid, "ben", note="ann is away")
    service.assign(cid, None)
    assigns = [(h.from_value, h.to_value) for h in service.history(cid) if h.action == "assign"]
    assert assigns == [(None, "ann"), ("ann", "ben"), ("ben", None)]
    with pytest.raises(ValidationError, match=r"^rating: complaint .* is open"):
        service.rate(cid, 5)
    service.resolve(cid, resolution="ok")
    with pytest.raises(ValidationError, match=r"^rating: 6 is outside the scale 1-5"):
        service.rate(cid, 6)
    assert service.rate(cid, 5).rating == 5


def test_backfilled_times_must_be_in_order(
    service: ComplaintService, customer: int, clock: FrozenClock
) -> None:
    """``at`` may not be in the future nor before the complaint's last change."""
    opened_at = clock() - timedelta(days=2)
    cid = service.open({"customer_id": customer, "category": "other", "opened_at": opened_at}).id
    with pytest.raises(ValidationError, match=r"^at: .* is before the complaint's last change"):
        service.move(cid, "acknowledged", at=opened_at - timedelta(seconds=1))
    with pytest.raises(ValidationError, match=r"^at: .* is after the clock's time"):
        service.move(cid, "acknowledged", at=clock() + timedelta(seconds=1))
    done = service.move(cid, "acknowledged", at=opened_at + timedelta(hours=3))
    assert done.first_response_seconds == 3 * 3600


def test_recurrence_is_flagged(
    service: ComplaintService, customer: int, clock: FrozenClock
) -> None:
    """Same customer and category within recurrence_days (30) flags the earlier complaint."""
    first = service.open({"customer_id": customer, "category": "delivery/late"})
    clock.advance(days=10)
    other = service.open({"customer_id": customer, "category": "billing/overcharge"})
    again = service.open({"customer_id": customer, "category": "delivery/late"})
    clock.advance(days=31)
    later = service.open({"customer_id": customer, "category": "delivery/late"})
    assert first.recurrence_of is None and other.recurrence_of is None
    assert again.recurrence_of == first.id
    assert later.recurrence_of is None
    batch = service.open_many([{"customer_id": customer, "category": "product/defect"}] * 2)
    assert batch[1].recurrence_of == batch[0].id


def test_list_filters(service: ComplaintService, ccrm: CRM, clock: FrozenClock) -> None:
    """Listing filters by state, category subtree, assignee and activity."""
    a = ccrm.customers.create({"name": "A"}).id
    b = ccrm.customers.create({"name": "B"}).id
    assert a and b
    x = service.open({"customer_id": a, "category": "delivery/late", "assignee": "ann"})
    clock.advance(minutes=1)
    y = service.open({"customer_id": b, "category": "delivery/damaged"})
    clock.advance(minutes=1)
    z = service.open({"customer_id": b, "category": "billing/overcharge"})
    service.resolve(z.id, resolution="refunded")
    assert [c.id for c in service.list(category="delivery").items] == [y.id, x.id]
    assert [c.id for c in service.list(customer_id=b).items] == [z.id, y.id]
    assert [c.id for c in service.list(assignee="ann").items] == [x.id]
    assert [c.id for c in service.list(active=False).items] == [z.id]
    assert service.list(state="open").total == 2


def test_list_category_filter_is_literal(open_crm: Callable[..., CRM]) -> None:
    """``%``, ``_`` and ``\\`` in a category filter match themselves, not as LIKE wildcards."""
    crm = open_crm({"categories": ["a_b/x", "axb/y", "other", "feedback/low_score"]})
    service = ComplaintService(crm)
    cid = crm.customers.create({"name": "A"}).id
    assert cid
    under = service.open({"customer_id": cid, "category": "a_b/x"})
    service.open({"customer_id": cid, "category": "axb/y"})
    service.open({"customer_id": cid, "category": "other"})
    assert service.list(category="%").total == 0
    assert service.list(category="%/%").total == 0
    assert service.list(category="\\").total == 0
    assert [c.id for c in service.list(category="a_b").items] == [under.id]
    assert service.list(category="a%").total == 0
    assert service.list(category="a\\_b").total == 0


def test_progress_hook_fires_on_acknowledgement_and_resolution(
    service: ComplaintService, customer: int, recorder: Any, clock: FrozenClock
) -> None:
    """complaints_progress reports the moves to acknowledged and resolved, no other move."""
    cid = service.open(
        {"customer_id": customer, "category": "product/defect", "reference": "ORD-9"}, actor="a"
    ).id
    assert recorder.progress == []
    service.move(cid, "acknowledged", actor="ben")
    service.move(cid, "in_progress", actor="ben")
    clock.advance(hours=1)
    service.resolve(cid, resolution="Replaced", root_cause="product", actor="ben")
    service.close(cid, actor="lead")
    assert [(p["complaint_id"], p["state"]) for p in recorder.progress] == [
        (cid, "acknowledged"),
        (cid, "resolved"),
    ]
    resolved = recorder.progress[1]
    assert resolved["customer_id"] == customer and resolved["reference"] == "ORD-9"
    assert resolved["at"] == clock() and resolved["category"] == "product/defect"
    assert "resolution" not in resolved
