"""RFM: recency, frequency and monetary value as of a date over a window, scored 1-5.

For every customer with at least one counted purchase (see
:mod:`crmcore_segmentation.purchases`) in ``[as_of - window_days, as_of)``:

* ``recency_days``: UTC calendar days from the last counted purchase to ``as_of``;
* ``frequency``: the number of counted purchases in the window;
* ``monetary``: the sum of their net amounts.

**Scores** (rank-based quintiles, ties share a score): with ``n`` customers
scored and ``below`` the number of them with a strictly worse value,
``score = floor(5 * below / n) + 1``. Worse means a larger ``recency_days``
for R (5 = most recent), a smaller ``frequency`` for F and a smaller
``monetary`` for M. In SQL ``below`` is ``RANK() OVER (ORDER BY value) - 1``.
``FM = floor((F + M + 1) / 2)``, the mean of F and M rounded half up.

**Segment**: the first row of the segment table (configurable) whose R and
FM ranges (inclusive) hold the customer's scores; ``other`` when none does.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from attrs import frozen
from sqlalchemy import Integer, Select, and_, case, func, literal, select
from sqlalchemy.sql.elements import ColumnElement

from crmcore import CRM, UnitOfWork, ValidationError
from crmcore.access import Action
from crmcore.scoping import enforce_declared, requires
from crmcore_segmentation.calendar_sql import day_number
from crmcore_segmentation.purchases import counted_purchases, raw_sum, to_money
from crmcore_segmentation.settings import OTHER_SEGMENT, SegmentRule, Settings, settings_of

_IN_CHUNK = 500
_FETCH = 1000


@frozen
class RFMScore:
    """One customer's RFM values, scores and segment."""

    customer_id: int
    recency_days: int
    frequency: int
    monetary: Decimal
    r: int
    f: int
    m: int
    fm: int
    segment: str

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe dict (monetary as a string)."""
        return {
            "customer_id": self.customer_id,
            "recency_days": self.recency_days,
            "frequency": self.frequency,
            "monetary": str(self.monetary),
            "r": self.r,
            "f": self.f,
            "m": self.m,
            "fm": self.fm,
            "segment": self.segment,
        }


@requires(Action.READ, scoped=True)  # reads no data
def resolve_as_of(crm: CRM, as_of: datetime | None) -> datetime:
    """``as_of``, or the CRM clock's now; ValidationError for a naive datetime."""
    if as_of is None:
        return crm.clock()
    if as_of.tzinfo is None:
        raise ValidationError("as_of: must be timezone-aware", field="as_of", value=as_of)
    return as_of


def days_before(moment: datetime, days: int, field: str = "window_days") -> datetime:
    """``moment`` minus ``days`` days; ValidationError when that is before year 1."""
    try:
        return moment - timedelta(days=days)
    except OverflowError:
        raise ValidationError(
            f"{field}: {days} days before {moment.isoformat()} is before 0001-01-01",
            field=field,
            value=days,
        ) from None


def resolve_window(settings: Settings, window_days: int | None) -> int:
    """``window_days`` or the configured default; ValidationError when not positive."""
    days = settings.window_days if window_days is None else window_days
    if isinstance(days, bool) or not isinstance(days, int) or days < 1:
        raise ValidationError(
            f"window_days: must be a positive integer, got {days!r}",
            field="window_days",
            value=days,
        )
    return days


def segment_case(
    rules: Sequence[SegmentRule], r: ColumnElement[Any], fm: ColumnElement[Any]
) -> ColumnElement[str]:
    """SQL ``CASE`` naming the segment of scores ``(r, fm)``: first matching rule wins."""
    return case(
        *[
            (
                and_(r.between(rule.r[0], rule.r[1]), fm.between(rule.fm[0], rule.fm[1])),
                literal(rule.name),
            )
            for rule in rules
        ],
        else_=literal(OTHER_SEGMENT),
    )


def segment_of(rules: Sequence[SegmentRule], r: int, fm: int) -> str:
    """The Python twin of :func:`segment_case`."""
    for rule in rules:
        if rule.matches(r, fm):
            return rule.name
    return OTHER_SEGMENT


