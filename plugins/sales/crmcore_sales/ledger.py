"""What is still owed: payments settle a contract's instalments in due-date order.

A payment is not tied to one instalment. The payments received on a contract
up to a day settle its instalments oldest first (by due date, then sequence
number): instalment *i*'s outstanding amount is
``clamp(cumulative_due_i - paid, 0, amount_i)``, where ``cumulative_due_i`` is
the sum of the amounts of the instalments up to and including *i* and
``paid`` the sum of the contract's payments with ``received_on <= day``.
:func:`outstanding_query` computes it in SQL with a window function; every
report (ageing, sweep, profile, KPIs) reads it.

Money columns are stored as integers of ten-thousandths
(:class:`crmcore.storage.types.Money`); the arithmetic below works on those
integers (``type_coerce`` to ``BigInteger``), so it is exact, and
:func:`to_money` turns a result back into a Decimal.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, MetaData, Select, case, func, select, type_coerce

from crmcore_sales.tables import contracts_table, instalments_table, payments_table

#: Money is stored in ten-thousandths.
SCALE = 10_000


def raw(column: Any) -> ColumnElement[int]:
    """A Money column as its stored integer (ten-thousandths)."""
    return type_coerce(column, BigInteger)


def to_money(value: Any) -> Decimal:
    """A sum of stored integers back to a Decimal (``None`` is zero)."""
    if value is None:
        return Decimal(0)
    amount = Decimal(value) / SCALE
    return (
        amount.quantize(Decimal(1)) if amount == amount.to_integral_value() else amount.normalize()
    )


def paid_query(metadata: MetaData, as_of: date) -> Select[Any]:
    """``(contract_id, paid)``: the sum of each contract's payments received up to ``as_of``."""
    payments = payments_table(metadata)
    return (
        select(payments.c.contract_id, func.sum(raw(payments.c.amount)).label("paid"))
        .where(payments.c.received_on <= as_of)
        .group_by(payments.c.contract_id)
    )


def outstanding_query(metadata: MetaData, as_of: date) -> Select[Any]:
    """Every instalment with its ``outstanding`` amount (stored integer) as of ``as_of``.

    With the contract's ``currency`` and ``owner``.
    """
    instalments, contracts = instalments_table(metadata), contracts_table(metadata)
    paid = paid_query(metadata, as_of).subquery("paid")
    cumulative = func.sum(raw(instalments.c.amount)).over(
        partition_by=instalments.c.contract_id,
        order_by=(instalments.c.due_date, instalments.c.seq),
    )
    inner = (
        select(
            instalments.c.id,
            instalments.c.contract_id,
            instalments.c.customer_id,
            instalments.c.seq,
            instalments.c.due_date,
            raw(instalments.c.amount).label("amount"),
            instalments.c.overdue_notified_at,
            contracts.c.currency,
            contracts.c.owner,
            cumulative.label("cumulative"),
            func.coalesce(paid.c.paid, 0).label("paid"),
        )
        .join(contracts, contracts.c.id == instalments.c.contract_id)
        .outerjoin(paid, paid.c.contract_id == instalments.c.contract_id)
        .subquery("due")
    )
    left = inner.c.cumulative - inner.c.paid
    outstanding = case(
        (left <= 0, 0),
        (left >= inner.c.amount, inner.c.amount),
        else_=left,
    )
    return select(
        inner.c.id,
        inner.c.contract_id,
        inner.c.customer_id,
        inner.c.seq,
        inner.c.due_date,
        inner.c.amount,
        inner.c.overdue_notified_at,
        inner.c.currency,
        inner.c.owner,
        outstanding.label("outstanding"),
    )


__all__ = ["SCALE", "outstanding_query", "paid_query", "raw", "to_money"]
