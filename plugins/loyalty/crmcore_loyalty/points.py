"""Moving points: earn, redeem and adjust, complaint compensations, expiry.

Every write runs in one unit of work (``crm.unit_of_work(actor, ctx)``;
pass ``ctx=`` to join an open one): the ledger entry, the lots it consumes
and any hook it fires commit together or not at all. Bad input raises
``ValidationError`` naming the field, unknown members ``NotFoundError``,
reused idempotency keys naming another operation ``ConflictError``. The
entries are audited through core by :func:`crmcore_loyalty.ledger.append`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import select

from crmcore import CRM, UnitOfWork, ValidationError
from crmcore.access import Action
from crmcore.dry_run import unit_or_dry_run
from crmcore.scoping import enforce_declared, requires
from crmcore_loyalty import ledger
from crmcore_loyalty.checks import (
    check_key,
    check_moment,
    check_points,
    check_reason,
    resolve_as_of,
)
from crmcore_loyalty.earning import ACTIVE
from crmcore_loyalty.membership import insert_members, member_row
from crmcore_loyalty.programme import settings_of
from crmcore_loyalty.records import ExpiryRun, LedgerEntry
from crmcore_loyalty.tables import ledger_table


def _compensated(crm: CRM, ctx: UnitOfWork | None, arguments: Mapping[str, Any]) -> list[int]:
    return [c["customer_id"] for c in arguments["compensations"] if "customer_id" in c]


def _credit(
    crm: CRM,
    customer_id: int,
    points: int,
    *,
    kind: str,
    key: str,
    reason: str | None,
    at: datetime | None,
    active_only: bool,
    actor: str | None,
    ctx: UnitOfWork | None,
) -> LedgerEntry:
    with crm.unit_of_work(actor, ctx) as uow:
        member = member_row(uow, customer_id, lock=True)
        if active_only and member.status != ACTIVE:
            raise ValidationError(
                f"customer_id: customer {customer_id} left the programme", field="customer_id"
            )
        when = check_moment(at, "at", uow.now)
        row = ledger.entry_row(
            uow,
            customer_id=customer_id,
            kind=kind,
            points=points,
            key=key,
            occurred_at=when,
            expires_at=settings_of(crm).expiry_for(when),
            reason=reason,
        )
        return ledger.append_one(uow, row)


def _debit(
    crm: CRM,
    customer_id: int,
    points: int,
    *,
    kind: str,
    key: str,
    reason: str | None,
    at: datetime | None,
    active_only: bool,
    actor: str | None,
    ctx: UnitOfWork | None,
) -> LedgerEntry:
    """Take ``points`` FIFO from unexpired lots; refuse to overdraw.

    Order: lock the member, claim the key (a replay returns the stored
    entry untouched), write off lots overdue at ``at``, check the ledger
    balance, consume lots.
    """
    with crm.unit_of_work(actor, ctx) as uow:
        member = member_row(uow, customer_id, lock=True)
        if active_only and member.status != ACTIVE:
            raise ValidationError(
                f"customer_id: customer {customer_id} left the programme", field="customer_id"
            )
        when = check_moment(at, "at", uow.now)
        row = ledger.entry_row(
            uow,
            customer_id=customer_id,
            kind=kind,
            points=-points,
            key=key,
            occurred_at=when,
            reason=reason,
        )
        written = ledger.append(uow, [row])
        if not written:
            existing = ledger.entry_by_key(uow, key)
            assert existing is not None
            ledger.check_same_operation(existing, row)
            return existing
        ledger.expire_due(uow, when, [customer_id], locked=True)
        after = ledger.balances(uow, [customer_id])[customer_id]
        if after < 0:
            raise ValidationError(
                f"points: {kind} of {points} would overdraw the balance of {after + points}",
                field="points",
                value=points,
            )
        ledger.apply_debits(uow, [ledger.Debit(row=row, wanted=points)], written_ids=written)
        table = ledger_table(crm.metadata)
        stored = uow.connection.execute(select(table).where(table.c.id == written[0])).one()
        return LedgerEntry.from_row(stored)


@requires(Action.WRITE, customer="customer_id")
def earn(
    crm: CRM,
    customer_id: int,
    points: int,
    *,
    idempotency_key: str | None = None,
    reason: str | None = None,
    at: datetime | None = None,
    actor: str | None = None,
    ctx: UnitOfWork | None = None,
) -> LedgerEntry:
    """Credit ``points`` to an active member (a manual ``earn``, expiring per the policy).

    The same ``idempotency_key`` again returns the stored entry (``replayed``)
    and writes nothing; with other values it raises ConflictError. Without a
    key a random one is used. Raises ValidationError, NotFoundError.
    """
    return _credit(
        crm,
        customer_id,
        check_points(points),
        kind="earn",
        key=check_key(idempotency_key, "earn"),
        reason=check_reason(reason),
        at=at,
        active_only=True,
        actor=actor,
        ctx=ctx,
    )


@requires(Action.WRITE, customer="customer_id")
def redeem(
    crm: CRM,
    customer_id: int,
    points: int,
    *,
    idempotency_key: str | None = None,
    reason: str | None = None,
    at: datetime | None = None,
    actor: str | None = None,
    ctx: UnitOfWork | None = None,
) -> LedgerEntry:
    """Redeem ``points`` of an active member, consuming the oldest unexpired lots first.

    Points overdue at ``at`` are written off first. A redemption that would
    overdraw raises ValidationError and writes nothing. Idempotent on
    ``idempotency_key`` as :func:`earn`.
    """
    return _debit(
        crm,
        customer_id,
        check_points(points),
        kind="redeem",
        key=check_key(idempotency_key, "redeem"),
        reason=check_reason(reason),
        at=at,
        active_only=True,
        actor=actor,
        ctx=ctx,
    )


@requires(Action.WRITE, customer="customer_id")
def adjust(
    crm: CRM,
    customer_id: int,
    points: int,
    *,
    reason: str,
    idempotency_key: str | None = None,
    at: datetime | None = None,
    actor: str | None = None,
    ctx: UnitOfWork | None = None,
) -> LedgerEntry:
    """Correct a member's balance by signed ``points`` (members who left included).

    Positive: a credit expiring per the policy. Negative: a FIFO debit that
    may not overdraw. ``reason`` is required. Idempotent as :func:`earn`.
    """
    points = check_points(points, signed=True)
    options: dict[str, Any] = {
        "kind": "adjust",
        "key": check_key(idempotency_key, "adjust"),
        "reason": check_reason(reason, required=True),
        "at": at,
        "active_only": False,
        "actor": actor,
        "ctx": ctx,
    }
    if points > 0:
        return _credit(crm, customer_id, points, **options)
    return _debit(crm, customer_id, -points, **options)


@requires(Action.WRITE, customer=_compensated)
def credit_compensations(ctx: UnitOfWork, compensations: Sequence[Mapping[str, Any]]) -> int:
    """Credit complaint compensations of kind ``points`` as ``adjust`` entries.

    Idempotent on each compensation's ``idempotency_key``; customers who are
    not members yet are enrolled (channel ``other``) so that no compensation
    is lost. Returns the entries written. A reused key naming another
    operation raises ConflictError (rolling back the complaint's operation).
    """
    wanted = [c for c in compensations if c.get("kind") == "points" and c.get("points")]
    if not wanted:
        return 0
    for c in wanted:
        check_points(c["points"])
        check_key(c.get("idempotency_key") or "", "adjust")
    members = ledger.lock_members(ctx, [c["customer_id"] for c in wanted], lock=False)
    missing = sorted({c["customer_id"] for c in wanted} - set(members))
    if missing:
        insert_members(
            ctx, [{"customer_id": cid, "joined_at": ctx.now, "channel": "other"} for cid in missing]
        )
    programme = settings_of(ctx.crm)
    rows = [
        ledger.entry_row(
            ctx,
            customer_id=c["customer_id"],
            kind="adjust",
            points=int(c["points"]),
            key=str(c["idempotency_key"]),
            occurred_at=ctx.now,
            expires_at=programme.expiry_for(ctx.now),
            reason=f"complaint {c.get('complaint_id')}: {c.get('reason') or 'compensation'}",
            details={"complaint_id": c.get("complaint_id"), "source": "complaints"},
        )
        for c in wanted
    ]
    written = ledger.append(ctx, rows)
    if len(written) < len(rows):
        table = ledger_table(ctx.crm.metadata)
        stored = {
            r.idempotency_key: LedgerEntry.from_row(r)
            for r in ctx.connection.execute(
                select(table).where(
                    table.c.idempotency_key.in_([r["idempotency_key"] for r in rows])
                )
            )
        }
        for row in rows:
            ledger.check_same_operation(stored[row["idempotency_key"]], row)
    return len(written)


@requires(Action.WRITE)
def expire(
    crm: CRM,
    *,
    as_of: date | datetime | None = None,
    actor: str | None = None,
    ctx: UnitOfWork | None = None,
    dry_run: bool = False,
) -> ExpiryRun:
    """Write off every lot expired at ``as_of`` (default now); idempotent and exact.

    Each lot with ``expires_at <= as_of`` and points left gets one ``expire``
    entry for exactly those points, dated at its expiry instant. Running it
    again (or with an earlier ``as_of``) writes nothing more. ``dry_run=True``
    returns what would expire and writes nothing (the run is rolled back).
    """
    with unit_or_dry_run(crm, actor, ctx, dry_run) as uow:
        return ledger.expire_due(uow, resolve_as_of(as_of, uow.now))


# A public service function added without @requires refuses every user's view.
enforce_declared(__name__)
