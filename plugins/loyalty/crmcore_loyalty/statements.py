"""Reading the loyalty programme: balances, ledger history, tier history, the profile section.

Each function reads one member's data, and only of a customer the acting
user may read (``@requires(Action.READ, customer=...)``).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from crmcore import CRM, Customer, NotFoundError, UnitOfWork, ValidationError
from crmcore.access import Action
from crmcore.scoping import enforce_declared, requires
from crmcore_loyalty import ledger
from crmcore_loyalty.checks import resolve_as_of
from crmcore_loyalty.membership import get_member, member_row
from crmcore_loyalty.programme import settings_of
from crmcore_loyalty.records import Balance, LedgerEntry
from crmcore_loyalty.tables import ledger_table, tier_changes_table

__all__ = ["balance", "history", "profile_section", "tier_history"]


def _profile_customer(crm: CRM, ctx: Any, arguments: Any) -> int | None:
    customer = arguments["customer"]
    return customer.id if isinstance(customer, Customer) else None


@requires(Action.READ, customer="customer_id")
def balance(
    crm: CRM,
    customer_id: int,
    *,
    as_of: date | datetime | None = None,
    ctx: UnitOfWork | None = None,
) -> Balance:
    """A member's balance (ledger sum), what is available, and points expiring soon.

    ``as_of`` (default now) only decides which points count as overdue and
    which as expiring soon; ``points`` is always the whole ledger.
    Raises NotFoundError for non-members.
    """
    programme = settings_of(crm)
    with crm.reading(ctx) as uow:
        when = resolve_as_of(as_of, crm.clock())
        member = member_row(uow, customer_id, lock=False)
        points = ledger.balances(uow, [customer_id])[customer_id]
        overdue = ledger.overdue_points(crm, uow.connection, customer_id, when)
        soon = ledger.expiring_lots(
            crm,
            uow.connection,
            customer_id,
            when,
            when + timedelta(days=programme.expiring_soon_days),
        )
    return Balance(
        customer_id=customer_id,
        points=points,
        available=points - overdue,
        overdue=overdue,
        tier=member.tier,
        status=member.status,
        as_of=when,
        expiring=tuple(soon),
    )


@requires(Action.READ, customer="customer_id")
def history(
    crm: CRM, customer_id: int, *, limit: int = 50, offset: int = 0, ctx: UnitOfWork | None = None
) -> list[dict[str, Any]]:
    """A member's ledger, newest first, each entry with ``balance_after`` (running sum).

    ``balance_after`` is computed in SQL with a window function, in the
    order entries take effect (``occurred_at``, then id). Raises
    NotFoundError for non-members, ValidationError for a bad page.
    """
    if limit < 1 or offset < 0:
        raise ValidationError(
            f"limit: must be positive and offset non-negative, got {limit}/{offset}", field="limit"
        )
    table = ledger_table(crm.metadata)
    running = func.sum(table.c.points).over(order_by=(table.c.occurred_at, table.c.id))
    inner = (
        select(table, running.label("balance_after"))
        .where(table.c.customer_id == customer_id)
        .subquery()
    )
    query = (
        select(inner)
        .order_by(inner.c.occurred_at.desc(), inner.c.id.desc())
        .limit(limit)
        .offset(offset)
    )
    with crm.reading(ctx) as uow:
        member_row(uow, customer_id, lock=False)
        rows = uow.connection.execute(query).all()
    return [
        {**LedgerEntry.from_row(r).as_dict(), "balance_after": int(r.balance_after)} for r in rows
    ]


@requires(Action.READ, customer="customer_id")
def tier_history(
    crm: CRM, customer_id: int, *, ctx: UnitOfWork | None = None
) -> list[dict[str, Any]]:
    """A member's tier changes, oldest first (NotFoundError for non-members)."""
    table = tier_changes_table(crm.metadata)
    with crm.reading(ctx) as uow:
        member_row(uow, customer_id, lock=False)
        rows = uow.connection.execute(
            select(table).where(table.c.customer_id == customer_id).order_by(table.c.at, table.c.id)
        ).all()
    return [
        {"from_tier": r.from_tier, "to_tier": r.to_tier, "at": r.at.isoformat(), "reason": r.reason}
        for r in rows
    ]


@requires(Action.READ, customer=_profile_customer)
def profile_section(
    crm: CRM, customer: Customer, *, ctx: UnitOfWork | None = None
) -> dict[str, Any] | None:
    """The customer's section of the 360° view (``None`` for non-members).

    Member number, status, tier and its benefits, balance, available points,
    points expiring within ``expiring_soon_days`` and the next expiry.
    """
    if customer.id is None:
        return None
    try:
        member = get_member(crm, customer.id)
    except NotFoundError:
        return None
    current = balance(crm, customer.id, ctx=ctx)
    tier = settings_of(crm).tier(member.tier)
    return {
        "member_number": member.member_number,
        "status": member.status,
        "joined_at": member.joined_at.isoformat(),
        "tier": member.tier,
        "benefits": list(tier.benefits) if tier else [],
        "points": current.points,
        "available": current.available,
        "expiring_soon": current.expiring_soon,
        "next_expiry": current.expiring[0][0].isoformat() if current.expiring else None,
    }


# A public service function added without @requires refuses every user's view.
enforce_declared(__name__)
