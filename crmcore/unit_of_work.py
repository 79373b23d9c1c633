"""The unit of work: one transaction shared by a core operation and every plugin's reaction."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from attrs import field, frozen
from sqlalchemy import Connection

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
    #: Events emitted and not yet written to the outbox, as (type, items).
    pending_events: list[tuple[str, list[dict[str, Any]]]] = field(
        factory=list, eq=False, repr=False
    )
    #: Ids of the outbox rows this unit of work wrote (numbered at commit).
    outbox_rows: list[int] = field(factory=list, eq=False, repr=False)

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
        from crmcore.events.model import check_event_type
        from crmcore.events.outbox import FLUSH_ITEMS, write_pending

        check_event_type(event_type)
        batch = [dict(item) for item in items]
        if not batch:
            return
        if self.pending_events and self.pending_events[-1][0] == event_type:
            self.pending_events[-1][1].extend(batch)
        else:
            self.pending_events.append((event_type, batch))
        if sum(len(group) for _, group in self.pending_events) >= FLUSH_ITEMS:
            write_pending(self)
