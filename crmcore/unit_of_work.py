"""The unit of work: one transaction shared by a core operation and every plugin's reaction."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from attrs import field, frozen
from sqlalchemy import Connection

from crmcore.model.event_types import FLUSH_ITEMS, check_event_type, item_count

if TYPE_CHECKING:
    from crmcore.app import CRM


@frozen
class UnitOfWork:
    """What event, validation and privacy hooks receive as ``ctx``.

    ``connection`` is inside the open transaction: whatever a plugin writes
    through it commits or rolls back with the core operation. ``now`` is the
    clock's time at the start of the operation, ``actor`` who acts (free text
    chosen by the embedding application, ``None`` when unknown).

    Pass ``ctx=`` to any service method to make it join this transaction
    instead of opening its own.

    :meth:`emit` records a domain event: it is written to the outbox in
    this transaction and delivered after it commits (``crmcore.events``).
    """

    connection: Connection
    crm: CRM
    now: datetime
    actor: str | None = None
    #: Events emitted and not yet written to the outbox: (type, items) where items is a
    #: list of dicts or, from :meth:`emit_rows`, ``{"fields": [...], "rows": [[...], ...]}``.
    pending_events: list[tuple[str, Any]] = field(factory=list, eq=False, repr=False)
    #: Ids of the outbox rows this unit of work wrote (numbered at commit).
    outbox_rows: list[int] = field(factory=list, eq=False, repr=False)
    #: Writes the pending events to the outbox once they pile up (set by the CRM:
    #: the outbox depends on the unit of work, not the other way round).
    flush_events: Callable[[UnitOfWork], None] | None = field(default=None, eq=False, repr=False)

    def emit(
        self, event_type: str, customer_id: int | None, data: Mapping[str, Any] | None = None
    ) -> None:
        """Record one event of ``event_type`` (``"<plugin>.<what_happened>"``) about a customer.

        ``data`` must be JSON-safe and should hold ids and codes, not personal
        data (erasing the customer redacts plugin events' data). The event is
        written to the outbox in this transaction and is delivered only if it
        commits.
        """
        self.emit_many(event_type, [{"customer_id": customer_id, **(data or {})}])

    def emit_many(self, event_type: str, items: Iterable[Mapping[str, Any]]) -> None:
        """Record several events of one type; each item holds ``customer_id`` and the data."""
        check_event_type(event_type)
        batch = [dict(item) for item in items]
        if not batch:
            return
        last = self.pending_events[-1] if self.pending_events else None
        if last is not None and last[0] == event_type and isinstance(last[1], list):
            last[1].extend(batch)
        else:
            self.pending_events.append((event_type, batch))
        self._maybe_flush()

    def emit_rows(
        self, event_type: str, fields: Sequence[str], rows: Iterable[Sequence[Any]]
    ) -> None:
        """Record several events of one type given as rows of ``fields`` (compact; bulk paths).

        ``fields[0]`` must be ``"customer_id"``; each row holds one value per
        field. The events are those :meth:`emit_many` would record with
        ``dict(zip(fields, row))``, stored without repeating the field names.
        """
        check_event_type(event_type)
        if not fields or fields[0] != "customer_id":
            raise ValueError("emit_rows: the first field must be 'customer_id'")
        table = rows if isinstance(rows, list) else list(rows)  # rows are written as JSON arrays
        if not table:
            return
        last = self.pending_events[-1] if self.pending_events else None
        if (
            last is not None
            and last[0] == event_type
            and isinstance(last[1], dict)
            and last[1]["fields"] == list(fields)
        ):
            last[1]["rows"].extend(table)
        else:
            self.pending_events.append((event_type, {"fields": list(fields), "rows": table}))
        self._maybe_flush()

    def _maybe_flush(self) -> None:
        if self.flush_events is None:
            return
        if sum(item_count(items) for _, items in self.pending_events) >= FLUSH_ITEMS:
            self.flush_events(self)


def acting_user(ctx: UnitOfWork) -> str | None:
    """Who acts in ``ctx``: the principal of a user's view, else the trusted caller's ``actor``.

    What core records as the actor of lifecycle moves, audit entries and
    events; a name a user's view passes as ``actor=`` never replaces its
    principal.
    """
    principal = ctx.crm.principal
    return principal.user if principal is not None else ctx.actor
