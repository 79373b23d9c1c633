"""SQL building blocks the aggregates share, the same on SQLite and PostgreSQL.

* :func:`days_between`: the length of an interval between two timestamps in
  days (fractional): ``julianday`` on SQLite, ``extract(epoch ...)`` on PostgreSQL.
* :func:`median_by`: the median of a value per group with window functions
  (``row_number`` and ``count`` over the group): the middle value, or the mean
  of the two middle values for an even count, as ``statistics.median``.
* :func:`scaled_text`: a Decimal stored as text in the history, as Money's
  integer of ten-thousandths (exact on PostgreSQL; on SQLite through a double,
  exact for amounts below 10^11).
* :func:`periods`: calendar months or quarters covering ``[start, end)`` and the
  ``CASE`` expression naming the period of a date.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Date,
    Float,
    Numeric,
    Select,
    case,
    cast,
    func,
    literal,
    select,
)

from crmcore_sales.validation import bad


def days_between(later: Any, earlier: Any, dialect: str) -> ColumnElement[float]:
    """``later - earlier`` in days (a float)."""
    if dialect == "sqlite":
        return cast(func.julianday(later) - func.julianday(earlier), Float)
    return cast(func.extract("epoch", later - earlier) / 86400.0, Float)


def median_by(query: Select[*tuple[Any, ...]], value: str, groups: Sequence[str]) -> Select[Any]:
    """``(groups..., median)`` of column ``value`` of ``query`` per group (NULLs left out)."""
    inner = query.subquery("values_")
    keys = [inner.c[g] for g in groups]
    ranked = (
        select(
            *keys,
            inner.c[value].label("v"),
            func.row_number().over(partition_by=keys, order_by=inner.c[value]).label("rn"),
            func.count().over(partition_by=keys).label("cnt"),
        )
        .where(inner.c[value].is_not(None))
        .subquery("ranked")
    )
    rk = [ranked.c[g] for g in groups]
    middle = ranked.c.rn.in_([(ranked.c.cnt + 1) // 2, (ranked.c.cnt + 2) // 2])
    return select(*rk, func.avg(ranked.c.v).label("median")).where(middle).group_by(*rk)


def scaled_text(column: Any, dialect: str) -> ColumnElement[int]:
    """A Decimal written as text, as an integer of ten-thousandths."""
    if dialect == "sqlite":
        return cast(func.round(cast(column, Float) * 10000), BigInteger)
    return cast(cast(column, Numeric) * 10000, BigInteger)


def date_text(column: Any, dialect: str) -> ColumnElement[Any]:
    """An ISO date written as text, comparable with dates."""
    return column if dialect == "sqlite" else cast(column, Date)


def date_value(value: date, dialect: str) -> Any:
    """A date to compare with :func:`date_text` (ISO text on SQLite, a date elsewhere)."""
    return value.isoformat() if dialect == "sqlite" else value


def _quarter_start(day: date) -> date:
    return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)


def _next(first: date, months: int) -> date:
    month = first.month - 1 + months
    return date(first.year + month // 12, month % 12 + 1, 1)


def periods(start: date, end: date, unit: str) -> list[tuple[str, date, date]]:
    """``(label, first_day, next_first_day)`` of each month or quarter meeting ``[start, end)``.

    Labels are ``2026-01`` or ``2026-Q1``; spans are cut to the range; at most 400.
    """
    if unit not in ("month", "quarter"):
        bad("period", f"{unit!r} is not one of: month, quarter", unit)
    if end <= start:
        bad("end", f"{end} is not after start {start}", end)
    step = 1 if unit == "month" else 3
    first = date(start.year, start.month, 1) if unit == "month" else _quarter_start(start)
    found: list[tuple[str, date, date]] = []
    while first < end:
        after = _next(first, step)
        label = (
            f"{first:%Y-%m}" if unit == "month" else f"{first.year}-Q{(first.month - 1) // 3 + 1}"
        )
        found.append((label, max(first, start), min(after, end)))
        first = after
        if len(found) > 400:
            bad("end", "the range holds more than 400 periods", end)
    return found


def period_case(column: Any, spans: Sequence[tuple[str, date, date]]) -> ColumnElement[Any]:
    """The label of the span a date falls in (``NULL`` outside every span)."""
    return case(
        *[((column >= first) & (column < after), literal(label)) for label, first, after in spans],
        else_=None,
    )


__all__ = [
    "date_text",
    "date_value",
    "days_between",
    "median_by",
    "period_case",
    "periods",
    "scaled_text",
]
