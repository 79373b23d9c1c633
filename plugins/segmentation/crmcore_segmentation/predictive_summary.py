"""The per-customer summary the probabilistic models fit on, computed in SQL.

Over a **calibration window**: purchases (:mod:`.purchases`, with ``include_zero``:
zero-value purchases count as purchase occasions) on UTC days ``since <= day <= end``
(``end`` inclusive, ``since`` default: all history). Purchases are counted **per day**
(several on one UTC day are one purchase occasion of their summed value), as the
literature does. Per customer with a purchase in the window:

* ``frequency`` ``x``: purchase days after the first (repeat purchase occasions);
* ``recency_days`` ``t_x``: days from the first to the last purchase day (0 when ``x = 0``);
* ``age_days`` ``T``: days from the first purchase day to ``end``;
* ``repeat_spend``: the summed net value of the repeat purchase days (ten-thousandths);
  the mean spend ``m_x = repeat_spend / x`` (0 when ``x = 0``).

Times are whole days in SQL; :class:`Summary` divides them by the time unit (7: weeks).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
from attrs import frozen
from sqlalchemy import Integer, Select, case, func, literal, select

from crmcore import CRM, UnitOfWork, ValidationError
from crmcore.access import Action
from crmcore.scoping import enforce_declared, requires
from crmcore_segmentation.bgnbd import Array
from crmcore_segmentation.calendar_sql import day_number
from crmcore_segmentation.purchases import SCALE, counted_purchases, raw_sum
from crmcore_segmentation.settings import settings_of

_IN_CHUNK = 500
#: Customer ids as a numpy array.
NDArrayInt = np.ndarray[Any, np.dtype[np.int64]]


def day_start(day: date) -> datetime:
    """Midnight UTC at the start of ``day``."""
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def check_day(value: Any, field: str) -> date:
    """``value`` as a calendar date (a datetime must be aware: its UTC date); ValidationError."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValidationError(f"{field}: must be timezone-aware", field=field, value=value)
        return value.astimezone(UTC).date()
    if isinstance(value, date):
        return value
    raise ValidationError(f"{field}: {value!r} is not a date", field=field, value=value)


def check_unit(time_unit_days: Any) -> int:
    """The time unit in days (1: days, 7: weeks ...); ValidationError unless 1..366."""
    if isinstance(time_unit_days, bool) or not isinstance(time_unit_days, int):
        raise ValidationError(
            f"time_unit_days: must be an integer, got {time_unit_days!r}",
            field="time_unit_days",
            value=time_unit_days,
        )
    if not 1 <= time_unit_days <= 366:
        raise ValidationError(
            f"time_unit_days: must be between 1 and 366, got {time_unit_days}",
            field="time_unit_days",
            value=time_unit_days,
        )
    return time_unit_days


def calibration_day(value: Any, field: str = "calibration_end") -> tuple[date, datetime]:
    """``(last UTC day, exclusive upper instant)`` of a calibration end; ValidationError.

    A date is the last day included (the literature's "calibration ends on day
    D"); an aware datetime is an exclusive instant, as ``as_of`` everywhere in
    this plugin: purchases before it count and its last day is the UTC day of the
    instant just before it (so ``1997-09-30`` and ``1997-10-01T00:00Z`` agree).
    """
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValidationError(f"{field}: must be timezone-aware", field=field, value=value)
        try:
            last = (value - timedelta(microseconds=1)).astimezone(UTC).date()
        except OverflowError:
            raise ValidationError(f"{field}: too early", field=field, value=value) from None
        return last, value
    end = check_day(value, field)
    try:
        return end, day_start(end) + timedelta(days=1)
    except OverflowError:
        raise ValidationError(f"{field}: too late", field=field, value=value) from None


def window_bounds(end: date, since: date | None) -> tuple[datetime, datetime | None]:
    """``(exclusive upper instant, inclusive lower instant)`` of the window; ValidationError."""
    if since is not None and since > end:
        raise ValidationError(
            f"since: {since.isoformat()} is after the calibration end {end.isoformat()}",
            field="since",
            value=since,
        )
    try:
        upper = day_start(end) + timedelta(days=1)
    except OverflowError:
        raise ValidationError("calibration_end: too late", field="calibration_end") from None
    return upper, None if since is None else day_start(since)


