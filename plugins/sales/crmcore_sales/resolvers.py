"""The ``@requires`` resolvers of the plugin: which customer a deal or contract id concerns.

Each takes ``(crm, ctx, arguments)`` (:data:`crmcore.scoping.CustomerResolver`)
and returns the customer id, or ``None`` when the deal or contract does not
exist (refused for a restricted principal, as core refuses a missing customer).
They are what core's check calls, not service functions.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select

from crmcore import CRM, UnitOfWork
from crmcore_sales.tables import contracts_table, deals_table


def deal_customer(crm: CRM, ctx: UnitOfWork | None, arguments: Mapping[str, Any]) -> int | None:
    """The customer of the deal named by the ``deal_id`` argument (a ``@requires`` resolver)."""
    deal_id = arguments.get("deal_id")
    if isinstance(deal_id, bool) or not isinstance(deal_id, int):
        return None
    deals = deals_table(crm.metadata)
    with crm.reading(ctx) as uow:
        found = uow.connection.execute(
            select(deals.c.customer_id).where(deals.c.id == deal_id)
        ).scalar()
    return None if found is None else int(found)


def contract_customer(crm: CRM, ctx: UnitOfWork | None, arguments: Mapping[str, Any]) -> int | None:
    """The customer of the contract named by ``contract_id`` (a ``@requires`` resolver)."""
    contract_id = arguments.get("contract_id")
    if isinstance(contract_id, bool) or not isinstance(contract_id, int):
        return None
    contracts = contracts_table(crm.metadata)
    with crm.reading(ctx) as uow:
        found = uow.connection.execute(
            select(contracts.c.customer_id).where(contracts.c.id == contract_id)
        ).scalar()
    return None if found is None else int(found)


__all__ = ["contract_customer", "deal_customer"]
