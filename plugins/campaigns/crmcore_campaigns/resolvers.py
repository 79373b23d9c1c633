"""``@requires`` resolvers: the customers a campaign operation acts on."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select

from crmcore import CRM, UnitOfWork
from crmcore_campaigns.tables import recipients_table


def campaign_recipients(
    crm: CRM, ctx: UnitOfWork | None, arguments: Mapping[str, Any]
) -> list[int]:
    """Every frozen recipient of the campaign named by the ``campaign_id`` argument."""
    table = recipients_table(crm.metadata)
    with crm.reading(ctx) as uow:
        return [
            int(i)
            for i in uow.connection.execute(
                select(table.c.customer_id).where(table.c.campaign_id == arguments["campaign_id"])
            ).scalars()
        ]


__all__ = ["campaign_recipients"]
