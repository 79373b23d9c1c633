"""The migrations make exactly the tables tables.py defines; claims read the pending index."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import crmcore_messaging.plugin
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from crmcore_messaging.claims import due_messages
from sqlalchemy import MetaData, text

from crmcore import CRM


def test_migrations_match_the_tables(crm_factory: Callable[..., CRM]) -> None:
    crm = crm_factory(plugins=[crmcore_messaging.plugin])
    assert crm.pending_migrations() == set()
    ours = MetaData(naming_convention=crm.metadata.naming_convention)
    for table in crm.metadata.tables.values():
        if table.name.startswith(("messaging_", "crm_")):
            table.to_metadata(ours)
    with crm.engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), ours)
    assert [d for d in diff if "messaging_" in repr(d)] == []
    with crm.engine.connect() as connection:
        if connection.dialect.name == "sqlite":
            rows = connection.exec_driver_sql(
                "SELECT sql FROM sqlite_master WHERE name = 'ix_messaging_messages_pending'"
            ).scalars()
        else:
            rows = connection.execute(
                text("SELECT indexdef FROM pg_indexes WHERE indexname = :n"),
                {"n": "ix_messaging_messages_pending"},
            ).scalars()
        (definition,) = list(rows)
    assert "not_before" in definition and "queued" in definition and "deferred" in definition


def test_a_claim_reads_the_waiting_messages_only(crm_factory: Callable[..., CRM]) -> None:
    """Among 20,000 sent messages and 50 waiting, the claim's query reads an index, no sort."""
    crm = crm_factory(plugins=[crmcore_messaging.plugin])
    customer = crm.customers.create({"name": "Ann"}).id
    with crm.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO messaging_messages (token, customer_id, channel, purpose, state, "
                "attempts, not_before, created_at, updated_at) "
                "SELECT 't' || n, :c, 'in_app', 'marketing', "
                "CASE WHEN n <= 20000 THEN 'sent' ELSE 'queued' END, 0, :at, :at, :at "
                "FROM (WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s "
                "WHERE n < 20050) SELECT n FROM s) AS numbers"
            ),
            {"c": customer, "at": datetime(2025, 1, 1, tzinfo=UTC)},
        )
        connection.exec_driver_sql("ANALYZE")
    query = due_messages(crm.metadata, ["in_app"], datetime(2026, 1, 1, tzinfo=UTC), 100)
    with crm.engine.connect() as connection:
        compiled = query.compile(connection, compile_kwargs={"literal_binds": True})
        prefix = "EXPLAIN QUERY PLAN " if connection.dialect.name == "sqlite" else "EXPLAIN "
        plan = " / ".join(str(r) for r in connection.exec_driver_sql(prefix + str(compiled)))
        found = connection.execute(query).scalars().all()
    assert len(found) == 50
    if crm.engine.dialect.name == "postgresql":
        assert "ix_messaging_messages_pending" in plan and "Sort" not in plan, plan
    else:  # SQLite: an index on the state; the sent messages are never read
        assert "USING INDEX ix_messaging_messages_" in plan and "SCAN" not in plan, plan
