"""Export, erasure, deletion and merge of a customer's messages.

* export: every message to the customer (with its clicks) and every
  unsubscribe, JSON-safe;
* erase: the customer's messages keep their channel, purpose, state, times
  (``updated_at`` too, so the report's figures stay where they were)
  and template (so counts still add up) but lose recipient, subject, bodies,
  detail and provider id; those not sent yet become ``refused`` with reason
  ``erased``; their clicks lose the URL. Later enqueues are refused
  (``erased``) by the rules;
* deletion (``crm_customers_deleted``): the customers' messages and
  unsubscribes are deleted;
* merge (``crm_customers_merged``): the merged customer's messages and
  unsubscribes move to the kept one (frequency caps then count both).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import delete, select, update

from crmcore import UnitOfWork
from crmcore.access import Action
from crmcore.scoping import enforce_declared, requires
from crmcore_messaging.tables import clicks_table, messages_table, unsubscribes_table

#: States of a message that has not been handed to a channel yet.
PENDING = ("queued", "deferred")


def _safe(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


@requires(Action.EXPORT, customer="customer_id")
def export(uow: UnitOfWork, customer_id: int) -> dict[str, Any] | None:
    """The customer's messages, clicks and unsubscribes (``None`` when there are none)."""
    metadata = uow.crm.metadata
    messages, clicks = messages_table(metadata), clicks_table(metadata)
    unsubscribes = unsubscribes_table(metadata)
    rows = uow.connection.execute(
        select(messages).where(messages.c.customer_id == customer_id).order_by(messages.c.id)
    ).all()
    gone = uow.connection.execute(
        select(unsubscribes)
        .where(unsubscribes.c.customer_id == customer_id)
        .order_by(unsubscribes.c.id)
    ).all()
    if not rows and not gone:
        return None
    clicked = uow.connection.execute(
        select(clicks)
        .join(messages, messages.c.id == clicks.c.message_id)
        .where(messages.c.customer_id == customer_id)
        .order_by(clicks.c.id)
    ).all()
    return {
        "messages": [{k: _safe(v) for k, v in r._mapping.items()} for r in rows],
        "clicks": [{k: _safe(v) for k, v in r._mapping.items()} for r in clicked],
        "unsubscribes": [{k: _safe(v) for k, v in r._mapping.items()} for r in gone],
    }


@requires(Action.ERASE, customer="customer_id")
def erase(uow: UnitOfWork, customer_id: int) -> None:
    """Empty the customer's messages; refuse those not sent yet (reason ``erased``)."""
    metadata = uow.crm.metadata
    messages, clicks = messages_table(metadata), clicks_table(metadata)
    mine = messages.c.customer_id == customer_id
    uow.connection.execute(
        update(messages)
        .where(mine, messages.c.state.in_(PENDING))
        .values(state="refused", reason="erased", updated_at=uow.now)
    )
    uow.connection.execute(
        update(messages)
        .where(mine)
        .values(
            recipient=None,
            subject=None,
            body_text=None,
            body_html=None,
            detail=None,
            provider_id=None,
        )
    )
    uow.connection.execute(
        update(clicks)
        .where(clicks.c.message_id.in_(select(messages.c.id).where(mine)))
        .values(url="")
    )


@requires(Action.DELETE, customer="customer_ids")
def forget(uow: UnitOfWork, customer_ids: Sequence[int]) -> None:
    """Delete the messages and unsubscribes of customers about to be deleted."""
    if not customer_ids:
        return
    ids = list(customer_ids)
    metadata = uow.crm.metadata
    for table in (unsubscribes_table(metadata), messages_table(metadata)):
        uow.connection.execute(delete(table).where(table.c.customer_id.in_(ids)))


@requires(Action.WRITE, customer=lambda crm, ctx, a: [a["kept_id"], a["merged_id"]])
def merge_rows(uow: UnitOfWork, kept_id: int, merged_id: int) -> int:
    """Move ``merged_id``'s messages and unsubscribes to ``kept_id``; return messages moved."""
    metadata = uow.crm.metadata
    unsubscribes = unsubscribes_table(metadata)
    uow.connection.execute(
        update(unsubscribes)
        .where(unsubscribes.c.customer_id == merged_id)
        .values(customer_id=kept_id)
    )
    messages = messages_table(metadata)
    moved = uow.connection.execute(
        update(messages).where(messages.c.customer_id == merged_id).values(customer_id=kept_id)
    )
    return int(moved.rowcount or 0)


enforce_declared(__name__)
