"""The loyalty programme's Python API: the ledger (earn, redeem, adjust), tiers, expiry.

Every write runs in one unit of work (``crm.unit_of_work(actor, ctx)``;
pass ``ctx=`` to join an open one): the ledger entry, the lots it consumes
and any hook it fires commit together or not at all. Bad input raises
``ValidationError`` naming the field, unknown members ``NotFoundError``,
reused idempotency keys naming another operation ``ConflictError``.

Access: each function declares what it needs with
:func:`crmcore.scoping.requires` (WRITE on the customer for ledger
operations; WRITE on everything for programme-wide runs such as
:func:`expire`); the entries are audited through core by
:func:`crmcore_loyalty.ledger.append`. Enrolment lives in
:mod:`crmcore_loyalty.membership`, reading in :mod:`crmcore_loyalty.statements`,
privacy in :mod:`crmcore_loyalty.privacy`; their functions are re-exported here.

Times: ``at`` is when an entry takes effect (default: the clock's now);
``as_of`` accepts an aware datetime, or a date meaning the *end* of that day
in UTC.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, func, select

from crmcore import CRM, Interaction, UnitOfWork, ValidationError, from_dict
from crmcore.access import Action
from crmcore.dry_run import unit_or_dry_run
from crmcore.scoping import enforce_declared, requires
from crmcore_loyalty import ledger
from crmcore_loyalty.checks import (
    MAX_POINTS,
    check_key,
    check_moment,
    check_points,
    check_reason,
    resolve_as_of,
)
from crmcore_loyalty.earning import ACTIVE, earn_from_interactions
from crmcore_loyalty.membership import (
    LEFT,
    enroll,
    enroll_many,
    get_member,
    insert_members,
    leave,
    member_row,
    record_tier_changes,
)
from crmcore_loyalty.privacy import erase, export, forget
from crmcore_loyalty.programme import PLUGIN_NAME, add_months, settings_of
from crmcore_loyalty.records import ExpiryRun, LedgerEntry, TierChange
from crmcore_loyalty.statements import balance, history, profile_section, tier_history
from crmcore_loyalty.tables import ledger_table, members_table

__all__ = [
    "LEFT",
    "MAX_POINTS",
    "PLUGIN_NAME",
    "adjust",
    "backfill",
    "balance",
    "credit_compensations",
    "earn",
    "enroll",
    "enroll_many",
    "erase",
    "evaluate_tiers",
    "expire",
    "export",
    "forget",
    "get_member",
    "history",
    "leave",
    "profile_section",
    "qualifying_values",
    "redeem",
    "resolve_as_of",
    "tier_history",
]


def _these_or_everyone(
    crm: CRM, ctx: UnitOfWork | None, arguments: Mapping[str, Any]
) -> Sequence[int]:
    """The customers named, or (none named) every customer: refused unless allowed on all."""
    named = arguments.get("customer_ids")
    if named is None:
        crm.access.require(Action.WRITE)
        return []
    return list(named)


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


@requires(Action.WRITE, customer=_these_or_everyone)
def backfill(
    crm: CRM,
    *,
    customer_ids: Sequence[int] | None = None,
    until: datetime | None = None,
    batch_size: int = 500,
    actor: str | None = None,
    ctx: UnitOfWork | None = None,
) -> int:
    """Apply the automatic earning rules to purchases and refunds recorded before enrolment.

    Takes the active members' (or these customers') purchases and refunds at
    or after their join date (and at or before ``until``) not applied yet,
    oldest first, in batches. Idempotent. Returns the entries written.
    """
    interactions = crm.metadata.tables["crm_interactions"]
    members = members_table(crm.metadata)
    table = ledger_table(crm.metadata)
    written = 0
    with crm.unit_of_work(actor, ctx) as uow:
        applied = (
            select(table.c.id)
            .where(
                table.c.interaction_id == interactions.c.id,
                table.c.customer_id == interactions.c.customer_id,
                table.c.kind.in_(["earn", "reverse"]),
            )
            .exists()
        )
        query = (
            select(interactions)
            .join(members, members.c.customer_id == interactions.c.customer_id)
            .where(
                members.c.status == ACTIVE,
                interactions.c.kind.in_(["purchase", "refund"]),
                interactions.c.occurred_at >= members.c.joined_at,
                ~applied,
            )
            .order_by(interactions.c.occurred_at, interactions.c.id)
        )
        if until is not None:
            query = query.where(interactions.c.occurred_at <= until)
        if customer_ids is not None:
            query = query.where(interactions.c.customer_id.in_(sorted(set(customer_ids))))
        rows = uow.connection.execute(query).all()
        for start in range(0, len(rows), batch_size):
            batch = [
                from_dict({k: v for k, v in r._mapping.items() if v is not None}, Interaction)
                for r in rows[start : start + batch_size]
            ]
            written += earn_from_interactions(uow, batch)
    return written


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


# --- tiers and expiry --------------------------------------------------------------------


@requires(Action.READ, customer=_these_or_everyone)
def qualifying_values(
    uow: UnitOfWork, as_of: datetime, customer_ids: Sequence[int] | None = None
) -> dict[int, tuple[str | None, Decimal]]:
    """Active members' current tier and qualifying value over the rolling window to ``as_of``.

    Spend basis: the sum of ``amount`` (purchase amounts minus refunds) of
    the member's entries with ``occurred_at`` in ``(as_of - window, as_of]``.
    Points basis: the sum of ``earn`` and ``reverse`` points in that window.
    One grouped query (per 500 ids when ids are given).
    """
    programme = settings_of(uow.crm)
    members = members_table(uow.crm.metadata)
    table = ledger_table(uow.crm.metadata)
    start = add_months(as_of, -programme.tier_window_months)
    window = and_(
        table.c.customer_id == members.c.customer_id,
        table.c.occurred_at > start,
        table.c.occurred_at <= as_of,
        table.c.kind.in_(["earn", "reverse"]),
    )
    value = table.c.amount if programme.tier_basis == "spend" else table.c.points
    base = (
        select(members.c.customer_id, members.c.tier, func.sum(value))
        .select_from(members.outerjoin(table, window))
        .where(members.c.status == ACTIVE)
        .group_by(members.c.customer_id, members.c.tier)
        .order_by(members.c.customer_id)
    )
    groups: list[list[int] | None] = (
        [None] if customer_ids is None else list(ledger.chunks(customer_ids))
    )
    result: dict[int, tuple[str | None, Decimal]] = {}
    for group in groups:
        query = base if group is None else base.where(members.c.customer_id.in_(group))
        for cid, tier, total in uow.connection.execute(query):
            result[cid] = (tier, Decimal(total or 0))
    return result


@requires(Action.WRITE, customer=_these_or_everyone)
def evaluate_tiers(
    crm: CRM,
    *,
    as_of: date | datetime | None = None,
    customer_ids: Sequence[int] | None = None,
    actor: str | None = None,
    ctx: UnitOfWork | None = None,
) -> list[TierChange]:
    """Re-evaluate active members' tiers (all, or these) as of ``as_of``; return the changes.

    A member's tier is the highest whose threshold their qualifying value
    (see :func:`qualifying_values`) reaches: upgrades and downgrades alike.
    Changes go to the tier history and fire ``loyalty_tier_changed`` once.
    """
    programme = settings_of(crm)
    with crm.unit_of_work(actor, ctx) as uow:
        when = resolve_as_of(as_of, uow.now)
        changes = []
        for cid, (current, value) in qualifying_values(uow, when, customer_ids).items():
            target = programme.tier_for(value)
            name = None if target is None else target.name
            if name == current:
                continue
            direction = (
                "upgrade"
                if programme.tier_rank(name) > programme.tier_rank(current)
                else "downgrade"
            )
            changes.append(
                TierChange(
                    cid,
                    current,
                    name,
                    when,
                    f"{direction}: {programme.tier_basis} {value} over "
                    f"{programme.tier_window_months} months",
                )
            )
        record_tier_changes(uow, changes)
        return changes


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
