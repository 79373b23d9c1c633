"""Events after commit: the outbox, the crm_events_committed hook, erasure, access."""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from typing import Any

import pluggy
import pytest
import sqlalchemy as sa

from crmcore import CRM, UnitOfWork, ValidationError
from crmcore.access import AccessDeniedError, Principal, Role
from crmcore.events import Event
from crmcore.events.outbox import write_pending
from crmcore.model.event_types import item_count
from crmcore.storage.tables import events as events_table

hookimpl = pluggy.HookimplMarker("crmcore")


def outbox_rows(crm: CRM) -> int:
    with crm.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(events_table)).scalar_one())


def _plugin(**hooks: Any) -> object:
    """A plugin object (hashable, as pluggy needs) implementing the given hooks."""
    namespace = {name: staticmethod(hookimpl(func)) for name, func in hooks.items()}
    return type("TestPlugin", (), namespace)()


def test_core_events_are_committed_in_order(crm: CRM) -> None:
    ada = crm.customers.create({"name": "Ada", "email": "ada@example.com"}).id
    assert ada is not None
    crm.interactions.record(
        {
            "customer_id": ada,
            "kind": "purchase",
            "occurred_at": "2026-01-01T10:00:00Z",
            "amount": "12.50",
            "currency": "EUR",
        }
    )
    crm.customers.update(ada, {"phone": "+44 20 7946 0001"})
    found = crm.events.list()
    assert [e.type for e in found] == [
        "customer.created",
        "lifecycle.changed",
        "interaction.recorded",
        "lifecycle.changed",
        "customer.updated",
    ]
    assert all(e.customer_id == ada for e in found)
    assert found[2].data["amount"] == "12.50" and found[2].data["kind"] == "purchase"
    assert found[3].data == {"from": "prospect", "to": "new"}
    assert found[4].data == {"changed": ["phone"]}  # field names, never values
    positions = [e.position for e in found]
    assert positions == sorted(positions)
    assert len({e.id for e in found}) == len(found)
    after = [e.type for e in crm.events.list(after=positions[2])]
    assert after == ["lifecycle.changed", "customer.updated"]


def test_a_rolled_back_operation_leaves_no_event(crm: CRM) -> None:
    def boom(ctx: UnitOfWork, customers: Sequence[object]) -> None:
        raise RuntimeError("plugin refuses")

    crm.pm.register(_plugin(crm_customers_created=boom), name="refuser")
    with pytest.raises(Exception, match="plugin refuses"):
        crm.customers.create({"name": "Nobody"})
    assert outbox_rows(crm) == 0


def test_committed_hook_runs_after_commit_and_failures_stay_local(crm: CRM) -> None:
    seen: list[tuple[str, int, int]] = []

    def observer(crm: CRM, events: Sequence[Event]) -> None:
        # Outside the transaction: a fresh connection already sees the committed rows.
        seen.extend((e.type, e.position, outbox_rows(crm)) for e in events)

    def broken(crm: CRM, events: Sequence[Event]) -> None:
        raise RuntimeError("webhook down")

    crm.pm.register(_plugin(crm_events_committed=broken), name="broken")
    crm.pm.register(_plugin(crm_events_committed=observer), name="observer")
    created = crm.customers.create({"name": "Ada"})
    assert created.id is not None  # the caller is not told of the broken hook
    assert [t for t, _, _ in seen] == ["customer.created", "lifecycle.changed"]
    assert all(rows == 2 for _, _, rows in seen)


def test_plugins_emit_their_own_events(crm: CRM) -> None:
    def on_recorded(ctx: UnitOfWork, interactions: Sequence[Any]) -> None:
        for i in interactions:
            ctx.emit("loyalty_demo.points_earned", i.customer_id, {"points": 5})

    crm.pm.register(_plugin(crm_interactions_recorded=on_recorded), name="loyalty_demo")
    cid = crm.customers.create({"name": "Ada"}).id
    crm.interactions.record(
        {"customer_id": cid, "kind": "inquiry", "occurred_at": "2026-01-01T10:00:00Z"}
    )
    earned = crm.events.list(type="loyalty_demo.points_earned")
    assert [(e.customer_id, dict(e.data)) for e in earned] == [(cid, {"points": 5})]


@pytest.mark.parametrize(
    ("event_type", "data", "message"),
    [
        ("Bad Type", {}, "must look like 'plugin.something_happened'"),
        ("nodot", {}, "must look like"),
        ("demo.ok", {"when": object()}, "not JSON-safe"),
    ],
)
def test_bad_events_are_refused_and_roll_back(
    crm: CRM, event_type: str, data: dict[str, Any], message: str
) -> None:
    def on_created(ctx: UnitOfWork, customers: Sequence[Any]) -> None:
        ctx.emit(event_type, customers[0].id, data)

    crm.pm.register(_plugin(crm_customers_created=on_created), name="emitter")
    with pytest.raises(ValidationError, match=message):
        crm.customers.create({"name": "Ada"})
    assert outbox_rows(crm) == 0 and crm.customers.search().total == 0


