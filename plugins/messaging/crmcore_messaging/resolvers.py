"""``@requires`` resolvers: the customer a message is for (no service functions here).

Kept out of the service modules: :func:`crmcore.scoping.enforce_declared`
would make a resolver system-only, and core's check calls it on a user's view.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from crmcore import CRM, UnitOfWork
from crmcore.checks import identifier
from crmcore_messaging.tables import messages_table


def message_customer(crm: CRM, ctx: UnitOfWork | None, arguments: Any) -> list[int] | None:
    """The customer a message is for (a ``@requires`` resolver); ``None`` for staff or unknown."""
    table = messages_table(crm.metadata)
    message_id = identifier("message_id", arguments["message_id"])
    with crm.reading(ctx) as uow:
        found = uow.connection.execute(
            select(table.c.customer_id).where(table.c.id == message_id)
        ).first()
    if found is None or found.customer_id is None:
        return None
    return [int(found.customer_id)]


__all__ = ["message_customer"]
