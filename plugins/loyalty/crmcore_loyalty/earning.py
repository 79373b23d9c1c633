"""Automatic earning: purchases recorded through core earn points, refunds reverse them.

:func:`earn_from_interactions` runs inside the recording's unit of work
(``crm_interactions_recorded``) and is also how already recorded purchases
are replayed (:func:`backfill`). Per batch it issues
a constant number of statements, whatever the batch size: one locking read
of the members, one read of keys already applied, one of first purchases,
one executemany of entries and one insert of lots; refunds add one read of
the purchases and of what they earned, the expiry of overdue lots and the
FIFO debit statements.

Rules (documented in ``docs/plugins/loyalty.md``):

* A purchase earns when its customer is an active member who joined at or
  before ``occurred_at``, and its currency is the programme's currency.
  Points = :meth:`Programme.purchase_points` with the member's current tier.
* The member's first earning purchase adds ``first_purchase_bonus`` (same
  purchase, reversed with it) and, when the member was referred by an
  active member, ``referral_bonus`` to the referrer (never reversed).
* A refund (interaction ``refund`` with ``payload.refund_of`` = purchase id)
  reverses ``floor(E * min(1, R / A)) - floor(E * min(1, R0 / A))`` points:
  ``E`` what the purchase earned (bonus included), ``A`` its amount, ``R0``
  and ``R`` the refunded total before and after this refund. Full refunds
  therefore reverse exactly ``E``. The purchase's own lots go first, then the
  oldest others; what the balance cannot cover is recorded as a
  ``shortfall`` and never makes the balance negative.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import case, func, select

from crmcore import CRM, Interaction, InteractionKind, UnitOfWork, from_dict
from crmcore.access import Action
from crmcore.scoping import enforce_declared, requires
from crmcore.storage.filters import among
from crmcore_loyalty import ledger
from crmcore_loyalty.checks import these_or_everyone
from crmcore_loyalty.programme import settings_of
from crmcore_loyalty.tables import ledger_table, members_table

ACTIVE = "active"


def purchase_key(interaction_id: int) -> str:
    """Idempotency key of a purchase's base earn entry."""
    return f"purchase:{interaction_id}"


def refund_key(interaction_id: int) -> str:
    """Idempotency key of a refund's reversal entry."""
    return f"refund:{interaction_id}"


def refund_of(interaction: Interaction) -> int | None:
    """The purchase id a refund names in ``payload.refund_of`` (``None`` when absent/invalid)."""
    value = interaction.payload.get("refund_of") if interaction.payload else None
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _customers_of(crm: Any, ctx: Any, arguments: Mapping[str, Any]) -> list[int]:
    return [i.customer_id for i in arguments["interactions"]]


@requires(Action.WRITE, customer=_customers_of)
def earn_from_interactions(ctx: UnitOfWork, interactions: Sequence[Interaction]) -> int:
    """Earn for the batch's purchases and reverse for its refunds; return entries written.

    Interactions already applied (their key is in the ledger) are skipped,
    so replaying a batch writes nothing twice.
    """
    programme = settings_of(ctx.crm)
    purchases = [
        i
        for i in interactions
        if i.kind is InteractionKind.PURCHASE
        and i.id is not None
        and i.amount is not None
        and i.amount > 0
        and i.currency == programme.currency
    ]
    refunds = [
        i
        for i in interactions
        if i.kind is InteractionKind.REFUND and i.id is not None and refund_of(i) is not None
    ]
    if not purchases and not refunds:
        return 0
    members = ledger.lock_members(ctx, {i.customer_id for i in [*purchases, *refunds]})
    if not members:
        return 0
    keys = [purchase_key(i.id or 0) for i in purchases] + [refund_key(i.id or 0) for i in refunds]
    done = ledger.existing_keys(ctx, keys)
    purchases = [
        p
        for p in purchases
        if purchase_key(p.id or 0) not in done
        and p.customer_id in members
        and members[p.customer_id].status == ACTIVE
        and members[p.customer_id].joined_at <= p.occurred_at
    ]
    refunds = [r for r in refunds if refund_key(r.id or 0) not in done and r.customer_id in members]
    written = _earn(ctx, purchases, members)
    written += _reverse(ctx, refunds)
    return written


