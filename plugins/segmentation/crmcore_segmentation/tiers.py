"""Value tiers: customers ranked by value (monetary, profit, predicted CLV): high, medium, low.

**Value tiers**: customers ordered by value descending (``monetary`` of the RFM window,
``profit`` in the configured form, or ``predicted_clv``: the discounted CLV of the latest
BG/NBD + Gamma-Gamma fit stored by ``crm segments fit``, customers without one left out);
``above`` = customers with a strictly greater value; ``high`` when ``100 * above <
high_percent * n``, ``medium`` when ``100 * above < (high_percent + medium_percent) * n``,
else ``low``. Ties share a tier.

Every output names what the values measure (:func:`measure_of`): ``revenue`` (the
monetary basis), ``profit_contribution`` or ``profit_revenue_minus_costs`` (the profit
basis in the configured ``profitability`` form), ``predicted_clv``.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from attrs import frozen
from sqlalchemy import Integer, Select, case, func, literal, select

from crmcore import CRM, UnitOfWork, ValidationError
from crmcore.access import Action
from crmcore.scoping import enforce_declared, requires
from crmcore_segmentation.lifetime import FETCH_SIZE, lifetime_query
from crmcore_segmentation.purchases import raw_money, raw_sum, to_money
from crmcore_segmentation.rfm import rfm_query
from crmcore_segmentation.settings import settings_of
from crmcore_segmentation.tables import PREDICTIONS, table

TIERS = ("high", "medium", "low")
BASES = ("monetary", "profit", "predicted_clv")
_CENT = Decimal("0.01")


def percent_of(part: int, whole: int) -> Decimal:
    """``part`` as a share (%) of ``whole``, rounded half-up to 2 decimals (0 when empty)."""
    if not whole:
        return Decimal(0).quantize(_CENT)
    return (Decimal(part) * 100 / Decimal(whole)).quantize(_CENT, rounding=ROUND_HALF_UP)


@requires(Action.READ, scoped=True)  # reads no data
def resolve_basis(crm: CRM, basis: str | None) -> str:
    """``basis`` or the configured one; ValidationError when not one of :data:`BASES`."""
    chosen = settings_of(crm).tier_basis if basis is None else basis
    if chosen not in BASES:
        raise ValidationError(
            f"basis: {chosen!r} is not one of: {', '.join(BASES)}", field="basis", value=chosen
        )
    return chosen


@requires(Action.READ, scoped=True)  # reads no data
def measure_of(crm: CRM, basis: str | None = None) -> str:
    """What ``basis`` (default: configured) measures, as outputs name it.

    ``revenue`` (monetary), ``profit_contribution`` / ``profit_revenue_minus_costs``
    (profit, in the configured ``profitability`` form) or ``predicted_clv``.
    """
    chosen = resolve_basis(crm, basis)
    if chosen == "monetary":
        return "revenue"
    if chosen == "profit":
        return f"profit_{settings_of(crm).profitability}"
    return chosen


@requires(Action.READ, scoped=True)  # builds SQL; the caller scopes what it reads
def value_query(
    crm: CRM,
    basis: str | None = None,
    *,
    as_of: datetime | None = None,
    window_days: int | None = None,
) -> Select[Any]:
    """``customer_id``, ``value`` (ten-thousandths) on ``basis`` (monetary or profit).

    ``monetary`` is the RFM monetary value over ``window_days`` (default: configured);
    ``profit`` is lifetime profit in the configured form (no window); ``predicted_clv``
    the stored CLV of the
    latest model fit (:mod:`.predictive`).
    """
    basis = resolve_basis(crm, basis)
    if basis == "predicted_clv":
        scores = table(crm.metadata, PREDICTIONS)
        return select(scores.c.customer_id, raw_money(scores.c.clv).label("value")).where(
            scores.c.clv.is_not(None)
        )
    if basis == "monetary":
        scored = rfm_query(crm, as_of=as_of, window_days=window_days).subquery("v")
        return select(scored.c.customer_id, scored.c.monetary.label("value"))
    life = lifetime_query(crm, as_of=as_of).subquery("v")
    return select(life.c.customer_id, life.c.profit.label("value"))


@requires(Action.READ, scoped=True)  # builds SQL; the caller scopes what it reads
def tier_query(
    crm: CRM,
    basis: str | None = None,
    *,
    as_of: datetime | None = None,
    window_days: int | None = None,
) -> Select[Any]:
    """``customer_id``, ``value``, ``tier`` for every valued customer (see module docstring)."""
    settings = settings_of(crm)
    values = value_query(crm, basis, as_of=as_of, window_days=window_days).subquery("values")
    n = func.count().over()
    above = func.rank().over(order_by=values.c.value.desc()) - 1
    ranked = select(
        values.c.customer_id, values.c.value, above.label("above"), n.label("n")
    ).subquery("tiered")
    hundred = literal(100, Integer)
    high = literal(settings.high_percent, Integer)
    medium = literal(settings.high_percent + settings.medium_percent, Integer)
    tier = case(
        (hundred * ranked.c.above < high * ranked.c.n, literal("high")),
        (hundred * ranked.c.above < medium * ranked.c.n, literal("medium")),
        else_=literal("low"),
    )
    return select(ranked.c.customer_id, ranked.c.value, tier.label("tier"))


@frozen
class TierSummary:
    """Customers and value per tier; ``measure`` names the value (:func:`measure_of`)."""

    tier: str
    customers: int
    value: Decimal
    share_percent: Decimal
    measure: str


@requires(Action.REPORT)  # an aggregate over every customer
def tiers(
    crm: CRM,
    basis: str | None = None,
    *,
    as_of: datetime | None = None,
    window_days: int | None = None,
    ctx: UnitOfWork | None = None,
) -> list[TierSummary]:
    """Customers, total value and value share (%, 2 decimals) per tier, high first."""
    tiered = tier_query(crm, basis, as_of=as_of, window_days=window_days).subquery("t")
    query = select(
        tiered.c.tier, func.count().label("n"), raw_sum(tiered.c.value).label("total")
    ).group_by(tiered.c.tier)
    with crm.reading(ctx) as uow:
        found = {r.tier: (int(r.n), int(r.total or 0)) for r in uow.connection.execute(query)}
    grand = sum(total for _, total in found.values())
    measure = measure_of(crm, basis)
    return [
        TierSummary(
            tier=name,
            customers=found.get(name, (0, 0))[0],
            value=to_money(found.get(name, (0, 0))[1]),
            share_percent=percent_of(found.get(name, (0, 0))[1], grand),
            measure=measure,
        )
        for name in TIERS
    ]


@requires(Action.READ, scoped=True)  # rows only of customers the principal may read
def iter_tier_members(
    crm: CRM,
    tier: str,
    basis: str | None = None,
    *,
    as_of: datetime | None = None,
    window_days: int | None = None,
    limit: int | None = None,
    ctx: UnitOfWork | None = None,
) -> Iterator[dict[str, Any]]:
    """:func:`tier_members` as an iterator streaming from the database."""
    if tier not in TIERS:
        raise ValidationError(
            f"tier: {tier!r} is not one of: {', '.join(TIERS)}", field="tier", value=tier
        )
    tiered = tier_query(crm, basis, as_of=as_of, window_days=window_days).subquery("t")
    query = (
        select(tiered.c.customer_id, tiered.c.value)
        .where(tiered.c.tier == tier, crm.access.where(tiered.c.customer_id, ctx=ctx))
        .order_by(tiered.c.value.desc(), tiered.c.customer_id)
        .limit(limit)
        .execution_options(yield_per=FETCH_SIZE)
    )
    return _stream_members(crm, query, ctx=ctx)


def _stream_members(
    crm: CRM, query: Select[Any], *, ctx: UnitOfWork | None = None
) -> Iterator[dict[str, Any]]:
    with crm.reading(ctx) as uow:
        for r in uow.connection.execute(query):
            yield {"customer_id": int(r.customer_id), "value": to_money(r.value)}


@requires(Action.READ, scoped=True)  # rows only of customers the principal may read
def tier_members(
    crm: CRM,
    tier: str,
    basis: str | None = None,
    *,
    as_of: datetime | None = None,
    window_days: int | None = None,
    limit: int | None = None,
    ctx: UnitOfWork | None = None,
) -> list[dict[str, Any]]:
    """Customers of one tier, by value descending then id: ``customer_id``, ``value``."""
    return list(
        iter_tier_members(
            crm, tier, basis, as_of=as_of, window_days=window_days, limit=limit, ctx=ctx
        )
    )


# A public service function added without @requires refuses every user's view.
enforce_declared(__name__)
