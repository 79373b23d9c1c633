"""Input checks shared by the loyalty services: points, instants, idempotency keys, reasons.

Also :func:`these_or_everyone`, the customers a programme-wide call concerns.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time
from typing import Any

from crmcore import CRM, UnitOfWork, ValidationError
from crmcore.access import Action

#: Largest number of points one operation may move.
MAX_POINTS = 1_000_000_000

__all__ = [
    "MAX_POINTS",
    "check_key",
    "check_moment",
    "check_points",
    "check_reason",
    "resolve_as_of",
    "these_or_everyone",
]


def check_points(points: Any, *, signed: bool = False) -> int:
    """``points`` as a positive integer (non-zero when ``signed``) within :data:`MAX_POINTS`."""
    if isinstance(points, bool) or not isinstance(points, int):
        raise ValidationError(
            f"points: expected an integer, got {points!r}", field="points", value=points
        )
    if signed and points == 0:
        raise ValidationError("points: an adjustment must not be 0", field="points", value=points)
    if not signed and points <= 0:
        raise ValidationError(
            f"points: must be positive, got {points}", field="points", value=points
        )
    if abs(points) > MAX_POINTS:
        raise ValidationError(
            f"points: {points} is beyond the limit of {MAX_POINTS}", field="points", value=points
        )
    return points


def check_moment(value: Any, name: str, default: datetime) -> datetime:
    """An aware datetime, or ``default`` for ``None``; ValidationError naming ``name``."""
    if value is None:
        return default
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise ValidationError(
            f"{name}: must be a timezone-aware datetime, got {value!r}", field=name, value=value
        )
    return value


def resolve_as_of(value: date | datetime | None, default: datetime) -> datetime:
    """An ``as_of`` argument as an instant: a date means the end of that day (UTC).

    Raises ValidationError for naive datetimes and other types.
    """
    if value is None:
        return default
    if isinstance(value, datetime):
        return check_moment(value, "as_of", default)
    if isinstance(value, date):
        return datetime.combine(value, time.max, tzinfo=UTC)
    raise ValidationError(f"as_of: expected a date or datetime, got {value!r}", field="as_of")


def check_key(key: Any, kind: str) -> str:
    """An idempotency key as given, or a new one for ``kind`` when ``None``."""
    if key is None:
        return f"{kind}:{uuid.uuid4().hex}"
    if not isinstance(key, str) or not key.strip() or len(key) > 200:
        raise ValidationError(
            f"idempotency_key: must be a non-empty string of at most 200 characters, got {key!r}",
            field="idempotency_key",
            value=key,
        )
    return key


def check_reason(reason: Any, *, required: bool = False) -> str | None:
    """A stripped reason of at most 1,000 characters (``None`` when blank and optional)."""
    if reason is None or (isinstance(reason, str) and not reason.strip()):
        if required:
            raise ValidationError("reason: required for an adjustment", field="reason")
        return None
    if not isinstance(reason, str) or len(reason) > 1000:
        raise ValidationError(
            "reason: must be a string of at most 1000 characters", field="reason", value=reason
        )
    return reason.strip()


def these_or_everyone(
    crm: CRM, ctx: UnitOfWork | None, arguments: Mapping[str, Any]
) -> Sequence[int]:
    """The customers named, or (none named) every customer: refused unless allowed on all.

    A :func:`crmcore.scoping.requires` resolver for calls taking ``customer_ids``.
    """
    named = arguments.get("customer_ids")
    if named is None:
        crm.access.require(Action.WRITE)
        return []
    return list(named)
