"""Value types the loyalty API returns: members, ledger entries, balances, tier changes."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from attrs import frozen

#: The kinds of ledger entries.
KINDS = ("earn", "redeem", "expire", "adjust", "reverse")


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


@frozen
class Member:
    """A customer who joined the programme (``status`` is ``active`` or ``left``)."""

    customer_id: int
    member_number: str
    status: str
    joined_at: datetime
    left_at: datetime | None = None
    channel: str | None = None
    referred_by: int | None = None
    tier: str | None = None
    tier_since: datetime | None = None

    @classmethod
    def from_row(cls, row: Any) -> Member:
        """Build a member from a ``loyalty_members`` row."""
        return cls(
            customer_id=row.customer_id,
            member_number=row.member_number,
            status=row.status,
            joined_at=row.joined_at,
            left_at=row.left_at,
            channel=row.channel,
            referred_by=row.referred_by,
            tier=row.tier,
            tier_since=row.tier_since,
        )

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe dict (ISO timestamps)."""
        return {
            "customer_id": self.customer_id,
            "member_number": self.member_number,
            "status": self.status,
            "joined_at": _iso(self.joined_at),
            "left_at": _iso(self.left_at),
            "channel": self.channel,
            "referred_by": self.referred_by,
            "tier": self.tier,
            "tier_since": _iso(self.tier_since),
        }


@frozen
class LedgerEntry:
    """One ledger entry: signed ``points`` (credits positive, debits negative).

    ``replayed`` is true when the call reused an idempotency key and this is
    the entry stored by the first call (nothing new was written).
    """

    id: int
    customer_id: int | None
    kind: str
    points: int
    occurred_at: datetime
    recorded_at: datetime
    expires_at: datetime | None = None
    interaction_id: int | None = None
    purchase_id: int | None = None
    amount: Decimal | None = None
    reason: str | None = None
    idempotency_key: str | None = None
    actor: str | None = None
    details: Mapping[str, Any] | None = None
    replayed: bool = False

    @classmethod
    def from_row(cls, row: Any, *, replayed: bool = False) -> LedgerEntry:
        """Build an entry from a ``loyalty_ledger`` row."""
        return cls(
            id=row.id,
            customer_id=row.customer_id,
            kind=row.kind,
            points=int(row.points),
            occurred_at=row.occurred_at,
            recorded_at=row.recorded_at,
            expires_at=row.expires_at,
            interaction_id=row.interaction_id,
            purchase_id=row.purchase_id,
            amount=row.amount,
            reason=row.reason,
            idempotency_key=row.idempotency_key,
            actor=row.actor,
            details=row.details,
            replayed=replayed,
        )

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe dict (ISO timestamps, amount as a string)."""
        return {
            "id": self.id,
            "customer_id": self.customer_id,
            "kind": self.kind,
            "points": self.points,
            "occurred_at": _iso(self.occurred_at),
            "recorded_at": _iso(self.recorded_at),
            "expires_at": _iso(self.expires_at),
            "interaction_id": self.interaction_id,
            "purchase_id": self.purchase_id,
            "amount": None if self.amount is None else str(self.amount),
            "reason": self.reason,
            "idempotency_key": self.idempotency_key,
            "actor": self.actor,
            "details": dict(self.details) if self.details else None,
            "replayed": self.replayed,
        }


@frozen
class Balance:
    """A member's points as of a moment.

    ``points`` is the sum of the ledger. ``overdue`` are points whose expiry
    time has passed but that no expiry run (or debit) has written off yet;
    ``available = points - overdue`` is what can be redeemed. ``expiring``
    lists ``(expires_at, points)`` of lots expiring within the programme's
    ``expiring_soon_days``.
    """

    customer_id: int
    points: int
    available: int
    overdue: int
    tier: str | None
    status: str
    as_of: datetime
    expiring: tuple[tuple[datetime, int], ...] = ()

    @property
    def expiring_soon(self) -> int:
        """Points expiring within the programme's ``expiring_soon_days``."""
        return sum(points for _, points in self.expiring)

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe dict."""
        return {
            "customer_id": self.customer_id,
            "points": self.points,
            "available": self.available,
            "overdue": self.overdue,
            "tier": self.tier,
            "status": self.status,
            "as_of": self.as_of.isoformat(),
            "expiring_soon": self.expiring_soon,
            "expiring": [{"expires_at": at.isoformat(), "points": p} for at, p in self.expiring],
        }


@frozen
class TierChange:
    """A member moved between tiers (``None``: no tier)."""

    customer_id: int
    from_tier: str | None
    to_tier: str | None
    at: datetime
    reason: str

    def as_dict(self) -> dict[str, Any]:
        """The payload of ``loyalty_tier_changed`` (``at`` stays a datetime)."""
        return {
            "customer_id": self.customer_id,
            "from_tier": self.from_tier,
            "to_tier": self.to_tier,
            "at": self.at,
            "reason": self.reason,
        }


@frozen
class ExpiryRun:
    """What one expiry run wrote off: lots, points and members affected."""

    as_of: datetime
    lots: int
    points: int
    members: int

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe dict."""
        return {
            "as_of": self.as_of.isoformat(),
            "lots": self.lots,
            "points": self.points,
            "members": self.members,
        }