def test_erased_customers_events_carry_no_personal_data(crm: CRM) -> None:
    def on_created(ctx: UnitOfWork, customers: Sequence[Any]) -> None:
        for c in customers:
            ctx.emit("welcome.sent", c.id, {"to": c.email})  # a careless plugin

    crm.pm.register(_plugin(crm_customers_created=on_created), name="welcome")
    ada = crm.customers.create({"name": "Ada Quixotic", "email": "ada.q@example.com"}).id
    bob = crm.customers.create({"name": "Bob", "email": "bob@example.com"}).id
    assert ada is not None and bob is not None
    crm.customers.update(ada, {"name": "Ada Q. Quixotic"})
    crm.customers.erase(ada)
    with crm.engine.connect() as conn:
        stored = json.dumps([list(r) for r in conn.execute(sa.select(events_table))], default=str)
    assert "Quixotic" not in stored and "ada.q@example.com" not in stored
    assert "bob@example.com" in stored  # only the erased customer's plugin events are redacted
    types = [e.type for e in crm.events.list(customer_id=ada)]
    assert types[-1] == "customer.erased"
    welcome = crm.events.list(type="welcome.sent", customer_id=ada)
    assert [dict(e.data) for e in welcome] == [{"redacted": True}]


def test_reading_the_outbox_needs_the_audit_right(crm: CRM) -> None:
    crm.customers.create({"name": "Ada", "owner": "alice"})
    agent = crm.as_user(Principal("alice", Role.AGENT))
    with pytest.raises(AccessDeniedError):
        agent.events.list()
    manager = crm.as_user(Principal("meg", Role.MANAGER))
    assert len(manager.events.list()) == 2
    with pytest.raises(ValidationError, match="after: must be a position"):
        crm.events.list(after=-1)
    with pytest.raises(ValidationError, match="limit: must be 1 to 100000"):
        crm.events.list(limit=0)


def test_concurrent_writers_commit_events_in_position_order(crm: CRM) -> None:
    """Per customer, events appear in the outbox in the order their transactions committed."""
    ids = [crm.customers.create({"name": f"C{n}"}).id for n in range(4)]

    def writer(cid: int | None) -> None:
        for n in range(15):
            crm.interactions.record(
                {"customer_id": cid, "kind": "inquiry", "occurred_at": f"2026-01-01T10:{n:02d}:00Z"}
            )

    threads = [threading.Thread(target=writer, args=(cid,)) for cid in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    recorded = crm.events.list(type="interaction.recorded", limit=1000)
    assert len(recorded) == 60
    for cid in ids:
        mine = [e.data["interaction_id"] for e in recorded if e.customer_id == cid]
        assert mine == sorted(mine)


def test_bulk_events_are_written_as_they_come_and_numbered_in_order(crm: CRM) -> None:
    cid = crm.customers.create({"name": "Bulk"}).id
    seen: list[int] = []

    def observer(crm: CRM, events: Sequence[Event]) -> None:
        seen.append(len(events))

    crm.pm.register(_plugin(crm_events_committed=observer), name="observer")
    crm.interactions.record_many(
        ({"customer_id": cid, "kind": "inquiry", "occurred_at": "2026-01-01T10:00:00Z"}
         for _ in range(2500)),
        batch_size=1000,
        keep=False,
    )  # fmt: skip
    with crm.engine.connect() as conn:
        stored = conn.execute(
            sa.select(events_table.c.position, events_table.c["items"])
            .where(events_table.c.type == "interaction.recorded")
            .order_by(events_table.c.position)
        ).all()
        positions = (
            conn.execute(sa.select(events_table.c.position).order_by(events_table.c.position))
            .scalars()
            .all()
        )
    rows = [(position, item_count(items)) for position, items in stored]
    assert [size for _, size in rows] == [1000, 1000, 500]  # flushed per batch, not held
    assert positions == list(range(1, len(positions) + 1))  # consecutive, in commit order
    assert sum(seen) == 2500  # every event reached the hook, in groups


def test_positions_follow_commit_order_not_start_order(postgres_url: str) -> None:
    """A transaction that wrote its events first but commits last gets the later position."""
    crm = CRM.open(postgres_url, discover=False, upgrade=True)
    try:
        first_wrote = threading.Event()
        second_committed = threading.Event()

        def slow() -> None:
            with crm.unit_of_work() as uow:
                crm.customers.create({"name": "Slow"}, ctx=uow)
                write_pending(uow)  # as a bulk operation does once a batch is full
                first_wrote.set()
                second_committed.wait(timeout=30)

        thread = threading.Thread(target=slow)
        thread.start()
        first_wrote.wait(timeout=30)
        crm.customers.create({"name": "Fast"})
        second_committed.set()
        thread.join(timeout=30)
        created = [e for e in crm.events.list() if e.type == "customer.created"]
        names = {c.id: c.name for c in crm.customers.search().items}
        assert [names[e.customer_id] for e in created] == ["Fast", "Slow"]
        with crm.engine.connect() as conn:
            ids = dict(conn.execute(sa.select(events_table.c.position, events_table.c.id)).all())
        assert ids[created[0].position] > ids[created[1].position]  # Fast's row was written later
    finally:
        crm.close()


def test_event_actor_is_the_principal(crm: CRM) -> None:
    alice = crm.as_user(Principal("alice", Role.AGENT))
    alice.customers.create({"name": "Mine", "owner": "alice"}, actor="mallory")
    assert {e.actor for e in crm.events.list()} == {"alice"}
