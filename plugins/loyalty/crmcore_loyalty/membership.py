"""Loyalty membership: enrolment, leaving, the member record, tier changes.

Every write is audited through core (``loyalty.enroll``, ``loyalty.leave``,
``loyalty.tier_change``; batch entries when many members change at once) and
needs WRITE on each customer concerned (the referrer too: a referral credits
them).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, select, update

from crmcore import CRM, Channel, ConflictError, NotFoundError, UnitOfWork, ValidationError
from crmcore.access import Action
from crmcore.audit import AuditEntry
from crmcore.scoping import enforce_declared, requires
from crmcore_loyalty import ledger
from crmcore_loyalty.checks import check_moment
from crmcore_loyalty.earning import ACTIVE
from crmcore_loyalty.programme import settings_of
from crmcore_loyalty.records import Member, TierChange
from crmcore_loyalty.tables import members_table, tier_changes_table

LEFT = "left"

__all__ = [
    "LEFT",
    "enroll",
    "enroll_many",
    "get_member",
    "insert_members",
    "leave",
    "member_row",
    "record_tier_changes",
]


def _enrolled_and_referrer(crm: CRM, ctx: Any, arguments: Mapping[str, Any]) -> list[int]:
    referrer = arguments.get("referred_by")
    return [arguments["customer_id"], *([referrer] if isinstance(referrer, int) else [])]


@requires(Action.READ, customer="customer_id")
def member_row(uow: UnitOfWork, customer_id: int, *, lock: bool) -> Any:
    """The member row of a customer (locked when ``lock``); NotFoundError for non-members."""
    if isinstance(customer_id, bool) or not isinstance(customer_id, int):
        raise ValidationError(
            f"customer_id: expected an integer, got {customer_id!r}", field="customer_id"
        )
    row = ledger.lock_members(uow, [customer_id], lock=lock).get(customer_id)
    if row is None:
        uow.crm.customers.get(customer_id, ctx=uow)  # NotFoundError for unknown customers
        raise NotFoundError(f"customer {customer_id} is not a loyalty member")
    return row


@requires(Action.WRITE, customer=lambda crm, ctx, a: [c.customer_id for c in a["changes"]])
def record_tier_changes(uow: UnitOfWork, changes: Sequence[TierChange]) -> None:
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
    uow.crm.audit.record_batch(
        uow,
        "loyalty.tier_change",
        "loyalty_member",
        [(c.customer_id, c.customer_id, {"to_tier": c.to_tier}) for c in changes],
    )
    uow.crm.call_hook("loyalty_tier_changed", ctx=uow, changes=[c.as_dict() for c in changes])


@requires(Action.WRITE, customer=lambda crm, ctx, a: [s["customer_id"] for s in a["specs"]])
def insert_members(uow: UnitOfWork, specs: Sequence[Mapping[str, Any]]) -> list[Member]:
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
    record_tier_changes(uow, changes)
    uow.crm.audit.record_batch(
        uow,
        "loyalty.enroll",
        "loyalty_member",
        [(s["customer_id"], s["customer_id"], {"channel": s.get("channel")}) for s in specs],
    )
    stored = ledger.lock_members(uow, [s["customer_id"] for s in specs], lock=False)
    return [Member.from_row(stored[s["customer_id"]]) for s in specs]


@requires(Action.WRITE, scoped=True)  # guards every customer and referrer inside
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
        referrers = {e["referred_by"] for e in items if e.get("referred_by") is not None}
        uow.crm.access.guard(
            uow, [*ids, *(r for r in referrers if isinstance(r, int))], Action.WRITE
        )
        known = uow.crm.customers.exists(ids, ctx=uow)
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
                    "joined_at": check_moment(item.get("joined_at"), "joined_at", uow.now),
                    "channel": channel,
                    "referred_by": referred_by,
                    "member_number": number.strip() if number else None,
                }
            )
        return insert_members(uow, specs)


@requires(Action.WRITE, customer=_enrolled_and_referrer)
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


@requires(Action.WRITE, customer="customer_id")
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
        row = member_row(uow, customer_id, lock=True)
        if row.status != ACTIVE:
            raise ConflictError(f"customer_id: customer {customer_id} already left the programme")
        when = check_moment(at, "at", uow.now)
        members = members_table(crm.metadata)
        uow.connection.execute(
            update(members)
            .where(members.c.customer_id == customer_id)
            .values(status=LEFT, left_at=when)
        )
        if row.tier is not None:
            record_tier_changes(
                uow, [TierChange(customer_id, row.tier, None, when, "left the programme")]
            )
        uow.crm.audit.record(
            uow, [AuditEntry("loyalty.leave", "loyalty_member", customer_id, customer_id)]
        )
        return Member.from_row(member_row(uow, customer_id, lock=False))


@requires(Action.READ, customer="customer_id")
def get_member(crm: CRM, customer_id: int, *, ctx: UnitOfWork | None = None) -> Member:
    """The member record of a customer; NotFoundError when they never enrolled."""
    with crm.reading(ctx) as uow:
        return Member.from_row(member_row(uow, customer_id, lock=False))


# A public service function added without @requires refuses every user's view.
enforce_declared(__name__)
