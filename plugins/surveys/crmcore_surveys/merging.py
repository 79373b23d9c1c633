"""A merged customer's invitations and responses move to the customer kept."""

from __future__ import annotations

from sqlalchemy import update

from crmcore.unit_of_work import UnitOfWork
from crmcore_surveys.tables import invitations_table, responses_table


def merge_rows(ctx: UnitOfWork, keep_id: int, duplicate_id: int) -> None:
    """Re-point ``duplicate_id``'s invitations and responses at ``keep_id`` (merge transaction).

    Answers hang off responses and move with them; a response keeps its
    survey, time and scores, so survey reports count it once, under the kept
    customer.
    """
    metadata = ctx.crm.metadata
    for table in (invitations_table(metadata), responses_table(metadata)):
        ctx.connection.execute(
            update(table).where(table.c.customer_id == duplicate_id).values(customer_id=keep_id)
        )


__all__ = ["merge_rows"]
