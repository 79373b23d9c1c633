"""Lifetime figures, profit and CLV per customer; per-customer acquisition and service costs.

Definitions (money in exact ten-thousandths in SQL, see :mod:`.purchases`):

* **lifetime revenue**: the sum of net amounts of every counted purchase before ``as_of``
  (no window). This is the **historic CLV**.
* **profit**, in the form ``profitability`` names (both are always computed):

  - ``contribution`` (the default) = ``floor(lifetime revenue x margin)`` (to 1/10000
    of the unit) minus the acquisition and the service cost;
  - ``revenue_minus_costs`` = lifetime revenue minus the acquisition and the service
    cost (the 10C framework's customer profitability: lifetime purchases minus the
    cost of acquiring and serving the customer).

  Costs come from the customer's row in ``segmentation_customer_costs``
  (:func:`set_costs`) when set, else from ``costs.segments.<RFM segment>`` of the
  config, else ``costs.acquisition`` / ``costs.service`` (default 0).
* **predictive CLV** = ``AOV x annual purchase rate x margin`` summed over
  ``expected_lifetime_years`` years, year ``t`` (1-based) discounted by ``(1 + d) ** t``;
  ``AOV`` = lifetime revenue / counted purchases; annual rate = ``purchases * 365 /
  max(tenure_days, min_tenure_days)``, ``tenure_days`` the UTC calendar days from the first
  counted purchase to ``as_of``. Computed with Python ``Decimal`` (28 digits) from the SQL
  aggregates and rounded half-up to 0.01.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
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
from crmcore.access import Action
from crmcore.audit import AuditEntry
from crmcore.scoping import enforce_declared, requires
from crmcore.storage.types import money_problem
from crmcore_segmentation.calendar_sql import day_number
from crmcore_segmentation.per_customer import merge_per_customer
from crmcore_segmentation.purchases import SCALE, counted_purchases, raw_money, raw_sum, to_money
from crmcore_segmentation.rfm import resolve_as_of, rfm_query
from crmcore_segmentation.settings import Settings, settings_of
from crmcore_segmentation.tables import CUSTOMER_COSTS, table

_CENT = Decimal("0.01")
_IN_CHUNK = 500
#: Rows fetched per round trip when a listing streams.
FETCH_SIZE = 1000


def _raw(amount: Decimal) -> int:
    return int(amount * SCALE)


def _margin_raw(settings: Settings) -> int:
    raw = settings.margin * SCALE
    if raw != raw.to_integral_value():
        raise ValidationError(
            f"margin: {settings.margin} has more than 4 decimal places", field="margin"
        )
    return int(raw)


@requires(Action.READ, scoped=True)  # builds SQL; the caller scopes what it reads
def lifetime_query(crm: CRM, *, as_of: datetime | None = None) -> Select[Any]:
    """Per customer with a counted purchase before ``as_of``: lifetime figures and profit.

    Columns: ``customer_id``, ``purchases``, ``revenue``, ``first_day``, ``last_day``,
    ``segment`` (RFM segment in the configured window, ``NULL`` when unscored),
    ``acquisition``, ``service``, ``contribution``, ``revenue_minus_costs`` and
    ``profit`` (the configured form of the two; money in ten-thousandths).
    The lifetime aggregates and the RFM segment are put side by side with
    :func:`~crmcore_segmentation.per_customer.merge_per_customer` (a sort, not
    a join SQLite would re-run per customer).
    """
    settings = settings_of(crm)
    moment = resolve_as_of(crm, as_of)
    purchases = counted_purchases(crm, moment, currency=settings.currency).subquery("lp")
    totals = select(
        purchases.c.customer_id,
        func.count().label("purchases"),
        raw_sum(purchases.c.net).label("revenue"),
        func.min(purchases.c.day).label("first_day"),
        func.max(purchases.c.day).label("last_day"),
    ).group_by(purchases.c.customer_id)
    rfm = rfm_query(crm, as_of=moment).subquery("rfm_now")
    segments = select(rfm.c.customer_id, rfm.c.segment)
    life = merge_per_customer(totals, [segments], "life")
    costs = table(crm.metadata, CUSTOMER_COSTS)

    def cost(kind: str) -> ColumnElement[int]:
        by_segment = [
            (life.c.segment == name, literal(_raw(getattr(c, kind)), BigInteger))
            for name, c in sorted(settings.segment_costs.items())
        ]
        default = literal(_raw(getattr(settings.default_costs, kind)), BigInteger)
        fallback = case(*by_segment, else_=default) if by_segment else default
        return func.coalesce(raw_money(costs.c[kind]), fallback)

    acquisition, service = cost("acquisition"), cost("service")
    contribution = (
        life.c.revenue * literal(_margin_raw(settings), BigInteger) // literal(SCALE, BigInteger)
        - acquisition
        - service
    )
    net = life.c.revenue - acquisition - service
    profit = net if settings.profitability == "revenue_minus_costs" else contribution
    return select(
        life.c.customer_id,
        life.c.purchases,
        life.c.revenue,
        life.c.first_day,
        life.c.last_day,
        life.c.segment,
        acquisition.label("acquisition"),
        service.label("service"),
        cast(contribution, BigInteger).label("contribution"),
        cast(net, BigInteger).label("revenue_minus_costs"),
        cast(profit, BigInteger).label("profit"),
    ).select_from(life.outerjoin(costs, costs.c.customer_id == life.c.customer_id))


@frozen
class CustomerValue:
    """One customer's lifetime value figures.

    ``profit`` is ``contribution`` or ``revenue_minus_costs``, as ``profit_form`` says.
    """

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
    contribution: Decimal
    revenue_minus_costs: Decimal
    profit_form: str

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
            "profit_form": self.profit_form,
            "contribution": str(self.contribution),
            "revenue_minus_costs": str(self.revenue_minus_costs),
            "segment": self.segment,
        }


@functools.lru_cache(maxsize=64)
def annuity_factor(discount_rate: Decimal, years: int) -> Decimal:
    """``sum((1 + d) ** -t for t in 1..years)`` with 28-digit Decimal arithmetic (cached)."""
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
        contribution=to_money(row.contribution),
        revenue_minus_costs=to_money(row.revenue_minus_costs),
        profit_form=settings.profitability,
    )


@requires(Action.READ, scoped=True)  # rows only of customers the principal may read
def iter_customer_values(
    crm: CRM,
    *,
    as_of: datetime | None = None,
    customer_ids: Sequence[int] | None = None,
    limit: int | None = None,
    ctx: UnitOfWork | None = None,
) -> Iterator[CustomerValue]:
    """:func:`customer_values` as an iterator: rows stream from the database as consumed.

    Memory stays flat however many customers there are (PostgreSQL reads
    through a server-side cursor, :data:`FETCH_SIZE` rows at a time). The
    read connection stays open until the iterator is exhausted or closed.
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
    query = (
        select(life)
        .where(crm.access.where(life.c.customer_id, ctx=ctx))
        .order_by(strength.desc(), life.c.customer_id)
        .limit(limit)
    )
    streamed = query.execution_options(yield_per=FETCH_SIZE)
    with crm.reading(ctx) as uow:
        if customer_ids is None:
            for row in uow.connection.execute(streamed):
                yield _customer_value(row, today, settings)
            return
        wanted = sorted(set(customer_ids))
        for start in range(0, len(wanted), _IN_CHUNK):
            chunk = wanted[start : start + _IN_CHUNK]
            for row in uow.connection.execute(query.where(life.c.customer_id.in_(chunk))):
                yield _customer_value(row, today, settings)


