"""The bulk write helpers: insert_rows, among() and the SQLite timestamp format."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import DateTime, select
from sqlalchemy.dialects import sqlite

from crmcore import CRM
from crmcore.storage.bulk import insert_rows
from crmcore.storage.filters import among
from crmcore.storage.tables import customers, interactions
from crmcore.storage.types import UTCDateTime


def test_sqlite_timestamps_use_sqlalchemys_text_format() -> None:
    dialect = sqlite.dialect()
    reference = DateTime(timezone=True).dialect_impl(dialect).bind_processor(dialect)
    ours = UTCDateTime()._cached_bind_processor(dialect)
    assert reference is not None and ours is not None
    for value in (
        datetime(2024, 1, 1, tzinfo=UTC),
        datetime(999, 5, 6, 7, 8, 9, 12, tzinfo=timezone(timedelta(hours=3))),
        datetime(2024, 12, 31, 23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=-5))),
    ):
        assert ours(value) == reference(value.astimezone(UTC).replace(tzinfo=None))
    with pytest.raises(ValueError, match="timezone-aware"):
        ours(datetime(2024, 1, 1))


def test_insert_rows_converts_repeated_and_distinct_values(crm: CRM) -> None:
    ada = crm.customers.create({"name": "Ada"})
    t1 = datetime(2025, 1, 1, 12, tzinfo=UTC)
    t2 = datetime(2025, 1, 1, 13, tzinfo=timezone(timedelta(hours=1)))  # equal to t1
    rows = [
        {
            "id": 1000 + i,
            "customer_id": ada.id,
            "kind": "purchase",
            "channel": "web",
            "direction": "inbound",
            "occurred_at": t1 if i % 2 else t2,
            "amount": Decimal("1.5") if i % 3 else Decimal("1.50"),
            "currency": "EUR",
            "items": [] if i % 2 else [{"sku": f"s{i}", "quantity": "1"}],
            "payload": {} if i < 3 else {"n": i},
        }
        for i in range(6)
    ]
    with crm.unit_of_work() as uow:
        insert_rows(uow.connection, interactions, rows)
    stored = crm.interactions.list(customer_id=ada.id, limit=10).items
    assert sorted(i.id for i in stored) == [1000 + i for i in range(6)]
    by_id = {i.id: i for i in stored}
    for i in range(6):
        got = by_id[1000 + i]
        assert got.occurred_at == t1
        assert got.amount == Decimal("1.5")
        assert got.payload == ({} if i < 3 else {"n": i})
        assert [it.sku for it in got.items] == ([] if i % 2 else [f"s{i}"])


def test_among_matches_ints_and_strings_with_one_parameter(crm: CRM) -> None:
    made = crm.customers.create_many([{"name": f"C{i}", "email": f"c{i}@x.org"} for i in range(5)])
    ids = [c.id for c in made]
    with crm.reading() as uow:
        c = uow.connection
        found = c.execute(
            select(customers.c.id).where(among(c, customers.c.id, [ids[0], ids[3], 10**9]))
        ).scalars()
        assert sorted(found) == [ids[0], ids[3]]
        found = c.execute(
            select(customers.c.id).where(
                among(c, customers.c.email_norm, ["c2@x.org", "nobody@x.org", "o'hara@x.org"])
            )
        ).scalars()
        assert list(found) == [ids[2]]
        assert c.execute(select(customers.c.id).where(among(c, customers.c.id, []))).all() == []
