"""Erasure leaves nothing behind: free-text reasons, batch audit entries, old row versions."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from crmcore import CRM, ValidationError
from crmcore.storage.tables import audit_log, lifecycle_events

NAME = "Zhang Wei Quixotic"
EMAIL = "zw.quixotic@privacy.example"


def _setup(crm: CRM, shared: str = f"campaign reply by {NAME}") -> tuple[int, int]:
    erased = crm.customers.create({"name": NAME, "email": EMAIL}).id
    other = crm.customers.create({"name": "Other Person", "email": "other@example.com"}).id
    assert erased is not None and other is not None
    crm.interactions.record(
        {
            "customer_id": erased,
            "kind": "purchase",
            "occurred_at": "2025-01-01T10:00:00Z",
            "amount": "10.00",
            "currency": "EUR",
            "text": f"{NAME} paid cash",
        }
    )
    crm.lifecycle.move(other, "new", reason="first order by phone")
    # A batch of equal moves: one audit entry for both customers, sharing the reason.
    crm.lifecycle.move_many([(erased, "active", shared), (other, "active", shared)])
    crm.lifecycle.move(erased, "loyal", reason=f"{NAME} asked to upgrade ({EMAIL})")
    return erased, other


def _reasons(crm: CRM, customer_id: int) -> list[str | None]:
    with crm.engine.connect() as conn:
        return list(
            conn.execute(
                sa.select(lifecycle_events.c.reason)
                .where(lifecycle_events.c.customer_id == customer_id)
                .order_by(lifecycle_events.c.id)
            ).scalars()
        )


def test_erase_redacts_reasons_and_batch_audit_entries(crm: CRM) -> None:
    erased, other = _setup(crm)
    crm.customers.erase(erased)
    reasons = _reasons(crm, erased)
    assert "first purchase" in reasons  # core's own reasons carry no personal data: kept
    assert not any(r and ("Zhang" in r or "quixotic" in r.lower()) for r in reasons)
    with crm.engine.connect() as conn:
        details = [d for (d,) in conn.execute(sa.select(audit_log.c.details))]
    assert all(NAME not in str(d) and EMAIL not in str(d) for d in details)
    batch = [d for d in details if isinstance(d, dict) and "customer_ids" in d]
    moved = [d for d in batch if sorted(d["customer_ids"]) == sorted([erased, other])]
    assert moved and moved[0]["count"] == 2 and moved[0]["redacted"] == "customer erased"
    # The other customer's own lifecycle history is theirs: it stays.
    assert _reasons(crm, other)[-1] == f"campaign reply by {NAME}"


def test_erase_refuses_an_unknown_vacuum_mode(crm: CRM) -> None:
    erased, _ = _setup(crm)
    with pytest.raises(ValidationError, match="vacuum: 'later' is not one of: auto, full, none"):
        crm.customers.erase(erased, vacuum="later")
    assert crm.customers.get(erased).name == NAME


def _database_bytes(crm: CRM, db_url: str) -> bytes:
    """Every byte of every file holding the database's tables, indexes and TOAST data."""
    if crm.engine.dialect.name == "sqlite":
        path = Path(crm.engine.url.database or "")
        wal = path.with_name(path.name + "-wal")
        return path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")
    chunks = []
    with crm.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("CHECKPOINT")
        paths = (
            conn.exec_driver_sql(
                """
            SELECT pg_relation_filepath(c.oid) FROM pg_class c
            WHERE c.relkind IN ('r', 'i', 't')
              AND (c.relnamespace = current_schema()::regnamespace
                   OR c.oid IN (SELECT reltoastrelid FROM pg_class
                                WHERE relnamespace = current_schema()::regnamespace)
                   OR c.oid IN (SELECT indexrelid FROM pg_index WHERE indrelid IN
                                (SELECT reltoastrelid FROM pg_class
                                 WHERE relnamespace = current_schema()::regnamespace)))
            """
            )
            .scalars()
            .all()
        )
        for path in paths:
            if path:
                chunks.append(
                    conn.execute(
                        sa.text("SELECT pg_read_binary_file(:p)"), {"p": path}
                    ).scalar_one()
                )
    return b"".join(chunks)


def test_no_old_row_version_keeps_the_name_on_disk(crm: CRM, db_url: str) -> None:
    # The shared reason must not name her: the other customer's history keeps it.
    erased, _ = _setup(crm, shared="spring campaign reply")
    needles = [NAME.encode(), NAME.lower().encode(), EMAIL.encode()]
    assert any(n in _database_bytes(crm, db_url) for n in needles)
    # SQLite zeroes freed space itself (secure_delete); PostgreSQL needs the tables rewritten.
    crm.customers.erase(
        erased, vacuum="full" if crm.engine.dialect.name == "postgresql" else "auto"
    )
    found = _database_bytes(crm, db_url)
    for needle in needles:
        assert needle not in found, f"{needle!r} is still in the database files"


def test_core_reasons_that_survive_erasure_are_the_automatic_ones() -> None:
    from crmcore.services.erasure import AUTOMATIC_REASONS
    from crmcore.services.interactions import PURCHASE_MOVES

    assert {reason for _, reason in PURCHASE_MOVES.values()} == set(AUTOMATIC_REASONS)


def test_default_vacuum_leaves_no_dead_version_reachable(crm: CRM) -> None:
    """After the default erase no dead row version is reachable (PostgreSQL: pruned pages)."""
    erased, _ = _setup(crm, shared="spring campaign reply")
    crm.customers.erase(erased)
    if crm.engine.dialect.name != "postgresql":
        path = Path(crm.engine.url.database or "")
        wal = path.with_name(path.name + "-wal")
        assert not wal.exists() or wal.stat().st_size == 0  # checkpointed and truncated
        return
    with crm.engine.connect() as conn:
        conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pageinspect SCHEMA public")
        # Every line pointer of the customers table is a live tuple or unused: nothing dead.
        flags = conn.exec_driver_sql(
            "SELECT lp_flags, t_xmax FROM "
            "public.heap_page_items(public.get_raw_page('crm_customers', 0))"
        ).all()
        conn.commit()
    # Line pointers: 1 normal (holds a tuple), 2 redirect and 0 unused (hold no data), 3 dead.
    assert 3 not in {flag for flag, _ in flags}, flags
    assert sum(1 for flag, _ in flags if flag == 1) == 2, flags  # the two customers' live rows
