"""The events core emits, built from its entities: ids, codes and amounts only.

Each function appends one group of events to the unit of work; the services
call them next to the matching in-transaction hook.
"""

from __future__ import annotations

from collections.abc import Sequence

from crmcore.entities import Customer, CustomerChange, Interaction, LifecycleEvent
from crmcore.unit_of_work import UnitOfWork


def customers_created(uow: UnitOfWork, customers: Sequence[Customer]) -> None:
    """``customer.created``: kind, stage and source channel of each new customer."""
    uow.emit_many(
        "customer.created",
        [
            {
                "customer_id": c.id,
                "kind": c.kind.value,
                "stage": c.stage.value,
                "source_channel": c.source_channel.value if c.source_channel else None,
            }
            for c in customers
        ],
    )


def customers_updated(uow: UnitOfWork, changes: Sequence[CustomerChange]) -> None:
    """``customer.updated``: the names of the fields that changed (never their values)."""
    uow.emit_many(
        "customer.updated",
        [{"customer_id": c.after.id, "changed": sorted(c.changed)} for c in changes if c.changed],
    )


def customers_removed(uow: UnitOfWork, event_type: str, customer_ids: Sequence[int]) -> None:
    """``customer.deleted`` or ``customer.erased``."""
    uow.emit_many(event_type, [{"customer_id": cid} for cid in customer_ids])


def interactions_recorded(uow: UnitOfWork, interactions: Sequence[Interaction]) -> None:
    """``interaction.recorded``: id, kind, channel, time, amount and currency (no text)."""
    uow.emit_many(
        "interaction.recorded",
        [
            {
                "customer_id": i.customer_id,
                "interaction_id": i.id,
                "kind": i.kind.value,
                "channel": i.channel.value,
                "occurred_at": i.occurred_at.isoformat(),
                "amount": None if i.amount is None else str(i.amount),
                "currency": i.currency,
            }
            for i in interactions
        ],
    )


def lifecycle_changed(uow: UnitOfWork, events: Sequence[LifecycleEvent]) -> None:
    """``lifecycle.changed``: from and to stage (the free-text reason stays out)."""
    uow.emit_many(
        "lifecycle.changed",
        [
            {
                "customer_id": e.customer_id,
                "from": e.from_stage.value if e.from_stage else None,
                "to": e.to_stage.value,
            }
            for e in events
        ],
    )
