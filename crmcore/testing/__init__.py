"""Helpers for testing code built on crmcore: a controllable clock and the access kit.

The access conformance kit (:func:`run_conformance`, :class:`Case`,
:class:`Matrix`) lives in :mod:`crmcore.testing.conformance` and is re-exported here.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from crmcore.testing.conformance import (
    ADMIN_ONLY,
    EVERYONE_ONLY,
    PRINCIPALS,
    SCOPED,
    Case,
    Cell,
    Matrix,
    Subjects,
    fresh_customer,
    in_unit_of_work,
    prepare_customers,
    recorded_matrices,
    run_conformance,
)

__all__ = [
    "ADMIN_ONLY",
    "EVERYONE_ONLY",
    "PRINCIPALS",
    "SCOPED",
    "Case",
    "Cell",
    "FrozenClock",
    "Matrix",
    "Subjects",
    "fresh_customer",
    "in_unit_of_work",
    "prepare_customers",
    "recorded_matrices",
    "run_conformance",
]


class FrozenClock:
    """A clock that stands still until told to move; pass it as ``CRM.open(..., clock=...)``.

    >>> clock = FrozenClock(datetime(2026, 1, 1, tzinfo=UTC))
    >>> clock.advance(hours=2)
    datetime.datetime(2026, 1, 1, 2, 0, tzinfo=datetime.timezone.utc)
    """

    def __init__(self, now: datetime | None = None) -> None:
        self.now = now or datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
        if self.now.tzinfo is None:
            raise ValueError("FrozenClock needs a timezone-aware datetime")

    def __call__(self) -> datetime:
        """The current frozen time."""
        return self.now

    def advance(self, **delta: float) -> datetime:
        """Move forward by a timedelta given as keywords (``hours=2``); return the new time."""
        self.now += timedelta(**delta)
        return self.now

    def set(self, now: datetime) -> None:
        """Jump to ``now`` (timezone-aware)."""
        if now.tzinfo is None:
            raise ValueError("FrozenClock needs a timezone-aware datetime")
        self.now = now
