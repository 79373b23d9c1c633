"""Retention analytics: cohort matrix, retention and churn rates, repeat-purchase rate.

All on counted purchases (:mod:`.purchases`) as of the analysis date, months in UTC:

* **cohort** of a customer: the UTC month of their first counted purchase.
* **cohort matrix**: for cohort month ``c`` and ``k`` months since, ``active`` = customers
  of the cohort with a counted purchase in month ``c + k``; ``retention`` = ``active /
  size * 100`` rounded half-up to 2 decimals (``k = 0`` is always 100). Months after the
  last month before ``as_of`` are ``None``.
* **retention rate** of a period ``[start, end)``: of the customers with a counted
  purchase in the previous period of the same length, the percentage with one in the
  period; **churn rate** = 100 - retention rate (both ``None`` without such customers).
* **repeat-purchase rate** as of a date: customers with two or more counted purchases
  before it, as a percentage of customers with at least one.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from attrs import frozen
from sqlalchemy import Integer, case, func, literal, select

from crmcore import CRM, Period, UnitOfWork, ValidationError
from crmcore.access import Action
from crmcore.scoping import enforce_declared, requires
from crmcore.storage.types import UTCDateTime
from crmcore_segmentation.calendar_sql import month_label, month_number
from crmcore_segmentation.purchases import counted_purchases
from crmcore_segmentation.rfm import resolve_as_of
from crmcore_segmentation.settings import settings_of

_CENT = Decimal("0.01")


def percent(part: int, whole: int) -> Decimal | None:
    """``part / whole * 100`` rounded half-up to 2 decimals; ``None`` when ``whole`` is 0."""
    if not whole:
        return None
    return (Decimal(part) * 100 / Decimal(whole)).quantize(_CENT, rounding=ROUND_HALF_UP)


@frozen
class Cohort:
    """One row of the cohort matrix."""

    month: str
    size: int
    active: tuple[int | None, ...]
    retention: tuple[Decimal | None, ...]

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe dict (percentages as strings)."""
        return {
            "cohort": self.month,
            "size": self.size,
            "active": list(self.active),
            "retention": [None if r is None else str(r) for r in self.retention],
        }


def last_month(as_of: datetime) -> int:
    """The last UTC month that has time before ``as_of``."""
    return month_number(as_of - timedelta(microseconds=1))


@requires(Action.REPORT)  # an aggregate over every customer
def cohort_matrix(
    crm: CRM, *, as_of: datetime | None = None, months: int = 12, ctx: UnitOfWork | None = None
) -> list[Cohort]:
    """Cohorts of the last ``months`` months up to ``as_of`` (default now), oldest first.

    Each cohort has ``months`` columns (months since 0 .. months-1); see the
    module docstring. Cohorts without customers are left out. Raises
    ValidationError when ``months`` is below 1.
    """
    if isinstance(months, bool) or not isinstance(months, int) or months < 1:
        raise ValidationError(
            f"months: must be a positive integer, got {months!r}", field="months", value=months
        )
    moment = resolve_as_of(crm, as_of)
    last = last_month(moment)
    first_cohort = last - months + 1
    purchases = counted_purchases(crm, moment, currency=settings_of(crm).currency).subquery("p")
    firsts = (
        select(purchases.c.customer_id, func.min(purchases.c.month).label("cohort"))
        .group_by(purchases.c.customer_id)
        .subquery("firsts")
    )
    activity = (
        select(purchases.c.customer_id, purchases.c.month)
        .where(purchases.c.month >= literal(first_cohort, Integer))
        .distinct()
        .subquery("activity")
    )
    offset = (activity.c.month - firsts.c.cohort).label("offset")
    query = (
        select(firsts.c.cohort, offset, func.count().label("active"))
        .select_from(activity.join(firsts, firsts.c.customer_id == activity.c.customer_id))
        .where(firsts.c.cohort >= literal(first_cohort, Integer))
        .group_by(firsts.c.cohort, offset)
    )
    counts: dict[int, dict[int, int]] = {}
    with crm.reading(ctx) as uow:
        for row in uow.connection.execute(query):
            counts.setdefault(int(row.cohort), {})[int(row.offset)] = int(row.active)
    cohorts = []
    for cohort in sorted(counts):
        size = counts[cohort].get(0, 0)
        active: list[int | None] = []
        for k in range(months):
            active.append(None if cohort + k > last else counts[cohort].get(k, 0))
        cohorts.append(
            Cohort(
                month=month_label(cohort),
                size=size,
                active=tuple(active),
                retention=tuple(None if a is None else percent(a, size) for a in active),
            )
        )
    return cohorts