def quintile(below: ColumnElement[Any], n: ColumnElement[Any]) -> ColumnElement[int]:
    """``floor(5 * below / n) + 1`` in integer arithmetic (both operands non-negative)."""
    return (literal(5, Integer) * below) // n + literal(1, Integer)


@requires(Action.READ, scoped=True)  # builds SQL; the caller scopes what it reads
def rfm_query(
    crm: CRM,
    *,
    as_of: datetime | None = None,
    window_days: int | None = None,
) -> Select[Any]:
    """The RFM select: one row per scored customer.

    Columns: ``customer_id``, ``recency_days``, ``frequency``, ``monetary``
    (ten-thousandths), ``last_day``, ``r``, ``f``, ``m``, ``fm``, ``segment``.
    Compose it (``.subquery()``) to aggregate or join; nothing is fetched.
    """
    settings = settings_of(crm)
    moment = resolve_as_of(crm, as_of)
    days = resolve_window(settings, window_days)
    purchases = counted_purchases(
        crm, moment, since=days_before(moment, days), currency=settings.currency
    ).subquery("p")
    stats = (
        select(
            purchases.c.customer_id,
            func.count().label("frequency"),
            raw_sum(purchases.c.net).label("monetary"),
            func.max(purchases.c.day).label("last_day"),
        )
        .group_by(purchases.c.customer_id)
        .subquery("stats")
    )
    n = func.count().over()
    ranked = select(
        stats.c.customer_id,
        (literal(day_number(moment), Integer) - stats.c.last_day).label("recency_days"),
        stats.c.frequency,
        stats.c.monetary,
        stats.c.last_day,
        quintile(func.rank().over(order_by=stats.c.last_day) - 1, n).label("r"),
        quintile(func.rank().over(order_by=stats.c.frequency) - 1, n).label("f"),
        quintile(func.rank().over(order_by=stats.c.monetary) - 1, n).label("m"),
    ).subquery("ranked")
    fm = ((ranked.c.f + ranked.c.m + literal(1, Integer)) // literal(2, Integer)).label("fm")
    with_fm = select(ranked, fm).subquery("scored")
    return select(
        with_fm.c.customer_id,
        with_fm.c.recency_days,
        with_fm.c.frequency,
        with_fm.c.monetary,
        with_fm.c.last_day,
        with_fm.c.r,
        with_fm.c.f,
        with_fm.c.m,
        with_fm.c.fm,
        segment_case(settings.segments, with_fm.c.r, with_fm.c.fm).label("segment"),
    )


def _score(row: Any) -> RFMScore:
    return RFMScore(
        customer_id=int(row.customer_id),
        recency_days=int(row.recency_days),
        frequency=int(row.frequency),
        monetary=to_money(row.monetary),
        r=int(row.r),
        f=int(row.f),
        m=int(row.m),
        fm=int(row.fm),
        segment=str(row.segment),
    )


@requires(Action.READ, scoped=True)  # rows only of customers the principal may read
def iter_rfm_scores(
    crm: CRM,
    *,
    as_of: datetime | None = None,
    window_days: int | None = None,
    customer_ids: Sequence[int] | None = None,
    segment: str | None = None,
    limit: int | None = None,
    ctx: UnitOfWork | None = None,
) -> Iterator[RFMScore]:
    """:func:`rfm_scores` as an iterator: rows stream from the database as consumed."""
    scored = rfm_query(crm, as_of=as_of, window_days=window_days).subquery("rfm")
    query = (
        select(scored)
        .where(crm.access.where(scored.c.customer_id, ctx=ctx))
        .order_by(scored.c.customer_id)
    )
    if segment is not None:
        query = query.where(scored.c.segment == segment)
    if limit is not None:
        query = query.limit(limit)
    return _stream_scores(crm, query, customer_ids, scored.c.customer_id, ctx=ctx)


def _stream_scores(
    crm: CRM,
    query: Select[Any],
    customer_ids: Sequence[int] | None,
    key: ColumnElement[Any],
    *,
    ctx: UnitOfWork | None = None,
) -> Iterator[RFMScore]:
    with crm.reading(ctx) as uow:
        if customer_ids is None:
            for row in uow.connection.execute(query.execution_options(yield_per=_FETCH)):
                yield _score(row)
            return
        wanted = sorted(set(customer_ids))
        for start in range(0, len(wanted), _IN_CHUNK):
            chunk = wanted[start : start + _IN_CHUNK]
            for row in uow.connection.execute(query.where(key.in_(chunk))):
                yield _score(row)


@requires(Action.READ, scoped=True)  # rows only of customers the principal may read
def rfm_scores(
    crm: CRM,
    *,
    as_of: datetime | None = None,
    window_days: int | None = None,
    customer_ids: Sequence[int] | None = None,
    segment: str | None = None,
    limit: int | None = None,
    ctx: UnitOfWork | None = None,
) -> list[RFMScore]:
    """RFM scores by customer id, optionally only ``customer_ids`` or one ``segment``.

    Scores are always ranked against every customer scored in the window;
    the filters only choose which rows come back. Raises ValidationError
    for a naive ``as_of`` or a non-positive ``window_days``. The same rows
    stream from :func:`iter_rfm_scores`.
    """
    return list(
        iter_rfm_scores(
            crm,
            as_of=as_of,
            window_days=window_days,
            customer_ids=customer_ids,
            segment=segment,
            limit=limit,
            ctx=ctx,
        )
    )


@requires(Action.REPORT)  # an aggregate over every customer
def rfm_grid(
    crm: CRM,
    *,
    as_of: datetime | None = None,
    window_days: int | None = None,
    ctx: UnitOfWork | None = None,
) -> dict[str, Any]:
    """Customers and mean monetary value per (R, F) cell, aggregated in SQL.

    Returns ``{"counts": [[...]], "mean_monetary": [[...]], "r": [5..1], "f": [1..5]}``:
    row ``i`` is R score ``5 - i``, column ``j`` is F score ``j + 1``;
    ``mean_monetary`` is ``None`` for empty cells.
    """
    scored = rfm_query(crm, as_of=as_of, window_days=window_days).subquery("rfm")
    query = select(
        scored.c.r, scored.c.f, func.count().label("n"), raw_sum(scored.c.monetary).label("total")
    ).group_by(scored.c.r, scored.c.f)
    counts = [[0] * 5 for _ in range(5)]
    means: list[list[Decimal | None]] = [[None] * 5 for _ in range(5)]
    with crm.reading(ctx) as uow:
        for row in uow.connection.execute(query):
            i, j = 5 - int(row.r), int(row.f) - 1
            counts[i][j] = int(row.n)
            means[i][j] = (to_money(row.total) / int(row.n)).quantize(Decimal("0.01"))
    return {"r": [5, 4, 3, 2, 1], "f": [1, 2, 3, 4, 5], "counts": counts, "mean_monetary": means}


@requires(Action.REPORT)  # an aggregate over every customer
def segment_summary(
    crm: CRM,
    *,
    as_of: datetime | None = None,
    window_days: int | None = None,
    ctx: UnitOfWork | None = None,
) -> list[dict[str, Any]]:
    """Customers, total and mean monetary value per RFM segment, in the table's order."""
    scored = rfm_query(crm, as_of=as_of, window_days=window_days).subquery("rfm")
    query = select(
        scored.c.segment, func.count().label("n"), raw_sum(scored.c.monetary).label("total")
    ).group_by(scored.c.segment)
    with crm.reading(ctx) as uow:
        found = {
            row.segment: (int(row.n), to_money(row.total)) for row in uow.connection.execute(query)
        }
    order = [rule.name for rule in settings_of(crm).segments] + [OTHER_SEGMENT]
    summary = []
    for name in dict.fromkeys(order):
        if name in found:
            n, total = found[name]
            summary.append(
                {
                    "segment": name,
                    "customers": n,
                    "monetary": total,
                    "mean_monetary": (total / n).quantize(Decimal("0.01")),
                }
            )
    return summary


# A public service function added without @requires refuses every user's view.
enforce_declared(__name__)