@requires(Action.READ, scoped=True)  # builds SQL; the caller scopes what it reads
def summary_query(
    crm: CRM, end: date, *, since: date | None = None, before: datetime | None = None
) -> Select[Any]:
    """The summary select over the window ending on UTC day ``end`` (inclusive).

    ``before`` (an instant on day ``end`` or the midnight after it) cuts the last
    day short: only purchases before it count.

    Columns: ``customer_id``, ``frequency``, ``recency_days``, ``age_days``,
    ``repeat_spend`` (ten-thousandths).
    """
    upper, lower = window_bounds(end, since)
    if before is not None and before < upper:
        upper = before
    purchases = counted_purchases(
        crm, upper, since=lower, currency=settings_of(crm).currency, include_zero=True
    ).subquery("pp")
    days = (
        select(purchases.c.customer_id, purchases.c.day, raw_sum(purchases.c.net).label("spend"))
        .group_by(purchases.c.customer_id, purchases.c.day)
        .subquery("pdays")
    )
    first = func.min(days.c.day).over(partition_by=days.c.customer_id)
    with_first = select(days, first.label("first_day")).subquery("pfirst")
    first_day = func.max(with_first.c.first_day)
    return select(
        with_first.c.customer_id,
        (func.count() - literal(1, Integer)).label("frequency"),
        (func.max(with_first.c.day) - first_day).label("recency_days"),
        (literal(day_number(day_start(end)), Integer) - first_day).label("age_days"),
        raw_sum(
            case((with_first.c.day > with_first.c.first_day, with_first.c.spend), else_=0)
        ).label("repeat_spend"),
    ).group_by(with_first.c.customer_id)


@frozen
class Summary:
    """Per-customer model inputs as parallel numpy arrays (times in ``time_unit_days``)."""

    customer_id: NDArrayInt
    frequency: Array
    recency: Array
    age: Array
    mean_value: Array
    time_unit_days: int
    end: date
    since: date | None

    def __len__(self) -> int:
        """The number of customers summarised."""
        return int(self.customer_id.size)


def to_summary(rows: Sequence[Any], unit: int, end: date, since: date | None) -> Summary:
    """A :class:`Summary` from rows of :func:`summary_query`."""
    ids = np.array([int(r.customer_id) for r in rows], dtype=np.int64)
    x = np.array([float(r.frequency) for r in rows], dtype=np.float64)
    t_x = np.array([float(r.recency_days) for r in rows], dtype=np.float64) / unit
    age = np.array([float(r.age_days) for r in rows], dtype=np.float64) / unit
    spend = np.array([float(r.repeat_spend or 0) for r in rows], dtype=np.float64) / SCALE
    mean = np.divide(spend, x, out=np.zeros_like(spend), where=x > 0)
    return Summary(ids, x, t_x, age, mean, unit, end, since)


@requires(Action.READ, scoped=True)  # rows only of customers the principal may read
def customer_summaries(
    crm: CRM,
    *,
    calibration_end: date | datetime | None = None,
    since: date | datetime | None = None,
    time_unit_days: int = 7,
    customer_ids: Sequence[int] | None = None,
    ctx: UnitOfWork | None = None,
) -> Summary:
    """The model summary of every customer (or ``customer_ids``) the principal may read.

    ``calibration_end`` is the window's last UTC day, or an aware datetime before
    which purchases count (:func:`calibration_day`; default: now, by the CRM
    clock); ``since`` its first day (default: all history); times come back in
    units of ``time_unit_days`` days. Ordered by customer id.
    """
    unit = check_unit(time_unit_days)
    end, before = calibration_day(crm.clock() if calibration_end is None else calibration_end)
    start = None if since is None else check_day(since, "since")
    scoped = summary_query(crm, end, since=start, before=before).subquery("summary")
    query = (
        select(scoped)
        .where(crm.access.where(scoped.c.customer_id, ctx=ctx))
        .order_by(scoped.c.customer_id)
    )
    rows: list[Any] = []
    with crm.reading(ctx) as uow:
        if customer_ids is None:
            rows = list(uow.connection.execute(query.execution_options(yield_per=10_000)))
        else:
            wanted = sorted(set(customer_ids))
            for at in range(0, len(wanted), _IN_CHUNK):
                chunk = wanted[at : at + _IN_CHUNK]
                rows.extend(uow.connection.execute(query.where(scoped.c.customer_id.in_(chunk))))
    return to_summary(rows, unit, end, start)


# A public service function added without @requires refuses every user's view.
enforce_declared(__name__)
