"""The loyalty programme's Python API: enrolment, the ledger, tiers, expiry.

Every write runs in one unit of work (``crm.unit_of_work(actor, ctx)``;
pass ``ctx=`` to join an open one): the ledger entry, the lots it consumes
and any hook it fires commit together or not at all. Bad input raises
``ValidationError`` naming the field, unknown members ``NotFoundError``,
reused idempotency keys naming another operation ``ConflictError``.

Times: ``at`` is when an entry takes effect (default: the clock's now);
``as_of`` accepts an aware datetime, or a date meaning the *end* of that day
in UTC.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, bindparam, delete, func, insert, or_, select, update

from crmcore import (
    CRM,
    Channel,
    ConflictError,
    Customer,
    Interaction,
    NotFoundError,
    UnitOfWork,
    ValidationError,
    from_dict,
)
from crmcore_loyalty import ledger
from crmcore_loyalty.earning import ACTIVE, earn_from_interactions
from crmcore_loyalty.programme import PLUGIN_NAME, add_months, settings_of
from crmcore_loyalty.records import Balance, ExpiryRun, LedgerEntry, Member, TierChange
from crmcore_loyalty.tables import (
    allocations_table,
    ledger_table,
    lots_table,
    members_table,
    tier_changes_table,
)

LEFT = "left"
#: Largest number of points one operation may move.
MAX_POINTS = 1_000_000_000

__all__ = [
    "PLUGIN_NAME",
    "adjust",
    "backfill",
    "balance",
    "credit_compensations",
    "earn",
    "enroll",
    "enroll_many",
    "evaluate_tiers",
    "expire",
    "get_member",
    "history",
    "leave",
    "redeem",
    "resolve_as_of",
]


# --- input checks ------------------------------------------------------------------------


def _check_points(points: Any, *, signed: bool = False) -> int:
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


def _check_moment(value: Any, name: str, default: datetime) -> datetime:
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
        return _check_moment(value, "as_of", default)
    if isinstance(value, date):
        return datetime.combine(value, time.max, tzinfo=UTC)
    raise ValidationError(f"as_of: expected a date or datetime, got {value!r}", field="as_of")


def _check_key(key: Any, kind: str) -> str:
    if key is None:
        return f"{kind}:{uuid.uuid4().hex}"
    if not isinstance(key, str) or not key.strip() or len(key) > 200:
        raise ValidationError(
            f"idempotency_key: must be a non-empty string of at most 200 characters, got {key!r}",
            field="idempotency_key",
            value=key,
        )
    return key


def _check_reason(reason: Any, *, required: bool = False) -> str | None:
    if reason is None or (isinstance(reason, str) and not reason.strip()):
        if required:
            raise ValidationError("reason: required for an adjustment", field="reason")
        return None
    if not isinstance(reason, str) or len(reason) > 1000:
        raise ValidationError(
            "reason: must be a string of at most 1000 characters", field="reason", value=reason
        )
    return reason.strip()


# --- members ------------------------------------------------------------------------------


def _member_row(uow: UnitOfWork, customer_id: int, *, lock: bool) -> Any:
    if isinstance(customer_id, bool) or not isinstance(customer_id, int):
        raise ValidationError(
            f"customer_id: expected an integer, got {customer_id!r}", field="customer_id"
        )
    row = ledger.lock_members(uow, [customer_id], lock=lock).get(customer_id)
    if row is None:
        uow.crm.customers.get(customer_id, ctx=uow)  # NotFoundError for unknown customers
        raise NotFoundError(f"customer {customer_id} is not a loyalty member")
    return row


def _record_tier_changes(uow: UnitOfWork, changes: Sequence[TierChange]) -> None:
    """Write tier changes to the history and fire ``loyalty_tier_changed`` once for them."""
    if not changes:
        return
    members = members_table(uow.crm.metadata)
    uow.connection.execute(
        insert(tier_changes_table(uow.crm.metadata)),
        [
            {
                "customer_id": c.customer_id,
                "from_tier": c.from_tier,
                "to_tier": c.to_tier,
                "at": c.at,
                "reason": c.reason,
            }
            for c in changes
        ],
    )
    uow.connection.execute(
        update(members)
        .where(members.c.customer_id == bindparam("cid"))
        .values(tier=bindparam("tier"), tier_since=bindparam("since")),
        [{"cid": c.customer_id, "tier": c.to_tier, "since": c.at} for c in changes],
    )
    uow.crm.call_hook("loyalty_tier_changed", ctx=uow, changes=[c.as_dict() for c in changes])


def _insert_members(uow: UnitOfWork, specs: Sequence[Mapping[str, Any]]) -> list[Member]:
    """Insert (or reactivate) members from specs with ``customer_id``, ``joined_at``, ...

    Members who left are reactivated (same member number, new join date).
    Each enters the programme's entry tier (``loyalty_tier_changed`` fires).
    """
    if not specs:
        return []
    members = members_table(uow.crm.metadata)
    existing = ledger.lock_members(uow, [s["customer_id"] for s in specs])
    entry = settings_of(uow.crm).entry_tier()
    new_rows, rejoin = [], []
    changes: list[TierChange] = []
    for spec in specs:
        cid = spec["customer_id"]
        row = existing.get(cid)
        if row is not None and row.status == ACTIVE:
            raise ConflictError(
                f"customer_id: customer {cid} is already a member ({row.member_number})"
            )
        values = {
            "customer_id": cid,
            "status": ACTIVE,
            "joined_at": spec["joined_at"],
            "left_at": None,
            "channel": spec.get("channel"),
            "referred_by": spec.get("referred_by"),
            "tier": None,
            "tier_since": None,
        }
        if row is None:
            new_rows.append({**values, "member_number": spec.get("member_number") or f"M{cid:08d}"})
        else:
            rejoin.append(values)
        if entry is not None:
            changes.append(TierChange(cid, None, entry.name, spec["joined_at"], "enrolled"))
    if new_rows:
        numbers = [r["member_number"] for r in new_rows]
        taken = uow.connection.execute(
            select(members.c.member_number, members.c.customer_id).where(
                members.c.member_number.in_(numbers)
            )
        ).first()
        if taken is not None or len(set(numbers)) != len(numbers):
            number = taken[0] if taken is not None else numbers[0]
            raise ConflictError(f"member_number: {number!r} is already taken")
        uow.connection.execute(insert(members), new_rows)
    if rejoin:
        uow.connection.execute(
            update(members)
            .where(members.c.customer_id == bindparam("cid"))
            .values(
                status=ACTIVE,
                joined_at=bindparam("joined"),
                left_at=None,
                channel=bindparam("chan"),
                referred_by=bindparam("ref"),
            ),
            [
                {
                    "cid": r["customer_id"],
                    "joined": r["joined_at"],
                    "chan": r["channel"],
                    "ref": r["referred_by"],
                }
                for r in rejoin
            ],
        )
    _record_tier_changes(uow, changes)
    stored = ledger.lock_members(uow, [s["customer_id"] for s in specs], lock=False)
    return [Member.from_row(stored[s["customer_id"]]) for s in specs]


def enroll_many(
    crm: CRM,
    enrolments: Iterable[Mapping[str, Any]],
    *,
    actor: str | None = None,
    ctx: UnitOfWork | None = None,
) -> list[Member]:
    """Enroll many customers in one unit of work: mappings with the arguments of :func:`enroll`.

    Raises what :func:`enroll` raises for the first bad enrolment; nothing is stored then.
    """
    with crm.unit_of_work(actor, ctx) as uow:
        specs = []
        items = list(enrolments)
        for item in items:
            cid = item.get("customer_id")
            if isinstance(cid, bool) or not isinstance(cid, int):
                raise ValidationError(
                    f"customer_id: expected an integer, got {cid!r}", field="customer_id"
                )
        ids: list[int] = [item["customer_id"] for item in items]
        known = uow.crm.customers.exists(ids, ctx=uow)
        referrers = {e["referred_by"] for e in items if e.get("referred_by") is not None}
        member_ids = set(ledger.lock_members(uow, referrers, lock=False)) | set(ids)
        for item in items:
            cid = item["customer_id"]
            if cid not in known:
                raise NotFoundError(f"customer {cid} does not exist")
            channel = item.get("channel")
            if channel is not None and channel not in {c.value for c in Channel}:
                allowed = ", ".join(c.value for c in Channel)
                raise ValidationError(
                    f"channel: {channel!r} is not one of: {allowed}", field="channel"
                )
            referred_by = item.get("referred_by")
            if referred_by is not None and (referred_by == cid or referred_by not in member_ids):
                raise ValidationError(
                    f"referred_by: customer {referred_by} is not another loyalty member",
                    field="referred_by",
                    value=referred_by,
                )
            number = item.get("member_number")
            if number is not None and (
                not isinstance(number, str) or not 0 < len(number.strip()) <= 40
            ):
                raise ValidationError(
                    f"member_number: must be 1 to 40 characters, got {number!r}",
                    field="member_number",
                )
            specs.append(
                {
                    "customer_id": cid,
                    "joined_at": _check_moment(item.get("joined_at"), "joined_at", uow.now),
                    "channel": channel,
                    "referred_by": referred_by,
                    "member_number": number.strip() if number else None,
                }
            )
        return _insert_members(uow, specs)


def enroll(
    crm: CRM,
    customer_id: int,
    *,
    joined_at: datetime | None = None,
    channel: str | None = None,
    member_number: str | None = None,
    referred_by: int | None = None,
    actor: str | None = None,
    ctx: UnitOfWork | None = None,
) -> Member:
    """Enroll a customer (or re-enroll one who left); return the member.

    ``member_number`` defaults to ``M`` and the customer id on 8 digits;
    ``channel`` is one of core's channels; ``referred_by`` names another
    member (who earns the referral bonus on this member's first purchase).
    Raises NotFoundError (unknown customer), ConflictError (already a
    member, member number taken), ValidationError (bad channel, referrer).
    """
    return enroll_many(
        crm,
        [
            {
                "customer_id": customer_id,
                "joined_at": joined_at,
                "channel": channel,
                "member_number": member_number,
                "referred_by": referred_by,
            }
        ],
        actor=actor,
        ctx=ctx,
    )[0]


def leave(
    crm: CRM,
    customer_id: int,
    *,
    at: datetime | None = None,
    actor: str | None = None,
    ctx: UnitOfWork | None = None,
) -> Member:
    """Mark a member as having left: no more earning or redeeming; history and points stay.

    Raises NotFoundError (not a member), ConflictError (already left).
    """
    with crm.unit_of_work(actor, ctx) as uow:
        row = _member_row(uow, customer_id, lock=True)
        if row.status != ACTIVE:
            raise ConflictError(f"customer_id: customer {customer_id} already left the programme")
        when = _check_moment(at, "at", uow.now)
        members = members_table(crm.metadata)
        uow.connection.execute(
            update(members)
            .where(members.c.customer_id == customer_id)
            .values(status=LEFT, left_at=when)
        )
        if row.tier is not None:
            _record_tier_changes(
                uow, [TierChange(customer_id, row.tier, None, when, "left the programme")]
            )
        return Member.from_row(_member_row(uow, customer_id, lock=False))


def get_member(crm: CRM, customer_id: int) -> Member:
    """The member record of a customer; NotFoundError when they never enrolled."""
    with crm.reading() as uow:
        return Member.from_row(_member_row(uow, customer_id, lock=False))


# --- ledger operations ------------------------------------------------------------------


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
        member = _member_row(uow, customer_id, lock=True)
        if active_only and member.status != ACTIVE:
            raise ValidationError(
                f"customer_id: customer {customer_id} left the programme", field="customer_id"
            )
        when = _check_moment(at, "at", uow.now)
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
        member = _member_row(uow, customer_id, lock=True)
        if active_only and member.status != ACTIVE:
            raise ValidationError(
                f"customer_id: customer {customer_id} left the programme", field="customer_id"
            )
        when = _check_moment(at, "at", uow.now)
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
        _check_points(points),
        kind="earn",
        key=_check_key(idempotency_key, "earn"),
        reason=_check_reason(reason),
        at=at,
        active_only=True,
        actor=actor,
        ctx=ctx,
    )


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
        _check_points(points),
        kind="redeem",
        key=_check_key(idempotency_key, "redeem"),
        reason=_check_reason(reason),
        at=at,
        active_only=True,
        actor=actor,
        ctx=ctx,
    )


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
    points = _check_points(points, signed=True)
    options: dict[str, Any] = {
        "kind": "adjust",
        "key": _check_key(idempotency_key, "adjust"),
        "reason": _check_reason(reason, required=True),
        "at": at,
        "active_only": False,
        "actor": actor,
        "ctx": ctx,
    }
    if points > 0:
        return _credit(crm, customer_id, points, **options)
    return _debit(crm, customer_id, -points, **options)


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
        _check_points(c["points"])
        _check_key(c.get("idempotency_key") or "", "adjust")
    members = ledger.lock_members(ctx, [c["customer_id"] for c in wanted], lock=False)
    missing = sorted({c["customer_id"] for c in wanted} - set(members))
    if missing:
        _insert_members(
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
        _record_tier_changes(uow, changes)
        return changes


def expire(
    crm: CRM,
    *,
    as_of: date | datetime | None = None,
    actor: str | None = None,
    ctx: UnitOfWork | None = None,
) -> ExpiryRun:
    """Write off every lot expired at ``as_of`` (default now); idempotent and exact.

    Each lot with ``expires_at <= as_of`` and points left gets one ``expire``
    entry for exactly those points, dated at its expiry instant. Running it
    again (or with an earlier ``as_of``) writes nothing more.
    """
    with crm.unit_of_work(actor, ctx) as uow:
        return ledger.expire_due(uow, resolve_as_of(as_of, uow.now))


# --- reading -----------------------------------------------------------------------------


def balance(crm: CRM, customer_id: int, *, as_of: date | datetime | None = None) -> Balance:
    """A member's balance (ledger sum), what is available, and points expiring soon.

    ``as_of`` (default now) only decides which points count as overdue and
    which as expiring soon; ``points`` is always the whole ledger.
    Raises NotFoundError for non-members.
    """
    programme = settings_of(crm)
    with crm.reading() as uow:
        when = resolve_as_of(as_of, crm.clock())
        member = _member_row(uow, customer_id, lock=False)
        points = ledger.balances(uow, [customer_id])[customer_id]
        overdue = ledger.overdue_points(crm, uow.connection, customer_id, when)
        soon = ledger.expiring_lots(
            crm,
            uow.connection,
            customer_id,
            when,
            when + timedelta(days=programme.expiring_soon_days),
        )
    return Balance(
        customer_id=customer_id,
        points=points,
        available=points - overdue,
        overdue=overdue,
        tier=member.tier,
        status=member.status,
        as_of=when,
        expiring=tuple(soon),
    )


def history(
    crm: CRM, customer_id: int, *, limit: int = 50, offset: int = 0
) -> list[dict[str, Any]]:
    """A member's ledger, newest first, each entry with ``balance_after`` (running sum).

    ``balance_after`` is computed in SQL with a window function, in the
    order entries take effect (``occurred_at``, then id). Raises
    NotFoundError for non-members, ValidationError for a bad page.
    """
    if limit < 1 or offset < 0:
        raise ValidationError(
            f"limit: must be positive and offset non-negative, got {limit}/{offset}", field="limit"
        )
    table = ledger_table(crm.metadata)
    running = func.sum(table.c.points).over(order_by=(table.c.occurred_at, table.c.id))
    inner = (
        select(table, running.label("balance_after"))
        .where(table.c.customer_id == customer_id)
        .subquery()
    )
    query = (
        select(inner)
        .order_by(inner.c.occurred_at.desc(), inner.c.id.desc())
        .limit(limit)
        .offset(offset)
    )
    with crm.reading() as uow:
        _member_row(uow, customer_id, lock=False)
        rows = uow.connection.execute(query).all()
    return [
        {**LedgerEntry.from_row(r).as_dict(), "balance_after": int(r.balance_after)} for r in rows
    ]


def tier_history(crm: CRM, customer_id: int) -> list[dict[str, Any]]:
    """A member's tier changes, oldest first (NotFoundError for non-members)."""
    table = tier_changes_table(crm.metadata)
    with crm.reading() as uow:
        _member_row(uow, customer_id, lock=False)
        rows = uow.connection.execute(
            select(table).where(table.c.customer_id == customer_id).order_by(table.c.at, table.c.id)
        ).all()
    return [
        {"from_tier": r.from_tier, "to_tier": r.to_tier, "at": r.at.isoformat(), "reason": r.reason}
        for r in rows
    ]


def profile_section(crm: CRM, customer: Customer) -> dict[str, Any] | None:
    """The customer's section of the 360° view (``None`` for non-members).

    Member number, status, tier and its benefits, balance, available points,
    points expiring within ``expiring_soon_days`` and the next expiry.
    """
    if customer.id is None:
        return None
    try:
        member = get_member(crm, customer.id)
    except NotFoundError:
        return None
    current = balance(crm, customer.id)
    tier = settings_of(crm).tier(member.tier)
    return {
        "member_number": member.member_number,
        "status": member.status,
        "joined_at": member.joined_at.isoformat(),
        "tier": member.tier,
        "benefits": list(tier.benefits) if tier else [],
        "points": current.points,
        "available": current.available,
        "expiring_soon": current.expiring_soon,
        "next_expiry": current.expiring[0][0].isoformat() if current.expiring else None,
    }


# --- privacy -----------------------------------------------------------------------------


def export(ctx: UnitOfWork, customer_id: int) -> dict[str, Any] | None:
    """Everything the plugin holds on a customer, JSON-safe (``None``: never enrolled)."""
    crm = ctx.crm
    members = members_table(crm.metadata)
    table = ledger_table(crm.metadata)
    tiers = tier_changes_table(crm.metadata)
    row = ctx.connection.execute(
        select(members).where(members.c.customer_id == customer_id)
    ).first()
    entries = ctx.connection.execute(
        select(table)
        .where(table.c.customer_id == customer_id)
        .order_by(table.c.occurred_at, table.c.id)
    ).all()
    if row is None and not entries:
        return None
    changes = ctx.connection.execute(
        select(tiers).where(tiers.c.customer_id == customer_id).order_by(tiers.c.at, tiers.c.id)
    ).all()
    return {
        "member": None if row is None else Member.from_row(row).as_dict(),
        "balance": sum(int(e.points) for e in entries),
        "ledger": [LedgerEntry.from_row(e).as_dict() for e in entries],
        "tier_changes": [
            {
                "from_tier": c.from_tier,
                "to_tier": c.to_tier,
                "at": c.at.isoformat(),
                "reason": c.reason,
            }
            for c in changes
        ],
    }


def _delete_lots(ctx: UnitOfWork, customer_ids: Sequence[int]) -> None:
    lots = lots_table(ctx.crm.metadata)
    allocations = allocations_table(ctx.crm.metadata)
    for chunk in ledger.chunks(customer_ids):
        mine = select(lots.c.id).where(lots.c.customer_id.in_(chunk))
        ctx.connection.execute(delete(allocations).where(allocations.c.lot_id.in_(mine)))
        ctx.connection.execute(delete(lots).where(lots.c.customer_id.in_(chunk)))


def erase(ctx: UnitOfWork, customer_id: int) -> None:
    """Right to erasure: forfeit the balance, then keep only anonymous ledger aggregates.

    The remaining balance is written off by an ``adjust`` entry; every
    ledger entry then loses its link to the customer (customer, interaction
    and purchase ids, key, reason, actor, details become NULL) and keeps
    only kind, points, amount and dates, so programme totals still add up.
    Lots, allocations, tier history and the member row are deleted, and
    referral links to the customer are cut.
    """
    crm = ctx.crm
    table = ledger_table(crm.metadata)
    members = members_table(crm.metadata)
    ledger.lock_members(ctx, [customer_id])
    owed = ledger.balances(ctx, [customer_id])[customer_id]
    if owed > 0:
        ledger.apply_debits(
            ctx,
            [
                ledger.Debit(
                    row=ledger.entry_row(
                        ctx,
                        customer_id=customer_id,
                        kind="adjust",
                        points=0,
                        key=f"erase:{uuid.uuid4().hex}",
                        occurred_at=ctx.now,
                        reason="erasure: balance forfeited",
                    ),
                    wanted=owed,
                    partial=True,
                )
            ],
        )
    _delete_lots(ctx, [customer_id])
    ctx.connection.execute(
        update(table)
        .where(
            or_(
                table.c.customer_id == customer_id,
                table.c.idempotency_key == f"referral:{customer_id}",
            )
        )
        .values(
            customer_id=None,
            interaction_id=None,
            purchase_id=None,
            reason=None,
            idempotency_key=None,
            actor=None,
            details=None,
        )
    )
    ctx.connection.execute(
        update(members).where(members.c.referred_by == customer_id).values(referred_by=None)
    )
    ctx.connection.execute(
        delete(tier_changes_table(crm.metadata)).where(
            tier_changes_table(crm.metadata).c.customer_id == customer_id
        )
    )
    ctx.connection.execute(delete(members).where(members.c.customer_id == customer_id))


def forget(ctx: UnitOfWork, customer_ids: Sequence[int]) -> None:
    """Delete every row of customers about to be deleted (``crm_customers_deleted``)."""
    if not customer_ids:
        return
    crm = ctx.crm
    table = ledger_table(crm.metadata)
    members = members_table(crm.metadata)
    tiers = tier_changes_table(crm.metadata)
    _delete_lots(ctx, customer_ids)
    for chunk in ledger.chunks(customer_ids):
        ctx.connection.execute(
            delete(allocations_table(crm.metadata)).where(
                allocations_table(crm.metadata).c.entry_id.in_(
                    select(table.c.id).where(table.c.customer_id.in_(chunk))
                )
            )
        )
        ctx.connection.execute(delete(table).where(table.c.customer_id.in_(chunk)))
        ctx.connection.execute(delete(tiers).where(tiers.c.customer_id.in_(chunk)))
        ctx.connection.execute(
            update(members).where(members.c.referred_by.in_(chunk)).values(referred_by=None)
        )
        ctx.connection.execute(delete(members).where(members.c.customer_id.in_(chunk)))
