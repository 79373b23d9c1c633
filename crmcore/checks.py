"""Input checks for service functions (core's and plugins'): one-line errors naming the field.

Each check returns the value it accepts, converted (a Decimal, a date, a
stripped string), or raises :class:`~crmcore.errors.ValidationError` with the
message ``"<field>: <what is wrong>"`` and ``field`` set, which the CLI prints
as one line and an embedding application maps to HTTP 422.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, NoReturn

from crmcore.errors import ValidationError
from crmcore.storage.types import money_problem

if TYPE_CHECKING:
    from crmcore.unit_of_work import UnitOfWork

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


__all__ = [
    "bad",
    "choice",
    "currency",
    "day",
    "identifier",
    "integer",
    "moment",
    "money",
    "text",
]
