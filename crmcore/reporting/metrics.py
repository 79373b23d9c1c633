"""Core figures for a period, computed in SQL, and the gathering of plugins' KPIs."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, case, distinct, func, select

from crmcore.model.entities import InteractionKind
from crmcore.model.signals import Period
from crmcore.storage.tables import customers, interactions


def core_metrics(connection: Connection, period: Period) -> dict[str, Any]:
    """Customers, new and active customers, interactions by channel, revenue, response time.

    Revenue is purchases minus refunds in the period, per currency.
    ``active_customers`` counts customers with at least one interaction in
    the period; ``avg_response_seconds`` averages interactions that record one.
    """
    in_period = (interactions.c.occurred_at >= period.start) & (
        interactions.c.occurred_at < period.end
    )
    total = connection.execute(
        select(func.count()).select_from(customers).where(customers.c.created_at < period.end)
    ).scalar_one()
    new = connection.execute(
        select(func.count())
        .select_from(customers)
        .where(customers.c.created_at >= period.start, customers.c.created_at < period.end)
    ).scalar_one()
    active, count, avg_response = connection.execute(
        select(
            func.count(distinct(interactions.c.customer_id)),
            func.count(),
            func.avg(interactions.c.response_seconds),
        ).where(in_period)
    ).one()
    by_channel: dict[str, int] = dict(
        connection.execute(
            select(interactions.c.channel, func.count())
            .where(in_period)
            .group_by(interactions.c.channel)
            .order_by(interactions.c.channel)
        ).all()
    )
    signed = case(
        (interactions.c.kind == InteractionKind.REFUND.value, -interactions.c.amount),
        else_=interactions.c.amount,
    )
    revenue = {
        currency: str(amount if isinstance(amount, Decimal) else Decimal(amount or 0))
        for currency, amount in connection.execute(
            select(interactions.c.currency, func.sum(signed).label("revenue"))
            .where(
                in_period,
                interactions.c.kind.in_(
                    [InteractionKind.PURCHASE.value, InteractionKind.REFUND.value]
                ),
            )
            .group_by(interactions.c.currency)
            .order_by(interactions.c.currency)
        ).all()
    }
    purchases = connection.execute(
        select(func.count()).where(in_period, interactions.c.kind == InteractionKind.PURCHASE.value)
    ).scalar_one()
    return {
        "customers": total,
        "new_customers": new,
        "active_customers": active,
        "interactions": count,
        "interactions_by_channel": by_channel,
        "purchases": purchases,
        "revenue": revenue,
        "avg_response_seconds": None if avg_response is None else round(float(avg_response), 3),
    }
