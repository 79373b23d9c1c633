"""Export, erasure, deletion and merge of a customer's campaign rows.

* export: the campaigns the customer was in (group, variant, stratum, when
  assigned) and the messages asked for them (step, state, reason), JSON-safe;
* erase: the assignment rows stay (group, variant, stratum: no personal data,
  linked to the anonymised customer record core keeps), so that every
  campaign's results stay reproducible; the message rows (``campaigns_sends``)
  are deleted;
* deletion (``crm_customers_deleted``): both go (the results of the campaigns
  then count one member fewer);
* merge (``crm_customers_merged``): the merged customer's rows move to the
  kept one, except in a campaign both were in, where the kept customer's
  assignment stays and the merged one's rows are deleted.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, select, update

from crmcore import UnitOfWork
from crmcore.access import Action
from crmcore.scoping import enforce_declared, requires
from crmcore_campaigns.tables import recipients_table, sends_table


def _safe(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


@requires(Action.EXPORT, customer="customer_id")
def export(uow: UnitOfWork, customer_id: int) -> dict[str, Any] | None:
    """The customer's campaign assignments and messages (``None`` when there are none)."""
    recipients, sends = recipients_table(uow.crm.metadata), sends_table(uow.crm.metadata)
    assigned = uow.connection.execute(
        select(recipients)
        .where(recipients.c.customer_id == customer_id)
        .order_by(recipients.c.campaign_id)
    ).all()
    sent = uow.connection.execute(
        select(sends)
        .where(sends.c.customer_id == customer_id)
        .order_by(sends.c.campaign_id, sends.c.step)
    ).all()
    if not assigned and not sent:
        return None
    return {
        "recipients": [{k: _safe(v) for k, v in r._mapping.items()} for r in assigned],
        "messages": [{k: _safe(v) for k, v in r._mapping.items()} for r in sent],
    }


@requires(Action.ERASE, customer="customer_id")
def erase(uow: UnitOfWork, customer_id: int) -> None:
    """Delete the customer's message rows; keep the assignment rows (see module docstring)."""
    sends = sends_table(uow.crm.metadata)
    uow.connection.execute(delete(sends).where(sends.c.customer_id == customer_id))


@requires(Action.DELETE, customer="customer_ids")
def forget(uow: UnitOfWork, customer_ids: Sequence[int]) -> None:
    """Delete the rows of customers about to be deleted."""
    if not customer_ids:
        return
    ids = list(customer_ids)
    for table in (sends_table(uow.crm.metadata), recipients_table(uow.crm.metadata)):
        uow.connection.execute(delete(table).where(table.c.customer_id.in_(ids)))


@requires(Action.WRITE, customer=lambda crm, ctx, a: [a["kept_id"], a["merged_id"]])
def merge_rows(uow: UnitOfWork, kept_id: int, merged_id: int) -> int:
    """Move ``merged_id``'s rows to ``kept_id`` (see module docstring); return how many moved."""
    recipients = recipients_table(uow.crm.metadata)
    kept_campaigns = [
        int(c)
        for c in uow.connection.execute(
            select(recipients.c.campaign_id).where(recipients.c.customer_id == kept_id)
        ).scalars()
    ]
    moved = 0
    for table in (sends_table(uow.crm.metadata), recipients):
        if kept_campaigns:
            uow.connection.execute(
                delete(table).where(
                    table.c.customer_id == merged_id, table.c.campaign_id.in_(kept_campaigns)
                )
            )
        result = uow.connection.execute(
            update(table).where(table.c.customer_id == merged_id).values(customer_id=kept_id)
        )
        moved += int(result.rowcount or 0)
    return moved


enforce_declared(__name__)

__all__ = ["erase", "export", "forget", "merge_rows"]
