"""The values the sales service functions return: deals, their lines, contacts and history."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from attrs import field, frozen


def _iso(value: date | datetime | None) -> str | None:
    return None if value is None else value.isoformat()


@frozen
class DealContact:
    """A contact person involved in a deal and their role in it."""

    contact_id: int | None
    role: str | None = None


@frozen
class DealItem:
    """A product line of a deal: ``quantity`` x ``unit_price``."""

    product: str
    quantity: int
    unit_price: Decimal

    @property
    def total(self) -> Decimal:
        """``quantity * unit_price``."""
        return self.unit_price * self.quantity


@frozen
class HistoryEntry:
    """One changed field of a deal: ``old`` and ``new`` as text, when and by whom."""

    deal_id: int
    field: str
    old: str | None
    new: str | None
    at: datetime
    actor: str | None = None
    id: int | None = None

    def to_json(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {
            "id": self.id,
            "deal_id": self.deal_id,
            "field": self.field,
            "old": self.old,
            "new": self.new,
            "at": self.at.isoformat(),
            "actor": self.actor,
        }


@frozen
class Deal:
    """An opportunity on a customer (organisation or person).

    ``status`` is ``open``, ``won`` or ``lost``; ``stage`` is an open stage of
    the pipeline, or ``won``/``lost``. ``stale`` is computed when read (see
    :mod:`crmcore_sales.deals`).
    """

    id: int
    customer_id: int | None
    title: str
    pipeline: str
    stage: str
    status: str
    probability: int
    category: str
    amount: Decimal
    currency: str
    expected_close: date
    created_at: datetime
    updated_at: datetime
    stage_changed_at: datetime
    owner: str | None = None
    team: str | None = None
    channel: str | None = None
    campaign_id: str | None = None
    next_step: str | None = None
    notes: str | None = None
    reason: str | None = None
    competitor: str | None = None
    closed_at: datetime | None = None
    reopen_count: int = 0
    contacts: tuple[DealContact, ...] = ()
    items: tuple[DealItem, ...] = ()
    last_activity_at: datetime | None = None
    stale: bool = False
    extra: Mapping[str, Any] = field(factory=dict)

    @property
    def weighted_amount(self) -> Decimal:
        """``amount * probability / 100`` (exact)."""
        return self.amount * self.probability / 100

    def to_json(self) -> dict[str, Any]:
        """JSON-safe form (Decimals as strings, dates as ISO text)."""
        return {
            "id": self.id,
            "customer_id": self.customer_id,
            "title": self.title,
            "pipeline": self.pipeline,
            "stage": self.stage,
            "status": self.status,
            "probability": self.probability,
            "category": self.category,
            "amount": str(self.amount),
            "currency": self.currency,
            "weighted_amount": str(self.weighted_amount),
            "expected_close": self.expected_close.isoformat(),
            "owner": self.owner,
            "team": self.team,
            "channel": self.channel,
            "campaign_id": self.campaign_id,
            "next_step": self.next_step,
            "notes": self.notes,
            "reason": self.reason,
            "competitor": self.competitor,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "stage_changed_at": self.stage_changed_at.isoformat(),
            "closed_at": _iso(self.closed_at),
            "reopen_count": self.reopen_count,
            "last_activity_at": _iso(self.last_activity_at),
            "stale": self.stale,
            "contacts": [{"contact_id": c.contact_id, "role": c.role} for c in self.contacts],
            "items": [
                {
                    "product": i.product,
                    "quantity": i.quantity,
                    "unit_price": str(i.unit_price),
                    "total": str(i.total),
                }
                for i in self.items
            ],
        }


__all__ = ["Deal", "DealContact", "DealItem", "HistoryEntry"]
