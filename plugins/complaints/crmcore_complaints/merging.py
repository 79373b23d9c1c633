"""A merged customer's complaints, compensations and SLA breaches move to the customer kept."""

from __future__ import annotations

from sqlalchemy import update

from crmcore.unit_of_work import UnitOfWork
from crmcore_complaints.tables import breaches_table, cases_table, compensations_table


def merge_rows(ctx: UnitOfWork, keep_id: int, duplicate_id: int) -> None:
    """Re-point ``duplicate_id``'s complaint rows at ``keep_id`` (inside the merge transaction).

    A case keeps its number, history, status and SLA clock; open cases stay
    open under the kept customer.
    """
    metadata = ctx.crm.metadata
    for table in (cases_table(metadata), compensations_table(metadata), breaches_table(metadata)):
        ctx.connection.execute(
            update(table).where(table.c.customer_id == duplicate_id).values(customer_id=keep_id)
        )


__all__ = ["merge_rows"]
