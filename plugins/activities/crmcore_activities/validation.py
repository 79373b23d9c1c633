"""Input checks shared by the service functions: one-line errors naming the field."""

from __future__ import annotations

import re
from collections.abc import Collection
from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any, NoReturn
from zoneinfo import ZoneInfo

from crmcore import UnitOfWork
from crmcore.errors import ValidationError
from crmcore.storage.types import money_problem

_CURRENCY = re.compile(r"^[A-Z]{3}$")


def bad(field: str, message: str, value: Any = None) -> NoReturn:
    """Raise a ValidationError ``"<field>: <message>"`` naming ``field``."""
    raise ValidationError(f"{field}: {message}", field=field, value=value)


def money(field: str, value: Any, *, positive: bool = False) -> Decimal:
    """A Decimal amount (Decimal, int or numeric text; never a float), not negative."""
    if isinstance(value, bool | float):
        bad(field, f"expected a Decimal or text, not {type(value).__name__} {value!r}", value)
    try:
        amount = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        bad(field, f"{value!r} is not a number", value)
    problem = money_problem(amount)
    if problem is not None:
        bad(field, problem, value)
    if amount < 0 or (positive and amount == 0):
        bad(field, f"{amount} must be {'positive' if positive else 'zero or more'}", value)
    return amount


def currency(field: str, value: Any) -> str:
    """A three-letter ISO 4217 code in upper case (``EUR``)."""
    if not isinstance(value, str) or not _CURRENCY.match(value.strip().upper()):
        bad(field, f"{value!r} is not a three-letter ISO currency code", value)
    return value.strip().upper()


def day(field: str, value: Any) -> date:
    """A calendar date (a ``date`` or ISO text ``YYYY-MM-DD``)."""
    if isinstance(value, datetime):
        bad(field, f"expected a date, got a timestamp {value.isoformat()}", value)
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    bad(field, f"{value!r} is not a date (YYYY-MM-DD)", value)


def text(field: str, value: Any, limit: int, *, required: bool = False) -> str | None:
    """Stripped text of at most ``limit`` characters (``None`` for empty unless required)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            bad(field, "is required", value)
        return None
    if not isinstance(value, str):
        bad(field, f"expected text, got {type(value).__name__}", value)
    stripped = value.strip()
    if len(stripped) > limit:
        bad(field, f"is longer than {limit} characters", value)
    return stripped


def integer(field: str, value: Any, low: int, high: int) -> int:
    """An integer in ``[low, high]`` (bools refused)."""
    if isinstance(value, bool) or not isinstance(value, int):
        bad(field, f"expected an integer, got {value!r}", value)
    if not low <= value <= high:
        bad(field, f"{value} is outside {low}-{high}", value)
    return value


def identifier(field: str, value: Any) -> int:
    """A positive database id."""
    return integer(field, value, 1, 2**63 - 1)


def choice(field: str, value: Any, allowed: Collection[str]) -> str:
    """One of ``allowed``."""
    if not isinstance(value, str) or value not in allowed:
        bad(field, f"{value!r} is not one of: {', '.join(allowed)}", value)
    return value


def moment(uow: UnitOfWork, at: datetime | None, field: str = "at") -> datetime:
    """When an operation happens: ``at`` (aware, not after the clock) or the clock's time."""
    if at is None:
        return uow.now
    if not isinstance(at, datetime) or at.tzinfo is None:
        bad(field, f"expected a timezone-aware timestamp, got {at!r}", at)
    if at > uow.now:
        bad(field, f"{at.isoformat()} is in the future", at)
    return at


def local_moment(field: str, value: Any, zone: ZoneInfo) -> datetime:
    """An instant: an aware datetime, or a naive one / ISO text read in ``zone``.

    A wall time that does not exist in ``zone`` (skipped by a DST change) is
    refused; an ambiguous one (repeated) is its first occurrence.
    """
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            bad(field, f"{value!r} is not a timestamp (YYYY-MM-DDTHH:MM[+HH:MM])", value)
    if not isinstance(value, datetime):
        bad(field, f"expected a timestamp, got {value!r}", value)
    if value.tzinfo is not None:
        return value
    local = value.replace(tzinfo=zone)
    back = local.astimezone(ZoneInfo("UTC")).astimezone(zone)
    if back.replace(tzinfo=None) != value:
        bad(field, f"{value.isoformat()} does not exist in {zone.key} (a DST gap)", value)
    return local


def wall(day_: date, at: time, zone: ZoneInfo) -> datetime:
    """``day_`` at local time ``at`` in ``zone`` (moved forward out of a DST gap)."""
    local = datetime.combine(day_, at, tzinfo=zone)
    back = local.astimezone(ZoneInfo("UTC")).astimezone(zone)
    return back if back.replace(tzinfo=None) != local.replace(tzinfo=None) else local


__all__ = [
    "bad",
    "choice",
    "currency",
    "day",
    "identifier",
    "integer",
    "local_moment",
    "moment",
    "money",
    "text",
    "wall",
]