@requires(Action.READ, scoped=True)  # rows only of customers the principal may read
def customer_values(
    crm: CRM,
    *,
    as_of: datetime | None = None,
    customer_ids: Sequence[int] | None = None,
    limit: int | None = None,
    ctx: UnitOfWork | None = None,
) -> list[CustomerValue]:
    """Lifetime value, predictive CLV and profit per customer with a counted purchase.

    Ordered by predictive CLV descending (the ordering is computed in SQL
    from ``revenue * 365 / max(tenure, min_tenure)``, to which the CLV is
    proportional), then by id. ``customer_ids`` restricts the rows. For
    many customers prefer :func:`iter_customer_values` (same rows, streamed).
    """
    return list(
        iter_customer_values(crm, as_of=as_of, customer_ids=customer_ids, limit=limit, ctx=ctx)
    )


@requires(Action.WRITE, customer="customer_id")
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
        uow.crm.audit.record(
            uow,
            [
                AuditEntry(
                    "segmentation.costs",
                    "customer_costs",
                    customer_id,
                    customer_id,
                    {k: str(v) for k, v in values.items()},
                )
            ],
        )
    return {
        "customer_id": customer_id,
        "acquisition": None if row.acquisition is None else str(row.acquisition),
        "service": None if row.service is None else str(row.service),
    }


# A public service function added without @requires refuses every user's view.
enforce_declared(__name__)
