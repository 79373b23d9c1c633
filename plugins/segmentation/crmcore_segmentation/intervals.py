"""Purchase intervals: the days between a customer's consecutive purchase days, in SQL.

For each customer, the UTC days with a counted purchase (:mod:`.purchases`) before
``as_of``, in order; an **interval** is the difference of two consecutive ones (so
several purchases on one day are one purchase day). Per customer with two or more
purchase days: ``intervals`` (purchase days - 1), ``median_interval_days`` (the middle
interval, the mean of the two middle ones for an even count) and
``mean_interval_days``.

**Churn early warning** uses the interval in place of the plain frequency drop when the
history is long enough: with at least :data:`MIN_INTERVALS` intervals (5 purchase
days) and a median ``m > 0``, the ratio ``recency_days / m`` (how many usual gaps have
passed) gives the strength ``min(1, ratio / (2 * OVERDUE_FACTOR))`` when ``ratio >=
OVERDUE_FACTOR``, else 0.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from attrs import frozen
from sqlalchemy import Float, Integer, Select, case, cast, func, literal, select

from crmcore import CRM, UnitOfWork
from crmcore.access import Action
from crmcore.scoping import enforce_declared, requires
from crmcore_segmentation.purchases import counted_purchases
from crmcore_segmentation.rfm import resolve_as_of
from crmcore_segmentation.settings import settings_of

#: Intervals (purchase days - 1) from which churn uses the interval instead of the drop.
MIN_INTERVALS = 4
#: Usual gaps that must have passed since the last purchase before the signal counts.
OVERDUE_FACTOR = 2.0


@requires(Action.READ, scoped=True)  # builds SQL; the caller scopes what it reads
def gaps_query(crm: CRM, *, as_of: datetime | None = None) -> Select[Any]:
    """``customer_id``, ``gap``: one row per interval between consecutive purchase days."""
    moment = resolve_as_of(crm, as_of)
    purchases = counted_purchases(crm, moment, currency=settings_of(crm).currency).subquery("ip")
    days = select(purchases.c.customer_id, purchases.c.day).distinct().subquery("idays")
    previous = func.lag(days.c.day).over(partition_by=days.c.customer_id, order_by=days.c.day)
    lagged = select(days.c.customer_id, (days.c.day - previous).label("gap")).subquery("ilag")
    return select(lagged.c.customer_id, lagged.c.gap).where(lagged.c.gap.is_not(None))


def median_of(gaps: Any, key: Any) -> Select[Any]:
    """``key``, ``intervals``, ``median_interval_days``, ``mean_interval_days`` per ``key``.

    ``gaps`` is a subquery with a ``gap`` column; ``key`` one of its columns.
    """
    ranked = select(
        key.label("key"),
        gaps.c.gap,
        func.row_number().over(partition_by=key, order_by=gaps.c.gap).label("rn"),
        func.count().over(partition_by=key).label("n"),
    ).subquery("iranked")
    one, two = literal(1, Integer), literal(2, Integer)
    middle = (ranked.c.rn == (ranked.c.n + one) // two) | (ranked.c.rn == (ranked.c.n + two) // two)
    return select(
        ranked.c.key,
        func.count().label("intervals"),
        cast(func.avg(case((middle, cast(ranked.c.gap, Float)))), Float).label(
            "median_interval_days"
        ),
        cast(func.avg(cast(ranked.c.gap, Float)), Float).label("mean_interval_days"),
    ).group_by(ranked.c.key)


@requires(Action.READ, scoped=True)  # builds SQL; the caller scopes what it reads
def interval_query(crm: CRM, *, as_of: datetime | None = None) -> Select[Any]:
    """Per customer with 2+ purchase days: ``customer_id``, ``intervals``, median, mean."""
    gaps = gaps_query(crm, as_of=as_of).subquery("igaps")
    stats = median_of(gaps, gaps.c.customer_id).subquery("istats")
    return select(
        stats.c.key.label("customer_id"),
        stats.c.intervals,
        stats.c.median_interval_days,
        stats.c.mean_interval_days,
    )


@frozen
class IntervalStats:
    """One customer's (or group's) purchase-interval statistics."""

    customer_id: int
    purchase_days: int
    median_interval_days: float
    mean_interval_days: float

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe dict."""
        return {
            "customer_id": self.customer_id,
            "purchase_days": self.purchase_days,
            "median_interval_days": round(self.median_interval_days, 4),
            "mean_interval_days": round(self.mean_interval_days, 4),
        }


@requires(Action.READ, scoped=True)  # rows only of customers the principal may read
def iter_interval_stats(
    crm: CRM,
    *,
    as_of: datetime | None = None,
    limit: int | None = None,
    ctx: UnitOfWork | None = None,
) -> Iterator[IntervalStats]:
    """Interval statistics of every customer with two or more purchase days, by id."""
    stats = interval_query(crm, as_of=as_of).subquery("intervals")
    query = (
        select(stats)
        .where(crm.access.where(stats.c.customer_id, ctx=ctx))
        .order_by(stats.c.customer_id)
        .limit(limit)
        .execution_options(yield_per=1000)
    )
    with crm.reading(ctx) as uow:
        for row in uow.connection.execute(query):
            yield IntervalStats(
                customer_id=int(row.customer_id),
                purchase_days=int(row.intervals) + 1,
                median_interval_days=float(row.median_interval_days),
                mean_interval_days=float(row.mean_interval_days),
            )


@requires(Action.READ, scoped=True)  # rows only of customers the principal may read
def interval_stats(
    crm: CRM,
    *,
    as_of: datetime | None = None,
    limit: int | None = None,
    ctx: UnitOfWork | None = None,
) -> list[IntervalStats]:
    """:func:`iter_interval_stats` as a list."""
    return list(iter_interval_stats(crm, as_of=as_of, limit=limit, ctx=ctx))


def interval_strength(recency: Any, median: Any) -> Any:
    """SQL strength of the overdue signal (module docstring) from recency and median."""
    ratio = cast(recency, Float) / case((median > 0, median), else_=literal(1.0, Float))
    return case(
        (
            ratio >= OVERDUE_FACTOR,
            case(
                (ratio >= 2 * OVERDUE_FACTOR, literal(1.0, Float)),
                else_=ratio / (2 * OVERDUE_FACTOR),
            ),
        ),
        else_=literal(0.0, Float),
    )


def overdue(recency: int, median: float) -> float:
    """The Python twin of :func:`interval_strength`."""
    if median <= 0:
        return 0.0
    ratio = recency / median
    return 0.0 if ratio < OVERDUE_FACTOR else min(1.0, ratio / (2 * OVERDUE_FACTOR))


# A public service function added without @requires refuses every user's view.
enforce_declared(__name__)