@frozen
class Retention:
    """Retention of one period against the previous period of the same length."""

    start: datetime
    end: datetime
    previous_customers: int
    retained: int
    retention_rate: Decimal | None
    churn_rate: Decimal | None


@requires(Action.REPORT)  # an aggregate over every customer
def retention(crm: CRM, period: Period, *, ctx: UnitOfWork | None = None) -> Retention:
    """Retention and churn rate of ``period`` (counted purchases as of ``period.end``)."""
    previous = period.previous()
    purchases = counted_purchases(
        crm, period.end, since=previous.start, currency=settings_of(crm).currency
    ).subquery("p")
    boundary = literal(period.start, UTCDateTime)
    per_customer = (
        select(
            func.max(case((purchases.c.occurred_at < boundary, 1), else_=0)).label("was"),
            func.max(case((purchases.c.occurred_at >= boundary, 1), else_=0)).label("stays"),
        )
        .group_by(purchases.c.customer_id)
        .subquery("per_customer")
    )
    query = select(
        func.coalesce(func.sum(per_customer.c.was), 0),
        func.coalesce(func.sum(per_customer.c.was * per_customer.c.stays), 0),
    )
    with crm.reading(ctx) as uow:
        before, kept = (int(v) for v in uow.connection.execute(query).one())
    rate = percent(kept, before)
    return Retention(
        start=period.start,
        end=period.end,
        previous_customers=before,
        retained=kept,
        retention_rate=rate,
        churn_rate=None if rate is None else Decimal(100) - rate,
    )


@requires(Action.REPORT)  # an aggregate over every customer
def monthly_retention(
    crm: CRM, *, as_of: datetime | None = None, months: int = 12, ctx: UnitOfWork | None = None
) -> list[dict[str, Any]]:
    """Month-on-month retention for the last ``months`` months up to ``as_of``.

    For month ``M``: ``previous_customers`` bought in ``M - 1``, ``retained``
    of them bought in ``M`` too; rates as in :func:`retention`.
    """
    moment = resolve_as_of(crm, as_of)
    last = last_month(moment)
    first = last - months + 1
    purchases = counted_purchases(crm, moment, currency=settings_of(crm).currency).subquery("p")
    activity = (
        select(purchases.c.customer_id, purchases.c.month)
        .where(purchases.c.month >= literal(first - 1, Integer))
        .distinct()
        .subquery("activity")
    )
    later = activity.alias("later")
    base = select(activity.c.month, func.count().label("n")).group_by(activity.c.month)
    kept = (
        select(activity.c.month, func.count().label("n"))
        .select_from(
            activity.join(
                later,
                (later.c.customer_id == activity.c.customer_id)
                & (later.c.month == activity.c.month + literal(1, Integer)),
            )
        )
        .group_by(activity.c.month)
    )
    with crm.reading(ctx) as uow:
        bases = {int(r.month): int(r.n) for r in uow.connection.execute(base)}
        kepts = {int(r.month): int(r.n) for r in uow.connection.execute(kept)}
    series = []
    for month in range(first, last + 1):
        before, retained = bases.get(month - 1, 0), kepts.get(month - 1, 0)
        rate = percent(retained, before)
        series.append(
            {
                "month": month_label(month),
                "previous_customers": before,
                "retained": retained,
                "retention_rate": rate,
                "churn_rate": None if rate is None else Decimal(100) - rate,
            }
        )
    return series


@requires(Action.REPORT)  # an aggregate over every customer
def repeat_purchase_rate(
    crm: CRM, *, as_of: datetime | None = None, ctx: UnitOfWork | None = None
) -> dict[str, Any]:
    """Customers with 2+ counted purchases before ``as_of`` as a % of those with 1+."""
    moment = resolve_as_of(crm, as_of)
    purchases = counted_purchases(crm, moment, currency=settings_of(crm).currency).subquery("p")
    per_customer = (
        select(func.count().label("n"))
        .select_from(purchases)
        .group_by(purchases.c.customer_id)
        .subquery("per_customer")
    )
    query = select(
        func.count(), func.coalesce(func.sum(case((per_customer.c.n >= 2, 1), else_=0)), 0)
    )
    with crm.reading(ctx) as uow:
        buyers, repeaters = (int(v) for v in uow.connection.execute(query).one())
    return {"buyers": buyers, "repeat_buyers": repeaters, "rate": percent(repeaters, buyers)}


# A public service function added without @requires refuses every user's view.
enforce_declared(__name__)
