"""The outbox table: writing a unit of work's events, numbering them at commit, reading them.

A unit of work's events are written as they accumulate (a row per group of
up to :data:`crmcore.events.model.FLUSH_ITEMS` same-type events), so a bulk import holds no more
than one group in memory. Just before the commit the unit of work's rows get
their *positions*: consecutive numbers after the highest committed one,
taken under a transaction-level advisory lock on PostgreSQL (SQLite writers
are serialised anyway). Positions therefore follow commit order, and a
reader asking for ``position > last`` never skips a row that committed late.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import Connection, and_, func, insert, select, text, update
from sqlalchemy.exc import StatementError

from crmcore.errors import ValidationError
from crmcore.events.model import CORE_EVENT_TYPES, Event, expand
from crmcore.storage.filters import among
from crmcore.storage.tables import events
from crmcore.unit_of_work import UnitOfWork, acting_user

_ADVISORY_KEY = 0x63726D65  # "crme": serialises numbering-and-commit on PostgreSQL


def write_pending(uow: UnitOfWork) -> None:
    """Write the unit of work's pending events to the outbox (not yet numbered)."""
    if not uow.pending_events:
        return
    actor = acting_user(uow)  # the principal on a user's view, as in the audit log
    rows = [
        {
            "event_id": uuid.uuid4().hex,
            "type": event_type,
            "at": uow.now,
            "actor": actor,
            "items": items,
        }
        for event_type, items in uow.pending_events
    ]
    uow.pending_events.clear()
    try:
        ids = uow.connection.execute(insert(events).returning(events.c.id), rows).scalars().all()
    except (StatementError, TypeError, ValueError) as exc:
        cause = exc.orig if isinstance(exc, StatementError) else exc
        if not isinstance(cause, TypeError | ValueError):
            raise
        types = ", ".join(sorted({r["type"] for r in rows}))
        raise ValidationError(
            f"event {types}: data is not JSON-safe: {cause}", field="data"
        ) from None
    uow.outbox_rows.extend(ids)


def number_rows(uow: UnitOfWork) -> None:
    """Give the unit of work's outbox rows their positions; call it right before commit."""
    write_pending(uow)
    if not uow.outbox_rows:
        return
    connection = uow.connection
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_KEY})
    base = connection.execute(select(func.coalesce(func.max(events.c.position), 0))).scalar_one()
    if len(uow.outbox_rows) == 1:
        connection.execute(
            update(events).where(events.c.id == uow.outbox_rows[0]).values(position=base + 1)
        )
        return
    rank = func.row_number().over(order_by=events.c.id).label("rank")
    ranked = select(events.c.id, rank).where(among(connection, events.c.id, uow.outbox_rows))
    sub = ranked.subquery()
    connection.execute(
        update(events).where(events.c.id == sub.c.id).values(position=base + sub.c.rank)
    )


def _events_of(rows: Sequence[Any], customer_id: int | None = None) -> Iterator[Event]:
    for row in rows:
        items = row._mapping["items"]
        for event in expand(row.position, row.event_id, row.type, row.at, row.actor, items):
            if customer_id is None or event.customer_id == customer_id:
                yield event


def read_events(
    connection: Connection,
    *,
    after: int = 0,
    event_type: str | None = None,
    customer_id: int | None = None,
    page: int = 200,
    limit_rows: int | None = None,
) -> Iterator[Event]:
    """Committed events after position ``after``, in commit order, a page of rows at a time.

    ``limit_rows`` stops after that many outbox rows (whole rows: every event of a
    row is yielded or none).
    """
    while True:
        if limit_rows is not None:
            if limit_rows <= 0:
                return
            page = min(page, limit_rows)
            limit_rows -= page
        conditions = [events.c.position > after]
        if event_type is not None:
            conditions.append(events.c.type == event_type)
        rows = connection.execute(
            select(events).where(and_(*conditions)).order_by(events.c.position).limit(page)
        ).all()
        yield from _events_of(rows, customer_id)
        if len(rows) < page:
            return
        after = rows[-1].position


def read_rows(connection: Connection, row_ids: Sequence[int], page: int = 50) -> Iterator[Event]:
    """The events of the given outbox rows (a unit of work's), in position order."""
    for start in range(0, len(row_ids), page):
        chunk = row_ids[start : start + page]
        rows = connection.execute(
            select(events).where(among(connection, events.c.id, chunk)).order_by(events.c.position)
        ).all()
        yield from _events_of(rows)


def redact_customer_events(uow: UnitOfWork, customer_id: int) -> int:
    """Strip the data of plugin events about an erased customer; return the rows changed.

    Core events carry no personal data and stay as they are; a plugin event
    item about the customer keeps only ``customer_id`` and ``redacted``.
    """
    write_pending(uow)
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
        if not isinstance(items, list):
            continue
        redacted: list[dict[str, Any]] = [
            {"customer_id": customer_id, "redacted": True}
            if item.get("customer_id") == customer_id
            else item
            for item in items
        ]
        connection.execute(update(events).where(events.c.id == row_id).values(items=redacted))
    return len(rows)
