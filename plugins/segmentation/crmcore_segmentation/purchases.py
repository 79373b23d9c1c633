"""What counts as a purchase, net of refunds: the base query of every analysis.

A **counted purchase** as of ``as_of`` is an interaction of kind ``purchase``
with an amount, ``occurred_at < as_of`` (in ``currency`` when one is
configured), whose **net amount** is positive. The net amount is the
purchase's amount minus the amounts of the refunds recorded against it: the
interactions of kind ``refund`` of the same customer, with
``payload.refund_of`` equal to the purchase's id and ``occurred_at < as_of``.
Refunds without a valid ``refund_of`` are ignored. A purchase refunded in full
(net amount zero or less) is not a purchase at all.

A **zero-value purchase** (amount exactly 0, nothing refunded: a free order, a
gift) is left out too, except where ``include_zero=True`` asks for it: the
probabilistic models (:mod:`.predictive_summary`) count it as a purchase
occasion, as the CDNOW data of the literature does.

Money is handled as crmcore stores it, in integer ten-thousandths of the
currency unit (``crmcore.storage.types.MONEY_SCALE``), so sums and
comparisons are exact on both backends; :func:`to_money` turns such an
integer back into a Decimal.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, Select, and_, cast, func, or_, select, type_coerce
from sqlalchemy.sql.elements import ColumnElement

from crmcore import CRM
from crmcore.storage.types import MONEY_SCALE, UTCDateTime
from crmcore_segmentation.calendar_sql import utc_day, utc_month

#: Ten-thousandths per currency unit.
SCALE = 10**MONEY_SCALE


def to_money(raw: Any) -> Decimal:
    """A stored integer of ten-thousandths (``None``: zero) as a Decimal amount."""
    if raw is None:
        return Decimal(0)
    value = Decimal(int(raw)).scaleb(-MONEY_SCALE)
    return value.quantize(Decimal("0.0001"))


def raw_money(column: Any) -> ColumnElement[int]:
    """A Money column as its stored integer of ten-thousandths."""
    return type_coerce(column, BigInteger)


def raw_sum(column: Any) -> ColumnElement[int]:
    """``SUM`` of an integer expression, kept a BIGINT (PostgreSQL would return NUMERIC)."""
    return cast(func.sum(column), BigInteger)


def counted_purchases(
    crm: CRM,
    as_of: datetime,
    *,
    since: datetime | None = None,
    currency: str | None = None,
    include_zero: bool = False,
) -> Select[Any]:
    """Select the counted purchases before ``as_of`` (and at or after ``since``).

    ``include_zero`` keeps zero-value purchases (amount 0 with no refund), whose
    ``net`` is then 0.

    Columns: ``id``, ``customer_id``, ``occurred_at``, ``day`` (UTC day
    number), ``month`` (UTC month number) and ``net`` (net amount in
    ten-thousandths, > 0; >= 0 with ``include_zero``). See the module docstring.
    """
    interactions = crm.metadata.tables["crm_interactions"]
    refund = interactions.alias("refund")
    as_of_param = type_coerce(as_of, UTCDateTime)
    linked = (
        select(
            refund.c.payload["refund_of"].as_integer().label("purchase_id"),
            refund.c.customer_id,
            raw_money(refund.c.amount).label("amount"),
        )
        .where(
            refund.c.kind == "refund",
            refund.c.amount.is_not(None),
            refund.c.occurred_at < as_of_param,
        )
        .subquery("linked_refunds")
    )
    refunds = (
        select(linked.c.purchase_id, linked.c.customer_id, raw_sum(linked.c.amount).label("total"))
        .where(linked.c.purchase_id.is_not(None))
        .group_by(linked.c.purchase_id, linked.c.customer_id)
        .subquery("refunds")
    )
    net = raw_money(interactions.c.amount) - func.coalesce(refunds.c.total, 0)
    conditions = [
        interactions.c.kind == "purchase",
        interactions.c.amount.is_not(None),
        interactions.c.occurred_at < as_of_param,
        (
            or_(net > 0, and_(raw_money(interactions.c.amount) == 0, net == 0))
            if include_zero
            else net > 0
        ),
    ]
    if since is not None:
        conditions.append(interactions.c.occurred_at >= type_coerce(since, UTCDateTime))
    if currency is not None:
        conditions.append(interactions.c.currency == currency)
    return (
        select(
            interactions.c.id,
            interactions.c.customer_id,
            interactions.c.occurred_at,
            utc_day(interactions.c.occurred_at).label("day"),
            utc_month(interactions.c.occurred_at).label("month"),
            net.label("net"),
        )
        .select_from(
            interactions.outerjoin(
                refunds,
                and_(
                    refunds.c.purchase_id == interactions.c.id,
                    refunds.c.customer_id == interactions.c.customer_id,
                ),
            )
        )
        .where(*conditions)
    )
