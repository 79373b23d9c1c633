"""The events core emits, built from its entities: ids, codes and amounts only.

Each function appends one group of events to the unit of work (as a compact
field table: these run on the bulk paths); the services call them next to
the matching in-transaction hook. Enum members go in as they are: they are
``StrEnum`` members, which JSON writes as their values.
"""

from __future__ import annotations

from collections.abc import Sequence

from crmcore.events.model import CORE_EVENT_TYPES
from crmcore.model.entities import Customer, CustomerChange, Interaction, LifecycleEvent
from crmcore.unit_of_work import UnitOfWork

_CUSTOMER_CREATED = ("customer_id", *CORE_EVENT_TYPES["customer.created"])
_INTERACTION_RECORDED = ("customer_id", *CORE_EVENT_TYPES["interaction.recorded"])
_LIFECYCLE_CHANGED = ("customer_id", *CORE_EVENT_TYPES["lifecycle.changed"])


def customers_created(uow: UnitOfWork, customers: Sequence[Customer]) -> None:
    """``customer.created``: kind, stage and source channel of each new customer."""
    uow.emit_rows(
        "customer.created",
        _CUSTOMER_CREATED,
        [
            (
                c.id,
                c.kind.value,
                c.stage.value,
                c.source_channel.value if c.source_channel else None,
            )
            for c in customers
        ],
    )


def customers_updated(uow: UnitOfWork, changes: Sequence[CustomerChange]) -> None:
    """``customer.updated``: the names of the fields that changed (never their values)."""
    uow.emit_rows(
        "customer.updated",
        ("customer_id", "changed"),
        [(c.after.id, sorted(c.changed)) for c in changes if c.changed],
    )


def customers_removed(uow: UnitOfWork, event_type: str, customer_ids: Sequence[int]) -> None:
    """``customer.deleted`` or ``customer.erased``."""
    uow.emit_rows(event_type, ("customer_id",), [(cid,) for cid in customer_ids])


def interactions_recorded(uow: UnitOfWork, interactions: Sequence[Interaction]) -> None:
    """``interaction.recorded``: id, kind, channel, time, amount and currency (no text)."""
    uow.emit_rows(
        "interaction.recorded",
        _INTERACTION_RECORDED,
        [
            (
                i.customer_id,
                i.id,
                i.kind,
                i.channel,
                i.occurred_at.isoformat(),
                None if i.amount is None else str(i.amount),
                i.currency,
            )
            for i in interactions
        ],
    )


def lifecycle_changed(uow: UnitOfWork, events: Sequence[LifecycleEvent]) -> None:
    """``lifecycle.changed``: from and to stage (the free-text reason stays out)."""
    uow.emit_rows(
        "lifecycle.changed",
        _LIFECYCLE_CHANGED,
        [(e.customer_id, e.from_stage, e.to_stage) for e in events],
    )
