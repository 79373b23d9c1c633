"""Hooks the sales plugin publishes (added through ``crm_add_hookspecs``).

Both are fired by the sweep (:func:`crmcore_sales.receivables.sweep`,
``crm sales sweep``), inside the sweep's transaction: what an implementation
writes through ``ctx.connection`` commits with the sweep's marks, and raising
rolls the whole sweep back (nothing is marked, so the next sweep fires again).
Each instalment and each contract is reported once: the sweep marks it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from crmcore.hooks import hookspec

if TYPE_CHECKING:
    from crmcore import UnitOfWork


@hookspec
def sales_instalments_overdue(ctx: UnitOfWork, instalments: Sequence[Mapping[str, Any]]) -> None:
    """React to instalments that became overdue (an activities plugin opens collection tasks).

    Called once per sweep that finds any, with every instalment past its due
    date that still has an outstanding amount and was not reported before.
    Each mapping holds ``instalment_id``, ``contract_id``, ``customer_id``,
    ``due_date`` (ISO), ``amount``, ``outstanding`` (Decimal strings),
    ``currency``, ``days_overdue`` and ``owner``. Called inside the sweep's
    transaction; raising rolls it back. Return nothing.
    """


@hookspec
def sales_contracts_due_for_renewal(
    ctx: UnitOfWork, contracts: Sequence[Mapping[str, Any]]
) -> None:
    """React to contracts whose renewal date is within ``renewal_notice_days``.

    Called once per sweep that finds any, with each contract not reported
    before: ``contract_id``, ``deal_id``, ``customer_id``, ``renewal_date``,
    ``end_date`` (ISO), ``value`` (Decimal string), ``currency``, ``owner``
    and ``days_left``. Called inside the sweep's transaction; raising rolls
    it back. Return nothing.
    """


__all__ = ["sales_contracts_due_for_renewal", "sales_instalments_overdue"]
