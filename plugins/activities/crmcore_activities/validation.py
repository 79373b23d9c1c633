"""Input checks of the activities services: core's :mod:`crmcore.checks`, and local times."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from crmcore.checks import (
    bad,
    choice,
    currency,
    day,
    identifier,
    integer,
    moment,
    money,
    text,
)


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
