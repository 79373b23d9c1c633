"""A merged customer's loyalty rows move to the customer kept (``crm_customers_merged``).

Ledger entries, point lots and tier changes move as they are, so the kept
customer's balance becomes the sum of both balances and every lot keeps its
own expiry. Memberships: when only the duplicate was a member, its
membership moves; when both were, the kept customer's membership stays
(its number, status and tier) and takes the earlier ``joined_at``, and the
duplicate's membership row goes. Members referred by the duplicate are then
referred by the kept customer (a referral of oneself becomes none). The tier
is not re-evaluated here: the next ``crm loyalty tiers`` run uses the
combined qualifying value.
"""

from __future__ import annotations

from sqlalchemy import delete, select, update

from crmcore.unit_of_work import UnitOfWork
from crmcore_loyalty.tables import (
    ledger_table,
    lots_table,
    members_table,
    tier_changes_table,
)


def merge_rows(ctx: UnitOfWork, keep_id: int, duplicate_id: int) -> None:
    """Move ``duplicate_id``'s loyalty rows to ``keep_id`` (inside the merge's transaction)."""
    metadata = ctx.crm.metadata
    connection = ctx.connection
    for table in (ledger_table(metadata), lots_table(metadata), tier_changes_table(metadata)):
        connection.execute(
            update(table).where(table.c.customer_id == duplicate_id).values(customer_id=keep_id)
        )
    members = members_table(metadata)
    rows = {
        row.customer_id: row
        for row in connection.execute(
            select(members.c.customer_id, members.c.joined_at).where(
                members.c.customer_id.in_([keep_id, duplicate_id])
            )
        )
    }
    if duplicate_id in rows and keep_id in rows:
        earliest = min(rows[keep_id].joined_at, rows[duplicate_id].joined_at)
        connection.execute(delete(members).where(members.c.customer_id == duplicate_id))
        connection.execute(
            update(members).where(members.c.customer_id == keep_id).values(joined_at=earliest)
        )
    elif duplicate_id in rows:
        connection.execute(
            update(members).where(members.c.customer_id == duplicate_id).values(customer_id=keep_id)
        )
    connection.execute(
        update(members).where(members.c.referred_by == duplicate_id).values(referred_by=keep_id)
    )
    connection.execute(
        update(members)
        .where(members.c.customer_id == keep_id, members.c.referred_by == keep_id)
        .values(referred_by=None)
    )


__all__ = ["merge_rows"]