def _earn(ctx: UnitOfWork, purchases: Sequence[Interaction], members: dict[int, Any]) -> int:
    if not purchases:
        return 0
    programme = settings_of(ctx.crm)
    table = ledger_table(ctx.crm.metadata)
    buyers = sorted({p.customer_id for p in purchases})
    earned_before = set(
        ctx.connection.execute(
            select(table.c.customer_id)
            .where(
                among(ctx.connection, table.c.customer_id, buyers),
                table.c.kind == "earn",
                table.c.purchase_id.is_not(None),
            )
            .distinct()
        ).scalars()
    )
    rows: list[dict[str, Any]] = []
    firsts: set[int] = set()
    for purchase in sorted(purchases, key=lambda p: (p.occurred_at, p.id or 0)):
        member = members[purchase.customer_id]
        pid = purchase.id or 0
        birth = member.birth_date
        points = programme.purchase_points(
            purchase.amount or Decimal(0),
            channel=purchase.channel.value,
            items=purchase.items,
            tier=member.tier,
            birthday_month=birth is not None and birth.month == purchase.occurred_at.month,
        )
        expires = programme.expiry_for(purchase.occurred_at)
        common: dict[str, Any] = {
            "occurred_at": purchase.occurred_at,
            "expires_at": expires,
            "interaction_id": pid,
        }
        rows.append(
            ledger.entry_row(
                ctx,
                customer_id=purchase.customer_id,
                kind="earn",
                points=points,
                key=purchase_key(pid),
                purchase_id=pid,
                amount=purchase.amount,
                reason=f"purchase {pid}",
                details={"channel": purchase.channel.value, "tier": member.tier},
                **common,
            )
        )
        cid = purchase.customer_id
        if cid in earned_before or cid in firsts:
            continue
        firsts.add(cid)
        if programme.first_purchase_bonus:
            rows.append(
                ledger.entry_row(
                    ctx,
                    customer_id=cid,
                    kind="earn",
                    points=programme.first_purchase_bonus,
                    key=f"{purchase_key(pid)}:first",
                    purchase_id=pid,
                    reason="first purchase bonus",
                    **common,
                )
            )
        referrer = member.referred_by
        if programme.referral_bonus and referrer is not None:
            rows.append(
                {
                    "referrer": referrer,
                    **ledger.entry_row(
                        ctx,
                        customer_id=referrer,
                        kind="earn",
                        points=programme.referral_bonus,
                        key=f"referral:{cid}",
                        reason=f"referral bonus: customer {cid}",
                        **common,
                    ),
                }
            )
    referrers = {r["referrer"] for r in rows if "referrer" in r}
    active_referrers: set[int] = set()
    if referrers:
        # Credits need no lock (they cannot overdraw): read the referrers' status only.
        others = ledger.lock_members(ctx, referrers, lock=False)
        active_referrers = {cid for cid, row in others.items() if row.status == ACTIVE}
    final = [
        {k: v for k, v in r.items() if k != "referrer"}
        for r in rows
        if "referrer" not in r or r["referrer"] in active_referrers
    ]
    return len(ledger.append(ctx, final))


def _reverse(ctx: UnitOfWork, refunds: Sequence[Interaction]) -> int:
    if not refunds:
        return 0
    table = ledger_table(ctx.crm.metadata)
    interactions = ctx.crm.metadata.tables["crm_interactions"]
    purchase_ids = sorted({refund_of(r) or 0 for r in refunds})
    purchases: dict[int, Any] = {}
    earned: dict[int, tuple[int, Decimal]] = {}
    for chunk in ledger.chunks(purchase_ids):
        purchases.update(
            (row.id, row)
            for row in ctx.connection.execute(
                select(
                    interactions.c.id,
                    interactions.c.customer_id,
                    interactions.c.amount,
                    interactions.c.currency,
                ).where(interactions.c.id.in_(chunk), interactions.c.kind == "purchase")
            )
        )
        query = (
            select(
                table.c.purchase_id,
                func.sum(case((table.c.kind == "earn", table.c.points), else_=0)),
                func.sum(case((table.c.kind == "reverse", table.c.amount), else_=None)),
            )
            .where(table.c.purchase_id.in_(chunk), table.c.kind.in_(["earn", "reverse"]))
            .group_by(table.c.purchase_id)
        )
        for pid, points, reversed_amount in ctx.connection.execute(query):
            earned[pid] = (int(points or 0), -(reversed_amount or Decimal(0)))
    refunded: dict[int, Decimal] = defaultdict(Decimal)
    debits: list[ledger.Debit] = []
    for refund in sorted(refunds, key=lambda r: (r.occurred_at, r.id or 0)):
        pid = refund_of(refund) or 0
        purchase = purchases.get(pid)
        if purchase is None or purchase.customer_id != refund.customer_id or pid not in earned:
            continue
        points, already = earned[pid]
        prior = already + refunded[pid]
        amount = purchase.amount
        if refund.currency != purchase.currency or refund.amount is None:
            after = max(amount, prior)  # another currency: reverse the remainder in full
        else:
            after = prior + refund.amount
        refunded[pid] = after - already
        before_share, after_share = min(prior, amount), min(after, amount)
        wanted = _share(points, after_share, amount) - _share(points, before_share, amount)
        debits.append(
            ledger.Debit(
                row=ledger.entry_row(
                    ctx,
                    customer_id=refund.customer_id,
                    kind="reverse",
                    points=0,
                    key=refund_key(refund.id or 0),
                    occurred_at=refund.occurred_at,
                    interaction_id=refund.id,
                    purchase_id=pid,
                    amount=-(after_share - before_share),
                    reason=f"refund {refund.id} of purchase {pid}",
                ),
                wanted=wanted,
                prefer_purchase=pid,
                partial=True,
            )
        )
    if not debits:
        return 0
    latest = max(d.row["occurred_at"] for d in debits)
    ledger.expire_due(ctx, latest, sorted({d.row["customer_id"] for d in debits}), locked=True)
    return len(ledger.apply_debits(ctx, debits))


def _share(points: int, refunded: Decimal, amount: Decimal) -> int:
    """``floor(points * refunded / amount)``, in exact integer arithmetic (Money has 4 places)."""
    if amount <= 0:
        return points
    scale = Decimal(10) ** 4
    return (points * int(refunded * scale)) // int(amount * scale)


@requires(Action.WRITE, customer=these_or_everyone)
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


# A public service function added without @requires refuses every user's view.
enforce_declared(__name__)
