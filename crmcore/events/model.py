"""What an event is: a type, the customer it is about, JSON-safe data, a stable id."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

from attrs import field, frozen

#: The events core emits, and the data each carries (ids, codes and amounts: never personal data).
CORE_EVENT_TYPES: Mapping[str, tuple[str, ...]] = {
    "customer.created": ("kind", "stage", "source_channel"),
    "customer.updated": ("changed",),
    "customer.deleted": (),
    "customer.erased": (),
    "customer.merged": ("merged_id",),
    "interaction.recorded": (
        "interaction_id",
        "kind",
        "channel",
        "occurred_at",
        "amount",
        "currency",
    ),
    "lifecycle.changed": ("from", "to"),
    # Plus the ids (and role or link type codes) of its kind: crmcore.services.accounts.
    "account.relationship_changed": ("kind", "action"),
}


@frozen
class Event:
    """One domain event, as ``crm_events_committed`` and the relay see it.

    ``id`` is stable (the outbox row's id and the item's index in it):
    consumers de-duplicate on it. ``position`` is the outbox row's position
    in commit order; events of one row share it. ``data`` never holds the
    customer's personal data for core events (see :data:`CORE_EVENT_TYPES`).
    """

    id: str
    type: str
    customer_id: int | None
    data: Mapping[str, Any] = field(hash=False)
    at: datetime
    actor: str | None
    position: int

    def to_json(self) -> dict[str, Any]:
        """The event as a JSON-safe dict (what the relay publishes)."""
        return {
            "id": self.id,
            "type": self.type,
            "customer_id": self.customer_id,
            "data": dict(self.data),
            "at": self.at.isoformat(),
            "actor": self.actor,
            "position": self.position,
        }


def expand(
    position: int,
    event_id: str,
    event_type: str,
    at: datetime,
    actor: str | None,
    items: Any,
) -> Iterator[Event]:
    """The events of one outbox row (one per item; ``items`` a dict list or a field table)."""
    if isinstance(items, dict):
        fields = items["fields"]
        items = [dict(zip(fields, row, strict=True)) for row in items["rows"]]
    for index, item in enumerate(items):
        data = {k: v for k, v in item.items() if k != "customer_id"}
        yield Event(
            id=f"{event_id}.{index}",
            type=event_type,
            customer_id=item.get("customer_id"),
            data=data,
            at=at,
            actor=actor,
            position=position,
        )
