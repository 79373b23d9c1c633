"""The Pareto set (key customers): the fewest customers producing a share of the total value.

**Pareto set**: customers with a positive value sorted by value descending, ties by id
ascending; the smallest prefix whose cumulative value reaches ``percent`` % of the total
of positive values. A customer is in it when the cumulative value *before* them is below
the target. Computed in SQL with window functions; members stream from the database.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from attrs import frozen
from sqlalchemy import BigInteger, Select, case, func, literal, select

from crmcore import CRM, UnitOfWork, ValidationError
from crmcore.access import Action
from crmcore.scoping import enforce_declared, requires
from crmcore_segmentation.lifetime import FETCH_SIZE
from crmcore_segmentation.purchases import raw_sum, to_money
from crmcore_segmentation.settings import settings_of
from crmcore_segmentation.tiers import measure_of, percent_of, resolve_basis, value_query

_CENT = Decimal("0.01")


@frozen
class ParetoSet:
    """The key customers: the smallest set producing ``percent`` % of the total value.

    ``measure`` names the value (:func:`~crmcore_segmentation.tiers.measure_of`).
    """

    basis: str
    percent: Decimal
    total: Decimal
    customers_valued: int
    members: tuple[dict[str, Any], ...]
    measure: str

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
        return percent_of(len(self.members), self.customers_valued)


@frozen
class ParetoSummary:
    """The Pareto set's figures without its members (all computed in SQL)."""

    basis: str
    percent: Decimal
    total: Decimal
    customers_valued: int
    members: int
    value: Decimal
    measure: str

    @property
    def customer_share_percent(self) -> Decimal:
        """Members as a share (%) of the customers with a positive value."""
        return percent_of(self.members, self.customers_valued)

    def as_dict(self) -> dict[str, Any]:
        """The figures ``crm segments pareto`` prints (Decimals kept)."""
        return {
            "basis": self.basis,
            "measure": self.measure,
            "percent": self.percent,
            "total": self.total,
            "members": self.members,
            "customers_valued": self.customers_valued,
            "customer_share_percent": self.customer_share_percent,
            "members_value": self.value,
        }


@requires(Action.READ, scoped=True)  # reads no data
def resolve_percent(crm: CRM, percent: Decimal | float | int | str | None) -> Decimal:
    """``percent`` or the configured one; ValidationError unless in (0, 100], 2 decimals."""
    try:
        value = settings_of(crm).pareto_percent if percent is None else Decimal(str(percent))
    except InvalidOperation:
        value = Decimal("NaN")
    if not value.is_finite() or not 0 < value <= 100 or value != value.quantize(_CENT):
        raise ValidationError(
            f"percent: must be above 0 and at most 100 with at most 2 decimals, got {percent}",
            field="percent",
            value=percent,
        )
    return value


@requires(Action.READ, scoped=True)  # builds SQL; the caller scopes what it reads
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
    target = int(resolve_percent(crm, percent) * 100)  # basis points
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


@requires(Action.REPORT)  # an aggregate over every customer
def pareto_summary(
    crm: CRM,
    basis: str | None = None,
    *,
    percent: Decimal | float | int | str | None = None,
    as_of: datetime | None = None,
    window_days: int | None = None,
    ctx: UnitOfWork | None = None,
) -> ParetoSummary:
    """The Pareto set's total, valued customers, member count and value, in one SQL aggregate.

    Raises ValidationError for an unknown basis or a percent outside (0, 100].
    """
    chosen = resolve_basis(crm, basis)
    target = resolve_percent(crm, percent)
    running = pareto_query(
        crm, chosen, percent=target, as_of=as_of, window_days=window_days
    ).subquery("pareto")
    member_value = case((running.c.in_set == 1, running.c.value), else_=None)
    query = select(
        func.max(running.c.total).label("total"),
        func.count().label("valued"),
        func.coalesce(func.sum(running.c.in_set), 0).label("members"),
        raw_sum(member_value).label("members_value"),
    )
    with crm.reading(ctx) as uow:
        row = uow.connection.execute(query).one()
    return ParetoSummary(
        basis=chosen,
        percent=target,
        total=to_money(row.total),
        customers_valued=int(row.valued or 0),
        members=int(row.members or 0),
        value=to_money(row.members_value),
        measure=measure_of(crm, chosen),
    )


@requires(Action.READ, scoped=True)  # rows only of customers the principal may read
def iter_pareto_members(
    crm: CRM,
    basis: str | None = None,
    *,
    percent: Decimal | float | int | str | None = None,
    as_of: datetime | None = None,
    window_days: int | None = None,
    limit: int | None = None,
    ctx: UnitOfWork | None = None,
) -> Iterator[dict[str, Any]]:
    """Members of the Pareto set (``customer_id``, ``value``) by value descending then id.

    Streams from the database (at most ``limit`` rows). Raises
    ValidationError for an unknown basis or a bad percent at the call.
    """
    chosen = resolve_basis(crm, basis)
    target = resolve_percent(crm, percent)
    running = pareto_query(
        crm, chosen, percent=target, as_of=as_of, window_days=window_days
    ).subquery("pareto")
    query = (
        select(running.c.customer_id, running.c.value)
        .where(running.c.in_set == 1, crm.access.where(running.c.customer_id, ctx=ctx))
        .order_by(running.c.value.desc(), running.c.customer_id)
        .limit(limit)
        .execution_options(yield_per=FETCH_SIZE)
    )
    return _stream(crm, query, ctx=ctx)


def _stream(
    crm: CRM, query: Select[Any], *, ctx: UnitOfWork | None = None
) -> Iterator[dict[str, Any]]:
    with crm.reading(ctx) as uow:
        for r in uow.connection.execute(query):
            yield {"customer_id": int(r.customer_id), "value": to_money(r.value)}


@requires(Action.REPORT)  # an aggregate over every customer
def pareto(
    crm: CRM,
    basis: str | None = None,
    *,
    percent: Decimal | float | int | str | None = None,
    as_of: datetime | None = None,
    window_days: int | None = None,
    ctx: UnitOfWork | None = None,
) -> ParetoSet:
    """The Pareto set on ``basis`` (``monetary``: revenue in the RFM window, ``profit``, ...).

    Holds every member in memory; for large sets use :func:`pareto_summary`
    and :func:`iter_pareto_members`. Raises ValidationError for an unknown
    basis or a percent outside (0, 100].
    """
    summary = pareto_summary(
        crm, basis, percent=percent, as_of=as_of, window_days=window_days, ctx=ctx
    )
    members = iter_pareto_members(
        crm, summary.basis, percent=summary.percent, as_of=as_of, window_days=window_days, ctx=ctx
    )
    return ParetoSet(
        basis=summary.basis,
        percent=summary.percent,
        total=summary.total,
        customers_valued=summary.customers_valued,
        members=tuple(members),
        measure=summary.measure,
    )


# A public service function added without @requires refuses every user's view.
enforce_declared(__name__)
