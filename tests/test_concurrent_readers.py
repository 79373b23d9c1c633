"""SQLite readers neither wait for writers nor make them wait (deferred read transactions).

Each test holds a write transaction open on one thread and proves, by events
rather than by timing, that readers on other threads finish before it commits.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from crmcore import CRM, UnitOfWork
from crmcore.hooks import hookimpl
from crmcore.pytest_plugin import CRMFactory
from crmcore.storage.tables import customers as customers_table
from crmcore.testing import FrozenClock

READERS = 8
# Generous: a reader stuck behind the writer's lock would wait for the 30 s
# busy timeout; the test fails (not hangs) long before.
JOIN = 20.0


@pytest.fixture
def crm(sqlite_url: str, clock: FrozenClock) -> Iterator[CRM]:
    instance = CRM.open(sqlite_url, discover=False, upgrade=True, clock=clock)
    yield instance
    instance.close()


class OpenWrite:
    """A unit of work that renamed a customer and stays open until released."""

    def __init__(self, crm: CRM, customer_id: int) -> None:
        self.inside = threading.Event()
        self.release = threading.Event()
        self.committed = threading.Event()
        self.errors: list[BaseException] = []

        def run() -> None:
            try:
                with crm.unit_of_work() as uow:
                    crm.customers.update(customer_id, {"name": "Bea"}, ctx=uow)
                    self.inside.set()
                    self.release.wait(60)
                self.committed.set()
            except BaseException as exc:  # reported by the test
                self.errors.append(exc)
                self.inside.set()

        self.thread = threading.Thread(target=run)

    def __enter__(self) -> OpenWrite:
        self.thread.start()
        assert self.inside.wait(JOIN)
        assert not self.errors
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.thread.join(JOIN)
        assert not self.errors
        assert self.committed.is_set()


def test_readers_finish_before_the_open_write_commits(crm: CRM) -> None:
    cid = crm.customers.create({"name": "Ann"}).id
    assert cid is not None
    seen: list[tuple[str, bool]] = []
    lock = threading.Lock()

    def read() -> None:
        name = crm.customers.get(cid).name
        page = crm.customers.search(limit=10)
        with lock:
            seen.append((f"{name}/{page.items[0].name}", write.committed.is_set()))

    with OpenWrite(crm, cid) as write:
        readers = [threading.Thread(target=read) for _ in range(READERS)]
        for reader in readers:
            reader.start()
        for reader in readers:
            reader.join(JOIN)
        # Every reader is done while the write is still open, and saw the last commit.
        assert seen == [("Ann/Ann", False)] * READERS
    assert crm.customers.get(cid).name == "Bea"


def test_a_writer_commits_while_a_reader_holds_its_snapshot(crm: CRM) -> None:
    crm.customers.create({"name": "Ann"})
    count = sa.select(sa.func.count()).select_from(customers_table)
    done = threading.Event()

    def write() -> None:
        crm.customers.create({"name": "Bea"})
        done.set()

    with crm.reading() as uow:
        assert uow.connection.execute(count).scalar_one() == 1
        writer = threading.Thread(target=write)
        writer.start()
        writer.join(JOIN)
        assert done.is_set()  # committed while the read transaction is open
        # One snapshot for the whole read: the new customer is not in it.
        assert uow.connection.execute(count).scalar_one() == 1
    with crm.reading() as uow:
        assert uow.connection.execute(count).scalar_one() == 2


def test_read_transactions_are_deferred_and_writes_immediate(crm: CRM) -> None:
    statements: list[str] = []

    @sa.event.listens_for(crm.engine, "before_cursor_execute")
    def spy(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if statement.startswith("BEGIN"):
            statements.append(statement)

    crm.customers.search(limit=1)
    crm.customers.create({"name": "Ann"})
    sa.event.remove(crm.engine, "before_cursor_execute", spy)
    assert statements == ["BEGIN DEFERRED", "BEGIN IMMEDIATE"]


def test_a_hook_reads_inside_its_own_unit_of_work(crm: CRM) -> None:
    """A read helper given ``ctx`` joins the write: it sees it, and waits for nothing."""
    cid = crm.customers.create({"name": "Ann"}).id
    assert cid is not None
    with crm.unit_of_work() as uow:
        crm.customers.update(cid, {"name": "Bea"}, ctx=uow)
        assert crm.customers.get(cid, ctx=uow).name == "Bea"
        assert [e.to_stage for e in crm.lifecycle.history(cid, ctx=uow)] == ["prospect"]
        assert [c.name for c in crm.customers.search(limit=5, ctx=uow).items] == ["Bea"]
        assert [c.name for c in crm.customers.iter_all(ctx=uow)] == ["Bea"]
        assert crm.customers.profile(cid, ctx=uow)["customer"]["name"] == "Bea"
        assert crm.customers.export(cid, ctx=uow)["customer"]["name"] == "Bea"
        assert crm.interactions.list(customer_id=cid, ctx=uow).total == 0
        assert crm.audit.query(customer_id=cid, ctx=uow).total >= 1
        assert crm.customers.get(cid).name == "Ann"  # another reader: the last commit


class MemberReader:
    """Reads loyalty's records from inside a hook, in the hook's own unit of work."""

    crm_plugin_name = "member_reader"

    def __init__(self) -> None:
        self.seen: list[tuple[str, int]] = []

    @hookimpl(trylast=True)
    def crm_interactions_recorded(self, ctx: UnitOfWork, interactions: list[Any]) -> None:
        from crmcore_loyalty import service

        for interaction in interactions:
            member = service.get_member(ctx.crm, interaction.customer_id, ctx=ctx)
            points = service.balance(ctx.crm, interaction.customer_id, ctx=ctx).points
            self.seen.append((member.status, points))


def test_a_plugin_hook_reads_loyalty_inside_its_unit_of_work(
    crm_factory: CRMFactory, clock: FrozenClock
) -> None:
    import crmcore_loyalty.plugin
    from crmcore_loyalty import service

    reader = MemberReader()
    crm = crm_factory(plugins=[crmcore_loyalty.plugin, reader])
    cid = crm.customers.create({"name": "Ann"}).id
    assert cid is not None
    with crm.unit_of_work() as uow:
        service.enroll(crm, cid, ctx=uow)  # not committed yet: only ctx sees the member
        crm.interactions.record(
            {
                "customer_id": cid,
                "kind": "purchase",
                "occurred_at": clock(),
                "amount": "10.00",
                "currency": "EUR",
            },
            ctx=uow,
        )
    assert len(reader.seen) == 1
    assert reader.seen[0][0] == "active"
