"""Tiers: members' qualifying values over the rolling window, and tier re-evaluation."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import and_, func, select

from crmcore import CRM, UnitOfWork
from crmcore.access import Action
from crmcore.scoping import enforce_declared, requires
from crmcore_loyalty import ledger
from crmcore_loyalty.checks import resolve_as_of, these_or_everyone
from crmcore_loyalty.earning import ACTIVE
from crmcore_loyalty.membership import record_tier_changes
from crmcore_loyalty.programme import add_months, settings_of
from crmcore_loyalty.records import TierChange
from crmcore_loyalty.tables import ledger_table, members_table


@requires(Action.READ, customer=these_or_everyone)
def qualifying_values(
    uow: UnitOfWork, as_of: datetime, customer_ids: Sequence[int] | None = None
) -> dict[int, tuple[str | None, Decimal]]:
    """Active members' current tier and qualifying value over the rolling window to ``as_of``.

    Spend basis: the sum of ``amount`` (purchase amounts minus refunds) of
    the member's entries with ``occurred_at`` in ``(as_of - window, as_of]``.
    Points basis: the sum of ``earn`` and ``reverse`` points in that window.
    One grouped query (per 500 ids when ids are given).
    """
    programme = settings_of(uow.crm)
    members = members_table(uow.crm.metadata)
    table = ledger_table(uow.crm.metadata)
    start = add_months(as_of, -programme.tier_window_months)
    window = and_(
        table.c.customer_id == members.c.customer_id,
        table.c.occurred_at > start,
        table.c.occurred_at <= as_of,
        table.c.kind.in_(["earn", "reverse"]),
    )
    value = table.c.amount if programme.tier_basis == "spend" else table.c.points
    base = (
        select(members.c.customer_id, members.c.tier, func.sum(value))
        .select_from(members.outerjoin(table, window))
        .where(members.c.status == ACTIVE)
        .group_by(members.c.customer_id, members.c.tier)
        .order_by(members.c.customer_id)
    )
    groups: list[list[int] | None] = (
        [None] if customer_ids is None else list(ledger.chunks(customer_ids))
    )
    result: dict[int, tuple[str | None, Decimal]] = {}
    for group in groups:
        query = base if group is None else base.where(members.c.customer_id.in_(group))
        for cid, tier, total in uow.connection.execute(query):
            result[cid] = (tier, Decimal(total or 0))
    return result


@requires(Action.WRITE, customer=these_or_everyone)
def evaluate_tiers(
    crm: CRM,
    *,
    as_of: date | datetime | None = None,
    customer_ids: Sequence[int] | None = None,
    actor: str | None = None,
    ctx: UnitOfWork | None = None,
) -> list[TierChange]:
    """Re-evaluate active members' tiers (all, or these) as of ``as_of``; return the changes.

    A member's tier is the highest whose threshold their qualifying value
    (see :func:`qualifying_values`) reaches: upgrades and downgrades alike.
    Changes go to the tier history and fire ``loyalty_tier_changed`` once.
    """
    programme = settings_of(crm)
    with crm.unit_of_work(actor, ctx) as uow:
        when = resolve_as_of(as_of, uow.now)
        changes = []
        for cid, (current, value) in qualifying_values(uow, when, customer_ids).items():
            target = programme.tier_for(value)
            name = None if target is None else target.name
            if name == current:
                continue
            direction = (
                "upgrade"
                if programme.tier_rank(name) > programme.tier_rank(current)
                else "downgrade"
            )
            changes.append(
                TierChange(
                    cid,
                    current,
                    name,
                    when,
                    f"{direction}: {programme.tier_basis} {value} over "
                    f"{programme.tier_window_months} months",
                )
            )
        record_tier_changes(uow, changes)
        return changes


# A public service function added without @requires refuses every user's view.
enforce_declared(__name__)
