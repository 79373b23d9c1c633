"""Every public operation is one transaction with its hook calls (the unit of work)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import pytest
from sqlalchemy import Column, ForeignKey, Integer, MetaData, String, Table, func, insert, select

from crmcore import CRM, Customer, Interaction, PluginError, Stage, UnitOfWork, ValidationError
from crmcore.hooks import hookimpl
from crmcore.storage.tables import customers, interactions, lifecycle_events
from crmcore.testing import FrozenClock

T0 = datetime(2025, 6, 1, tzinfo=UTC)


class Journal:
    """A test plugin that writes a row of its own for every event, through ctx.connection."""

    crm_plugin_name = "journal"

    def __init__(self) -> None:
        self.table: Table | None = None

    @hookimpl
    def crm_register_tables(self, metadata: MetaData) -> None:
        if "journal_entries" in metadata.tables:  # the metadata is shared by every CRM opened
            self.table = metadata.tables["journal_entries"]
            return
        self.table = Table(
            "journal_entries",
            metadata,
            Column("id", Integer, primary_key=True),
            Column("customer_id", Integer, ForeignKey("crm_customers.id", ondelete="CASCADE")),
            Column("event", String(50)),
        )

    def _write(self, ctx: UnitOfWork, event: str, ids: Sequence[int | None]) -> None:
        assert self.table is not None
        ctx.connection.execute(
            insert(self.table), [{"customer_id": i, "event": event} for i in ids]
        )

    @hookimpl
    def crm_customers_created(self, ctx: UnitOfWork, customers: Sequence[Customer]) -> None:
        self._write(ctx, "created", [c.id for c in customers])

    @hookimpl
    def crm_interactions_recorded(
        self, ctx: UnitOfWork, interactions: Sequence[Interaction]
    ) -> None:
        self._write(ctx, "recorded", [i.customer_id for i in interactions])


class Exploder:
    """A test plugin that raises inside crm_interactions_recorded after Journal has written."""

    crm_plugin_name = "exploder"

    def __init__(self, error: Exception) -> None:
        self.error = error
        self.calls = 0

    @hookimpl(trylast=True)
    def crm_interactions_recorded(
        self, ctx: UnitOfWork, interactions: Sequence[Interaction]
    ) -> None:
        self.calls += 1
        if any(i.payload.get("explode") for i in interactions):
            raise self.error


@pytest.fixture
def journal_crm(db_url: str, clock: FrozenClock) -> tuple[CRM, Journal, Exploder]:
    journal, exploder = Journal(), Exploder(RuntimeError("boom"))
    crm = CRM.open(db_url, discover=False, plugins=[journal, exploder], clock=clock, upgrade=True)
    assert journal.table is not None
    journal.table.create(crm.engine, checkfirst=True)  # a test plugin without migrations
    return crm, journal, exploder


def count(crm: CRM, table: Table) -> int:
    with crm.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def test_exception_in_interactions_hook_leaves_nothing(
    journal_crm: tuple[CRM, Journal, Exploder],
) -> None:
    crm, journal, exploder = journal_crm
    assert journal.table is not None
    cid = crm.customers.create({"name": "Ada"}).id
    assert cid is not None
    before = {
        t.name: count(crm, t) for t in (customers, interactions, lifecycle_events, journal.table)
    }
    with pytest.raises(PluginError, match="crm_interactions_recorded: RuntimeError: boom"):
        crm.interactions.record_many(
            [
                {
                    "customer_id": cid,
                    "kind": "purchase",
                    "occurred_at": T0.isoformat(),
                    "amount": "5",
                    "currency": "EUR",
                },
                {
                    "customer_id": cid,
                    "kind": "call",
                    "occurred_at": T0.isoformat(),
                    "payload": {"explode": True},
                },
            ],
            batch_size=1,
        )
    assert exploder.calls == 2  # the first batch was written before the second exploded
    after = {
        t.name: count(crm, t) for t in (customers, interactions, lifecycle_events, journal.table)
    }
    assert after == before
    # The automatic prospect -> new move of the first batch was rolled back too.
    assert crm.customers.get(cid).stage is Stage.PROSPECT


def test_crm_errors_from_hooks_pass_through_unchanged(db_url: str, clock: FrozenClock) -> None:
    exploder = Exploder(
        ValidationError("payload.explode: refused by policy", field="payload.explode")
    )
    crm = CRM.open(db_url, discover=False, plugins=[exploder], clock=clock, upgrade=True)
    cid = crm.customers.create({"name": "Ada"}).id
    with pytest.raises(ValidationError, match="refused by policy") as info:
        crm.interactions.record(
            {
                "customer_id": cid,
                "kind": "call",
                "occurred_at": T0.isoformat(),
                "payload": {"explode": 1},
            }
        )
    assert info.value.field == "payload.explode"
    assert count(crm, interactions) == 0


def test_plugin_writes_commit_with_core_write(journal_crm: tuple[CRM, Journal, Exploder]) -> None:
    crm, journal, _ = journal_crm
    assert journal.table is not None
    cid = crm.customers.create({"name": "Ada"}).id
    crm.interactions.record({"customer_id": cid, "kind": "call", "occurred_at": T0.isoformat()})
    with crm.engine.connect() as conn:
        events = (
            conn.execute(select(journal.table.c.event).order_by(journal.table.c.id)).scalars().all()
        )
    assert events == ["created", "recorded"]


def test_services_join_an_outer_unit_of_work(journal_crm: tuple[CRM, Journal, Exploder]) -> None:
    crm, journal, _ = journal_crm
    with pytest.raises(RuntimeError, match="abort"), crm.unit_of_work(actor="test") as uow:
        c = crm.customers.create({"name": "Inside"}, ctx=uow)
        crm.interactions.record(
            {"customer_id": c.id, "kind": "call", "occurred_at": T0.isoformat()}, ctx=uow
        )
        assert crm.customers.get(c.id, ctx=uow).name == "Inside"  # type: ignore[arg-type]
        raise RuntimeError("abort")
    assert count(crm, customers) == 0
    assert journal.table is not None and count(crm, journal.table) == 0


def test_validation_hook_rejects_and_rolls_back(db_url: str, clock: FrozenClock) -> None:
    class NoGmail:
        crm_plugin_name = "nogmail"

        @hookimpl
        def crm_validate_customers(
            self, ctx: UnitOfWork, customers: Sequence[Customer]
        ) -> list[tuple[int, str]]:
            return [
                (i, f"email: {c.email} is a free-mail address")
                for i, c in enumerate(customers)
                if c.email and c.email.endswith("@gmail.com")
            ]

    crm = CRM.open(db_url, discover=False, plugins=[NoGmail()], clock=clock, upgrade=True)
    with pytest.raises(ValidationError, match=r"customers\[1\]: email: b@gmail.com is a free-mail"):
        crm.customers.create_many(
            [{"name": "a", "email": "a@corp.com"}, {"name": "b", "email": "b@gmail.com"}]
        )
    assert count(crm, customers) == 0
    rejected: list[int] = []
    stored = crm.customers.create_many(
        [{"name": "a", "email": "a@corp.com"}, {"name": "b", "email": "b@gmail.com"}],
        on_reject=lambda p, i, e: rejected.append(p),
    )
    assert [c.name for c in stored] == ["a"] and rejected == [1]
    with pytest.raises(ValidationError, match="free-mail"):
        crm.customers.update(stored[0].id, {"email": "a@gmail.com"})  # type: ignore[arg-type]
    assert crm.customers.get(stored[0].id).email == "a@corp.com"  # type: ignore[arg-type]
