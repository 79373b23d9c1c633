"""The outbox table: writing a unit of work's events, reading them back in commit order."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

from sqlalchemy import Connection, and_, insert, select, text, update

from crmcore.errors import ValidationError
from crmcore.events.model import CORE_EVENT_TYPES, Event, expand
from crmcore.storage.tables import events
from crmcore.unit_of_work import UnitOfWork

# Serialises the outbox inserts of concurrent PostgreSQL transactions until they commit,
# so that row ids follow commit order (SQLite writers are serialised already).
_ADVISORY_KEY = 0x63726D65  # "crme"


def write_pending(uow: UnitOfWork) -> list[Event]:
    """Write the unit of work's pending events to the outbox; return them as events.

    Called just before the transaction commits. On PostgreSQL it takes a
    transaction-level advisory lock first, so rows get their ids in commit
    order: a relay reading ``id > last`` never skips a row that commits late.
    """
    if not uow.pending_events:
        return []
    connection = uow.connection
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_KEY})
    written: list[Event] = []
    for event_type, items in uow.pending_events:
        try:
            json.dumps(items)
        except (TypeError, ValueError) as exc:
            raise ValidationError(
                f"event {event_type}: data is not JSON-safe: {exc}", field="data"
            ) from None
        event_id = uuid.uuid4().hex
        position = connection.execute(
            insert(events)
            .values(event_id=event_id, type=event_type, at=uow.now, actor=uow.actor, items=items)
            .returning(events.c.id)
        ).scalar_one()
        written.extend(expand(position, event_id, event_type, uow.now, uow.actor, items))
    uow.pending_events.clear()
    return written


def read_events(
    connection: Connection,
    *,
    after: int = 0,
    event_type: str | None = None,
    customer_id: int | None = None,
    page: int = 200,
    limit_rows: int | None = None,
) -> Iterator[Event]:
    """Events of rows after position ``after``, in commit order, read a page of rows at a time.

    ``limit_rows`` stops after that many outbox rows (whole rows: every event of a
    row is yielded or none).
    """
    while True:
        if limit_rows is not None:
            if limit_rows <= 0:
                return
            page = min(page, limit_rows)
            limit_rows -= page
        conditions = [events.c.id > after]
        if event_type is not None:
            conditions.append(events.c.type == event_type)
        rows = connection.execute(
            select(events).where(and_(*conditions)).order_by(events.c.id).limit(page)
        ).all()
        for row in rows:
            items = row._mapping["items"]
            for event in expand(row.id, row.event_id, row.type, row.at, row.actor, items):
                if customer_id is None or event.customer_id == customer_id:
                    yield event
        if len(rows) < page:
            return
        after = rows[-1].id


def redact_customer_events(uow: UnitOfWork, customer_id: int) -> int:
    """Strip the data of plugin events about an erased customer; return the rows changed.

    Core events carry no personal data and stay as they are; a plugin event
    item about the customer keeps only ``customer_id`` and ``redacted``.
    """
    connection = uow.connection
    if connection.dialect.name == "postgresql":
        about = text("crm_events.items @> CAST(:probe AS jsonb)").bindparams(
            probe=json.dumps([{"customer_id": customer_id}])
        )
    else:
        about = text(
            "EXISTS (SELECT 1 FROM json_each(crm_events.items) "
            "WHERE json_extract(value, '$.customer_id') = :cid)"
        ).bindparams(cid=customer_id)
    rows = connection.execute(
        select(events.c.id, events.c["items"]).where(
            about, events.c.type.not_in(list(CORE_EVENT_TYPES))
        )
    ).all()
    for row_id, items in rows:
        redacted: list[dict[str, Any]] = [
            {"customer_id": customer_id, "redacted": True}
            if item.get("customer_id") == customer_id
            else item
            for item in items
        ]
        connection.execute(update(events).where(events.c.id == row_id).values(items=redacted))
    return len(rows)
