"""Calendar arithmetic in SQL that gives the same integers on SQLite and PostgreSQL.

Two expressions, compiled per dialect:

* :func:`utc_day`: the UTC calendar date of a timestamp as a day number (days
  since 1970-01-01). Differences of day numbers are whole calendar days.
* :func:`utc_month`: the UTC calendar month as ``year * 12 + month - 1``.
  Differences are whole calendar months.

Timestamps are ``UTCDateTime`` columns: naive UTC text on SQLite, ``timestamptz``
on PostgreSQL (read ``AT TIME ZONE 'UTC'`` so the session time zone does not matter).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Integer
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

_EPOCH = date(1970, 1, 1)


class utc_day(FunctionElement[int]):
    """``utc_day(ts)``: days from 1970-01-01 to the UTC calendar date of ``ts``."""

    type = Integer()
    inherit_cache = True
    name = "utc_day"


class utc_month(FunctionElement[int]):
    """``utc_month(ts)``: ``year * 12 + month - 1`` of the UTC calendar month of ``ts``."""

    type = Integer()
    inherit_cache = True
    name = "utc_month"


def _argument(element: FunctionElement[Any], compiler: SQLCompiler, **kw: Any) -> str:
    (argument,) = element.clauses
    return compiler.process(argument, **kw)


@compiles(utc_day, "sqlite")
def _utc_day_sqlite(element: utc_day, compiler: SQLCompiler, **kw: Any) -> str:
    # julianday of a date is exactly n + 0.5, so the difference is an exact integer.
    return f"CAST(julianday(date({_argument(element, compiler, **kw)})) - 2440587.5 AS INTEGER)"


@compiles(utc_day, "postgresql")
def _utc_day_postgresql(element: utc_day, compiler: SQLCompiler, **kw: Any) -> str:
    value = _argument(element, compiler, **kw)
    return f"(CAST(({value}) AT TIME ZONE 'UTC' AS DATE) - DATE '1970-01-01')"


@compiles(utc_month, "sqlite")
def _utc_month_sqlite(element: utc_month, compiler: SQLCompiler, **kw: Any) -> str:
    value = _argument(element, compiler, **kw)
    return (
        f"(CAST(strftime('%Y', {value}) AS INTEGER) * 12 "
        f"+ CAST(strftime('%m', {value}) AS INTEGER) - 1)"
    )


@compiles(utc_month, "postgresql")
def _utc_month_postgresql(element: utc_month, compiler: SQLCompiler, **kw: Any) -> str:
    value = _argument(element, compiler, **kw)
    return (
        f"(CAST(EXTRACT(YEAR FROM ({value}) AT TIME ZONE 'UTC') AS INTEGER) * 12 "
        f"+ CAST(EXTRACT(MONTH FROM ({value}) AT TIME ZONE 'UTC') AS INTEGER) - 1)"
    )


def day_number(moment: datetime) -> int:
    """The Python twin of :func:`utc_day`, for an aware datetime."""
    return (moment.astimezone(UTC).date() - _EPOCH).days


def month_number(moment: datetime) -> int:
    """The Python twin of :func:`utc_month`, for an aware datetime."""
    utc = moment.astimezone(UTC)
    return utc.year * 12 + utc.month - 1


def month_label(number: int) -> str:
    """``YYYY-MM`` of a month number (``year * 12 + month - 1``)."""
    return f"{number // 12:04d}-{number % 12 + 1:02d}"


def month_start(number: int) -> datetime:
    """The first instant (UTC) of a month number."""
    return datetime(number // 12, number % 12 + 1, 1, tzinfo=UTC)
