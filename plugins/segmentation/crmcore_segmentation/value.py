"""Customer value: lifetime figures, profitability, value tiers, the Pareto set and CLV.

Definitions (money in exact ten-thousandths in SQL, see :mod:`.purchases`):

* **lifetime revenue**: the sum of net amounts of every counted purchase before ``as_of``
  (no window). This is the **historic CLV**.
* **profit** = ``floor(lifetime revenue x margin)`` (to 1/10000 of the unit) minus the
  acquisition and the service cost. Costs come from the customer's row in
  ``segmentation_customer_costs`` (:func:`set_costs`) when set, else from
  ``costs.segments.<RFM segment>`` of the config, else ``costs.acquisition`` /
  ``costs.service`` (default 0).
* **value tiers**: customers ordered by value descending (``monetary`` of the RFM window,
  or ``profit``); ``above`` = customers with a strictly greater value; ``high`` when
  ``100 * above < high_percent * n``, ``medium`` when ``100 * above < (high_percent +
  medium_percent) * n``, else ``low``. Ties share a tier.
* **Pareto set**: customers with a positive value sorted by value descending, ties by id
  ascending; the smallest prefix whose cumulative value reaches ``percent`` % of the total
  of positive values. A customer is in it when the cumulative value *before* them is below
  the target.
* **predictive CLV** = ``AOV x annual purchase rate x margin`` summed over
  ``expected_lifetime_years`` years, year ``t`` (1-based) discounted by ``(1 + d) ** t``;
  ``AOV`` = lifetime revenue / counted purchases; annual rate = ``purchases * 365 /
  max(tenure_days, min_tenure_days)``, ``tenure_days`` the UTC calendar days from the first
  counted purchase to ``as_of``. Computed with Python ``Decimal`` (28 digits) from the SQL
  aggregates and rounded half-up to 0.01.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal, localcontext
from typing import Any

from attrs import frozen
from sqlalchemy import (
    BigInteger,
    Float,
    Integer,
    Select,
    case,
    cast,
    func,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.sql.elements import ColumnElement

from crmcore import CRM, UnitOfWork, ValidationError
from crmcore.storage.types import money_problem
from crmcore_segmentation.calendar_sql import day_number
from crmcore_segmentation.purchases import SCALE, counted_purchases, raw_money, raw_sum, to_money
from crmcore_segmentation.rfm import resolve_as_of, rfm_query
from crmcore_segmentation.settings import Settings, settings_of
from crmcore_segmentation.tables import CUSTOMER_COSTS, table

TIERS = ("high", "medium", "low")
BASES = ("monetary", "profit")
_CENT = Decimal("0.01")
_IN_CHUNK = 500


def _raw(amount: Decimal) -> int:
    return int(amount * SCALE)


def _margin_raw(settings: Settings) -> int:
    raw = settings.margin * SCALE
    if raw != raw.to_integral_value():
        raise ValidationError(
            f"margin: {settings.margin} has more than 4 decimal places", field="margin"
        )
    return int(raw)


def lifetime_query(crm: CRM, *, as_of: datetime | None = None) -> Select[Any]:
    """Per customer with a counted purchase before ``as_of``: lifetime figures and profit.

    Columns: ``customer_id``, ``purchases``, ``revenue``, ``first_day``, ``last_day``,
    ``segment`` (RFM segment in the configured window, ``NULL`` when unscored),
    ``acquisition``, ``service`` and ``profit`` (money in ten-thousandths).
    """
    settings = settings_of(crm)
    moment = resolve_as_of(crm, as_of)
    purchases = counted_purchases(crm, moment, currency=settings.currency).subquery("lp")
    life = (
        select(
            purchases.c.customer_id,
            func.count().label("purchases"),
            raw_sum(purchases.c.net).label("revenue"),
            func.min(purchases.c.day).label("first_day"),
            func.max(purchases.c.day).label("last_day"),
        )
        .group_by(purchases.c.customer_id)
        .subquery("life")
    )
    rfm = rfm_query(crm, as_of=moment).subquery("rfm_now")
    costs = table(crm.metadata, CUSTOMER_COSTS)

    def cost(kind: str) -> ColumnElement[int]:
        by_segment = [
            (rfm.c.segment == name, literal(_raw(getattr(c, kind)), BigInteger))
            for name, c in sorted(settings.segment_costs.items())
        ]
        default = literal(_raw(getattr(settings.default_costs, kind)), BigInteger)
        fallback = case(*by_segment, else_=default) if by_segment else default
        return func.coalesce(raw_money(costs.c[kind]), fallback)

    acquisition, service = cost("acquisition"), cost("service")
    profit = (
        life.c.revenue * literal(_margin_raw(settings), BigInteger) // literal(SCALE, BigInteger)
        - acquisition
        - service
    )
    return select(
        life.c.customer_id,
        life.c.purchases,
        life.c.revenue,
        life.c.first_day,
        life.c.last_day,
        rfm.c.segment,
        acquisition.label("acquisition"),
        service.label("service"),
        cast(profit, BigInteger).label("profit"),
    ).select_from(
        life.outerjoin(rfm, rfm.c.customer_id == life.c.customer_id).outerjoin(
            costs, costs.c.customer_id == life.c.customer_id
        )
    )


def value_query(
    crm: CRM,
    basis: str | None = None,
    *,
    as_of: datetime | None = None,
    window_days: int | None = None,
) -> Select[Any]:
    """``customer_id``, ``value`` (ten-thousandths) on ``basis`` (monetary or profit).

    ``monetary`` is the RFM monetary value over ``window_days`` (default: configured);
    ``profit`` is lifetime profit (no window).
    """
    basis = _basis(crm, basis)
    if basis == "monetary":
        scored = rfm_query(crm, as_of=as_of, window_days=window_days).subquery("v")
        return select(scored.c.customer_id, scored.c.monetary.label("value"))
    life = lifetime_query(crm, as_of=as_of).subquery("v")
    return select(life.c.customer_id, life.c.profit.label("value"))


def _basis(crm: CRM, basis: str | None) -> str:
    chosen = settings_of(crm).tier_basis if basis is None else basis
    if chosen not in BASES:
        raise ValidationError(
            f"basis: {chosen!r} is not one of: {', '.join(BASES)}", field="basis", value=chosen
        )
    return chosen


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
    """Customers and value per tier."""

    tier: str
    customers: int
    value: Decimal
    share_percent: Decimal


def tiers(
    crm: CRM,
    basis: str | None = None,
    *,
    as_of: datetime | None = None,
    window_days: int | None = None,
) -> list[TierSummary]:
    """Customers, total value and value share (%, 2 decimals) per tier, high first."""
    tiered = tier_query(crm, basis, as_of=as_of, window_days=window_days).subquery("t")
    query = select(
        tiered.c.tier, func.count().label("n"), raw_sum(tiered.c.value).label("total")
    ).group_by(tiered.c.tier)
    with crm.reading() as uow:
        found = {r.tier: (int(r.n), int(r.total or 0)) for r in uow.connection.execute(query)}
    grand = sum(total for _, total in found.values())
    return [
        TierSummary(
            tier=name,
            customers=found.get(name, (0, 0))[0],
            value=to_money(found.get(name, (0, 0))[1]),
            share_percent=_percent(found.get(name, (0, 0))[1], grand),
        )
        for name in TIERS
    ]


def tier_members(
    crm: CRM,
    tier: str,
    basis: str | None = None,
    *,
    as_of: datetime | None = None,
    window_days: int | None = None,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    """Customers of one tier, by value descending then id: ``customer_id``, ``value``."""
    if tier not in TIERS:
        raise ValidationError(
            f"tier: {tier!r} is not one of: {', '.join(TIERS)}", field="tier", value=tier
        )
    tiered = tier_query(crm, basis, as_of=as_of, window_days=window_days).subquery("t")
    query = (
        select(tiered.c.customer_id, tiered.c.value)
        .where(tiered.c.tier == tier)
        .order_by(tiered.c.value.desc(), tiered.c.customer_id)
        .limit(limit)
    )
    with crm.reading() as uow:
        return [
            {"customer_id": int(r.customer_id), "value": to_money(r.value)}
            for r in uow.connection.execute(query)
        ]


def _percent(part: int, whole: int) -> Decimal:
    if not whole:
        return Decimal(0).quantize(_CENT)
    return (Decimal(part) * 100 / Decimal(whole)).quantize(_CENT, rounding=ROUND_HALF_UP)


@frozen
class ParetoSet:
    """The key customers: the smallest set producing ``percent`` % of the total value."""

    basis: str
    percent: Decimal
    total: Decimal
    customers_valued: int
    members: tuple[dict[str, Any], ...]

    @property
    def customer_ids(self) -> list[int]:
        """Member ids, by value descending then id."""
        return [m["customer_id"] for m in self.members]

    @property
    def value(self) -> Decimal:
        """Total value of the members."""
        return sum((m["value"] for m in self.members), Decimal(0))

    @property
    def customer_share_percent(self) -> Decimal:
        """Members as a share (%) of the customers with a positive value."""
        return _percent(len(self.members), self.customers_valued)


def _pareto_percent(crm: CRM, percent: Decimal | float | int | str | None) -> Decimal:
    value = settings_of(crm).pareto_percent if percent is None else Decimal(str(percent))
    if not value.is_finite() or not 0 < value <= 100 or value != value.quantize(_CENT):
        raise ValidationError(
            f"percent: must be above 0 and at most 100 with at most 2 decimals, got {percent}",
            field="percent",
            value=percent,
        )
    return value


def pareto_query(
    crm: CRM,
    basis: str | None = None,
    *,
    percent: Decimal | float | int | str | None = None,
    as_of: datetime | None = None,
    window_days: int | None = None,
) -> Select[Any]:
    """The Pareto select: ``customer_id``, ``value``, ``cumulative``, ``total``, ``in_set``.

    One row per customer with a positive value; ``in_set`` is 1 for members.
    """
    target = int(_pareto_percent(crm, percent) * 100)  # basis points
    values = value_query(crm, basis, as_of=as_of, window_days=window_days).subquery("values")
    positive = select(values).where(values.c.value > 0).subquery("positive")
    order = (positive.c.value.desc(), positive.c.customer_id)
    cumulative = func.sum(positive.c.value).over(order_by=order, rows=(None, 0))
    running = select(
        positive.c.customer_id,
        positive.c.value,
        cumulative.label("cumulative"),
        func.sum(positive.c.value).over().label("total"),
        func.count().over().label("n"),
    ).subquery("running")
    before = running.c.cumulative - running.c.value
    in_set = case(
        (before * literal(10000, BigInteger) < literal(target, BigInteger) * running.c.total, 1),
        else_=0,
    )
    return select(
        running.c.customer_id,
        running.c.value,
        running.c.cumulative,
        running.c.total,
        running.c.n,
        in_set.label("in_set"),
    )


def pareto(
    crm: CRM,
    basis: str | None = None,
    *,
    percent: Decimal | float | int | str | None = None,
    as_of: datetime | None = None,
    window_days: int | None = None,
) -> ParetoSet:
    """The Pareto set on ``basis`` (``monetary``: revenue in the RFM window, or ``profit``).

    Raises ValidationError for an unknown basis or a percent outside (0, 100].
    """
    chosen = _basis(crm, basis)
    target = _pareto_percent(crm, percent)
    running = pareto_query(
        crm, chosen, percent=target, as_of=as_of, window_days=window_days
    ).subquery("pareto")
    members = (
        select(running.c.customer_id, running.c.value)
        .where(running.c.in_set == 1)
        .order_by(running.c.value.desc(), running.c.customer_id)
    )
    totals = select(func.max(running.c.total), func.count())
    with crm.reading() as uow:
        total, valued = uow.connection.execute(totals).one()
        rows = [
            {"customer_id": int(r.customer_id), "value": to_money(r.value)}
            for r in uow.connection.execute(members)
        ]
    return ParetoSet(
        basis=chosen,
        percent=target,
        total=to_money(total),
        customers_valued=int(valued or 0),
        members=tuple(rows),
    )


@frozen
class CustomerValue:
    """One customer's lifetime value figures."""

    customer_id: int
    purchases: int
    revenue: Decimal
    average_order_value: Decimal
    tenure_days: int
    annual_purchase_rate: Decimal
    historic_clv: Decimal
    predictive_clv: Decimal
    acquisition_cost: Decimal
    service_cost: Decimal
    profit: Decimal
    segment: str | None

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe dict (Decimals as strings)."""
        return {
            "customer_id": self.customer_id,
            "purchases": self.purchases,
            "revenue": str(self.revenue),
            "average_order_value": str(self.average_order_value),
            "tenure_days": self.tenure_days,
            "annual_purchase_rate": str(self.annual_purchase_rate),
            "historic_clv": str(self.historic_clv),
            "predictive_clv": str(self.predictive_clv),
            "acquisition_cost": str(self.acquisition_cost),
            "service_cost": str(self.service_cost),
            "profit": str(self.profit),
            "segment": self.segment,
        }


def annuity_factor(discount_rate: Decimal, years: int) -> Decimal:
    """``sum((1 + d) ** -t for t in 1..years)`` with 28-digit Decimal arithmetic."""
    with localcontext() as context:
        context.prec = 28
        return sum((1 / (1 + discount_rate) ** t for t in range(1, years + 1)), Decimal(0))


def predictive_clv(
    revenue: Decimal, purchases: int, tenure_days: int, settings: Settings
) -> tuple[Decimal, Decimal, Decimal]:
    """``(average order value, annual purchase rate, predictive CLV)`` for one customer.

    The CLV is rounded half-up to 0.01; AOV and rate are returned unrounded
    (28-digit Decimal).
    """
    with localcontext() as context:
        context.prec = 28
        aov = revenue / purchases
        rate = Decimal(purchases * 365) / Decimal(max(tenure_days, settings.min_tenure_days))
        yearly = aov * rate * settings.margin
        value = yearly * annuity_factor(settings.discount_rate, settings.expected_lifetime_years)
        return aov, rate, value.quantize(_CENT, rounding=ROUND_HALF_UP)


def _customer_value(row: Any, as_of_day: int, settings: Settings) -> CustomerValue:
    revenue = to_money(row.revenue)
    tenure = as_of_day - int(row.first_day)
    aov, rate, predicted = predictive_clv(revenue, int(row.purchases), tenure, settings)
    return CustomerValue(
        customer_id=int(row.customer_id),
        purchases=int(row.purchases),
        revenue=revenue,
        average_order_value=aov.quantize(_CENT, rounding=ROUND_HALF_UP),
        tenure_days=tenure,
        annual_purchase_rate=rate.quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP),
        historic_clv=revenue,
        predictive_clv=predicted,
        acquisition_cost=to_money(row.acquisition),
        service_cost=to_money(row.service),
        profit=to_money(row.profit),
        segment=row.segment,
    )


def customer_values(
    crm: CRM,
    *,
    as_of: datetime | None = None,
    customer_ids: Sequence[int] | None = None,
    limit: int | None = None,
) -> list[CustomerValue]:
    """Lifetime value, predictive CLV and profit per customer with a counted purchase.

    Ordered by predictive CLV descending (the ordering is computed in SQL
    from ``revenue * 365 / max(tenure, min_tenure)``, to which the CLV is
    proportional), then by id. ``customer_ids`` restricts the rows.
    """
    settings = settings_of(crm)
    moment = resolve_as_of(crm, as_of)
    today = day_number(moment)
    life = lifetime_query(crm, as_of=moment).subquery("life")
    tenure = literal(today, Integer) - life.c.first_day
    observed = case(
        (tenure > settings.min_tenure_days, tenure), else_=literal(settings.min_tenure_days)
    )
    strength = cast(life.c.revenue, Float) / observed
    query = select(life).order_by(strength.desc(), life.c.customer_id).limit(limit)
    with crm.reading() as uow:
        if customer_ids is None:
            rows = list(uow.connection.execute(query))
        else:
            wanted = sorted(set(customer_ids))
            rows = []
            for start in range(0, len(wanted), _IN_CHUNK):
                chunk = wanted[start : start + _IN_CHUNK]
                rows.extend(uow.connection.execute(query.where(life.c.customer_id.in_(chunk))))
    return [_customer_value(row, today, settings) for row in rows]


def set_costs(
    crm: CRM,
    customer_id: int,
    *,
    acquisition: Decimal | str | None = None,
    service: Decimal | str | None = None,
    actor: str | None = None,
    ctx: UnitOfWork | None = None,
) -> dict[str, Any]:
    """Set one customer's acquisition and/or service cost (``None`` keeps the current one).

    Raises NotFoundError for an unknown customer and ValidationError for an
    amount that is negative or not storable as money.
    """
    values: dict[str, Decimal] = {}
    for name, given in (("acquisition", acquisition), ("service", service)):
        if given is None:
            continue
        try:
            amount = Decimal(str(given))
        except ArithmeticError:
            raise ValidationError(
                f"{name}: {given!r} is not a decimal amount", field=name, value=given
            ) from None
        problem = money_problem(amount)
        if problem is None and amount < 0:
            problem = f"must not be negative, got {amount}"
        if problem:
            raise ValidationError(f"{name}: {problem}", field=name, value=given)
        values[name] = amount
    costs = table(crm.metadata, CUSTOMER_COSTS)
    with crm.unit_of_work(actor, ctx) as uow:
        crm.customers.get(customer_id, ctx=uow)
        existing = uow.connection.execute(
            select(costs).where(costs.c.customer_id == customer_id)
        ).first()
        if existing is None:
            uow.connection.execute(
                insert(costs).values(customer_id=customer_id, updated_at=uow.now, **values)
            )
        elif values:
            uow.connection.execute(
                update(costs)
                .where(costs.c.customer_id == customer_id)
                .values(updated_at=uow.now, **values)
            )
        row = uow.connection.execute(select(costs).where(costs.c.customer_id == customer_id)).one()
    return {
        "customer_id": customer_id,
        "acquisition": None if row.acquisition is None else str(row.acquisition),
        "service": None if row.service is None else str(row.service),
    }
