"""Export, erasure, deletion and merge of a customer's activities.

* export: every activity of the customer (as the customer or as the contact
  person of an organisation's activity), JSON-safe;
* erase: the customer's activities are deleted; activities of organisations
  naming the customer as contact person keep the activity without the contact;
* deletion (``crm_customers_deleted``): the customers' activities are deleted;
* merge (``crm_customers_merged``): the merged customer's activities (and
  contact mentions) move to the kept one. Where both have a task of the same
  rule for the same day, the merged one's ``occurrence`` is cleared so that
  the unique key stays unique (the task itself is kept).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import and_, delete, exists, select, update

from crmcore import UnitOfWork
from crmcore.access import Action
from crmcore.scoping import enforce_declared, requires
from crmcore_activities.tables import activities_table


def _safe(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


@requires(Action.EXPORT, customer="customer_id")
def export(uow: UnitOfWork, customer_id: int) -> dict[str, Any] | None:
    """The customer's activities (``None`` when there are none)."""
    table = activities_table(uow.crm.metadata)
    rows = uow.connection.execute(
        select(table)
        .where((table.c.customer_id == customer_id) | (table.c.contact_id == customer_id))
        .order_by(table.c.id)
    ).all()
    if not rows:
        return None
    return {"activities": [{k: _safe(v) for k, v in r._mapping.items()} for r in rows]}


@requires(Action.ERASE, customer="customer_id")
def erase(uow: UnitOfWork, customer_id: int) -> None:
    """Delete the customer's activities; clear the customer as contact person elsewhere."""
    table = activities_table(uow.crm.metadata)
    uow.connection.execute(delete(table).where(table.c.customer_id == customer_id))
    uow.connection.execute(
        update(table).where(table.c.contact_id == customer_id).values(contact_id=None)
    )


@requires(Action.DELETE, customer="customer_ids")
def forget(uow: UnitOfWork, customer_ids: Sequence[int]) -> None:
    """Delete the activities of customers about to be deleted."""
    if not customer_ids:
        return
    table = activities_table(uow.crm.metadata)
    uow.connection.execute(delete(table).where(table.c.customer_id.in_(list(customer_ids))))


@requires(Action.WRITE, customer=lambda crm, ctx, a: [a["kept_id"], a["merged_id"]])
def merge_rows(uow: UnitOfWork, kept_id: int, merged_id: int) -> int:
    """Move ``merged_id``'s activities to ``kept_id``; return how many moved."""
    table = activities_table(uow.crm.metadata)
    other = table.alias("other")
    clash = exists().where(
        other.c.customer_id == kept_id,
        other.c.rule_id == table.c.rule_id,
        other.c.occurrence == table.c.occurrence,
    )
    uow.connection.execute(
        update(table)
        .where(and_(table.c.customer_id == merged_id, table.c.rule_id.is_not(None), clash))
        .values(occurrence=None)
    )
    moved = uow.connection.execute(select(table.c.id).where(table.c.customer_id == merged_id)).all()
    uow.connection.execute(
        update(table).where(table.c.customer_id == merged_id).values(customer_id=kept_id)
    )
    uow.connection.execute(
        update(table).where(table.c.contact_id == merged_id).values(contact_id=kept_id)
    )
    return len(moved)


enforce_declared(__name__)
