"""The loyalty plugin's part of data portability, erasure and deletion (called by core's hooks).

Core checks the operation (export, erase, delete) before calling the hook;
each function declares the same requirement again, so a call from
anywhere else is checked too.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, or_, select, update

from crmcore import UnitOfWork
from crmcore.access import Action
from crmcore.scoping import enforce_declared, requires
from crmcore_loyalty import ledger
from crmcore_loyalty.records import LedgerEntry, Member
from crmcore_loyalty.tables import (
    allocations_table,
    ledger_table,
    lots_table,
    members_table,
    tier_changes_table,
)

__all__ = ["erase", "export", "forget"]


@requires(Action.EXPORT, customer="customer_id")
def export(ctx: UnitOfWork, customer_id: int) -> dict[str, Any] | None:
    """Everything the plugin holds on a customer, JSON-safe (``None``: never enrolled)."""
    crm = ctx.crm
    members = members_table(crm.metadata)
    table = ledger_table(crm.metadata)
    tiers = tier_changes_table(crm.metadata)
    row = ctx.connection.execute(
        select(members).where(members.c.customer_id == customer_id)
    ).first()
    entries = ctx.connection.execute(
        select(table)
        .where(table.c.customer_id == customer_id)
        .order_by(table.c.occurred_at, table.c.id)
    ).all()
    if row is None and not entries:
        return None
    changes = ctx.connection.execute(
        select(tiers).where(tiers.c.customer_id == customer_id).order_by(tiers.c.at, tiers.c.id)
    ).all()
    return {
        "member": None if row is None else Member.from_row(row).as_dict(),
        "balance": sum(int(e.points) for e in entries),
        "ledger": [LedgerEntry.from_row(e).as_dict() for e in entries],
        "tier_changes": [
            {
                "from_tier": c.from_tier,
                "to_tier": c.to_tier,
                "at": c.at.isoformat(),
                "reason": c.reason,
            }
            for c in changes
        ],
    }


def _delete_lots(ctx: UnitOfWork, customer_ids: Sequence[int]) -> None:
    lots = lots_table(ctx.crm.metadata)
    allocations = allocations_table(ctx.crm.metadata)
    for chunk in ledger.chunks(customer_ids):
        mine = select(lots.c.id).where(lots.c.customer_id.in_(chunk))
        ctx.connection.execute(delete(allocations).where(allocations.c.lot_id.in_(mine)))
        ctx.connection.execute(delete(lots).where(lots.c.customer_id.in_(chunk)))


@requires(Action.ERASE, customer="customer_id")
def erase(ctx: UnitOfWork, customer_id: int) -> None:
    """Right to erasure: forfeit the balance, then keep only anonymous ledger aggregates.

    The remaining balance is written off by an ``adjust`` entry; every
    ledger entry then loses its link to the customer (customer, interaction
    and purchase ids, key, reason, actor, details become NULL) and keeps
    only kind, points, amount and dates, so programme totals still add up.
    Lots, allocations, tier history and the member row are deleted, and
    referral links to the customer are cut.
    """
    crm = ctx.crm
    table = ledger_table(crm.metadata)
    members = members_table(crm.metadata)
    ledger.lock_members(ctx, [customer_id])
    owed = ledger.balances(ctx, [customer_id])[customer_id]
    if owed > 0:
        ledger.apply_debits(
            ctx,
            [
                ledger.Debit(
                    row=ledger.entry_row(
                        ctx,
                        customer_id=customer_id,
                        kind="adjust",
                        points=0,
                        key=f"erase:{uuid.uuid4().hex}",
                        occurred_at=ctx.now,
                        reason="erasure: balance forfeited",
                    ),
                    wanted=owed,
                    partial=True,
                )
            ],
        )
    _delete_lots(ctx, [customer_id])
    ctx.connection.execute(
        update(table)
        .where(
            or_(
                table.c.customer_id == customer_id,
                table.c.idempotency_key == f"referral:{customer_id}",
            )
        )
        .values(
            customer_id=None,
            interaction_id=None,
            purchase_id=None,
            reason=None,
            idempotency_key=None,
            actor=None,
            details=None,
        )
    )
    ctx.connection.execute(
        update(members).where(members.c.referred_by == customer_id).values(referred_by=None)
    )
    ctx.connection.execute(
        delete(tier_changes_table(crm.metadata)).where(
            tier_changes_table(crm.metadata).c.customer_id == customer_id
        )
    )
    ctx.connection.execute(delete(members).where(members.c.customer_id == customer_id))


@requires(Action.DELETE, customer="customer_ids")
def forget(ctx: UnitOfWork, customer_ids: Sequence[int]) -> None:
    """Delete every row of customers about to be deleted (``crm_customers_deleted``)."""
    if not customer_ids:
        return
    crm = ctx.crm
    table = ledger_table(crm.metadata)
    members = members_table(crm.metadata)
    tiers = tier_changes_table(crm.metadata)
    _delete_lots(ctx, customer_ids)
    for chunk in ledger.chunks(customer_ids):
        ctx.connection.execute(
            delete(allocations_table(crm.metadata)).where(
                allocations_table(crm.metadata).c.entry_id.in_(
                    select(table.c.id).where(table.c.customer_id.in_(chunk))
                )
            )
        )
        ctx.connection.execute(delete(table).where(table.c.customer_id.in_(chunk)))
        ctx.connection.execute(delete(tiers).where(tiers.c.customer_id.in_(chunk)))
        ctx.connection.execute(
            update(members).where(members.c.referred_by.in_(chunk)).values(referred_by=None)
        )
        ctx.connection.execute(delete(members).where(members.c.customer_id.in_(chunk)))


# A public service function added without @requires refuses every user's view.
enforce_declared(__name__)
