"""Column types that behave the same on SQLite and PostgreSQL.

Plugins use them for their own tables so that money and time are stored the
way core stores them.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Dialect, Integer
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator

#: Money is stored in units of 1/10,000 of the currency unit.
MONEY_SCALE = 4
_FACTOR = Decimal(10) ** MONEY_SCALE


class Money(TypeDecorator[Decimal]):
    """A Decimal amount stored exactly as a scaled 64-bit integer.

    SQLite has no exact decimal type; storing ten-thousandths as integers keeps
    ``SUM`` and comparisons exact on every backend. Values with more than four
    decimal places are refused by the services before they reach the database.
    Aggregates such as ``func.sum(col)`` keep this type and come back as Decimal.
    """

    impl = BigInteger
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> int | None:
        """Scale a Decimal to an integer of ten-thousandths."""
        if value is None:
            return None
        scaled = Decimal(value) * _FACTOR
        if scaled != scaled.to_integral_value():
            raise ValueError(f"amount {value} has more than {MONEY_SCALE} decimal places")
        return int(scaled)

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        """Turn stored ten-thousandths back into a Decimal."""
        if value is None:
            return None
        amount = Decimal(value).scaleb(-MONEY_SCALE)
        # normalize() alone would turn 100 into 1E+2.
        return (
            amount.quantize(Decimal(1))
            if amount == amount.to_integral_value()
            else amount.normalize()
        )


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware timestamp, stored in UTC and always read back aware.

    Naive datetimes are refused: a CRM that mixes time zones silently breaks
    SLA and recency logic.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> datetime | None:
        """Convert an aware datetime to UTC (naive for SQLite, which has no zones)."""
        if value is None:
            return None
        if not isinstance(value, datetime) or value.tzinfo is None:
            raise ValueError(f"timestamp must be timezone-aware: {value!r}")
        utc: datetime = value.astimezone(UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        """On SQLite, one step to SQLAlchemy's text format (``YYYY-MM-DD HH:MM:SS.ffffff``)."""
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)

        def process(value: Any) -> str | None:
            if value is None:
                return None
            if not isinstance(value, datetime) or value.tzinfo is None:
                raise ValueError(f"timestamp must be timezone-aware: {value!r}")
            utc: datetime = value.astimezone(UTC)
            return utc.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")

        return process

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        """Return the stored timestamp as an aware datetime in UTC."""
        if value is None:
            return None
        stored: datetime = value
        if stored.tzinfo is None:
            return stored.replace(tzinfo=UTC)
        return stored.astimezone(UTC)


#: Integer primary keys: 64-bit on PostgreSQL; INTEGER on SQLite, the only type it
#: autoincrements. Use it for columns referencing ``crm_customers.id``.
IdType = BigInteger().with_variant(Integer(), "sqlite")

#: JSON on SQLite, JSONB on PostgreSQL.
JSONDocument = JSON().with_variant(JSONB(), "postgresql")


#: The largest absolute amount Money stores (fits a signed 64-bit integer of ten-thousandths).
MAX_MONEY = Decimal("1e14")


def money_problem(value: Decimal) -> str | None:
    """Why ``value`` cannot be stored as Money, or ``None`` when it can."""
    if not isinstance(value, Decimal) or not value.is_finite():
        return f"expected a finite Decimal, got {value!r}"
    if abs(value) >= MAX_MONEY:
        return f"{value} is too large (limit {MAX_MONEY:,.0f})"
    if (value * _FACTOR) % 1 != 0:
        return f"{value} has more than {MONEY_SCALE} decimal places"
    return None
