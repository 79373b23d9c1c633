"""Programme KPIs and the programme report, computed in SQL on both backends."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, and_, case, func, or_, select

from crmcore import CRM, Period, UnitOfWork
from crmcore.access import Action
from crmcore.scoping import enforce_declared, requires
from crmcore_loyalty.programme import settings_of
from crmcore_loyalty.tables import ledger_table, members_table


def _ratio(part: int | Decimal, whole: int | Decimal) -> float:
    return round(float(part) / float(whole), 4) if whole else 0.0


def _member_at(crm: CRM, moment: datetime) -> Any:
    """SQL condition: the ``loyalty_members`` row was an active member at ``moment``."""
    members = members_table(crm.metadata)
    return and_(
        members.c.joined_at < moment,
        or_(members.c.left_at.is_(None), members.c.left_at >= moment),
    )


@requires(Action.REPORT)
def period_kpis(crm: CRM, connection: Connection, period: Period) -> dict[str, Any]:
    """The programme's KPIs for ``[period.start, period.end)``.

    * ``active_members``: members at the period's end; ``new_members``:
      joined in the period; ``enrollment_rate``: active members / customers
      created before the end.
    * ``points_issued`` (earn and positive adjust), ``points_redeemed``,
      ``points_expired``, ``points_reversed``: entries taking effect in the
      period; ``redemption_rate`` = redeemed / issued.
    * ``points_outstanding``: the ledger sum at the end; ``liability`` =
      outstanding x ``point_value`` in the programme currency.
    * ``repeat_purchase_rate_members`` / ``_non_members``: among customers
      with a purchase in the period, the share with two or more, split by
      membership at the period's end.
    """
    programme = settings_of(crm)
    members = members_table(crm.metadata)
    table = ledger_table(crm.metadata)
    customers = crm.metadata.tables["crm_customers"]
    interactions = crm.metadata.tables["crm_interactions"]
    at_end = _member_at(crm, period.end)
    active, new = connection.execute(
        select(
            func.coalesce(func.sum(case((at_end, 1), else_=0)), 0),
            func.coalesce(
                func.sum(
                    case(
                        (
                            and_(
                                members.c.joined_at >= period.start,
                                members.c.joined_at < period.end,
                            ),
                            1,
                        ),
                        else_=0,
                    )
                ),
                0,
            ),
        ).select_from(members)
    ).one()
    population = connection.execute(
        select(func.count()).select_from(customers).where(customers.c.created_at < period.end)
    ).scalar_one()
    in_period = and_(table.c.occurred_at >= period.start, table.c.occurred_at < period.end)

    def total(condition: Any) -> Any:
        return func.coalesce(
            func.sum(case((and_(in_period, condition), table.c.points), else_=0)), 0
        )

    issued, redeemed, expired, reversed_, outstanding = connection.execute(
        select(
            total(and_(table.c.kind.in_(["earn", "adjust"]), table.c.points > 0)),
            total(table.c.kind == "redeem"),
            total(table.c.kind == "expire"),
            total(table.c.kind == "reverse"),
            func.coalesce(
                func.sum(case((table.c.occurred_at < period.end, table.c.points), else_=0)), 0
            ),
        )
    ).one()
    per_buyer = (
        select(interactions.c.customer_id, func.count().label("purchases"))
        .where(
            interactions.c.kind == "purchase",
            interactions.c.occurred_at >= period.start,
            interactions.c.occurred_at < period.end,
        )
        .group_by(interactions.c.customer_id)
        .subquery()
    )
    is_member = members.c.customer_id.is_not(None)
    repeat = per_buyer.c.purchases >= 2

    def count(condition: Any) -> Any:
        return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

    buyers_m, repeat_m, buyers_n, repeat_n = connection.execute(
        select(
            count(is_member),
            count(and_(is_member, repeat)),
            count(~is_member),
            count(and_(~is_member, repeat)),
        ).select_from(
            per_buyer.outerjoin(
                members, and_(members.c.customer_id == per_buyer.c.customer_id, at_end)
            )
        )
    ).one()
    outstanding = int(outstanding)
    return {
        "active_members": int(active),
        "new_members": int(new),
        "enrollment_rate": _ratio(int(active), int(population)),
        "points_issued": int(issued),
        "points_redeemed": -int(redeemed),
        "points_expired": -int(expired),
        "points_reversed": -int(reversed_),
        "points_outstanding": outstanding,
        "liability": (Decimal(outstanding) * programme.point_value).quantize(Decimal("0.01")),
        "redemption_rate": _ratio(-int(redeemed), int(issued)),
        "repeat_purchase_rate_members": _ratio(int(repeat_m), int(buyers_m)),
        "repeat_purchase_rate_non_members": _ratio(int(repeat_n), int(buyers_n)),
    }


@requires(Action.REPORT)
def metrics(crm: CRM, period: Period, *, ctx: UnitOfWork | None = None) -> dict[str, Any]:
    """The ``crm_metrics`` answer: :func:`period_kpis` in a read snapshot."""
    with crm.reading(ctx) as uow:
        return period_kpis(crm, uow.connection, period)


@requires(Action.REPORT)
def programme_report(
    crm: CRM, *, as_of: datetime | None = None, ctx: UnitOfWork | None = None
) -> dict[str, Any]:
    """The programme at a glance: members by status and tier, liability, last 365 days' KPIs."""
    programme = settings_of(crm)
    when = as_of or crm.clock()
    members = members_table(crm.metadata)
    with crm.reading(ctx) as uow:
        by_status: dict[str, int] = dict(
            uow.connection.execute(
                select(members.c.status, func.count()).group_by(members.c.status)
            ).all()
        )
        by_tier: dict[str, int] = dict(
            uow.connection.execute(
                select(func.coalesce(members.c.tier, "(none)"), func.count())
                .where(members.c.status == "active")
                .group_by(members.c.tier)
            ).all()
        )
        year = period_kpis(crm, uow.connection, Period(when - timedelta(days=365), when))
    return {
        "as_of": when.isoformat(),
        "currency": programme.currency,
        "members_active": int(by_status.get("active", 0)),
        "members_left": int(by_status.get("left", 0)),
        "members_by_tier": {t.name: int(by_tier.get(t.name, 0)) for t in programme.tiers}
        | ({"(none)": int(by_tier["(none)"])} if "(none)" in by_tier else {}),
        "last_365_days": year,
    }


# A public service function added without @requires refuses every user's view.
enforce_declared(__name__)
