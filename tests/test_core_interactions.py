"""Interactions and lifecycle on both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from crmcore import (
    CRM,
    Interaction,
    InteractionKind,
    NotFoundError,
    Stage,
    TransitionError,
    ValidationError,
)
from crmcore.services.lifecycle import TRANSITIONS
from crmcore.storage.tables import interactions, lifecycle_events
from crmcore.testing import FrozenClock

T0 = datetime(2025, 6, 1, 9, 0, tzinfo=UTC)


def rows(crm: CRM, table=interactions) -> int:  # type: ignore[no-untyped-def]
    with crm.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


@pytest.fixture
def customer_id(crm: CRM) -> int:
    cid = crm.customers.create({"name": "Ada"}).id
    assert cid is not None
    return cid


def purchase(cid: int, at: datetime, amount: str = "10.00", **extra: object) -> dict[str, object]:
    return {
        "customer_id": cid,
        "kind": "purchase",
        "occurred_at": at.isoformat(),
        "amount": amount,
        "currency": "EUR",
        **extra,
    }


def test_record_and_read_back_exactly(crm: CRM, customer_id: int) -> None:
    local = datetime(2025, 6, 1, 11, 0, tzinfo=timezone(timedelta(hours=2)))
    recorded = crm.interactions.record(
        purchase(
            customer_id,
            local,
            "1234567.8901",
            items=[{"sku": "A1", "quantity": "2", "unit_price": "0.5"}],
            payload={"order": "SO-1", "nested": {"x": [1, 2]}},
            channel="web",
            response_seconds=12.5,
        )
    )
    [stored] = crm.interactions.timeline(customer_id).items
    assert stored.id == recorded.id
    assert stored.amount == Decimal("1234567.8901")
    assert stored.occurred_at == local and stored.occurred_at.tzinfo is not None
    assert stored.items[0].unit_price == Decimal("0.5")
    assert stored.payload == {"order": "SO-1", "nested": {"x": [1, 2]}}


def test_money_sums_exactly_in_sql(crm: CRM, customer_id: int) -> None:
    crm.interactions.record_many([purchase(customer_id, T0, "0.1") for _ in range(10)])
    with crm.engine.connect() as conn:
        total = conn.execute(select(func.sum(interactions.c.amount))).scalar_one()
    assert total == Decimal("1")


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"amount": None}, "amount"),
        ({"amount": "-1"}, "amount"),
        ({"amount": "0.00001"}, "amount"),
        ({"currency": "eur"}, "currency"),
        ({"currency": None}, "currency"),
        ({"occurred_at": "2025-06-01T09:00:00"}, "occurred_at"),
        ({"kind": "teleport"}, "kind"),
        ({"channel": "pigeon"}, "channel"),
        ({"response_seconds": -3}, "response_seconds"),
        ({"items": [{"sku": "a", "quantity": "0"}]}, "items.0.quantity"),
    ],
)
def test_bad_interactions_refused_by_field(
    crm: CRM, customer_id: int, changes: dict[str, object], field: str
) -> None:
    data = {k: v for k, v in {**purchase(customer_id, T0), **changes}.items() if v is not None}
    with pytest.raises(ValidationError) as info:
        crm.interactions.record(data)
    assert info.value.field == field or any(
        e.field == field for e in getattr(info.value, "errors", [])
    ), str(info.value)
    assert rows(crm) == 0


def test_unknown_customer_is_not_found(crm: CRM) -> None:
    with pytest.raises(NotFoundError, match="customer_id: customer 77 does not exist"):
        crm.interactions.record({"customer_id": 77, "kind": "call", "occurred_at": T0.isoformat()})


def test_batch_all_or_nothing_and_reject_handler(crm: CRM, customer_id: int) -> None:
    batch = [purchase(customer_id, T0 + timedelta(days=i)) for i in range(30)]
    batch[25]["customer_id"] = 999
    with pytest.raises(NotFoundError, match=r"interactions\[25\]"):
        crm.interactions.record_many(batch, batch_size=7)
    assert rows(crm) == 0
    assert crm.customers.get(customer_id).stage is Stage.PROSPECT
    rejected: list[int] = []
    stored = crm.interactions.record_many(
        batch, batch_size=7, on_reject=lambda p, i, e: rejected.append(p)
    )
    assert len(stored) == 29 and rejected == [25]


def test_filters_and_timeline(crm: CRM, customer_id: int) -> None:
    other = crm.customers.create({"name": "Bob"}).id
    crm.interactions.record_many(
        [
            purchase(customer_id, T0, channel="web"),
            {
                "customer_id": customer_id,
                "kind": "call",
                "channel": "phone",
                "occurred_at": (T0 + timedelta(days=1)).isoformat(),
            },
            {
                "customer_id": customer_id,
                "kind": "email",
                "channel": "email",
                "occurred_at": (T0 + timedelta(days=2)).isoformat(),
            },
            purchase(other, T0 + timedelta(days=3), channel="store"),  # type: ignore[arg-type]
        ]
    )
    timeline = crm.interactions.timeline(customer_id)
    assert [i.kind.value for i in timeline.items] == ["email", "call", "purchase"]
    assert crm.interactions.list(kinds=["purchase"]).total == 2
    assert crm.interactions.list(channels=["phone", "email"]).total == 2
    window = crm.interactions.list(since=T0 + timedelta(days=1), until=T0 + timedelta(days=3))
    assert [i.kind.value for i in window.items] == ["email", "call"]
    assert (
        crm.interactions.timeline(customer_id, kinds=["call"], limit=1).items[0].kind.value
        == "call"
    )
    with pytest.raises(NotFoundError):
        crm.interactions.timeline(12345)
    with pytest.raises(ValidationError, match="kind: 'teleport'"):
        crm.interactions.list(kinds=["teleport"])
    with pytest.raises(ValidationError, match="since: must be a timezone-aware"):
        crm.interactions.list(since=datetime(2025, 1, 1))


# --- lifecycle -----------------------------------------------------------------


def test_first_purchase_moves_prospect_to_new(
    crm: CRM, customer_id: int, clock: FrozenClock
) -> None:
    crm.interactions.record(
        {"customer_id": customer_id, "kind": "call", "occurred_at": T0.isoformat()}
    )
    assert crm.customers.get(customer_id).stage is Stage.PROSPECT
    crm.interactions.record_many(
        [purchase(customer_id, T0), purchase(customer_id, T0 + timedelta(days=1))]
    )
    assert crm.customers.get(customer_id).stage is Stage.NEW
    history = crm.lifecycle.history(customer_id)
    assert [(e.from_stage, e.to_stage, e.reason) for e in history] == [
        (None, Stage.PROSPECT, "created"),
        (Stage.PROSPECT, Stage.NEW, "first purchase"),
    ]
    assert history[1].at == clock.now


def test_purchase_wins_back_churned(crm: CRM, customer_id: int) -> None:
    crm.interactions.record(purchase(customer_id, T0))
    crm.lifecycle.move(customer_id, "churned", reason="no contact")
    crm.interactions.record(purchase(customer_id, T0 + timedelta(days=400)))
    assert crm.customers.get(customer_id).stage is Stage.ACTIVE
    assert crm.lifecycle.history(customer_id)[-1].reason == "won back: purchase after churn"


def test_explicit_moves_follow_the_graph(crm: CRM, customer_id: int) -> None:
    with pytest.raises(TransitionError, match="cannot move from prospect to loyal"):
        crm.lifecycle.move(customer_id, Stage.LOYAL)
    with pytest.raises(TransitionError, match="already prospect"):
        crm.lifecycle.move(customer_id, "prospect")
    with pytest.raises(ValidationError, match="stage: 'vip' is not one of"):
        crm.lifecycle.move(customer_id, "vip")
    with pytest.raises(NotFoundError):
        crm.lifecycle.move(4242, "new")
    assert rows(crm, lifecycle_events) == 1
    event = crm.lifecycle.move(customer_id, "new", reason="signed", actor="alice")
    assert (event.from_stage, event.to_stage, event.actor) == (Stage.PROSPECT, Stage.NEW, "alice")


def test_move_many_is_all_or_nothing(crm: CRM, customer_id: int) -> None:
    with pytest.raises(TransitionError):
        crm.lifecycle.move_many(
            [
                (customer_id, "new", None),
                (customer_id, "active", None),
                (customer_id, "prospect", None),
            ]
        )
    assert crm.customers.get(customer_id).stage is Stage.PROSPECT
    events = crm.lifecycle.move_many(
        [(customer_id, "new", None), (customer_id, "active", None), (customer_id, "loyal", None)]
    )
    assert [e.to_stage for e in events] == [Stage.NEW, Stage.ACTIVE, Stage.LOYAL]
    assert crm.customers.get(customer_id).stage is Stage.LOYAL


@pytest.mark.parametrize("start", list(Stage))
def test_every_disallowed_move_is_refused(start: Stage) -> None:
    from crmcore.services.lifecycle import check_transition

    for target in Stage:
        if target in TRANSITIONS[start]:
            check_transition(start, target)
        else:
            with pytest.raises(TransitionError):
                check_transition(start, target)


def test_interaction_entity_accepted_directly(crm: CRM, customer_id: int) -> None:
    stored = crm.interactions.record(
        Interaction(customer_id=customer_id, kind="visit", occurred_at=T0)
    )
    assert stored.id is not None


def test_callers_interactions_are_never_modified(crm: CRM) -> None:
    ada = crm.customers.create({"name": "Ada"})
    assert ada.id is not None
    mine = Interaction(
        customer_id=ada.id, kind=InteractionKind.CALL, occurred_at=datetime(2025, 1, 1, tzinfo=UTC)
    )
    recorded, other = crm.interactions.record_many(
        [mine, {"customer_id": ada.id, "kind": "note", "occurred_at": "2025-01-02T00:00:00Z"}]
    )
    assert mine.id is None
    assert recorded is not mine and recorded.id is not None
    assert recorded == Interaction(
        customer_id=ada.id,
        kind=InteractionKind.CALL,
        occurred_at=datetime(2025, 1, 1, tzinfo=UTC),
        id=recorded.id,
    )
    assert other.id is not None and other.id > recorded.id
    assert crm.interactions.list(customer_id=ada.id, limit=10).total == 2
